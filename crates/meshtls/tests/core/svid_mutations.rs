//! Crafted and damaged inputs never panic: every mutation of a good chain, bundle or bundle
//! JSON is either accepted as the original or refused with an error.

use crate::svid_support::*;
use meshtls::TrustDomain;
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::svid::{inspect_certificate, verify_svid};
use proptest::prelude::*;
use rustls_pki_types::CertificateDer;

struct Fixture {
    leaf: Vec<u8>,
    intermediate: Vec<u8>,
    root: Vec<u8>,
    bundles: BundleSet,
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let root = Ca::root("cluster.local");
        let int = root.intermediate("cluster.local", |_| {});
        let leaf = int.leaf("spiffe://cluster.local/ns/a/sa/b", |_| {});
        let bundles = BundleSet::from_bundles([TrustBundle::new(
            TrustDomain::new("cluster.local").unwrap(),
            [root.der.clone()],
        )
        .unwrap()])
        .unwrap();
        Fixture {
            leaf: leaf.der.to_vec(),
            intermediate: int.der.to_vec(),
            root: root.der.to_vec(),
            bundles,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn damaged_chains_are_refused_or_still_the_same_identity(
        which in 0usize..2,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let f = fixture();
        let mut chain = vec![f.leaf.clone(), f.intermediate.clone()];
        chain[which] = mutate(chain[which].clone(), &flips, cut);
        let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
        if let Ok(v) = verify_svid(&chain, &f.bundles, now()) {
            // Only a change that leaves the signed content intact (e.g. in an unused
            // encoding corner) may pass, and then it must name the same peer.
            prop_assert_eq!(v.spiffe_id().as_str(), "spiffe://cluster.local/ns/a/sa/b");
        }
        let _ = inspect_certificate(&chain[which], now());
    }

    #[test]
    fn damaged_roots_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let f = fixture();
        let root = mutate(f.root.clone(), &flips, cut);
        let td = TrustDomain::new("cluster.local").unwrap();
        if let Ok(b) = TrustBundle::new(td, [CertificateDer::from(root)]) {
            let set = BundleSet::from_bundles([b.clone()]).unwrap();
            let chain = [CertificateDer::from(f.leaf.clone()), CertificateDer::from(f.intermediate.clone())];
            let _ = verify_svid(&chain, &set, now());
            let _ = b.to_spiffe_json();
        }
    }

    #[test]
    fn arbitrary_bytes_and_json_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), text in ".{0,200}") {
        let f = fixture();
        let _ = verify_svid(&[CertificateDer::from(bytes.clone())], &f.bundles, now());
        let _ = inspect_certificate(&CertificateDer::from(bytes), now());
        let _ = BundleSet::from_spiffe_json(&text);
        let _ = TrustBundle::from_spiffe_json(TrustDomain::new("a.b").unwrap(), &text);
        let _ = TrustBundle::from_pem(TrustDomain::new("a.b").unwrap(), &text);
    }
}
