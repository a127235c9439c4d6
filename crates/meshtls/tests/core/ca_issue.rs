//! Issuance with Istio's workload profile, checked by independent parsers and verifiers:
//! x509-parser reads every field, openssl verifies with -x509_strict for client and server use,
//! rustls-webpki builds the path.

use crate::ca_support as support;

use std::time::{Duration, SystemTime};

use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::error::CaError;
use meshtls::{Error, SpiffeId, TrustDomain};
use rustls_pki_types::CertificateDer;
use support::*;
use x509_parser::prelude::*;

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

/// Every field of Istio's workload profile, read by x509-parser.
fn check_profile(
    leaf_der: &CertificateDer<'_>,
    issuer_der: &CertificateDer<'_>,
    expected_id: &str,
    dns: &[&str],
) {
    let (rest, leaf) = X509Certificate::from_der(leaf_der).unwrap();
    assert!(rest.is_empty());
    let (_, issuer) = X509Certificate::from_der(issuer_der).unwrap();
    assert_eq!(leaf.version(), X509Version::V3);
    // Empty subject; issuer = the signing certificate's subject.
    assert_eq!(leaf.subject().as_raw(), &[0x30, 0x00]);
    assert_eq!(leaf.issuer().as_raw(), issuer.subject().as_raw());
    // Serial: positive, at most 128 bits.
    let serial = leaf.raw_serial();
    assert!(serial[0] & 0x80 == 0, "serial must be positive");
    let significant: Vec<u8> = serial.iter().copied().skip_while(|&b| b == 0).collect();
    assert!(
        !significant.is_empty() && significant.len() <= 16,
        "{serial:?}"
    );
    // SAN: critical, exactly one URI first, then the DNS names.
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "SAN must be critical");
    let mut uris = Vec::new();
    let mut dnss = Vec::new();
    for n in &san.value.general_names {
        match n {
            GeneralName::URI(u) => uris.push(u.to_string()),
            GeneralName::DNSName(d) => dnss.push(d.to_string()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(uris, [expected_id]);
    assert_eq!(dnss, dns);
    assert!(matches!(san.value.general_names[0], GeneralName::URI(_)));
    // KU: digitalSignature + keyEncipherment only, critical.
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature() && ku.value.key_encipherment());
    assert_eq!(ku.value.flags, 0b101);
    // EKU: serverAuth + clientAuth, nothing else.
    let eku = leaf.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.server_auth && eku.value.client_auth);
    assert!(!eku.value.any && !eku.value.code_signing && eku.value.other.is_empty());
    // Basic constraints present, CA false, no path length.
    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca && bc.value.path_len_constraint.is_none());
    // AKI = issuer's SKI; no SKI on the leaf (Go only adds one to CA certificates).
    let ski = issuer
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(aki, ski);
    assert_eq!(
        leaf.extensions().len(),
        5,
        "KU, EKU, BC, AKI, SAN and nothing else"
    );
}

#[test]
fn every_key_combination_with_and_without_intermediate_passes_openssl_and_webpki() {
    let roots = [KeyKind::Rsa2048, KeyKind::EcP256, KeyKind::EcP384];
    let leaves = [KeyKind::EcP256, KeyKind::EcP384, KeyKind::Rsa2048];
    for root_kind in roots {
        let root_ca = root(root_kind);
        let inter_kind = if root_kind == KeyKind::Rsa2048 {
            KeyKind::EcP256
        } else {
            KeyKind::Rsa2048
        };
        let inter_ca = intermediate(&root_ca, inter_kind);
        for (ca, chain_len) in [(&root_ca, 2), (&inter_ca, 3)] {
            for leaf_kind in leaves {
                let params = IssueParams {
                    key: leaf_kind,
                    dns_names: vec!["gw.example.com".to_owned()],
                    ..Default::default()
                };
                let the_id = "spiffe://cluster.local/ns/gateway/sa/agc";
                let svid = ca.issue(&id(the_id), &params).unwrap();
                let chain = svid.cert_chain_der();
                assert_eq!(chain.len(), chain_len, "{root_kind}/{leaf_kind}");
                assert_eq!(chain.last(), root_ca.root_certs_der().first());
                check_profile(&chain[0], &chain[1], the_id, &["gw.example.com"]);
                openssl_verify(chain, root_ca.root_certs_der(), "sslclient");
                openssl_verify(chain, root_ca.root_certs_der(), "sslserver");
                webpki_verify(chain, root_ca.root_certs_der());
            }
        }
    }
}

#[test]
fn larger_rsa_keys_for_ca_and_leaf() {
    let ca = root(KeyKind::Rsa3072);
    let inter = intermediate(&ca, KeyKind::Rsa4096);
    let svid = inter
        .issue(
            &id("spiffe://cluster.local/ns/a/sa/b"),
            &IssueParams {
                key: KeyKind::Rsa3072,
                ..Default::default()
            },
        )
        .unwrap();
    openssl_verify(svid.cert_chain_der(), ca.root_certs_der(), "sslclient");
    webpki_verify(svid.cert_chain_der(), ca.root_certs_der());
    assert_eq!(inter.key_description(), "rsa-4096");
}

#[test]
fn root_follows_istiods_self_signed_defaults() {
    let ca = MeshCa::create(&CaParams::default()).unwrap();
    let der = ca.root_certs_der()[0].clone();
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(c.subject().to_string(), "O=cluster.local");
    assert_eq!(c.issuer().as_raw(), c.subject().as_raw());
    assert_eq!(ca.key_description(), "rsa-2048");
    let bc = c.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
    let ku = c.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.key_cert_sign());
    assert_eq!(ku.value.flags, 1 << 5, "keyCertSign only");
    assert!(c.extended_key_usage().unwrap().is_none());
    assert!(
        c.subject_alternative_name().unwrap().is_none(),
        "istiod puts no SAN on its root"
    );
    let life = c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
    assert_eq!(life, 3650 * 86400);
    assert!(
        (c.validity().not_before.timestamp() - unix_now()).abs() <= 2,
        "no backdating"
    );
    assert_eq!(ca.trust_domain().as_str(), "cluster.local");
    assert!(ca.is_self_signed());
}

#[test]
fn optional_trust_domain_san_on_ca_certificates_keeps_openssl_and_webpki_happy() {
    let mut p = CaParams::new(TrustDomain::new("prod.example").unwrap());
    p.key = KeyKind::EcP256;
    p.trust_domain_san = true;
    p.organization = Some("Example Org".to_owned());
    let ca = MeshCa::create(&p).unwrap();
    let mut ip = CaParams::intermediate(TrustDomain::new("prod.example").unwrap());
    ip.key = KeyKind::EcP256;
    ip.trust_domain_san = true;
    let inter = ca.create_intermediate(&ip).unwrap();
    let (_, c) = X509Certificate::from_der(inter.ca_cert_der()).unwrap();
    let san = c.subject_alternative_name().unwrap().unwrap();
    assert!(!san.critical);
    assert!(matches!(
        san.value.general_names[..],
        [GeneralName::URI("spiffe://prod.example")]
    ));
    assert_eq!(
        c.subject().to_string(),
        "O=prod.example, CN=Intermediate CA"
    );
    let svid = inter
        .issue(&id("spiffe://prod.example/web"), &IssueParams::default())
        .unwrap();
    openssl_verify(svid.cert_chain_der(), ca.root_certs_der(), "sslclient");
    openssl_verify(svid.cert_chain_der(), ca.root_certs_der(), "sslserver");
    webpki_verify(svid.cert_chain_der(), ca.root_certs_der());
    // Loading it back finds the trust domain in the SAN.
    let loaded = MeshCa::from_pem(
        &inter.ca_cert_pem(),
        &inter.ca_key_pem(),
        &inter.cert_chain_pem(),
        &inter.root_cert_pem(),
        meshtls::ca::CaTrust::FromCertificate,
    )
    .unwrap();
    assert_eq!(loaded.trust_domain().as_str(), "prod.example");
    // Loading it for another trust domain contradicts its SAN.
    let e = MeshCa::from_pem(
        &inter.ca_cert_pem(),
        &inter.ca_key_pem(),
        &inter.cert_chain_pem(),
        &inter.root_cert_pem(),
        TrustDomain::new("cluster.local").unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ca-cert.pem names trust domain prod.example in its uri san, but the ca was loaded for cluster.local"
    );
}

#[test]
fn validity_is_backdated_two_minutes_and_clamped_to_the_ca() {
    let ca = root(KeyKind::EcP256);
    let before = unix_now();
    let svid = ca
        .issue(
            &id("spiffe://cluster.local/ns/a/sa/b"),
            &IssueParams::default(),
        )
        .unwrap();
    let after = unix_now();
    let nb = unix(svid.not_before());
    let na = unix(svid.not_after());
    assert!(nb >= before - 120 && nb <= after - 120);
    assert!(na >= before + 86400 && na <= after + 86400);
    assert_eq!(na - nb, 86400 + 120);
    let (_, c) = X509Certificate::from_der(&svid.cert_chain_der()[0]).unwrap();
    assert_eq!(c.validity().not_before.timestamp(), nb);
    assert_eq!(c.validity().not_after.timestamp(), na);

    // A CA with one hour left: a 24h request ends with the CA.
    let mut short = CaParams::new(td());
    short.key = KeyKind::EcP256;
    short.ttl = Duration::from_secs(3600);
    let short_ca = MeshCa::create(&short).unwrap();
    let svid = short_ca
        .issue(
            &id("spiffe://cluster.local/ns/a/sa/b"),
            &IssueParams::default(),
        )
        .unwrap();
    assert_eq!(svid.not_after(), short_ca.not_after());

    // An intermediate is clamped to its root.
    let mut ip = CaParams::intermediate(td());
    ip.key = KeyKind::EcP256;
    ip.ttl = Duration::from_secs(10 * 3600);
    let inter = short_ca.create_intermediate(&ip).unwrap();
    assert_eq!(inter.not_after(), short_ca.not_after());
}

#[test]
fn ttl_rules() {
    let ca = root(KeyKind::EcP256);
    let who = id("spiffe://cluster.local/ns/a/sa/b");
    let with_ttl = |secs: u64| IssueParams {
        ttl: Duration::from_secs(secs),
        ..Default::default()
    };
    let ninety_days = 90 * 86400;
    let svid = ca.issue(&who, &with_ttl(ninety_days)).unwrap();
    assert_eq!(
        unix(svid.not_after()) - unix(svid.not_before()),
        ninety_days as i64 + 120
    );
    let err = ca.issue(&who, &with_ttl(ninety_days + 1)).unwrap_err();
    assert!(
        matches!(err, Error::Ca(CaError::InvalidTtl { ttl_secs, .. }) if ttl_secs == ninety_days + 1),
        "{err}"
    );
    assert!(err.to_string().contains("90 days"), "{err}");
    let err = ca.issue(&who, &with_ttl(0)).unwrap_err();
    assert!(matches!(
        err,
        Error::Ca(CaError::InvalidTtl { ttl_secs: 0, .. })
    ));
}

#[test]
fn an_expired_ca_refuses_to_sign() {
    let mut p = CaParams::new(td());
    p.key = KeyKind::EcP256;
    p.ttl = Duration::from_secs(3600);
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let ca = MeshCa::create_at(&p, two_hours_ago).unwrap();
    let who = id("spiffe://cluster.local/ns/a/sa/b");
    let err = ca.issue(&who, &IssueParams::default()).unwrap_err();
    assert!(matches!(err, Error::Ca(CaError::Expired { .. })), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    // Issuing "in the past", while it was valid, works.
    let svid = ca
        .issue_at(
            &who,
            &IssueParams::default(),
            two_hours_ago + Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(svid.not_after(), ca.not_after());
    // An intermediate under it too is refused, and CSR signing as well.
    assert!(matches!(
        ca.create_intermediate(&CaParams::intermediate(td())),
        Err(Error::Ca(CaError::Expired { .. }))
    ));
    let requester = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&requester)
        .unwrap();
    assert!(matches!(
        ca.sign_csr_der(csr.der(), &who, Duration::from_secs(3600)),
        Err(Error::Ca(CaError::Expired { .. }))
    ));
}

#[test]
fn identities_and_dns_names_are_checked() {
    let ca = root(KeyKind::EcP256);
    let err = ca
        .issue(&id("spiffe://cluster.local"), &IssueParams::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::Ca(CaError::IdentityWithoutPath { .. })),
        "{err}"
    );
    for bad in ["", "a..b", "10.1.2.3", "bad_name.example", "*"] {
        let params = IssueParams {
            dns_names: vec![bad.to_owned()],
            ..Default::default()
        };
        let err = ca
            .issue(&id("spiffe://cluster.local/ns/a/sa/b"), &params)
            .unwrap_err();
        assert!(
            matches!(err, Error::Ca(CaError::InvalidDnsName { .. })),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    // Identities of other trust domains are refused, by issue, issue_many and sign_csr alike,
    // unless they are aliases the CA was given (a trust-domain migration).
    let foreign = id("spiffe://old.example/ns/a/sa/b");
    let err = ca.issue(&foreign, &IssueParams::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot issue for spiffe://old.example/ns/a/sa/b: its trust domain old.example is not \
         this ca's trust domain cluster.local"
    );
    assert!(matches!(err, Error::Ca(CaError::ForeignTrustDomain { .. })));
    let err = ca
        .issue_many(
            &[id("spiffe://cluster.local/ns/a/sa/b"), foreign.clone()],
            &IssueParams::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Ca(CaError::ForeignTrustDomain { .. })),
        "{err}"
    );
    let csr_key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&csr_key)
        .unwrap();
    let err = ca
        .sign_csr_der(csr.der(), &foreign, Duration::from_secs(3600))
        .unwrap_err();
    assert!(
        matches!(err, Error::Ca(CaError::ForeignTrustDomain { .. })),
        "{err}"
    );
    let ca = ca.with_trust_domain_aliases([TrustDomain::new("old.example").unwrap()]);
    let svid = ca.issue(&foreign, &IssueParams::default()).unwrap();
    assert_eq!(svid.spiffe_id(), &foreign);
    let err = ca
        .issue(
            &id("spiffe://third.example/ns/a/sa/b"),
            &IssueParams::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "is not this ca's trust domain cluster.local nor one of its aliases (old.example)"
        ),
        "{err}"
    );
}

#[test]
fn issue_many_gives_distinct_verifiable_svids() {
    let ca = root(KeyKind::EcP256);
    let ids: Vec<SpiffeId> = (0..40)
        .map(|i| id(&format!("spiffe://cluster.local/ns/n{i}/sa/s")))
        .collect();
    let svids = ca.issue_many(&ids, &IssueParams::default()).unwrap();
    assert_eq!(svids.len(), 40);
    let mut serials: Vec<Vec<u8>> = svids.iter().map(|s| s.serial().to_vec()).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 40);
    for (svid, want) in svids.iter().zip(&ids) {
        assert_eq!(svid.spiffe_id(), want, "order is kept");
        webpki_verify(svid.cert_chain_der(), ca.root_certs_der());
    }
    openssl_verify(svids[7].cert_chain_der(), ca.root_certs_der(), "sslclient");
    // One bad identity fails the whole batch before any work.
    let mut bad = ids.clone();
    bad.push(id("spiffe://cluster.local"));
    assert!(ca.issue_many(&bad, &IssueParams::default()).is_err());
    // Single thread gives the same shape.
    let one = ca
        .issue_many_on(&ids[..3], &IssueParams::default(), 1)
        .unwrap();
    assert_eq!(one.len(), 3);
}

#[test]
fn intermediate_with_path_len_zero_cannot_sign_a_ca() {
    let ca = root(KeyKind::EcP256);
    let inter = intermediate(&ca, KeyKind::EcP256);
    let err = inter
        .create_intermediate(&CaParams::intermediate(td()))
        .unwrap_err();
    assert!(err.to_string().contains("pathLenConstraint"), "{err}");
    // Same subject as the issuer is refused (the chain would look self-issued).
    let mut same = CaParams::new(td());
    same.key = KeyKind::EcP256;
    let err = ca.create_intermediate(&same).unwrap_err();
    assert!(err.to_string().contains("differ"), "{err}");
}

#[test]
fn k8s_objects_render() {
    let ca = root(KeyKind::EcP256);
    let svid = ca
        .issue(
            &id("spiffe://cluster.local/ns/gateway/sa/agc"),
            &IssueParams::default(),
        )
        .unwrap();
    let secret = svid.to_k8s_secret("agc-client", "gateway").unwrap();
    let yaml = secret.to_yaml().unwrap();
    let doc = meshtls::manifest::parse_value(&yaml, "secret").unwrap();
    assert_eq!(doc["apiVersion"], "v1");
    assert_eq!(doc["kind"], "Secret");
    assert_eq!(doc["type"], "kubernetes.io/tls");
    assert_eq!(doc["metadata"]["name"], "agc-client");
    assert_eq!(doc["metadata"]["namespace"], "gateway");
    use base64::Engine as _;
    let b64 = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(doc["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    // tls.crt = leaf only here (the self-signed root is left to ca.crt).
    assert_eq!(b64("tls.crt"), pem(&svid.cert_chain_der()[..1]));
    assert_eq!(b64("tls.key"), *svid.private_key_pem());
    assert_eq!(b64("ca.crt"), ca.root_cert_pem());
    assert!(!format!("{secret:?}").contains("PRIVATE KEY"));

    let cacerts = ca.to_cacerts_secret("istio-system").unwrap();
    assert_eq!(cacerts.metadata().name(), "cacerts");
    assert_eq!(cacerts.secret_type(), "Opaque");
    let keys: Vec<&str> = cacerts.data().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem"
        ]
    );
    let cm = ca.root_cert_configmap("shop").unwrap();
    let cm_doc = meshtls::manifest::parse_value(&cm.to_json().unwrap(), "cm").unwrap();
    assert_eq!(cm_doc["metadata"]["name"], "istio-ca-root-cert");
    assert_eq!(cm_doc["data"]["root-cert.pem"], ca.root_cert_pem());
    assert!(matches!(
        svid.to_k8s_secret("Bad_Name", "gateway"),
        Err(Error::Ca(CaError::InvalidObjectName { field: "name", .. }))
    ));
}

#[test]
fn debug_output_carries_no_key_material() {
    let ca = root(KeyKind::EcP256);
    let svid = ca
        .issue(
            &id("spiffe://cluster.local/ns/a/sa/b"),
            &IssueParams::default(),
        )
        .unwrap();
    let key_der = svid.private_key_der();
    let key_hex: String = key_der
        .secret_der()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key_pem = svid.private_key_pem();
    let key_b64_line = key_pem.lines().nth(1).unwrap().to_owned();
    for dbg in [format!("{svid:?}"), format!("{svid:#?}"), format!("{ca:?}")] {
        assert!(!dbg.contains(&key_hex[key_hex.len() - 40..]), "{dbg}");
        assert!(!dbg.contains(&key_b64_line), "{dbg}");
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
        assert!(
            !dbg.contains(&format!("{:?}", &key_der.secret_der()[..8])),
            "{dbg}"
        );
    }
    let ca_key = ca.ca_key_pem();
    assert!(!format!("{ca:?}").contains(ca_key.lines().nth(1).unwrap()));
}
