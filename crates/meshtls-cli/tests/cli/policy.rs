//! `meshtls policy check` / `meshtls policy resolve`: exit codes and JSON output.

use crate::support::{Scratch, run};

const POLICIES: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default, namespace: istio-system, creationTimestamp: "2024-01-01T00:00:00Z"}
  spec: {mtls: {mode: STRICT}}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: legacy, namespace: shop, creationTimestamp: "2024-02-01T00:00:00Z"}
  spec:
    selector: {matchLabels: {app: legacy}}
    portLevelMtls: {"8080": {mode: PERMISSIVE}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: istio, namespace: istio-system}
  data: {mesh: "rootNamespace: istio-config"}
"#;

#[test]
fn check_exit_codes_follow_the_verdict() {
    let (code, out, _) = run(&["policy", "check", "-"], POLICIES);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 PeerAuthentications: 2 valid"), "{out}");
    assert!(out.contains("1 other document skipped"), "{out}");

    let bad = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: a}\nspec: {portLevelMtls: {\"80\": {mode: STRICT}}}\n";
    let (code, out, _) = run(&["--json", "policy", "check", "-"], bad);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["objects"][0]["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["message"] == "portLevelMtls requires selector" && e["layer"] == "apiserver"));
    assert!(errors.iter().any(|e| e["layer"] == "istiod"));

    let (code, out, _) = run(&["policy", "check", "-"], "a: [unclosed\n");
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = run(&["policy", "check", "/nonexistent/file.yaml"], "");
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["policy", "check"], "");
    assert_eq!(code, 2);
}

#[test]
fn every_validation_vector_through_the_cli() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/peerauth-validation.json"
    );
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in cases.as_array().unwrap() {
        let (code, out, err) = run(
            &["policy", "check", "-"],
            case["manifest"].as_str().unwrap(),
        );
        let want = if case["expected"] == "accept" { 0 } else { 1 };
        assert_eq!(code, want, "{}: {out}{err}", case["name"]);
    }
}

#[test]
fn resolve_answers_with_provenance() {
    let (code, out, err) = run(
        &[
            "--json",
            "policy",
            "resolve",
            "-",
            "-n",
            "shop",
            "--labels",
            "app=legacy,version=v1",
            "--port",
            "8080",
        ],
        POLICIES,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mode"], "PERMISSIVE");
    assert_eq!(v["level"], "port");
    assert_eq!(v["policy"], "shop/legacy");
    assert_eq!(v["skipped"], 1);
    assert!(v["explanation"].as_array().unwrap().len() >= 3);

    let (code, out, _) = run(
        &["policy", "resolve", "-", "-n", "shop", "-l", "app=other"],
        POLICIES,
    );
    assert_eq!(code, 0);
    assert!(
        out.starts_with("STRICT (mesh level, istio-system/default)"),
        "{out}"
    );

    // Another root namespace: the istio-system policy is then a namespace policy only.
    let (code, out, _) = run(
        &[
            "--json",
            "policy",
            "resolve",
            "-",
            "-n",
            "shop",
            "--root-namespace",
            "istio-config",
        ],
        POLICIES,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["mode"].as_str(), v["level"].as_str()),
        (Some("PERMISSIVE"), Some("default"))
    );

    // ... or taken from the istio ConfigMap.
    let dir = Scratch::new("policy-mesh");
    let mesh = dir.write("mesh.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    rootNamespace: istio-config\n");
    let (code, out, err) = run(
        &[
            "--json",
            "policy",
            "resolve",
            "-",
            "-n",
            "shop",
            "--mesh-config",
            &mesh,
        ],
        POLICIES,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["root_namespace"], "istio-config");
    assert_eq!(v["level"], "default");

    for bad in [
        vec!["policy", "resolve", "-", "-n", "shop", "-l", "app"],
        vec!["policy", "resolve", "-", "-n", "shop", "-l", "=x"],
        vec!["policy", "resolve", "-", "-n", "shop", "-l", "a=1,a=2"],
        vec!["policy", "resolve", "-", "-n", "shop", "--port", "70000"],
        vec![
            "policy",
            "resolve",
            "-",
            "-n",
            "shop",
            "--root-namespace",
            "Bad Root",
        ],
        vec!["policy", "resolve", "-"],
    ] {
        let (code, _, err) = run(&bad, POLICIES);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    let (code, out, _) = run(
        &["policy", "resolve", "-", "-n", "shop"],
        "kind: PeerAuthentication\napiVersion: security.istio.io/v1\nmetadata: {name: x}\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no metadata.namespace"), "{out}");
}
