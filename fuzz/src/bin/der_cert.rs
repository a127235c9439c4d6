//! The strict DER certificate reader: as a trust-bundle root and through the inspector.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::TrustBundle;
use rustls_pki_types::{CertificateDer, UnixTime};

fuzz_target!(|data: &[u8]| {
    let der = CertificateDer::from(data);
    let _ = meshtls::svid::inspect_certificate(&der, UnixTime::now());
    let root = CertificateDer::from(data.to_vec());
    if let Ok(bundle) = TrustBundle::new(meshtls_fuzz::td("cluster.local"), [root]) {
        let _ = bundle.to_spiffe_json();
    }
});
