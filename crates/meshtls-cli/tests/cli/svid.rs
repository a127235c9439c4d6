//! `meshtls verify` and `meshtls inspect` against generated certificates.

use crate::support::{Scratch, meshtls};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// (root PEM, leaf PEM) for `id`, signed by a fresh root of `td`.
fn pki(td: &str, id: &str) -> (String, String) {
    let (root, mut leaves) = pki_many(td, &[id]);
    (root, leaves.remove(0))
}

/// A fresh root of `td` and one leaf per ID.
fn pki_many(td: &str, ids: &[&str]) -> (String, Vec<String>) {
    let root_key = KeyPair::generate().unwrap();
    let mut rp = CertificateParams::default();
    rp.distinguished_name = DistinguishedName::new();
    rp.distinguished_name
        .push(DnType::CommonName, format!("{td} root"));
    rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    rp.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let root = rp.self_signed(&root_key).unwrap();
    let mut lp = CertificateParams::default();
    lp.distinguished_name = DistinguishedName::new();
    lp.is_ca = IsCa::ExplicitNoCa;
    lp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    lp.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let leaves = ids
        .iter()
        .map(|id| {
            lp.subject_alt_names = vec![SanType::URI((*id).try_into().unwrap())];
            lp.signed_by(
                &KeyPair::generate().unwrap(),
                &Issuer::from_params(&rp, &root_key),
            )
            .unwrap()
            .pem()
        })
        .collect();
    (root.pem(), leaves)
}

#[test]
fn verify_accepts_rejects_and_refuses_bad_usage() {
    let f = Scratch::new("verify");
    let (root, leaves) = pki_many(
        "cluster.local",
        &[
            "spiffe://cluster.local/ns/shop/sa/web",
            "spiffe://old.example/ns/a/sa/b",
        ],
    );
    let leaf = leaves[0].clone();
    let (other_root, _) = pki("partner.example", "spiffe://partner.example/x");
    let root_file = f.write("root.pem", &root);
    let other_file = f.write("other.pem", &other_root);
    let chain = f.write("chain.pem", &leaf);
    let bundle = format!("cluster.local={root_file}");

    // `meshtls verify CHAIN --bundle cluster.local=ROOT` plus `extra`.
    let verify =
        |extra: &[&str]| meshtls(&[&["verify", &chain, "--bundle", &bundle][..], extra].concat());
    let (code, out, _) = verify(&["--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["accepted"], true);
    assert_eq!(v["spiffe_id"], "spiffe://cluster.local/ns/shop/sa/web");

    let (code, out, _) = verify(&["--expect-td", "cluster.local"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("accepted: spiffe://cluster.local/ns/shop/sa/web"),
        "{out}"
    );

    // Authorization refusal: exit 1, says what was expected.
    let (code, out, _) = verify(&[
        "--expect",
        "spiffe://cluster.local/ns/shop/sa/api",
        "--json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stage"], "authorize");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("expected spiffe://cluster.local/ns/shop/sa/api")
    );

    // Roots of another domain filed under the leaf's domain: rejected, exit 1.
    let (code, out, _) = meshtls(&[
        "verify",
        &chain,
        "--bundle",
        &format!("cluster.local={other_file}"),
    ]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("rejected: chain of spiffe://cluster.local/ns/shop/sa/web"),
        "{out}"
    );

    // Expired at --at.
    let (code, out, _) = verify(&["--at", "5000-01-01T00:00:00Z"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("expired"), "{out}");

    // A bundle map file and an alias.
    let map = serde_json::json!({"trust_domains": {"cluster.local": {"keys": [{
        "use": "x509-svid", "kty": "EC",
        "x5c": [base64_of_pem(&root)],
    }]}}});
    let map_file = f.write("map.json", &map.to_string());
    let (code, out, _) = meshtls(&["verify", &chain, "--bundle-json", &map_file]);
    assert_eq!(code, 0, "{out}");
    let alias_chain = f.write("alias.pem", &leaves[1]);
    let (code, out, _) = meshtls(&["verify", &alias_chain, "--bundle-json", &map_file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no trust bundle for trust domain \"old.example\""),
        "{out}"
    );
    let (code, out, _) = meshtls(&[
        "verify",
        &alias_chain,
        "--bundle-json",
        &map_file,
        "--alias",
        "old.example=cluster.local",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verified with the roots of cluster.local"),
        "{out}"
    );

    // Bad usage: exit 2.
    assert_eq!(meshtls(&["verify", &chain]).0, 2);
    assert_eq!(
        meshtls(&["verify", &chain, "--bundle", "Bad Domain=x"]).0,
        2
    );
    assert_eq!(
        meshtls(&["verify", "/nonexistent/chain.pem", "--bundle", &bundle]).0,
        2
    );
    assert_eq!(
        meshtls(&["verify", &chain, "--bundle", &bundle, "--at", "yesterday"]).0,
        2
    );
    // Not PEM: a verdict, exit 1.
    let junk = f.write("junk.pem", "hello");
    assert_eq!(meshtls(&["verify", &junk, "--bundle", &bundle]).0, 1);
}

fn base64_of_pem(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn inspect_shows_the_profile() {
    let f = Scratch::new("inspect");
    let (root, leaf) = pki("cluster.local", "spiffe://cluster.local/ns/shop/sa/web");
    let file = f.write("both.pem", &format!("{leaf}{root}"));
    let (code, out, _) = meshtls(&["inspect", &file, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(
        certs[0]["spiffe_id"],
        "spiffe://cluster.local/ns/shop/sa/web"
    );
    assert_eq!(certs[0]["leaf_problem"], serde_json::Value::Null);
    assert_eq!(certs[1]["is_ca"], true);
    assert_eq!(
        certs[1]["leaf_problem"],
        "leaf certificate contains no URI SAN: an X509-SVID has exactly one, its SPIFFE ID (X509-SVID §2)"
    );
    let (code, out, _) = meshtls(&["inspect", &file]);
    assert_eq!(code, 0);
    assert!(
        out.contains("SPIFFE ID: spiffe://cluster.local/ns/shop/sa/web"),
        "{out}"
    );
}
