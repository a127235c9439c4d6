//! PeerAuthentication YAML/JSON: validation, `policy check`, and PolicySet with a resolution.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::PolicySet;
use meshtls::policy::{check_manifests, validate_peer_authentication};

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    if let Err(e) = validate_peer_authentication(s) {
        assert!(e.to_string().len() < 8192, "unbounded message");
    }
    let _ = check_manifests(s);
    match PolicySet::from_yaml(s, "istio-system") {
        Ok(set) => {
            let labels = [("app", "web"), ("version", "v1")];
            for ns in ["istio-system", "default", "shop"] {
                let _ = set.resolve(ns, &labels, None);
                let _ = set.resolve(ns, &labels, Some(8080));
            }
        }
        Err(e) => assert!(e.to_string().len() < 8192, "unbounded message"),
    }
});
