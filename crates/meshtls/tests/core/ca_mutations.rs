//! The CA-side readers take input from files and from requesters: damaged CA certificates,
//! chains, roots and keys are refused with a typed error (never a panic), and a damaged CSR
//! is refused unless it still carries a valid self-signature, in which case what is issued
//! names the identity the caller authenticated and verifies.

use std::time::Duration;

use base64::Engine as _;
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::ca::{CaParams, KeyKind, MeshCa};
use meshtls::svid::verify_svid;
use meshtls::{Error, SpiffeId, TrustDomain};
use proptest::prelude::*;
use rustls_pki_types::UnixTime;

use crate::svid_support::{mutate, pem};

struct Fixture {
    ca: MeshCa,
    ca_cert: Vec<u8>,
    ca_key: Vec<u8>,
    chain: Vec<u8>,
    root: Vec<u8>,
    csr: Vec<u8>,
    bundles: BundleSet,
}

fn td() -> TrustDomain {
    TrustDomain::new("cluster.local").unwrap()
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let mut p = CaParams::new(td());
        p.key = KeyKind::EcP256;
        let root = MeshCa::create(&p).unwrap();
        let mut ip = CaParams::intermediate(td());
        ip.key = KeyKind::EcP256;
        let ca = root.create_intermediate(&ip).unwrap();
        let key_der = pem_body(&ca.ca_key_pem());
        let csr_key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(vec!["evil.example".to_owned()])
            .unwrap()
            .serialize_request(&csr_key)
            .unwrap();
        let bundles =
            BundleSet::from_bundles(
                [TrustBundle::new(td(), ca.root_certs_der().to_vec()).unwrap()],
            )
            .unwrap();
        Fixture {
            ca_cert: ca.ca_cert_der().to_vec(),
            ca_key: key_der,
            chain: ca.cert_chain_der()[1].to_vec(),
            root: root.ca_cert_der().to_vec(),
            csr: csr.der().to_vec(),
            bundles,
            ca,
        }
    })
}

fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn id() -> SpiffeId {
    SpiffeId::new("spiffe://cluster.local/ns/a/sa/b").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn damaged_ca_material_is_a_typed_error_or_the_same_ca(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let f = fixture();
        let mut parts = [f.ca_cert.clone(), f.ca_key.clone(), f.chain.clone(), f.root.clone()];
        parts[which] = mutate(parts[which].clone(), &flips, cut);
        let label = if which == 1 { "PRIVATE KEY" } else { "CERTIFICATE" };
        let texts: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| pem(if i == which { label } else if i == 1 { "PRIVATE KEY" } else { "CERTIFICATE" }, p))
            .collect();
        match MeshCa::from_pem(&texts[0], &texts[1], &texts[2], &texts[3], td()) {
            Ok(ca) => {
                // Only a change the readers may ignore passes; what it issues still verifies
                // against the CA's own roots.
                let svid = ca.issue(&id(), &Default::default()).unwrap();
                let own = BundleSet::from_bundles([TrustBundle::new(td(), ca.root_certs_der().to_vec()).unwrap()]).unwrap();
                let verdict = verify_svid(svid.cert_chain_der(), &own, UnixTime::now());
                prop_assert!(verdict.is_ok(), "{:?}", verdict.err());
            }
            Err(Error::Ca(e)) => {
                let text = e.to_string();
                prop_assert!(!text.is_empty() && text.len() < 2000, "{}", text);
            }
            Err(other) => prop_assert!(false, "not a CaError: {other:?}"),
        }
    }

    #[test]
    fn damaged_csrs_are_refused_or_signed_for_the_authenticated_identity(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let f = fixture();
        let csr = mutate(f.csr.clone(), &flips, cut);
        match f.ca.sign_csr_der(&csr, &id(), Duration::from_secs(3600)) {
            Ok(issued) => {
                prop_assert_eq!(issued.spiffe_id(), &id());
                prop_assert!(verify_svid(issued.cert_chain_der(), &f.bundles, UnixTime::now()).is_ok());
            }
            Err(Error::Ca(meshtls::error::CaError::Csr { .. } | meshtls::error::CaError::UnsupportedKey { .. } | meshtls::error::CaError::Material { .. })) => {}
            Err(other) => prop_assert!(false, "unexpected error: {other:?}"),
        }
        // The PEM entry point too.
        let _ = f.ca.sign_csr(&pem("CERTIFICATE REQUEST", &csr), &id(), Duration::from_secs(3600));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let f = fixture();
        let _ = f.ca.sign_csr_der(&bytes, &id(), Duration::from_secs(3600));
        let cert = pem("CERTIFICATE", &bytes);
        let key = pem("PRIVATE KEY", &bytes);
        let _ = MeshCa::from_pem(&cert, &key, "", "", td());
        let _ = MeshCa::from_pem(&pem("CERTIFICATE", &f.ca_cert), &key, "", &pem("CERTIFICATE", &f.root), td());
        let _ = MeshCa::from_pem(&pem("CERTIFICATE", &f.ca_cert), &pem("EC PRIVATE KEY", &bytes), "", &pem("CERTIFICATE", &f.root), td());
        let _ = MeshCa::from_pem(&pem("CERTIFICATE", &f.ca_cert), &pem("RSA PRIVATE KEY", &bytes), "", &pem("CERTIFICATE", &f.root), td());
    }
}

#[test]
fn the_mutation_tests_see_the_readers_refuse() {
    // Not vacuous: a flipped signature byte of the CSR and a truncated certificate are refused.
    let f = fixture();
    let mut csr = f.csr.clone();
    let last = csr.len() - 1;
    csr[last] ^= 0x55;
    assert!(matches!(
        f.ca.sign_csr_der(&csr, &id(), Duration::from_secs(60)),
        Err(Error::Ca(meshtls::error::CaError::Csr { .. }))
    ));
    let cut = pem("CERTIFICATE", &f.ca_cert[..f.ca_cert.len() - 3]);
    let e = MeshCa::from_pem(&cut, &pem("PRIVATE KEY", &f.ca_key), "", "", td()).unwrap_err();
    assert!(e.to_string().contains("malformed certificate"), "{e}");
}
