//! The `meshtls` binary: exit codes (0 yes, 1 no, 2 usage) and `--json` output.

use crate::support::{Scratch, meshtls, s};

#[test]
fn id_valid_invalid_usage() {
    let (code, out, _) = meshtls(&["--json", "id", "spiffe://cluster.local/ns/a/sa/b"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["trust_domain"], "cluster.local");
    assert_eq!(v["istio"]["namespace"], "a");

    let (code, out, _) = meshtls(&["--json", "id", "spiffe://Cluster.local/x"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["valid"], false);
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("trust domain characters")
    );

    let (code, out, _) = meshtls(&["id", "--lenient", "SPIFFE://Cluster.local/x"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("spiffe://cluster.local/x"));

    let (code, _, err) = meshtls(&["id"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = meshtls(&["no-such-command"]);
    assert_eq!(code, 2);
}

#[test]
fn mesh_config_file() {
    let dir = Scratch::new("mesh");
    let good = dir.write(
        "good.yaml",
        "trustDomain: prod.example\ntrustDomainAliases: [old.example]\n",
    );
    let (code, out, _) = meshtls(&["--json", "mesh", &good]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["trust_domains_for_validation"],
        serde_json::json!(["prod.example", "old.example"])
    );
    let bad = dir.write("bad.yaml", "trustDomain: Prod\n");
    let (code, _, _) = meshtls(&["mesh", &bad]);
    assert_eq!(code, 1);
    let (code, _, _) = meshtls(&["mesh", s(&dir.p("missing.yaml"))]);
    assert_eq!(code, 2);
}
