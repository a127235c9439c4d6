//! CSR reading and `MeshCa::sign_csr_der` / `sign_csr` (PEM).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meshtls::SpiffeId;

fuzz_target!(|data: &[u8]| {
    let ca = meshtls_fuzz::ca();
    let Ok(id) = SpiffeId::new("spiffe://cluster.local/ns/fuzz/sa/csr") else {
        return;
    };
    let ttl = Duration::from_secs(3600);
    if let Ok(issued) = ca.sign_csr_der(data, &id, ttl) {
        // Whatever the CSR said, the certificate names the authenticated identity.
        let chain = issued.cert_chain_der();
        let verified = meshtls::verify_svid(
            chain,
            meshtls_fuzz::bundles(),
            rustls_pki_types::UnixTime::now(),
        );
        assert_eq!(
            verified.ok().map(|v| v.spiffe_id().clone()),
            Some(id.clone())
        );
    }
    if let Some(pem) = meshtls_fuzz::text(data) {
        let _ = ca.sign_csr(pem, &id, ttl);
    }
});
