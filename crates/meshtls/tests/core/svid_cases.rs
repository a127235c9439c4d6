//! Every case of `svid-cases.md` part A, with certificates generated here, plus the limits and
//! the decisions meshtls takes where the standard leaves room.

use crate::svid_support::*;
use meshtls::Error;
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::error::{LeafRule, SigningRule, SvidError};
use meshtls::svid::{VerifiedSvid, check_private_key, verify_svid, verify_svid_parts};
use meshtls::{SpiffeId, TrustDomain};
use rcgen::{ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;

const TD1: &str = "domain1.test";
const TD2: &str = "domain2.test";
const WORKLOAD: &str = "spiffe://domain1.test/workload";

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

fn bundles(cas: &[(&str, &Ca)]) -> BundleSet {
    BundleSet::from_bundles(
        cas.iter()
            .map(|(name, ca)| TrustBundle::new(td(name), [ca.der.clone()]).unwrap()),
    )
    .unwrap()
}

fn verify(chain: &[&CertificateDer<'static>], set: &BundleSet) -> Result<VerifiedSvid, Error> {
    let chain: Vec<CertificateDer<'static>> = chain.iter().map(|c| (*c).clone()).collect();
    verify_svid(&chain, set, now())
}

fn svid_err(r: Result<VerifiedSvid, Error>) -> SvidError {
    match r {
        Err(Error::Svid(e)) => e,
        Err(other) => panic!("expected an SvidError, got {other:?}"),
        Ok(v) => panic!("expected a rejection, got {v:?}"),
    }
}

fn leaf_rule(r: Result<VerifiedSvid, Error>) -> LeafRule {
    match svid_err(r) {
        SvidError::Leaf { rule, .. } => rule,
        other => panic!("expected a leaf rule, got {other:?}"),
    }
}

fn signing_rule(r: Result<VerifiedSvid, Error>) -> (usize, SigningRule) {
    match svid_err(r) {
        SvidError::Signing { index, rule } => (index, rule),
        other => panic!("expected a signing-certificate rule, got {other:?}"),
    }
}

fn untrusted_reason(r: Result<VerifiedSvid, Error>) -> String {
    match svid_err(r) {
        SvidError::Untrusted { reason, .. } => reason,
        other => panic!("expected a path-validation failure, got {other:?}"),
    }
}

fn good() -> (Ca, Leaf) {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |_| {});
    (root, leaf)
}

#[test]
fn a01_empty_chain_is_rejected() {
    let root = Ca::root(TD1);
    let err = svid_err(verify_svid(&[], &bundles(&[(TD1, &root)]), now()));
    assert_eq!(err, SvidError::EmptyChain);
    assert!(err.to_string().starts_with("empty certificate chain"));
}

// A2 (nil bundle source) cannot be written in Rust: `bundles` is a reference. The
// `compile_fail` example on `verify_svid` is that case's test; the nearest runtime case is A3.

#[test]
fn a03_empty_bundle_set_has_no_bundle_for_the_leaf() {
    let (_, leaf) = good();
    let err = svid_err(verify(&[&leaf.der], &BundleSet::new()));
    assert_eq!(
        err,
        SvidError::NoBundle {
            trust_domain: TD1.into()
        }
    );
    assert!(
        err.to_string()
            .contains("no trust bundle for trust domain \"domain1.test\"")
    );
}

#[test]
fn a04_bundle_with_zero_roots_rejects_everything() {
    let (_, leaf) = good();
    let empty = TrustBundle::new(td(TD1), []).unwrap();
    let set = BundleSet::from_bundles([empty]).unwrap();
    let err = svid_err(verify(&[&leaf.der], &set));
    assert_eq!(
        err,
        SvidError::EmptyBundle {
            trust_domain: TD1.into()
        }
    );
}

#[test]
fn a05_only_another_domains_bundle_is_no_bundle() {
    let (_, leaf) = good();
    let other = Ca::root(TD2);
    let err = svid_err(verify(&[&leaf.der], &bundles(&[(TD2, &other)])));
    assert_eq!(
        err,
        SvidError::NoBundle {
            trust_domain: TD1.into()
        }
    );
}

#[test]
fn a06_wrong_scheme_is_not_a_spiffe_id() {
    let root = Ca::root(TD1);
    let leaf = root.leaf("sparfe://domain1.test/workload", |_| {});
    match svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))) {
        SvidError::InvalidSpiffeId { uri, rule } => {
            assert_eq!(uri, "sparfe://domain1.test/workload");
            assert_eq!(rule, "scheme is missing or invalid");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a07_bundle_holding_another_domains_ca_is_unknown_authority() {
    let (_, leaf) = good();
    let other = Ca::root(TD2);
    let reason = untrusted_reason(verify(&[&leaf.der], &bundles(&[(TD1, &other)])));
    assert!(reason.contains("unknown issuer"), "{reason}");
}

#[test]
fn a08_no_uri_san_is_rejected() {
    let root = Ca::root(TD1);
    let set = bundles(&[(TD1, &root)]);
    let dns_only = root.leaf(WORKLOAD, |p| p.subject_alt_names = vec![dns("example.org")]);
    assert_eq!(
        svid_err(verify(&[&dns_only.der], &set)),
        SvidError::NoUriSan
    );
    let no_san = root.leaf(WORKLOAD, |p| {
        p.subject_alt_names.clear();
        p.distinguished_name.push(rcgen::DnType::CommonName, "w");
    });
    assert_eq!(svid_err(verify(&[&no_san.der], &set)), SvidError::NoUriSan);
}

#[test]
fn a09_two_uri_sans_even_the_same_id_are_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| p.subject_alt_names.push(uri(WORKLOAD)));
    match svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))) {
        SvidError::MultipleUriSans { count, uris } => {
            assert_eq!(count, 2);
            assert_eq!(uris, format!("{WORKLOAD:?}, {WORKLOAD:?}"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a10_leaf_with_ca_flag_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
    });
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::IsCa
    );
}

#[test]
fn a11_leaf_with_key_cert_sign_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.key_usages.push(KeyUsagePurpose::KeyCertSign)
    });
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::KeyCertSign
    );
}

#[test]
fn a12_leaf_with_crl_sign_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| p.key_usages.push(KeyUsagePurpose::CrlSign));
    let err = svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)])));
    assert_eq!(
        err,
        SvidError::Leaf {
            id: WORKLOAD.into(),
            rule: LeafRule::CrlSign
        }
    );
    assert!(err.to_string().contains("cRLSign"));
}

#[test]
fn a13_after_not_after_is_expired_and_not_after_itself_is_valid() {
    let root = Ca::root(TD1);
    let not_after = NOW + 3600;
    let leaf = root.leaf(WORKLOAD, |p| p.not_after = ts(not_after));
    let set = bundles(&[(TD1, &root)]);
    let chain = vec![leaf.der.clone()];
    assert!(verify_svid(&chain, &set, at(not_after)).is_ok());
    let rule = leaf_rule(verify_svid(&chain, &set, at(not_after + 1)));
    let LeafRule::Expired { not_after, now } = rule else {
        panic!("{rule:?}")
    };
    assert_eq!(not_after, "2030-01-01T01:00:00Z");
    assert_eq!(now, "2030-01-01T01:00:01Z");
}

#[test]
fn a14_valid_leaf_with_the_right_bundle_is_accepted() {
    let (root, leaf) = good();
    let v = verify(&[&leaf.der], &bundles(&[(TD1, &root)])).unwrap();
    assert_eq!(v.spiffe_id(), &SpiffeId::new(WORKLOAD).unwrap());
    assert_eq!(v.chain(), &[leaf.der.clone(), root.der.clone()]);
    assert_eq!(v.leaf(), &leaf.der);
    assert_eq!(v.root(), &root.der);
    assert_eq!(v.bundle_trust_domain(), &td(TD1));
    assert_eq!(v.valid_from().as_secs(), 1_767_225_600); // 2026-01-01
    assert_eq!(v.valid_until().as_secs(), 2_082_758_400); // 2036-01-01
}

#[test]
fn a15_corrupted_der_cannot_be_parsed() {
    let (root, leaf) = good();
    let mut bytes = leaf.der.to_vec();
    bytes[0] ^= 0xff;
    let corrupt = CertificateDer::from(bytes);
    match svid_err(verify(&[&corrupt], &bundles(&[(TD1, &root)]))) {
        SvidError::Malformed { index, .. } => assert_eq!(index, 0),
        other => panic!("{other:?}"),
    }
    // Truncated, and with trailing bytes.
    let truncated = CertificateDer::from(leaf.der[..leaf.der.len() - 1].to_vec());
    assert!(matches!(
        svid_err(verify(&[&truncated], &bundles(&[(TD1, &root)]))),
        SvidError::Malformed { index: 0, .. }
    ));
    let mut long = leaf.der.to_vec();
    long.push(0);
    let long = CertificateDer::from(long);
    assert!(matches!(
        svid_err(verify(&[&long], &bundles(&[(TD1, &root)]))),
        SvidError::Malformed { index: 0, .. }
    ));
}

#[test]
fn a16_leaf_not_yet_valid_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| p.not_before = ts(NOW + 1));
    let rule = leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)])));
    assert!(
        matches!(rule, LeafRule::NotYetValid { ref not_before, .. } if not_before == "2030-01-01T00:00:01Z"),
        "{rule:?}"
    );
}

#[test]
fn a17_leaf_intermediate_root_is_accepted() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |_| {});
    let leaf = int.leaf(WORKLOAD, |_| {});
    let v = verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)])).unwrap();
    assert_eq!(v.spiffe_id().as_str(), WORKLOAD);
    assert_eq!(
        v.chain(),
        &[leaf.der.clone(), int.der.clone(), root.der.clone()]
    );
    // The rustls-shaped entry point agrees.
    let parts = verify_svid_parts(
        &leaf.der,
        std::slice::from_ref(&int.der),
        &bundles(&[(TD1, &root)]),
        now(),
    )
    .unwrap();
    assert_eq!(parts, v);
}

#[test]
fn a18_intermediate_without_ca_flag_is_rejected() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |p| p.is_ca = IsCa::ExplicitNoCa);
    let leaf = int.leaf(WORKLOAD, |_| {});
    assert_eq!(
        signing_rule(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)]))),
        (1, SigningRule::NotCa)
    );
    let no_bc = root.intermediate(TD1, |p| p.is_ca = IsCa::NoCa);
    let leaf = no_bc.leaf(WORKLOAD, |_| {});
    assert_eq!(
        signing_rule(verify(&[&leaf.der, &no_bc.der], &bundles(&[(TD1, &root)]))),
        (1, SigningRule::BasicConstraintsMissing)
    );
}

#[test]
fn a19_intermediate_without_key_cert_sign_is_rejected() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |p| p.key_usages = vec![KeyUsagePurpose::CrlSign]);
    let leaf = int.leaf(WORKLOAD, |_| {});
    assert_eq!(
        signing_rule(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)]))),
        (1, SigningRule::NoKeyCertSign)
    );
    // Without any KeyUsage an intermediate signs (RFC 5280 §4.2.1.3 constrains a KeyUsage
    // that is present; Go, OpenSSL and webpki accept it; Istio's sample chain relies on it).
    let no_ku = root.intermediate(TD1, |p| p.key_usages.clear());
    let leaf = no_ku.leaf(WORKLOAD, |_| {});
    let ok = verify(&[&leaf.der, &no_ku.der], &bundles(&[(TD1, &root)])).unwrap();
    assert_eq!(ok.chain().len(), 3);
}

#[test]
fn a20_leaf_signed_by_another_domains_ca_is_untrusted_even_with_both_bundles() {
    let root1 = Ca::root(TD1);
    let root2 = Ca::root(TD2);
    let forged = root2.leaf(WORKLOAD, |_| {});
    let set = bundles(&[(TD1, &root1), (TD2, &root2)]);
    let err = svid_err(verify(&[&forged.der], &set));
    match &err {
        SvidError::Untrusted {
            id, trust_domain, ..
        } => {
            assert_eq!(id, WORKLOAD);
            assert_eq!(trust_domain, TD1);
        }
        other => panic!("{other:?}"),
    }
    // The same CA's own leaves are fine: the rejection is about the trust domain.
    let own = root2.leaf("spiffe://domain2.test/w", |_| {});
    assert!(verify(&[&own.der], &set).is_ok());
}

#[test]
fn a21_leaf_with_root_only_id_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf("spiffe://domain1.test", |_| {});
    assert_eq!(
        svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::LeafWithoutPath {
            id: "spiffe://domain1.test".into()
        }
    );
}

#[test]
fn a22_leaf_without_digital_signature_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
    });
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::NoDigitalSignature
    );
}

#[test]
fn a23_leaf_without_key_usage_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| p.key_usages.clear());
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::KeyUsageMissing
    );
}

#[test]
fn a23b_leaf_key_usage_must_be_critical() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.key_usages.clear();
        p.custom_extensions.push(key_usage_ext(&[0], false));
    });
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::KeyUsageNotCritical
    );
    // The same bits, critical, pass: the custom encoding itself is fine.
    let ok = root.leaf(WORKLOAD, |p| {
        p.key_usages.clear();
        p.custom_extensions.push(key_usage_ext(&[0], true));
    });
    assert!(verify(&[&ok.der], &bundles(&[(TD1, &root)])).is_ok());
}

#[test]
fn a24_leaf_without_basic_constraints_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| p.is_ca = IsCa::NoCa);
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::BasicConstraintsMissing
    );
}

#[test]
fn a25_spiffe_plus_https_uri_is_more_than_one_uri_san() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.subject_alt_names.push(uri("https://domain1.test/x"))
    });
    assert!(matches!(
        svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::MultipleUriSans { count: 2, .. }
    ));
}

#[test]
fn a26_only_an_https_uri_is_not_a_spiffe_id() {
    let root = Ca::root(TD1);
    let leaf = root.leaf("https://domain1.test/workload", |_| {});
    assert!(matches!(
        svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::InvalidSpiffeId { rule, .. } if rule == "scheme is missing or invalid"
    ));
}

#[test]
fn a27_upper_case_scheme_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf("SPIFFE://domain1.test/workload", |_| {});
    assert!(matches!(
        svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::InvalidSpiffeId { rule, .. } if rule == "scheme is missing or invalid"
    ));
}

#[test]
fn a28_upper_case_trust_domain_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf("spiffe://Domain1.test/workload", |_| {});
    assert!(matches!(
        svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::InvalidSpiffeId { rule, .. } if rule.starts_with("trust domain characters are limited")
    ));
}

#[test]
fn a29_trailing_slash_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf("spiffe://domain1.test/workload/", |_| {});
    assert!(matches!(
        svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::InvalidSpiffeId { rule, .. } if rule == "path cannot have a trailing slash"
    ));
}

#[test]
fn a30_dns_sans_beside_the_uri_san_are_accepted() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.subject_alt_names
            .extend([dns("workload.domain1.test"), dns("localhost")])
    });
    let v = verify(&[&leaf.der], &bundles(&[(TD1, &root)])).unwrap();
    assert_eq!(v.spiffe_id().as_str(), WORKLOAD);
}

#[test]
fn a31_leaf_eku_with_only_server_auth_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]
    });
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::ExtendedKeyUsage {
            present: "serverAuth".into()
        }
    );
    let client_only = root.leaf(WORKLOAD, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]
    });
    assert_eq!(
        leaf_rule(verify(&[&client_only.der], &bundles(&[(TD1, &root)]))),
        LeafRule::ExtendedKeyUsage {
            present: "clientAuth".into()
        }
    );
}

#[test]
fn a32_leaf_without_eku_is_accepted() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| p.extended_key_usages.clear());
    assert!(verify(&[&leaf.der], &bundles(&[(TD1, &root)])).is_ok());
}

#[test]
fn a33_intermediate_eku_without_server_and_client_auth_is_rejected_by_decision() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning]
    });
    let leaf = int.leaf(WORKLOAD, |_| {});
    let (index, rule) = signing_rule(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)])));
    assert_eq!(index, 1);
    assert_eq!(
        rule,
        SigningRule::ExtendedKeyUsage {
            present: "codeSigning".into()
        }
    );
    // An intermediate EKU that allows both purposes is fine.
    let int = root.intermediate(TD1, |p| {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ]
    });
    let leaf = int.leaf(WORKLOAD, |_| {});
    assert!(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)])).is_ok());
    // The same rule for a bundle root: it is not used as an anchor.
    let code_root = Ca::root_with(TD1, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning]
    });
    let leaf = code_root.leaf(WORKLOAD, |_| {});
    let reason = untrusted_reason(verify(&[&leaf.der], &bundles(&[(TD1, &code_root)])));
    assert!(
        reason.contains("root 0: its extended key usage lacks"),
        "{reason}"
    );
}

#[test]
fn a34_uri_name_constraints_are_rejected_by_decision() {
    // On an intermediate.
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |p| p.custom_extensions.push(uri_name_constraint(TD1)));
    let leaf = int.leaf(WORKLOAD, |_| {});
    let err = svid_err(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)])));
    assert_eq!(
        err,
        SvidError::Signing {
            index: 1,
            rule: SigningRule::UriNameConstraints
        }
    );
    assert!(err.to_string().contains("URI name constraints"), "{err}");
    // On the root: it is never used as an anchor, and the error says why.
    let constrained_root =
        Ca::root_with(TD1, |p| p.custom_extensions.push(uri_name_constraint(TD1)));
    let leaf = constrained_root.leaf(WORKLOAD, |_| {});
    let reason = untrusted_reason(verify(&[&leaf.der], &bundles(&[(TD1, &constrained_root)])));
    assert!(reason.contains("URI name constraints"), "{reason}");
}

#[test]
fn a35_empty_subject_with_critical_san_is_accepted() {
    let (root, leaf) = good(); // the default leaf has an empty subject and a critical SAN
    assert!(verify(&[&leaf.der], &bundles(&[(TD1, &root)])).is_ok());
}

#[test]
fn a35b_empty_subject_with_non_critical_san_is_rejected() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.subject_alt_names.clear();
        p.custom_extensions.push(san_ext(&[WORKLOAD], false));
    });
    assert_eq!(
        leaf_rule(verify(&[&leaf.der], &bundles(&[(TD1, &root)]))),
        LeafRule::SanNotCritical
    );
    // With a subject, a non-critical SAN is fine.
    let named = root.leaf(WORKLOAD, |p| {
        p.subject_alt_names.clear();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "workload");
        p.custom_extensions.push(san_ext(&[WORKLOAD], false));
    });
    assert!(verify(&[&named.der], &bundles(&[(TD1, &root)])).is_ok());
}

#[test]
fn a36_chain_in_wrong_order_is_rejected() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |_| {});
    let leaf = int.leaf(WORKLOAD, |_| {});
    assert_eq!(
        svid_err(verify(&[&int.der, &leaf.der], &bundles(&[(TD1, &root)]))),
        SvidError::LeafWithoutPath {
            id: "spiffe://domain1.test".into()
        }
    );
}

#[test]
fn a37_root_sent_after_the_intermediate_is_accepted() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |_| {});
    let leaf = int.leaf(WORKLOAD, |_| {});
    let v = verify(&[&leaf.der, &int.der, &root.der], &bundles(&[(TD1, &root)])).unwrap();
    assert_eq!(
        v.chain(),
        &[leaf.der.clone(), int.der.clone(), root.der.clone()]
    );
}

#[test]
fn a38_private_key_must_match_the_leaf() {
    let (_, leaf) = good();
    check_private_key(&leaf.der, &leaf.key_der()).unwrap();
    let (_, other) = good();
    let err = check_private_key(&leaf.der, &other.key_der()).unwrap_err();
    assert!(
        matches!(err, Error::Svid(SvidError::KeyMismatch { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("private key does not match the leaf certificate")
    );
}

// ---- limits ---------------------------------------------------------------------------------

#[test]
fn chains_longer_than_sixteen_are_refused_before_any_parsing() {
    let (_, leaf) = good();
    let chain: Vec<CertificateDer<'static>> = std::iter::repeat_n(leaf.der.clone(), 17).collect();
    assert_eq!(
        svid_err(verify_svid(&chain, &BundleSet::new(), now())),
        SvidError::ChainTooLong { len: 17, max: 16 }
    );
}

#[test]
fn uri_sans_longer_than_2048_bytes_are_refused() {
    let root = Ca::root(TD1);
    let set = bundles(&[(TD1, &root)]);
    let prefix = "spiffe://domain1.test/";
    let at_limit = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    let leaf = root.leaf(&at_limit, |_| {});
    assert_eq!(
        verify(&[&leaf.der], &set).unwrap().spiffe_id().as_str(),
        at_limit
    );
    let over = format!("{at_limit}b");
    let leaf = root.leaf(&over, |_| {});
    assert_eq!(
        svid_err(verify(&[&leaf.der], &set)),
        SvidError::UriSanTooLong { len: 2049 }
    );
}

// ---- signing certificates and roots ----------------------------------------------------------

#[test]
fn signing_certificate_spiffe_id_must_not_have_a_path() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |p| {
        p.subject_alt_names = vec![uri("spiffe://domain1.test/signer")]
    });
    let leaf = int.leaf(WORKLOAD, |_| {});
    assert_eq!(
        signing_rule(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)]))),
        (
            1,
            SigningRule::SpiffeIdWithPath {
                id: "spiffe://domain1.test/signer".into()
            }
        )
    );
    // Without any SAN a signing certificate is fine (it SHOULD, not MUST, be an SVID).
    let plain = root.intermediate(TD1, |p| p.subject_alt_names.clear());
    let leaf = plain.leaf(WORKLOAD, |_| {});
    assert!(verify(&[&leaf.der, &plain.der], &bundles(&[(TD1, &root)])).is_ok());
}

#[test]
fn expired_intermediate_and_expired_root_are_rejected_with_their_dates() {
    let root = Ca::root(TD1);
    let int = root.intermediate(TD1, |p| p.not_after = ts(NOW - 10));
    let leaf = int.leaf(WORKLOAD, |_| {});
    let reason = untrusted_reason(verify(&[&leaf.der, &int.der], &bundles(&[(TD1, &root)])));
    assert!(
        reason.contains("expired at 2029-12-31T23:59:50Z"),
        "{reason}"
    );

    let old_root = Ca::root_with(TD1, |p| p.not_after = ts(NOW - 1));
    let leaf = old_root.leaf(WORKLOAD, |_| {});
    let reason = untrusted_reason(verify(&[&leaf.der], &bundles(&[(TD1, &old_root)])));
    assert!(
        reason.contains("the root that signs the chain expired at 2029-12-31T23:59:59Z"),
        "{reason}"
    );
}

#[test]
fn renewed_root_with_the_same_key_takes_over_from_the_expired_one() {
    let key_pem = ec().serialize_pem();
    let expired = Ca::root_with_key(TD1, rcgen::KeyPair::from_pem(&key_pem).unwrap(), |p| {
        p.not_after = ts(NOW - 1)
    });
    let renewed = Ca::root_with_key(TD1, rcgen::KeyPair::from_pem(&key_pem).unwrap(), |_| {});
    let leaf = renewed.leaf(WORKLOAD, |_| {});
    // Both roots share subject and key, the expired one first: path building must move on.
    let bundle = TrustBundle::new(td(TD1), [expired.der.clone(), renewed.der.clone()]).unwrap();
    let set = BundleSet::from_bundles([bundle]).unwrap();
    let v = verify(&[&leaf.der], &set).unwrap();
    assert_eq!(v.root(), &renewed.der);
}

#[test]
fn roots_that_cannot_sign_are_never_anchors() {
    let not_ca = Ca::root_with(TD1, |p| p.is_ca = IsCa::ExplicitNoCa);
    let leaf = not_ca.leaf(WORKLOAD, |_| {});
    let reason = untrusted_reason(verify(&[&leaf.der], &bundles(&[(TD1, &not_ca)])));
    assert!(reason.contains("root 0: it is not a CA"), "{reason}");
}

#[test]
fn unknown_critical_extension_is_refused() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        let mut ext = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![0x05, 0x00]);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    });
    let err = svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)])));
    assert!(err.to_string().contains("critical"), "{err}");
}

#[test]
fn duplicate_extensions_are_malformed() {
    let root = Ca::root(TD1);
    let leaf = root.leaf(WORKLOAD, |p| {
        p.custom_extensions.push(key_usage_ext(&[0], true));
    });
    let err = svid_err(verify(&[&leaf.der], &bundles(&[(TD1, &root)])));
    assert!(
        matches!(&err, SvidError::Malformed { index: 0, reason } if reason.contains("2.5.29.15 appears twice")),
        "{err:?}"
    );
}

#[test]
fn rsa_roots_and_leaves_verify() {
    let root = Ca::root_with_key(TD1, key(&rcgen::PKCS_RSA_SHA256), |_| {});
    let leaf = root.leaf(WORKLOAD, |_| {});
    assert!(verify(&[&leaf.der], &bundles(&[(TD1, &root)])).is_ok());
}

// ---- aliases never merge foreign domains -----------------------------------------------------

#[test]
fn alias_trust_domains_use_the_mesh_roots_and_nothing_else() {
    let mesh = Ca::root("cluster.local");
    let foreign = Ca::root("partner.example");
    let set = BundleSet::new()
        .with_bundle(TrustBundle::new(td("cluster.local"), [mesh.der.clone()]).unwrap())
        .unwrap()
        .with_aliases(&td("cluster.local"), [td("old.example")])
        .unwrap();

    let via_alias = mesh.leaf("spiffe://old.example/ns/a/sa/b", |_| {});
    let v = verify(&[&via_alias.der], &set).unwrap();
    assert_eq!(v.spiffe_id().as_str(), "spiffe://old.example/ns/a/sa/b");
    assert_eq!(v.bundle_trust_domain(), &td("cluster.local"));

    // The mesh CA signing for a domain that is neither the mesh nor an alias: no bundle.
    let elsewhere = mesh.leaf("spiffe://partner.example/x", |_| {});
    assert_eq!(
        svid_err(verify(&[&elsewhere.der], &set)),
        SvidError::NoBundle {
            trust_domain: "partner.example".into()
        }
    );
    // A foreign CA claiming the alias domain: the mesh roots do not know it.
    let forged = foreign.leaf("spiffe://old.example/ns/a/sa/b", |_| {});
    assert!(matches!(
        svid_err(verify(&[&forged.der], &set)),
        SvidError::Untrusted { .. }
    ));
    // With the partner's bundle added, the partner's leaves verify with the partner's roots only.
    let set = set
        .with_bundle(TrustBundle::new(td("partner.example"), [foreign.der.clone()]).unwrap())
        .unwrap();
    let partner = foreign.leaf("spiffe://partner.example/x", |_| {});
    assert!(verify(&[&partner.der], &set).is_ok());
    assert!(matches!(
        svid_err(verify(&[&elsewhere.der], &set)),
        SvidError::Untrusted { .. }
    ));
}

#[test]
fn bundle_roots_are_trust_anchors_and_strictness_is_opt_in() {
    use meshtls::svid::{VerifyOptions, verify_svid_with};
    // A root without KeyUsage anchors the path (RFC 5280 §6.1.1(d); webpki, Go, OpenSSL).
    let root = Ca::root_with(TD1, |p| p.key_usages.clear());
    let leaf = root.leaf(WORKLOAD, |_| {});
    let set = bundles(&[(TD1, &root)]);
    verify(&[&leaf.der], &set).unwrap();
    // Under the opt-in strict anchors (openssl -x509_strict) it is refused, and said why.
    let chain = vec![leaf.der.clone()];
    let err = verify_svid_with(&chain, &set, now(), &VerifyOptions::strict())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "none of its roots is a trust anchor for SVIDs: root 0: it has no key usage extension"
        ),
        "{err}"
    );
    // A root whose KeyUsage lacks keyCertSign, or that is not a CA, stays refused (as Go's
    // CheckSignatureFrom, OpenSSL and BoringSSL refuse such an issuer).
    for (root, why) in [
        (
            Ca::root_with(TD1, |p| p.key_usages = vec![KeyUsagePurpose::CrlSign]),
            "its key usage lacks keyCertSign",
        ),
        (
            Ca::root_with(TD1, |p| p.is_ca = IsCa::ExplicitNoCa),
            "it is not a CA (cA=false)",
        ),
    ] {
        let leaf = root.leaf(WORKLOAD, |_| {});
        let err = verify(&[&leaf.der], &bundles(&[(TD1, &root)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{err}");
    }
}
