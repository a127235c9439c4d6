//! Every case of the shared PeerAuthentication vectors (tests/data/peerauth-*.json).
//!
//! Resolution cases are fed the way a cluster shows them: the test writes each case's policies
//! as the YAML `kubectl get peerauthentications -A -o yaml` prints (a `kind: List` with
//! Kubernetes bookkeeping and `managedFields`), and again as a hand-written multi-document
//! stream with YAML integer port keys.

use std::fmt::Write as _;

use meshtls::policy::{Level, MtlsMode, PolicySet, Rule, validate_peer_authentication};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("vector file");
    serde_json::from_str::<Value>(&text)
        .expect("vector json")
        .as_array()
        .expect("a list of cases")
        .clone()
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One policy as `kubectl get -o yaml` prints an item of a list (keys sorted, timestamps and
/// port keys quoted, bookkeeping included), indented for a list item.
fn kubectl_item(p: &Value, uid: usize, out: &mut String) {
    let name = p["name"].as_str().unwrap();
    let ns = p["namespace"].as_str().unwrap();
    let ts = p["creation_timestamp"].as_str().unwrap();
    out.push_str("- apiVersion: security.istio.io/v1\n  kind: PeerAuthentication\n  metadata:\n");
    writeln!(out, "    creationTimestamp: {}", quote(ts)).unwrap();
    out.push_str("    generation: 1\n    managedFields:\n    - apiVersion: security.istio.io/v1\n      fieldsType: FieldsV1\n      fieldsV1:\n        f:spec:\n          .: {}\n      manager: kubectl-client-side-apply\n      operation: Update\n");
    writeln!(out, "      time: {}", quote(ts)).unwrap();
    writeln!(out, "    name: {name}\n    namespace: {ns}").unwrap();
    writeln!(out, "    resourceVersion: \"{}\"", 1000 + uid).unwrap();
    writeln!(out, "    uid: 00000000-0000-0000-0000-{uid:012}").unwrap();
    out.push_str("  spec:\n");
    let mut empty = true;
    if let Some(mode) = p["mtls_mode"].as_str() {
        writeln!(out, "    mtls:\n      mode: {mode}").unwrap();
        empty = false;
    }
    if let Some(ports) = p.get("port_level_mtls").and_then(Value::as_object) {
        out.push_str("    portLevelMtls:\n");
        for (port, mode) in ports {
            match mode.as_str() {
                Some(m) => writeln!(out, "      \"{port}\":\n        mode: {m}").unwrap(),
                None => writeln!(out, "      \"{port}\": {{}}").unwrap(),
            }
        }
        empty = false;
    }
    match &p["selector"] {
        Value::Null => {}
        Value::Object(labels) if labels.is_empty() => {
            out.push_str("    selector:\n      matchLabels: {}\n");
            empty = false;
        }
        Value::Object(labels) => {
            out.push_str("    selector:\n      matchLabels:\n");
            for (k, v) in labels {
                writeln!(out, "        {k}: {}", quote(v.as_str().unwrap())).unwrap();
            }
            empty = false;
        }
        other => panic!("selector {other}"),
    }
    if empty {
        // kubectl prints an empty spec as `spec: {}`.
        out.truncate(out.len() - 1);
        out.push_str(" {}\n");
    }
}

fn kubectl_list(policies: &[Value]) -> String {
    let mut out = String::from("apiVersion: v1\nitems:\n");
    if policies.is_empty() {
        out = String::from("apiVersion: v1\nitems: []\n");
    }
    for (i, p) in policies.iter().enumerate() {
        kubectl_item(p, i, &mut out);
    }
    out.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    out
}

/// The same policies as a hand-written stream: flow style, integer port keys, `---`.
fn stream(policies: &[Value]) -> String {
    let mut out = String::new();
    for p in policies {
        out.push_str("---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n");
        writeln!(
            out,
            "metadata: {{name: {}, namespace: {}, creationTimestamp: {}}}",
            p["name"].as_str().unwrap(),
            p["namespace"].as_str().unwrap(),
            p["creation_timestamp"].as_str().unwrap()
        )
        .unwrap();
        out.push_str("spec:\n");
        if let Some(mode) = p["mtls_mode"].as_str() {
            writeln!(out, "  mtls: {{mode: {mode}}}").unwrap();
        }
        if let Some(sel) = p["selector"].as_object() {
            writeln!(
                out,
                "  selector: {{matchLabels: {}}}",
                Value::Object(sel.clone())
            )
            .unwrap();
        }
        if let Some(ports) = p.get("port_level_mtls").and_then(Value::as_object) {
            out.push_str("  portLevelMtls:\n");
            for (port, mode) in ports {
                match mode.as_str() {
                    Some(m) => writeln!(out, "    {port}: {{mode: {m}}}").unwrap(),
                    None => writeln!(out, "    {port}: {{}}").unwrap(),
                }
            }
        }
    }
    // A document of another kind is skipped.
    out.push_str("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: my-ns}\n");
    out
}

#[test]
fn resolution_vectors() {
    let cases = load("peerauth-resolution.json");
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let root = case["root_namespace"].as_str().unwrap();
        let policies = case["policies"].as_array().unwrap();
        let ns = case["workload"]["namespace"].as_str().unwrap();
        let labels: Vec<(String, String)> = case["workload"]["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let port = case["port"].as_u64().map(|p| u16::try_from(p).unwrap());
        let expected = MtlsMode::parse(case["expected_mode"].as_str().unwrap()).unwrap();

        let listed = kubectl_list(policies);
        let streamed = stream(policies);
        for (form, text) in [("kubectl list", &listed), ("stream", &streamed)] {
            let set = PolicySet::from_yaml(text, root)
                .unwrap_or_else(|e| panic!("{name} ({form}): {e}\n{text}"));
            assert_eq!(set.len(), policies.len(), "{name} ({form})");
            if form == "stream" {
                assert_eq!(set.skipped_documents(), 1, "{name}");
            }
            let fast = set.resolve(ns, &labels, port);
            let explained = set.explain(ns, &labels, port);
            assert_eq!(
                fast.mode(),
                expected,
                "{name} ({form}): {:#?}",
                explained.explanation()
            );
            assert_eq!(
                (fast.mode(), fast.level(), fast.policy()),
                (explained.mode(), explained.level(), explained.policy()),
                "{name} ({form}): resolve and explain disagree"
            );
            assert!(fast.explanation().is_empty());
            let last = explained.explanation().last().unwrap();
            assert!(
                last.starts_with(&format!("result: {expected}")),
                "{name}: {last}"
            );
            // Provenance is consistent with the mode.
            match fast.level() {
                Level::Default => {
                    assert_eq!(fast.mode(), MtlsMode::Permissive);
                    assert!(fast.policy().is_none());
                }
                Level::Mesh => assert_eq!(fast.policy().unwrap().namespace(), root),
                Level::Namespace | Level::Workload | Level::Port => {
                    assert_eq!(fast.policy().unwrap().namespace(), ns)
                }
            }
            if case["category"] == "root-selector" {
                assert!(
                    explained
                        .explanation()
                        .iter()
                        .any(|l| l.contains("ignored: selector in the root namespace")),
                    "{name}: {:#?}",
                    explained.explanation()
                );
            }
        }
    }
}

#[test]
fn validation_vectors() {
    let cases = load("peerauth-validation.json");
    assert!(cases.len() >= 25);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let manifest = case["manifest"].as_str().unwrap();
        let webhook = case["layer"].as_str().unwrap().starts_with("istiod");
        let object = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap();
        let result = validate_peer_authentication(manifest);
        match case["expected"].as_str().unwrap() {
            "accept" => {
                let warnings = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                if webhook {
                    assert_eq!(
                        !warnings.is_empty(),
                        case["warning"] == true,
                        "{name}: {warnings:?}"
                    );
                }
                if case["warning"] == true {
                    let reason = case["reason"].as_str().unwrap();
                    assert!(
                        warnings.iter().any(|w| w.contains(reason)),
                        "{name}: {warnings:?}"
                    );
                    assert!(
                        warnings
                            .iter()
                            .all(|w| w.contains(object) && w.contains("spec.selector"))
                    );
                }
            }
            "reject" => {
                let err = match result {
                    Err(meshtls::Error::Policy(e)) => e,
                    other => panic!("{name}: expected a policy error, got {other:?}"),
                };
                let message = err.to_string();
                assert!(message.contains(object), "{name}: {message}");
                for part in case["reason"].as_str().unwrap().split("; also ") {
                    assert!(message.contains(part), "{name}: {part:?} not in {message}");
                    // The layer the vector comes from produced this reason.
                    assert!(
                        err.violations()
                            .iter()
                            .any(|v| v.message.contains(part) && v.rule.is_istiod() == webhook),
                        "{name}: {part:?} from the wrong layer: {:#?}",
                        err.violations()
                    );
                }
                assert!(
                    err.violations()
                        .iter()
                        .all(|v| !v.path.is_empty() || v.rule == Rule::FieldValidation),
                    "{name}: every violation names its field"
                );
            }
            other => panic!("{name}: expected {other}"),
        }
    }
}
