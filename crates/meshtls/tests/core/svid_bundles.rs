//! Trust bundles: PEM, SPIFFE bundle JSON (JWKS), bundle maps, aliases.

use std::time::Duration;

use crate::svid_support::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::error::BundleError;
use meshtls::{Error, TrustDomain};
use serde_json::json;

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

fn b64(der: &[u8]) -> String {
    STANDARD.encode(der)
}

#[test]
fn pem_round_trips_and_deduplicates() {
    let a = Ca::root("example.org");
    let b = Ca::root("example.org");
    let text = format!(
        "# roots\n{}junk between blocks\n{}{}",
        a.pem(),
        b.pem(),
        a.pem()
    );
    let bundle = TrustBundle::from_pem(td("example.org"), &text).unwrap();
    assert_eq!(bundle.roots(), &[a.der.clone(), b.der.clone()]);
    let again = TrustBundle::from_pem(td("example.org"), &bundle.to_pem()).unwrap();
    assert_eq!(again, bundle);
    assert_eq!(bundle.to_pem(), format!("{}{}", a.pem(), b.pem()));
}

#[test]
fn pem_edge_cases() {
    // Whitespace-only: empty bundle, as go-spiffe's x509bundle.Parse.
    let empty = TrustBundle::from_pem(td("example.org"), " \n").unwrap();
    assert!(empty.is_empty());
    // Text without any block, or with a key block, is an error naming the trust domain.
    let err = TrustBundle::from_pem(td("example.org"), "not pem at all").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read the PEM roots of trust domain \"example.org\": no CERTIFICATE PEM block found (text starts \"not pem at all\")"
    );
    let key_pem = ec().serialize_pem();
    let err = TrustBundle::from_pem(td("example.org"), &key_pem).unwrap_err();
    assert!(err.to_string().contains("only CERTIFICATE blocks"), "{err}");
    // A CERTIFICATE block that is not a certificate.
    let bogus = pem("CERTIFICATE", b"\x30\x03\x02\x01\x01");
    let err = TrustBundle::from_pem(td("example.org"), &bogus).unwrap_err();
    assert!(
        matches!(err, BundleError::BadCertificate { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn spiffe_json_round_trips_with_sequence_and_hint() {
    let ec_root = Ca::root("example.org");
    let rsa_root = Ca::root_with_key("example.org", key(&rcgen::PKCS_RSA_SHA256), |_| {});
    let bundle = TrustBundle::new(
        td("example.org"),
        [ec_root.der.clone(), rsa_root.der.clone()],
    )
    .unwrap()
    .with_sequence(42)
    .with_refresh_hint(Duration::from_secs(300));
    let text = bundle.to_spiffe_json().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["spiffe_sequence"], 42);
    assert_eq!(doc["spiffe_refresh_hint"], 300);
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["use"], "x509-svid");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["x5c"], json!([b64(&ec_root.der)]));
    assert!(keys[0].get("kid").is_none());
    assert_eq!(keys[1]["kty"], "RSA");
    assert_eq!(keys[1]["e"], "AQAB");
    let back = TrustBundle::from_spiffe_json(td("example.org"), &text).unwrap();
    assert_eq!(back, bundle);
    assert_eq!(back.sequence(), Some(42));
    assert_eq!(back.refresh_hint(), Some(Duration::from_secs(300)));
}

#[test]
fn exported_ec_jwk_has_the_raw_point_coordinates() {
    // x/y are the raw point coordinates, unpadded base64url (RFC 7518 §6.2.1).
    let root = Ca::root("example.org");
    let doc: serde_json::Value = serde_json::from_str(
        &TrustBundle::new(td("example.org"), [root.der.clone()])
            .unwrap()
            .to_spiffe_json()
            .unwrap(),
    )
    .unwrap();
    let x = URL_SAFE_NO_PAD
        .decode(doc["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let y = URL_SAFE_NO_PAD
        .decode(doc["keys"][0]["y"].as_str().unwrap())
        .unwrap();
    let public = root.key.public_key_raw();
    assert_eq!(public[0], 4);
    assert_eq!([&x[..], &y[..]].concat(), public[1..].to_vec());
}

#[test]
fn unknown_use_and_kty_are_ignored_and_x5c_rules_apply() {
    let root = Ca::root("example.org");
    let other = Ca::root("example.org");
    let doc = json!({
        "spiffe_sequence": 7,
        "keys": [
            {"use": "jwt-svid", "kty": "EC", "kid": "k1", "crv": "P-256", "x": "AA", "y": "AA"},
            {"use": "wit-svid", "kty": "EC", "x5c": [b64(&other.der)]},
            {"kty": "EC", "x5c": [b64(&other.der)]},
            {"use": "X509-SVID", "kty": "EC", "x5c": [b64(&other.der)]},
            {"use": "x509-svid", "kty": "ML-DSA", "x5c": ["not even base64"]},
            {"use": "x509-svid", "kty": "EC"},
            {"use": "x509-svid", "kty": "EC", "x5c": []},
            {"use": "x509-svid", "kty": "EC", "x5c": [b64(&root.der), "ignored", 5]},
        ],
        "future_member": {"anything": true}
    });
    let bundle = TrustBundle::from_spiffe_json(td("example.org"), &doc.to_string()).unwrap();
    assert_eq!(bundle.roots(), std::slice::from_ref(&root.der));
    assert_eq!(bundle.sequence(), Some(7));
    // An empty key list is a valid bundle with no roots (all revoked).
    let none = TrustBundle::from_spiffe_json(td("example.org"), r#"{"keys": []}"#).unwrap();
    assert!(none.is_empty());
}

fn member_err(doc: serde_json::Value) -> (String, String) {
    match TrustBundle::from_spiffe_json(td("example.org"), &doc.to_string()).unwrap_err() {
        BundleError::Member { member, reason } => (member, reason),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_bundles_are_refused_naming_the_member() {
    let root = Ca::root("example.org");
    let ok_key = json!({"use": "x509-svid", "kty": "EC", "x5c": [b64(&root.der)]});

    let err =
        TrustBundle::from_spiffe_json(td("example.org"), r#"{"spiffe_sequence": 1}"#).unwrap_err();
    assert_eq!(err, BundleError::MissingKeys { at: None });

    assert_eq!(member_err(json!({"keys": {}})).0, "keys");
    assert_eq!(
        member_err(json!({"keys": [ok_key], "spiffe_sequence": -1})).0,
        "spiffe_sequence"
    );
    assert_eq!(
        member_err(json!({"keys": [ok_key], "spiffe_sequence": 1.5})).0,
        "spiffe_sequence"
    );
    assert_eq!(
        member_err(json!({"keys": [ok_key], "spiffe_refresh_hint": "5m"})).0,
        "spiffe_refresh_hint"
    );
    assert_eq!(member_err(json!({"keys": [7]})).0, "keys[0]");
    assert_eq!(
        member_err(json!({"keys": [{"use": "x509-svid", "x5c": [b64(&root.der)]}]})).0,
        "keys[0].kty"
    );
    let (m, r) = member_err(
        json!({"keys": [{"use": "x509-svid", "kty": "EC", "kid": "a", "x5c": [b64(&root.der)]}]}),
    );
    assert_eq!(m, "keys[0].kid");
    assert!(r.contains("X509-SVID §6.1"), "{r}");
    // Standard base64 only: the URL-safe alphabet is refused.
    let url = URL_SAFE.encode(root.der.as_ref());
    assert_ne!(
        url,
        b64(&root.der),
        "the test certificate must contain + or /"
    );
    assert_eq!(
        member_err(json!({"keys": [{"use": "x509-svid", "kty": "EC", "x5c": [url]}]})).0,
        "keys[0].x5c[0]"
    );
    // Not a certificate.
    assert_eq!(
        member_err(json!({"keys": [{"use": "x509-svid", "kty": "EC", "x5c": ["AAAA"]}]})).0,
        "keys[0].x5c[0]"
    );
    // kty or key members that contradict the certificate (RFC 7517 §4.7).
    let (m, r) =
        member_err(json!({"keys": [{"use": "x509-svid", "kty": "RSA", "x5c": [b64(&root.der)]}]}));
    assert_eq!(m, "keys[0]");
    assert!(r.contains("does not match"), "{r}");
    let (_, r) = member_err(
        json!({"keys": [{"use": "x509-svid", "kty": "EC", "crv": "P-384", "x5c": [b64(&root.der)]}]}),
    );
    assert!(r.contains("crv"), "{r}");
    let (_, r) = member_err(
        json!({"keys": [{"use": "x509-svid", "kty": "EC", "x": "AAAA", "x5c": [b64(&root.der)]}]}),
    );
    assert!(r.starts_with("x does not match"), "{r}");
    // Not JSON; duplicate members.
    assert!(matches!(
        TrustBundle::from_spiffe_json(td("example.org"), "{").unwrap_err(),
        BundleError::Json { .. }
    ));
    let dup = format!(r#"{{"keys": [], "keys": [{ok_key}]}}"#);
    let err = TrustBundle::from_spiffe_json(td("example.org"), &dup).unwrap_err();
    assert!(
        err.to_string().contains("duplicate member \"keys\""),
        "{err}"
    );
}

#[test]
fn bundle_maps_round_trip_and_reject_duplicate_trust_domains() {
    let a = Ca::root("a.example");
    let b = Ca::root("b.example");
    let set = BundleSet::from_bundles([
        TrustBundle::new(td("a.example"), [a.der.clone()])
            .unwrap()
            .with_sequence(3),
        TrustBundle::new(td("b.example"), [b.der.clone()])
            .unwrap()
            .with_refresh_hint(Duration::from_secs(60)),
    ])
    .unwrap();
    let text = set.to_spiffe_json().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["trust_domains"]["a.example"]["spiffe_sequence"], 3);
    // Inside a map the per-bundle refresh hint is omitted.
    assert!(
        doc["trust_domains"]["b.example"]
            .get("spiffe_refresh_hint")
            .is_none()
    );
    let back = BundleSet::from_spiffe_json(&text).unwrap();
    assert_eq!(
        back.get(&td("a.example")).unwrap().roots(),
        std::slice::from_ref(&a.der)
    );
    assert_eq!(
        back.get(&td("b.example")).unwrap().roots(),
        std::slice::from_ref(&b.der)
    );
    assert_eq!(back.get(&td("a.example")).unwrap().sequence(), Some(3));

    // A hint inside a map is ignored, even a malformed one.
    let with_hint =
        json!({"trust_domains": {"a.example": {"keys": [], "spiffe_refresh_hint": "x"}}});
    assert!(BundleSet::from_spiffe_json(&with_hint.to_string()).is_ok());

    let key = json!({"use": "x509-svid", "kty": "EC", "x5c": [b64(&a.der)]});
    let dup = format!(
        r#"{{"trust_domains": {{"a.example": {{"keys": [{key}]}}, "a.example": {{"keys": []}}}}}}"#
    );
    let err = BundleSet::from_spiffe_json(&dup).unwrap_err();
    assert!(
        err.to_string().contains("duplicate member \"a.example\""),
        "{err}"
    );

    let err = BundleSet::from_spiffe_json(r#"{"trust_domains": {"A.example": {"keys": []}}}"#)
        .unwrap_err();
    assert!(
        matches!(err, BundleError::TrustDomain { ref name, .. } if name == "A.example"),
        "{err:?}"
    );
    let err =
        BundleSet::from_spiffe_json(r#"{"trust_domains": {"spiffe://a.example": {"keys": []}}}"#)
            .unwrap_err();
    assert!(matches!(err, BundleError::TrustDomain { .. }), "{err:?}");
    let err = BundleSet::from_spiffe_json(r#"{"trust_domains": {"a.example": {}}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SPIFFE bundle trust_domains[\"a.example\"] has no \"keys\" member, which is required (SPIFFE Trust Domain and Bundle §4.1)"
    );
    assert!(matches!(
        BundleSet::from_spiffe_json(r#"{"keys": []}"#).unwrap_err(),
        BundleError::Member { ref member, .. } if member == "trust_domains"
    ));
}

/// Found by the `bundle_json` fuzz target: a bundle map named a 3,976-character "trust domain"
/// with a `:` in it, and the error quoted the whole name. Names are quoted to 256 characters,
/// whichever rule refuses them.
#[test]
fn long_bad_trust_domain_names_give_bounded_messages() {
    for name in [
        format!("example.org{}:x", "A".repeat(5_000)),
        format!("example.org{}", "A".repeat(5_000)),
        "a".repeat(100_000),
    ] {
        let json = format!(r#"{{"trust_domains": {{"{name}": {{"keys": []}}}}}}"#);
        let err = BundleSet::from_spiffe_json(&json).unwrap_err();
        assert!(matches!(err, BundleError::TrustDomain { .. }), "{err:?}");
        assert!(
            err.to_string().len() < 400,
            "{} bytes",
            err.to_string().len()
        );
        let err = BundleSet::from_pem_map([(name.as_str(), "")]).unwrap_err();
        assert!(matches!(err, BundleError::TrustDomain { .. }), "{err:?}");
        assert!(
            err.to_string().len() < 400,
            "{} bytes",
            err.to_string().len()
        );
    }
}

#[test]
fn pem_maps_and_duplicate_bundles() {
    let a = Ca::root("a.example");
    let set = BundleSet::from_pem_map([("a.example", a.pem())]).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(
        set.to_pem_map().into_iter().collect::<Vec<_>>(),
        [("a.example".to_owned(), a.pem())]
    );
    assert_eq!(BundleSet::from_pem_map(set.to_pem_map()).unwrap(), set);
    assert_eq!(set.trust_domains().next(), Some(&td("a.example")));
    let err = BundleSet::from_bundles([
        TrustBundle::new(td("a.example"), []).unwrap(),
        TrustBundle::new(td("a.example"), []).unwrap(),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("two bundles for the same trust domain")
    );
    assert!(matches!(
        BundleSet::from_pem_map([("bad domain", "")]).unwrap_err(),
        BundleError::TrustDomain { .. }
    ));
}

#[test]
fn alias_rules() {
    let mesh = td("cluster.local");
    let set = BundleSet::new()
        .with_bundle(TrustBundle::new(mesh.clone(), []).unwrap())
        .unwrap()
        .with_bundle(TrustBundle::new(td("partner.example"), []).unwrap())
        .unwrap();
    let aliased = set
        .clone()
        .with_aliases(&mesh, [td("old.example")])
        .unwrap();
    assert_eq!(
        aliased.aliases().collect::<Vec<_>>(),
        [(&td("old.example"), &mesh)]
    );
    assert_eq!(
        aliased
            .bundle_for(&td("old.example"))
            .unwrap()
            .trust_domain(),
        &mesh
    );
    assert!(aliased.get(&td("old.example")).is_none());
    assert!(aliased.bundle_for(&td("unknown.example")).is_none());

    // A domain with its own bundle cannot become an alias (that would merge it).
    let err = set
        .clone()
        .with_aliases(&mesh, [td("partner.example")])
        .unwrap_err();
    assert!(err.to_string().contains("has a bundle of its own"), "{err}");
    // An alias cannot later get a bundle of its own.
    let mut a = aliased.clone();
    let err = a
        .insert(TrustBundle::new(td("old.example"), []).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("alias of cluster.local"), "{err}");
    // No self-aliases, no alias chains, no alias of two domains.
    assert!(set.clone().with_aliases(&mesh, [mesh.clone()]).is_err());
    assert!(
        aliased
            .clone()
            .with_aliases(&td("old.example"), [td("x.example")])
            .is_err()
    );
    assert!(
        aliased
            .clone()
            .with_aliases(&td("partner.example"), [td("old.example")])
            .is_err()
    );
    // The mesh config form.
    let tds = meshtls::TrustDomains::new(mesh.clone(), [td("old.example")]);
    assert_eq!(set.with_mesh_aliases(&tds).unwrap(), aliased);
}

#[test]
fn bundle_errors_convert_into_the_crate_error() {
    let err: Error = TrustBundle::from_pem(td("example.org"), "x")
        .unwrap_err()
        .into();
    assert!(matches!(err, Error::Bundle(_)));
}

#[test]
fn a_bundle_written_by_go_spiffe_reads_and_round_trips() {
    let text = include_str!("../../../../tests/data/go-spiffe/spiffebundle_valid_1.json");
    let bundle = TrustBundle::from_spiffe_json(td("local"), text).unwrap();
    assert_eq!(bundle.len(), 1, "the jwt-svid entry is not an X.509 root");
    let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&bundle.to_spiffe_json().unwrap()).unwrap();
    // Our JWK members for their P-384 CA are the ones go-spiffe wrote.
    for member in ["kty", "crv", "x", "y", "x5c", "use"] {
        assert_eq!(
            ours["keys"][0][member], theirs["keys"][0][member],
            "{member}"
        );
    }
    assert_eq!(
        TrustBundle::from_spiffe_json(td("local"), &bundle.to_spiffe_json().unwrap()).unwrap(),
        bundle
    );
}
