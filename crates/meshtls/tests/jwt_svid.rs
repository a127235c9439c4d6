//! JWT-SVID minting and the validation policy, rule by rule. Tokens with hostile headers are
//! signed with the trust domain's real key through `jsonwebtoken` directly, so each test
//! reaches exactly the rule it names (every earlier rule passes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use meshtls::ca::KeyKind;
use meshtls::error::JwtError;
use meshtls::jwt::{
    AudienceMatch, JwksShape, JwtAlgorithm, JwtBundle, JwtBundleSet, JwtPolicy, JwtSigner,
    validate, validate_at,
};
use meshtls::{SpiffeId, TrustDomain};
use serde_json::{Value, json};

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

fn signer(name: &str, kind: KeyKind) -> JwtSigner {
    JwtSigner::generate(td(name), kind).unwrap()
}

fn set(signers: &[&JwtSigner]) -> JwtBundleSet {
    let mut set = JwtBundleSet::new();
    for s in signers {
        set.insert(s.bundle());
    }
    set
}

fn policy(aud: &[&str]) -> JwtPolicy {
    JwtPolicy::new(aud.iter().copied()).unwrap()
}

const FIVE_MIN: Duration = Duration::from_secs(300);

/// Signs arbitrary header JSON and claims with the signer's key, by hand (base64 + the
/// backend's signing of `header.claims`).
fn forge(s: &JwtSigner, header: Value, claims: Value) -> String {
    let pem = s.private_key_pem();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pkcs8 = STANDARD.decode(body).unwrap();
    let alg = match s.algorithm() {
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        other => panic!("forge signs with EC keys only, not {other}"),
    };
    let key = EncodingKey::from_ec_der(&pkcs8);
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{h}.{c}");
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg).unwrap();
    format!("{input}.{sig}")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn good_claims() -> Value {
    json!({"sub": "spiffe://example.org/web", "aud": "billing", "exp": now() + 300})
}

#[test]
fn mint_and_validate_every_key_kind() {
    for kind in [KeyKind::EcP256, KeyKind::EcP384, KeyKind::Rsa2048] {
        let s = signer("example.org", kind);
        let who = id("spiffe://example.org/ns/web/sa/frontend");
        let token = s.mint(&who, &["billing", "audit"], FIVE_MIN).unwrap();
        let svid = validate(&token, &set(&[&s]), &policy(&["audit"])).unwrap();
        assert_eq!(svid.spiffe_id(), &who);
        assert_eq!(svid.audience(), ["billing", "audit"]);
        assert_eq!(svid.kid(), s.kid());
        // The header is exactly SPIRE's {alg, kid, typ}.
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            json!({"alg": s.algorithm().name(), "kid": s.kid(), "typ": "JWT"})
        );
    }
}

#[test]
fn kid_is_the_rfc7638_thumbprint() {
    // RFC 7638 §3.1's example key and thumbprint.
    let jwk = json!({"kty": "RSA", "kid": "x", "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
    let key = meshtls::jwt::JwtKey::from_jwk(&jwk).unwrap();
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    let s = signer("example.org", KeyKind::EcP256);
    assert_eq!(s.kid(), s.public_key().thumbprint());
}

#[test]
fn jwks_shapes() {
    let s = signer("example.org", KeyKind::EcP256);
    let spiffe = s.bundle().to_jwks(JwksShape::SpiffeBundle);
    let plain = s.bundle().to_jwks(JwksShape::WorkloadApi);
    let spiffe_v: Value = serde_json::from_str(&spiffe).unwrap();
    let plain_v: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(spiffe_v["keys"][0]["use"], "jwt-svid");
    assert_eq!(spiffe_v["keys"][0]["kid"], s.kid());
    assert!(plain_v["keys"][0].get("use").is_none());
    assert_eq!(plain_v["keys"][0]["kid"], s.kid());
    // The Workload API shape reads both; the SPIFFE bundle shape skips keys without `use`.
    for text in [&spiffe, &plain] {
        let b = JwtBundle::from_jwks(td("example.org"), text, JwksShape::WorkloadApi).unwrap();
        assert_eq!(b.keys().len(), 1);
    }
    let b = JwtBundle::from_jwks(td("example.org"), &plain, JwksShape::SpiffeBundle).unwrap();
    assert!(b.keys().is_empty());
    // A whole SPIFFE bundle: the x509-svid element is skipped, the jwt-svid one taken.
    let mut doc = spiffe_v.clone();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "EC", "use": "x509-svid", "x5c": ["AAAA"], "crv": "P-256"}));
    doc["spiffe_sequence"] = json!(3);
    let b =
        JwtBundle::from_jwks(td("example.org"), &doc.to_string(), JwksShape::SpiffeBundle).unwrap();
    assert_eq!(b.keys().len(), 1);
    // A jwt-svid key without kid is an error, duplicates too.
    let mut nokid = spiffe_v.clone();
    nokid["keys"][0].as_object_mut().unwrap().remove("kid");
    let err = JwtBundle::from_jwks(
        td("example.org"),
        &nokid.to_string(),
        JwksShape::SpiffeBundle,
    )
    .unwrap_err();
    assert!(err.to_string().contains("kid"), "{err}");
    let dup = json!({"keys": [spiffe_v["keys"][0], spiffe_v["keys"][0]]});
    let err = JwtBundle::from_jwks(td("example.org"), &dup.to_string(), JwksShape::SpiffeBundle)
        .unwrap_err();
    assert!(err.to_string().contains("duplicate kid"), "{err}");
}

#[test]
fn alg_is_checked_first() {
    let s = signer("example.org", KeyKind::EcP256);
    // `none`, HS256 and ES512 are refused before the (missing) kid or the claims are read.
    for alg in ["none", "HS256", "ES512", "EdDSA", ""] {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "crit": ["x"]}).to_string());
        let token = format!("{h}.e30.");
        let err = validate(&token, &set(&[&s]), &policy(&["billing"])).unwrap_err();
        assert!(matches!(err, JwtError::Algorithm { .. }), "{alg}: {err}");
    }
    // An allow-list narrowed to ES384 refuses an ES256 token.
    let token = s
        .mint(&id("spiffe://example.org/web"), &["billing"], FIVE_MIN)
        .unwrap();
    let only384 = policy(&["billing"])
        .algorithms(&[JwtAlgorithm::ES384])
        .unwrap();
    let err = validate(&token, &set(&[&s]), &only384).unwrap_err();
    assert!(matches!(err, JwtError::Algorithm { .. }), "{err}");
}

#[test]
fn header_rules() {
    let s = signer("example.org", KeyKind::EcP256);
    let bundles = set(&[&s]);
    let p = policy(&["billing"]);
    let kid = s.kid().to_owned();
    for typ in ["JWT", "JOSE"] {
        let t = forge(
            &s,
            json!({"alg": "ES256", "kid": kid, "typ": typ}),
            good_claims(),
        );
        validate(&t, &bundles, &p).unwrap();
    }
    let t = forge(&s, json!({"alg": "ES256", "kid": kid}), good_claims());
    validate(&t, &bundles, &p).unwrap();
    let t = forge(
        &s,
        json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"}),
        good_claims(),
    );
    assert!(matches!(
        validate(&t, &bundles, &p),
        Err(JwtError::Type { .. })
    ));
    let t = forge(
        &s,
        json!({"alg": "ES256", "kid": kid, "crit": ["exp"], "exp": 1}),
        good_claims(),
    );
    assert!(matches!(
        validate(&t, &bundles, &p),
        Err(JwtError::CriticalHeader { .. })
    ));
    // crit is refused even when extra headers are allowed.
    let lax = p.clone().allow_extra_headers(true);
    assert!(matches!(
        validate(&t, &bundles, &lax),
        Err(JwtError::CriticalHeader { .. })
    ));
    let t = forge(
        &s,
        json!({"alg": "ES256", "kid": kid, "x5u": "https://evil"}),
        good_claims(),
    );
    assert!(matches!(
        validate(&t, &bundles, &p),
        Err(JwtError::UnknownHeader { .. })
    ));
    validate(&t, &bundles, &lax).unwrap();
    // kid required by default; without the requirement every key of the type is tried.
    let t = forge(&s, json!({"alg": "ES256", "typ": "JWT"}), good_claims());
    assert_eq!(validate(&t, &bundles, &p), Err(JwtError::MissingKid));
    let svid = validate(&t, &bundles, &p.clone().require_kid(false)).unwrap();
    assert_eq!(svid.kid(), kid);
}

#[test]
fn bundle_is_chosen_by_the_subject_trust_domain() {
    let a = signer("a.example", KeyKind::EcP256);
    // Same kid in another trust domain: the py-spiffe kid-reuse hole (PR #449).
    let b = JwtSigner::from_pem(td("b.example"), &a.private_key_pem(), Some("shared")).unwrap();
    let a2 = JwtSigner::from_pem(
        td("a.example"),
        &signer("x", KeyKind::EcP256).private_key_pem(),
        Some("shared"),
    )
    .unwrap();
    let bundles = set(&[&a2, &b]);
    // b signs a token claiming a subject in a.example: a.example's key "shared" is a2, not b.
    let t = forge(
        &b,
        json!({"alg": "ES256", "kid": "shared", "typ": "JWT"}),
        json!({"sub": "spiffe://a.example/web", "aud": "billing", "exp": now() + 300}),
    );
    let err = validate(&t, &bundles, &policy(&["billing"])).unwrap_err();
    assert!(matches!(err, JwtError::Signature { .. }), "{err}");
    // A subject whose trust domain has no bundle.
    let t = b
        .mint(&id("spiffe://b.example/x"), &["billing"], FIVE_MIN)
        .unwrap();
    let err = validate(&t, &set(&[&a]), &policy(&["billing"])).unwrap_err();
    assert!(matches!(err, JwtError::NoBundle { .. }), "{err}");
    // Subject not a SPIFFE ID.
    let t = forge(
        &a,
        json!({"alg": "ES256", "kid": a.kid()}),
        json!({"sub": "system:serviceaccount:ns:sa", "aud": "billing", "exp": now() + 300}),
    );
    assert!(matches!(
        validate(&t, &set(&[&a]), &policy(&["billing"])),
        Err(JwtError::Subject { .. })
    ));
    // Unknown kid, and a key of the wrong type for the alg.
    let t = forge(
        &a,
        json!({"alg": "ES256", "kid": "nope"}),
        json!({"sub": "spiffe://a.example/w", "aud": "billing", "exp": now() + 300}),
    );
    assert!(matches!(
        validate(&t, &set(&[&a]), &policy(&["billing"])),
        Err(JwtError::UnknownKey { .. })
    ));
    let t = forge(
        &a,
        json!({"alg": "RS256", "kid": a.kid()}),
        json!({"sub": "spiffe://a.example/w", "aud": "billing", "exp": now() + 300}),
    );
    let err = validate(&t, &set(&[&a]), &policy(&["billing"])).unwrap_err();
    assert!(matches!(err, JwtError::UnknownKey { .. }), "{err}");
}

#[test]
fn tampered_claims_fail_the_signature() {
    let s = signer("example.org", KeyKind::Rsa2048);
    let t = s
        .mint(&id("spiffe://example.org/web"), &["billing"], FIVE_MIN)
        .unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let evil = URL_SAFE_NO_PAD.encode(
        json!({"sub": "spiffe://example.org/admin", "aud": "billing", "exp": now() + 300})
            .to_string(),
    );
    let t2 = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert!(matches!(
        validate(&t2, &set(&[&s]), &policy(&["billing"])),
        Err(JwtError::Signature { .. })
    ));
}

#[test]
fn audience_rules() {
    let s = signer("example.org", KeyKind::EcP256);
    let bundles = set(&[&s]);
    let who = id("spiffe://example.org/web");
    let t = s.mint(&who, &["a", "b"], FIVE_MIN).unwrap();
    validate(&t, &bundles, &policy(&["x", "b"])).unwrap();
    let all = policy(&["a", "b"]).audience_match(AudienceMatch::AllOf);
    validate(&t, &bundles, &all).unwrap();
    let all3 = policy(&["a", "b", "c"]).audience_match(AudienceMatch::AllOf);
    assert!(matches!(
        validate(&t, &bundles, &all3),
        Err(JwtError::Audience { rule: "all", .. })
    ));
    assert!(matches!(
        validate(&t, &bundles, &policy(&["c"])),
        Err(JwtError::Audience { rule: "any", .. })
    ));
    // No aud / empty aud in the token.
    for claims in [
        json!({"sub": "spiffe://example.org/web", "exp": now() + 300}),
        json!({"sub": "spiffe://example.org/web", "aud": [], "exp": now() + 300}),
        json!({"sub": "spiffe://example.org/web", "aud": "", "exp": now() + 300}),
    ] {
        let t = forge(&s, json!({"alg": "ES256", "kid": s.kid()}), claims);
        assert_eq!(
            validate(&t, &bundles, &policy(&["a"])),
            Err(JwtError::NoAudience)
        );
    }
    // An empty expected audience is refused when the policy is built (go-spiffe PR #407).
    assert!(matches!(
        JwtPolicy::new(Vec::<String>::new()),
        Err(JwtError::Policy { .. })
    ));
    assert!(matches!(JwtPolicy::new([""]), Err(JwtError::Policy { .. })));
    // Minting refuses no audience too.
    assert!(matches!(
        s.mint(&who, &[], FIVE_MIN),
        Err(JwtError::Mint { .. })
    ));
    assert!(matches!(
        s.mint(&id("spiffe://other.org/web"), &["a"], FIVE_MIN),
        Err(JwtError::Mint { .. })
    ));
}

#[test]
fn time_rules_with_explicit_leeway() {
    let s = signer("example.org", KeyKind::EcP256);
    let bundles = set(&[&s]);
    let who = id("spiffe://example.org/web");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let t = s.mint_at(&who, &["a"], FIVE_MIN, t0).unwrap();
    let p = policy(&["a"]).leeway(Duration::from_secs(10));
    validate_at(&t, &bundles, &p, t0 + Duration::from_secs(309)).unwrap();
    validate_at(&t, &bundles, &p, t0 + Duration::from_secs(310)).unwrap();
    let err = validate_at(&t, &bundles, &p, t0 + Duration::from_secs(311)).unwrap_err();
    assert_eq!(
        err,
        JwtError::Expired {
            exp: 1_800_000_300,
            now: 1_800_000_311,
            leeway_secs: 10
        }
    );
    let zero = policy(&["a"]).leeway(Duration::ZERO);
    assert!(validate_at(&t, &bundles, &zero, t0 + Duration::from_secs(301)).is_err());
    // nbf in the future.
    let nbf = json!({"sub": "spiffe://example.org/web", "aud": "a", "exp": 1_800_000_300i64, "nbf": 1_800_000_100i64});
    let t = forge(&s, json!({"alg": "ES256", "kid": s.kid()}), nbf);
    assert!(matches!(
        validate_at(&t, &bundles, &p, t0),
        Err(JwtError::NotYetValid { .. })
    ));
    validate_at(&t, &bundles, &p, t0 + Duration::from_secs(95)).unwrap();
    // No exp.
    let t = forge(
        &s,
        json!({"alg": "ES256", "kid": s.kid()}),
        json!({"sub": "spiffe://example.org/web", "aud": "a"}),
    );
    assert_eq!(validate(&t, &bundles, &p), Err(JwtError::MissingExpiry));
}

#[test]
fn malformed_and_oversized_tokens_are_typed_errors() {
    let s = signer("example.org", KeyKind::EcP256);
    let bundles = set(&[&s]);
    let p = policy(&["a"]);
    for t in [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "!!!.e30.x",
        "e30.e30.x",
        "W10.e30.x",
    ] {
        let err = validate(t, &bundles, &p).unwrap_err();
        assert!(
            matches!(err, JwtError::Malformed { .. } | JwtError::Algorithm { .. }),
            "{t}: {err}"
        );
    }
    let long = "a".repeat(20_000);
    assert!(matches!(
        validate(&long, &bundles, &p),
        Err(JwtError::TooLong { .. })
    ));
}

#[test]
fn signer_pem_round_trip_keeps_kid_and_verifies() {
    let s = signer("example.org", KeyKind::EcP384);
    let again = JwtSigner::from_pem(td("example.org"), &s.private_key_pem(), None).unwrap();
    assert_eq!(again.kid(), s.kid());
    let t = again
        .mint(&id("spiffe://example.org/w"), &["a"], FIVE_MIN)
        .unwrap();
    validate(&t, &set(&[&s]), &policy(&["a"])).unwrap();
    let err = JwtSigner::from_pem(td("example.org"), "not pem", None).unwrap_err();
    assert!(!err.to_string().is_empty());
}
