//! Every case of the shared SPIFFE ID vectors (tests/data/spiffe-ids.json), strict and
//! lenient, plus round-trip properties.

use meshtls::error::SpiffeIdErrorKind;
use meshtls::{SpiffeId, TrustDomain};
use proptest::prelude::*;

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/spiffe-ids.json"
    );
    let text = std::fs::read_to_string(path).expect("vector file");
    serde_json::from_str(&text).expect("vector json")
}

fn rule_of(go_error: &str) -> SpiffeIdErrorKind {
    [
        SpiffeIdErrorKind::Empty,
        SpiffeIdErrorKind::WrongScheme,
        SpiffeIdErrorKind::MissingTrustDomain,
        SpiffeIdErrorKind::BadTrustDomainChar,
        SpiffeIdErrorKind::BadPathSegmentChar,
        SpiffeIdErrorKind::EmptySegment,
        SpiffeIdErrorKind::DotSegment,
        SpiffeIdErrorKind::TrailingSlash,
    ]
    .into_iter()
    .find(|k| k.rule() == go_error)
    .unwrap_or_else(|| panic!("unknown go-spiffe error {go_error:?}"))
}

#[test]
fn spiffe_id_vectors() {
    let v = vectors();
    let cases = v["spiffe_ids"].as_array().expect("spiffe_ids");
    assert!(cases.len() > 50);
    for case in cases {
        let input = case["input"].as_str().expect("input");
        let got = SpiffeId::new(input);
        if case["valid"].as_bool().expect("valid") {
            let id = got.unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(
                id.trust_domain_name(),
                case["trust_domain"].as_str().expect("td"),
                "{input:?}"
            );
            assert_eq!(id.path(), case["path"].as_str().expect("path"), "{input:?}");
            assert_eq!(id.as_str(), input);
        } else {
            let err = got.expect_err(input);
            if let Some(go) = case["go_spiffe_error"].as_str() {
                assert_eq!(err.kind(), rule_of(go), "{input:?}: {err}");
                assert!(err.to_string().contains(go), "{err}");
            } else {
                // Only the 255-byte cap is stricter than go-spiffe.
                assert_eq!(
                    err.kind(),
                    SpiffeIdErrorKind::TrustDomainTooLong,
                    "{input:?}: {err}"
                );
            }
        }
        if let Some(canonical) = case["lenient_canonical"].as_str() {
            let id = SpiffeId::parse_lenient(input).expect("lenient");
            assert_eq!(id.as_str(), canonical);
        }
    }
}

#[test]
fn trust_domain_vectors() {
    let v = vectors();
    let cases = v["trust_domains"].as_array().expect("trust_domains");
    for case in cases {
        let input = case["input"].as_str().expect("input");
        let got = TrustDomain::new(input);
        if case["valid"].as_bool().expect("valid") {
            let td = got.unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(td.as_str(), case["trust_domain"].as_str().expect("td"));
        } else {
            let err = got.expect_err(input);
            match case["go_spiffe_error"].as_str() {
                Some(go) => assert_eq!(err.kind(), rule_of(go), "{input:?}: {err}"),
                None => assert_eq!(
                    err.kind(),
                    SpiffeIdErrorKind::TrustDomainTooLong,
                    "{input:?}"
                ),
            }
        }
        if let Some(lenient) = case["lenient_trust_domain"].as_str() {
            assert_eq!(
                TrustDomain::parse_lenient(input).expect("lenient").as_str(),
                lenient
            );
        }
    }
}

#[test]
fn lenient_never_folds_non_ascii() {
    // py-spiffe folds U+212A KELVIN SIGN into 'k'; we refuse it.
    assert!(SpiffeId::parse_lenient("spiffe://\u{212a}example.org/p").is_err());
    assert!(TrustDomain::parse_lenient("\u{212a}example.org").is_err());
    // py-spiffe's `$` accepts a trailing newline; we do not, strict or lenient.
    assert!(SpiffeId::new("spiffe://example.org/p\n").is_err());
    assert!(SpiffeId::parse_lenient("spiffe://example.org/p\n").is_err());
    assert!(TrustDomain::new("example.org\n").is_err());
}

#[test]
fn error_names_value_rule_and_position() {
    let err = SpiffeId::new("spiffe://example.org/a//b").expect_err("empty segment");
    let msg = err.to_string();
    assert!(msg.contains("\"spiffe://example.org/a//b\""), "{msg}");
    assert!(msg.contains("path cannot contain empty segments"), "{msg}");
    assert_eq!(err.position(), Some(23));
}

#[test]
fn trust_domain_length_cap() {
    let ok = "a".repeat(255);
    assert!(TrustDomain::new(&ok).is_ok());
    let long = "a".repeat(256);
    let err = TrustDomain::new(&long).expect_err("256 bytes");
    assert_eq!(err.kind(), SpiffeIdErrorKind::TrustDomainTooLong);
    assert!(SpiffeId::new(&format!("spiffe://{long}/p")).is_err());
}

#[test]
fn builders() {
    let td = TrustDomain::new("example.org").expect("td");
    let id = SpiffeId::from_segments(&td, &["ns", "a", "sa", "b"]).expect("segments");
    assert_eq!(id.as_str(), "spiffe://example.org/ns/a/sa/b");
    assert!(SpiffeId::from_segments(&td, &["a/b"]).is_err());
    assert!(SpiffeId::from_segments(&td, &[".."]).is_err());
    assert!(SpiffeId::from_segments(&td, &[""]).is_err());
    assert_eq!(td.id().as_str(), "spiffe://example.org");
    assert!(td.id().is_trust_domain_id());
    assert_eq!(id.segments().collect::<Vec<_>>(), ["ns", "a", "sa", "b"]);
    assert_eq!(td.id().segments().count(), 0);
}

fn td_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,40}"
}

fn segment_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,12}".prop_filter("dot segments", |s| s != "." && s != "..")
}

proptest! {
    #[test]
    fn parse_display_roundtrip(td in td_strategy(), segs in proptest::collection::vec(segment_strategy(), 0..6)) {
        let text = format!("spiffe://{td}{}", segs.iter().map(|s| format!("/{s}")).collect::<String>());
        let id = SpiffeId::new(&text).expect("generated ids are valid");
        let again = SpiffeId::new(&format!("{id}")).expect("display parses");
        prop_assert_eq!(&again, &id);
        prop_assert_eq!(again.trust_domain_name(), td.as_str());
        let tdv = TrustDomain::new(&td).expect("td");
        prop_assert_eq!(TrustDomain::new(&format!("{tdv}")).expect("td again"), tdv);
    }

    #[test]
    fn never_panics(s in "\\PC{0,80}") {
        let _ = SpiffeId::new(&s);
        let _ = SpiffeId::parse_lenient(&s);
        let _ = TrustDomain::new(&s);
        let _ = TrustDomain::parse_lenient(&s);
    }

    #[test]
    fn lenient_output_is_strict(s in "(?i:spiffe)://[a-zA-Z0-9.]{1,10}(/[a-zA-Z0-9]{1,5}){0,3}") {
        if let Ok(id) = SpiffeId::parse_lenient(&s) {
            prop_assert_eq!(SpiffeId::new(id.as_str()).expect("canonical is strict"), id);
        }
    }
}
