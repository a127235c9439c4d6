//! SPIFFE bundle JSON (one JWK set) and bundle maps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::{BundleSet, TrustBundle};

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    match TrustBundle::from_spiffe_json(meshtls_fuzz::td("example.org"), s) {
        Ok(bundle) => {
            if let Ok(json) = bundle.to_spiffe_json() {
                let again = TrustBundle::from_spiffe_json(bundle.trust_domain().clone(), &json);
                assert_eq!(
                    again.ok().map(|b| b.roots().to_vec()),
                    Some(bundle.roots().to_vec())
                );
            }
        }
        Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
    }
    match BundleSet::from_spiffe_json(s) {
        Ok(set) => {
            let _ = set.to_spiffe_json();
        }
        Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
    }
});
