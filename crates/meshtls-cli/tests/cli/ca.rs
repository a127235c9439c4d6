//! `meshtls ca init|intermediate|cacerts`, `issue`, `sign-csr`, `secret`: files, output and
//! exit codes, with openssl as the checker.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{Scratch, s};

fn meshtls(args: &[&str]) -> Output {
    crate::support::output(args, "")
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn openssl_verify(root: &Path, chain: &Path, purpose: &str) {
    let out = Command::new("openssl")
        .args([
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            s(root),
            "-untrusted",
            s(chain),
            s(chain),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn offline_root_intermediate_issue_and_secret() {
    let d = Scratch::new("flow");
    let root = d.p("root");
    let cluster = d.p("cluster1");
    ok(&meshtls(&[
        "ca",
        "init",
        s(&root),
        "--key",
        "ec-p384",
        "--ttl",
        "3650d",
    ]));
    assert_eq!(mode(&root.join("ca-key.pem")), 0o600);
    // A second init into the same directory is refused (exit 1) unless --force.
    let again = meshtls(&["ca", "init", s(&root)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("--force"));
    ok(&meshtls(&[
        "ca",
        "init",
        s(&root),
        "--key",
        "ec-p256",
        "--force",
    ]));

    let out = ok(&meshtls(&[
        "--json",
        "ca",
        "intermediate",
        s(&cluster),
        "--ca",
        s(&root),
        "--key",
        "ec-p256",
        "--common-name",
        "cluster-1",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["self_signed"], false);
    assert_eq!(v["trust_domain"], "cluster.local");

    let svid_dir = d.p("svid");
    ok(&meshtls(&[
        "issue",
        "--ca",
        s(&cluster),
        "spiffe://cluster.local/ns/gateway/sa/agc",
        "--out",
        s(&svid_dir),
        "--dns",
        "gw.example.com",
        "--ttl",
        "12h",
    ]));
    assert_eq!(mode(&svid_dir.join("key.pem")), 0o600);
    openssl_verify(
        &svid_dir.join("root-cert.pem"),
        &svid_dir.join("cert-chain.pem"),
        "sslclient",
    );
    openssl_verify(
        &svid_dir.join("root-cert.pem"),
        &svid_dir.join("cert-chain.pem"),
        "sslserver",
    );
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            s(&svid_dir.join("cert-chain.pem")),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("critical"), "{text}");
    assert!(
        text.contains("URI:spiffe://cluster.local/ns/gateway/sa/agc, DNS:gw.example.com"),
        "{text}"
    );

    // Without --out: chain and key on stdout; with --json, the facts too.
    let out = ok(&meshtls(&[
        "--json",
        "issue",
        "--ca",
        s(&cluster),
        "spiffe://cluster.local/ns/a/sa/b",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["spiffe_id"], "spiffe://cluster.local/ns/a/sa/b");
    assert!(
        v["private_key_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(
        v["cert_chain_pem"]
            .as_str()
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        3
    );

    let yaml = ok(&meshtls(&[
        "secret",
        "--ca",
        s(&cluster),
        "spiffe://cluster.local/ns/gateway/sa/agc",
        "--name",
        "agc-mesh-client",
        "--namespace",
        "gateway",
    ]));
    assert!(yaml.contains("type: kubernetes.io/tls"), "{yaml}");
    for key in [
        "tls.crt:",
        "tls.key:",
        "ca.crt:",
        "name: agc-mesh-client",
        "namespace: gateway",
    ] {
        assert!(yaml.contains(key), "{key} in {yaml}");
    }
    let cacerts = ok(&meshtls(&["ca", "cacerts", "--ca", s(&cluster)]));
    assert!(
        cacerts.contains("name: cacerts") && cacerts.contains("cert-chain.pem"),
        "{cacerts}"
    );

    // sign-csr: the CSR's names are ignored.
    let csr = d.p("req.csr");
    let st = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            s(&d.p("req.key")),
            "-out",
            s(&csr),
            "-subj",
            "/CN=evil",
        ])
        .output()
        .unwrap();
    assert!(st.status.success());
    let chain = ok(&meshtls(&[
        "sign-csr",
        "--ca",
        s(&cluster),
        s(&csr),
        "spiffe://cluster.local/ns/a/sa/b",
    ]));
    std::fs::write(d.p("signed.pem"), format!("{chain}\n")).unwrap();
    openssl_verify(&root.join("root-cert.pem"), &d.p("signed.pem"), "sslclient");
}

#[test]
fn exit_codes() {
    let d = Scratch::new("codes");
    let ca = d.p("ca");
    ok(&meshtls(&["ca", "init", s(&ca), "--key", "ec-p256"]));
    let id = "spiffe://cluster.local/ns/a/sa/b";
    // The CA refuses: 1.
    for args in [
        vec!["issue", "--ca", s(&ca), id, "--ttl", "91d"],
        vec!["issue", "--ca", s(&ca), "spiffe://cluster.local"],
        vec![
            "secret",
            "--ca",
            s(&ca),
            id,
            "--name",
            "Bad_Name",
            "--namespace",
            "x",
        ],
    ] {
        let o = meshtls(&args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let o = meshtls(&["--json", "issue", "--ca", s(&ca), id, "--ttl", "91d"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("90 days"));
    // A CA made for example.org issues only for example.org, and only when told so
    // (--trust-domain defaults to cluster.local, as Istio does).
    let org = d.p("org");
    ok(&meshtls(&[
        "ca",
        "init",
        s(&org),
        "--key",
        "ec-p256",
        "--trust-domain",
        "example.org",
    ]));
    let org_id = "spiffe://example.org/ns/a/sa/b";
    for args in [
        vec!["issue", "--ca", s(&org), org_id],
        vec![
            "issue",
            "--ca",
            s(&org),
            "--trust-domain",
            "example.org",
            "spiffe://other.example/ns/a/sa/b",
        ],
        vec![
            "--json",
            "issue",
            "--ca",
            s(&org),
            "--trust-domain",
            "example.org",
            id,
        ],
    ] {
        let o = meshtls(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("is not this ca's trust domain"),
            "{args:?}: {out}"
        );
    }
    let issue_org = [
        "issue",
        "--ca",
        s(&org),
        "--trust-domain",
        "example.org",
        org_id,
    ];
    ok(&meshtls(&issue_org));
    // A CA file that is not UTF-8 text: 1, naming the file.
    std::fs::write(org.join("ca-cert.pem"), b"\xff\xfe").unwrap();
    let o = meshtls(&issue_org);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ca-cert.pem: not a text (PEM) file"), "{out}");
    // Broken CA material: 1, naming the file.
    std::fs::write(ca.join("ca-key.pem"), "junk").unwrap();
    let o = meshtls(&["issue", "--ca", s(&ca), id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ca-key.pem"));
    // Bad usage: 2.
    for args in [
        vec!["issue", "--ca", s(&ca), "not-an-id"],
        vec!["issue", "--ca", s(&ca), id, "--ttl", "5x"],
        vec!["issue", "--ca", s(&ca), id, "--key", "dsa-1024"],
        vec!["issue", "--ca", "/nonexistent/dir", id],
        vec!["issue"],
    ] {
        assert_eq!(meshtls(&args).status.code(), Some(2), "{args:?}");
    }
}
