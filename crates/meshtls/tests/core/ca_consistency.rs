//! Consistency as a property: for every CA meshtls can create or load (self-signed roots and
//! intermediates with RSA and EC keys, the plug-in layout saved and loaded back, Istio's
//! sample plug-in CA and its cluster1 alternative from `tests/data/istio-samples`) and every
//! leaf key kind, what the CA issues verifies with `verify_svid` against the CA's own roots,
//! with `openssl verify` (client and server purpose) and with GnuTLS `certtool --verify`.

use crate::ca_support as support;

use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::svid::{VerifyOptions, verify_svid, verify_svid_with};
use meshtls::{Error, SpiffeId};
use rustls_pki_types::UnixTime;
use support::*;

fn bundles(ca: &MeshCa) -> BundleSet {
    BundleSet::from_bundles([TrustBundle::new(td(), ca.root_certs_der().to_vec()).unwrap()])
        .unwrap()
}

/// Every CA kind, named.
fn every_ca() -> Vec<(String, MeshCa)> {
    let ec_root = root(KeyKind::EcP256);
    let rsa_root = root(KeyKind::Rsa2048);
    let mut cas = vec![
        ("rsa-2048 root".to_owned(), root(KeyKind::Rsa2048)),
        ("ec-p384 root".to_owned(), root(KeyKind::EcP384)),
        (
            "ec-p256 intermediate under an rsa root".to_owned(),
            intermediate(&rsa_root, KeyKind::EcP256),
        ),
        (
            "rsa-3072 intermediate under an ec root".to_owned(),
            intermediate(&ec_root, KeyKind::Rsa3072),
        ),
    ];
    // The plug-in layout, written and read back.
    let saved = Scratch::new("consistency-plugin");
    intermediate(&ec_root, KeyKind::EcP384)
        .save(&saved.0)
        .unwrap();
    cas.push((
        "plug-in layout (saved, loaded)".to_owned(),
        MeshCa::load(&saved.0, &td()).unwrap(),
    ));
    cas.push(("ec-p256 root".to_owned(), ec_root));
    // Istio's own sample CAs (RSA 2048 and 4096 intermediates under RSA roots).
    for (name, suffix) in [
        ("istio sample cacerts", ""),
        ("istio sample cluster1", "-alt"),
    ] {
        let dir = istio_sample_ca(suffix);
        cas.push((name.to_owned(), MeshCa::load(&dir.0, &td()).unwrap()));
    }
    cas
}

#[test]
fn everything_every_ca_issues_verifies_under_meshtls_openssl_and_gnutls() {
    let id = SpiffeId::new("spiffe://cluster.local/ns/shop/sa/checkout").unwrap();
    for (name, ca) in every_ca() {
        let set = bundles(&ca);
        for key in KeyKind::ALL {
            let params = IssueParams {
                key,
                dns_names: vec!["checkout.shop.svc".to_owned()],
                ..Default::default()
            };
            let svid = ca.issue(&id, &params).unwrap();
            let chain = svid.cert_chain_der();
            let what = format!("{name}, {key} leaf");
            let peer = verify_svid(chain, &set, UnixTime::now())
                .unwrap_or_else(|e| panic!("{what}: verify_svid: {e}"));
            assert_eq!(peer.spiffe_id(), &id, "{what}");
            for purpose in ["sslclient", "sslserver"] {
                let (ok, text) = openssl_verify_default(chain, ca.root_certs_der(), purpose);
                assert!(ok, "{what}: openssl verify -purpose {purpose}: {text}");
            }
            let (ok, text) = certtool_verify(chain, ca.root_certs_der());
            assert!(ok, "{what}: certtool --verify: {text}");
        }
        // The CSR path gives the same chain shape and verifies too.
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let issued = ca
            .sign_csr_der(csr.der(), &id, std::time::Duration::from_secs(3600))
            .unwrap();
        verify_svid(issued.cert_chain_der(), &set, UnixTime::now())
            .unwrap_or_else(|e| panic!("{name}: signed csr: {e}"));
    }
}

#[test]
fn the_check_is_not_vacuous() {
    // A chain verified against another CA's roots fails under each of the three checkers.
    let ca = root(KeyKind::EcP256);
    let other = root(KeyKind::EcP256);
    let id = SpiffeId::new("spiffe://cluster.local/ns/a/sa/b").unwrap();
    let svid = ca.issue(&id, &IssueParams::default()).unwrap();
    let chain = &svid.cert_chain_der()[..1];
    assert!(verify_svid(chain, &bundles(&other), UnixTime::now()).is_err());
    assert!(!openssl_verify_default(chain, other.root_certs_der(), "sslclient").0);
    assert!(!certtool_verify(chain, other.root_certs_der()).0);
}

#[test]
fn istio_sample_workload_certificates_verify_against_the_sample_root() {
    let dir = istio_samples();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    for (td_name, cert) in [
        ("trust-domain-foo", "workload-foo-cert.pem"),
        ("trust-domain-bar", "workload-bar-cert.pem"),
    ] {
        let set = BundleSet::from_pem_map([(td_name, read("root-cert.pem"))]).unwrap();
        let chain = meshtls::svid::parse_pem_chain(&read(cert)).unwrap();
        let peer =
            verify_svid(&chain, &set, UnixTime::now()).unwrap_or_else(|e| panic!("{cert}: {e}"));
        assert_eq!(peer.spiffe_id().trust_domain().as_str(), td_name);
        // The same verdict from the peers.
        let roots = meshtls::svid::parse_pem_chain(&read("root-cert.pem")).unwrap();
        assert!(openssl_verify_default(&chain, &roots, "sslclient").0);
        assert!(certtool_verify(&chain, &roots).0);
        // Under the opt-in strict anchors the sample root (no KeyUsage) is no anchor.
        let err = verify_svid_with(&chain, &set, UnixTime::now(), &VerifyOptions::strict())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("none of its roots is a trust anchor")
                && err.contains("no key usage extension"),
            "{err}"
        );
        // Against the alternative root they do not verify.
        let alt = BundleSet::from_pem_map([(td_name, read("root-cert-alt.pem"))]).unwrap();
        assert!(verify_svid(&chain, &alt, UnixTime::now()).is_err());
    }
}

#[test]
fn istio_sample_ca_loads_only_with_a_trust_domain_and_issues_only_for_it() {
    let dir = istio_sample_ca("");
    let e = MeshCa::load_with(&dir.0, &meshtls::ca::CaTrust::FromCertificate).unwrap_err();
    assert!(
        e.to_string().ends_with("ca-cert.pem has no spiffe://<trust domain> uri san: say which trust domain the ca serves (istio's default is cluster.local)"),
        "{e}"
    );
    let ca = MeshCa::load(&dir.0, &td()).unwrap();
    assert_eq!(ca.trust_domain(), &td());
    assert_eq!(ca.key_description(), "rsa-2048");
    let foreign = SpiffeId::new("spiffe://other.example/ns/a/sa/b").unwrap();
    let e = ca.issue(&foreign, &IssueParams::default()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Ca(meshtls::error::CaError::ForeignTrustDomain { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("other.example") && e.to_string().contains("cluster.local"));
    // With the mesh's aliases, the alias is accepted.
    let mesh = meshtls::MeshConfig::from_yaml(
        "trustDomain: cluster.local\ntrustDomainAliases: [other.example]\n",
    )
    .unwrap();
    let ca = MeshCa::load_with(&dir.0, &meshtls::ca::CaTrust::Mesh(mesh.trust_domains())).unwrap();
    let svid = ca.issue(&foreign, &IssueParams::default()).unwrap();
    assert_eq!(svid.spiffe_id(), &foreign);
}

#[test]
fn a_root_of_the_same_subject_with_another_key_type_is_no_matching_key() {
    let rsa = root(KeyKind::Rsa2048);
    let ec = root(KeyKind::EcP256); // same subject: O=cluster.local
    let id = SpiffeId::new("spiffe://cluster.local/ns/a/sa/b").unwrap();
    let svid = rsa.issue(&id, &IssueParams::default()).unwrap();
    let err = verify_svid(&svid.cert_chain_der()[..1], &bundles(&ec), UnixTime::now())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "chain of spiffe://cluster.local/ns/a/sa/b does not verify against the roots of \"cluster.local\": no root with a matching key"
        ),
        "{err}"
    );
}

#[test]
fn intermediates_under_loaded_cas_chain_by_exact_issuer_name() {
    // Under Istio's sample CA (subject C, ST, L, O, CN): rcgen writes the issuer name back
    // byte for byte, and the result chains under meshtls, OpenSSL and GnuTLS.
    let sample = MeshCa::load(&istio_sample_ca("").0, &td()).unwrap();
    let mut p = CaParams::intermediate(td());
    p.key = KeyKind::EcP256;
    p.common_name = Some("cluster-2 intermediate".to_owned());
    let inter = sample.create_intermediate(&p).unwrap();
    assert_eq!(inter.cert_chain_der().len(), 3);
    let id = SpiffeId::new("spiffe://cluster.local/ns/a/sa/b").unwrap();
    let svid = inter.issue(&id, &IssueParams::default()).unwrap();
    verify_svid(svid.cert_chain_der(), &bundles(&inter), UnixTime::now()).unwrap();
    assert!(openssl_verify_default(svid.cert_chain_der(), inter.root_certs_der(), "sslserver").0);
    assert!(certtool_verify(svid.cert_chain_der(), inter.root_certs_der()).0);

    // A loaded root whose name has an attribute type twice (DC=example, DC=com) cannot be
    // reproduced by rcgen: refused with a typed error, never chained with a wrong issuer name.
    let dir = Scratch::new("dc-root");
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &dir.path("ca-key.pem").display().to_string(),
        "-out",
        &dir.path("ca-cert.pem").display().to_string(),
        "-subj",
        "/DC=com/DC=example/CN=Corp Root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    assert!(ok, "{text}");
    let read = |f: &str| std::fs::read_to_string(dir.path(f)).unwrap();
    let corp = MeshCa::from_pem(&read("ca-cert.pem"), &read("ca-key.pem"), "", "", td()).unwrap();
    let e = corp.create_intermediate(&p).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Ca(meshtls::error::CaError::InvalidParam {
                param: "issuer subject",
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("appears twice"), "{e}");
    // Issuing leaves from it is not affected (the hot path copies the name as it is).
    let svid = corp.issue(&id, &IssueParams::default()).unwrap();
    verify_svid(svid.cert_chain_der(), &bundles(&corp), UnixTime::now()).unwrap();
}
