//! `meshtls authz check` and `meshtls path check`: exit codes, text and JSON output, on the
//! seed case of examples/authz (the AGC gateway identity to a STRICT namespace).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const GW: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";
const DUMP: &str = "examples/authz/cluster-dump.json";

#[test]
fn path_check_the_seed_case() {
    let args = [
        "path",
        "check",
        DUMP,
        "--from",
        GW,
        "--to",
        "demo/app=api",
        "--port",
        "8080",
    ];
    let (code, out, err) = run(&args, "");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("refused: denied: ALLOW policies apply"),
        "{out}"
    );
    assert!(out.contains("mTLS mode of port 8080: STRICT"), "{out}");
    assert!(out.contains("ALLOW demo/api-callers"), "{out}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, out, _) = run(&json_args, "");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["step"], "no-allow-matched");
    assert_eq!(v["mode"], "STRICT");
    assert_eq!(v["transport"], "mtls");

    // With the policy naming the gateway (the dump with allow-gateway.yaml applied).
    let dump = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/authz/cluster-dump.json"
    ))
    .unwrap();
    let allow = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/authz/allow-gateway.yaml"
    ))
    .unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let pol = meshtls::policy::authorization::AuthorizationPolicy::from_yaml(&allow).unwrap();
    doc["items"][2] = pol.to_value();
    let (code, out, err) = run(
        &[
            "path",
            "check",
            "-",
            "--from",
            GW,
            "--to",
            "demo/app=api",
            "--port",
            "8080",
            "--json",
        ],
        &doc.to_string(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["step"], "allowed");
    assert_eq!(v["authorization"]["policy"], "demo/api-callers");

    // Plaintext is refused by the mode; a mesh workload goes through its DestinationRule.
    let (code, out, _) = run(
        &[
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "demo/app=api",
            "--port",
            "8080",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("refused by mTLS mode STRICT (PeerAuthentication demo/default)"),
        "{out}"
    );
    let (code, out, _) = run(
        &[
            "path",
            "check",
            DUMP,
            "--from",
            "spiffe://cluster.local/ns/shop/sa/web",
            "--workload",
            "--to",
            "demo/app=api",
            "--port",
            "8080",
            "--service",
            "api",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "DestinationRule demo/api (host api.demo.svc.cluster.local) sets tls.mode ISTIO_MUTUAL"
        ),
        "{out}"
    );
}

#[test]
fn path_check_bad_usage() {
    for args in [
        vec!["path", "check", DUMP, "--to", "demo", "--port", "80"],
        vec![
            "path",
            "check",
            DUMP,
            "--from",
            "not-an-id",
            "--to",
            "demo",
            "--port",
            "80",
        ],
        vec![
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "/app=x",
            "--port",
            "80",
        ],
        vec![
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "demo/app",
            "--port",
            "80",
        ],
        vec![
            "path",
            "check",
            DUMP,
            "--plaintext",
            "--to",
            "demo",
            "--port",
            "99999",
        ],
        vec![
            "path",
            "check",
            "missing.json",
            "--plaintext",
            "--to",
            "demo",
            "--port",
            "80",
        ],
    ] {
        let (code, out, err) = run(&args, "");
        assert_eq!(code, 2, "{args:?}: {out}{err}");
    }
}

#[test]
fn authz_check_validates_and_evaluates() {
    let (code, out, _) = run(&["authz", "check", "examples/authz/allow-gateway.yaml"], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok       demo/api-callers"), "{out}");
    let bad = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: foo}\nspec: {action: DENY}\n";
    let (code, out, _) = run(&["authz", "check", "-", "--json"], bad);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert!(
        v["objects"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("DENY action without `rules`")
    );
    assert_eq!(v["objects"][0]["errors"][0]["layer"], "istiod");

    let eval = [
        "authz",
        "check",
        "examples/authz/deny-gateway.yaml",
        "--to",
        "demo/app=api",
        "--port",
        "8080",
    ];
    let mut gw = eval.to_vec();
    gw.extend(["--from", GW]);
    let (code, out, _) = run(&gw, "");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused: denied: ALLOW policies apply"),
        "{out}"
    );
    let mut web = eval.to_vec();
    web.extend([
        "--from",
        "spiffe://cluster.local/ns/shop/sa/web",
        "--method",
        "GET",
        "--path",
        "/x",
        "--json",
    ]);
    let (code, out, _) = run(&web, "");
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["policy"], "demo/api-callers");
    assert_eq!(v["rule"], 0);
    let (code, _, err) = run(
        &[
            "authz",
            "check",
            "examples/authz/deny-gateway.yaml",
            "--to",
            "demo",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &[
            "authz",
            "check",
            "examples/authz/deny-gateway.yaml",
            "--port",
            "80",
        ],
        "",
    );
    assert_eq!(code, 2, "{err}");
}
