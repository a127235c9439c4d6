//! SPIFFE IDs, trust domains and Istio identities: strict and lenient parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::{IstioIdentity, SpiffeId, TrustDomain};

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    match SpiffeId::new(s) {
        Ok(id) => {
            // Strict parsing is canonical: the text comes back unchanged and re-parses.
            assert_eq!(id.as_str(), s);
            assert_eq!(SpiffeId::new(id.as_str()).ok().as_ref(), Some(&id));
            assert!(id.is_member_of(&id.trust_domain()));
            let _ = IstioIdentity::from_spiffe_id(&id);
        }
        Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
    }
    if let Ok(id) = SpiffeId::parse_lenient(s) {
        assert_eq!(SpiffeId::new(id.as_str()).ok().as_ref(), Some(&id));
    }
    match TrustDomain::new(s) {
        Ok(td) => {
            assert_eq!(TrustDomain::new(td.as_str()).ok().as_ref(), Some(&td));
            let _ = td.id_with_path(s);
        }
        Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
    }
    let _ = TrustDomain::parse_lenient(s);
    match IstioIdentity::from_principal(s) {
        Ok(i) => assert_eq!(i.principal(), s),
        Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
    }
});
