//! PEM certificate chains and PEM trust bundles.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::TrustBundle;

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    if let Ok(chain) = meshtls::svid::parse_pem_chain(s) {
        let _ = meshtls::verify_svid(
            &chain,
            meshtls_fuzz::bundles(),
            rustls_pki_types::UnixTime::now(),
        );
    }
    if let Ok(bundle) = TrustBundle::from_pem(meshtls_fuzz::td("cluster.local"), s) {
        // What was read writes back and reads again to the same bundle.
        let again = TrustBundle::from_pem(bundle.trust_domain().clone(), &bundle.to_pem());
        assert_eq!(again.ok().as_ref(), Some(&bundle));
    }
});
