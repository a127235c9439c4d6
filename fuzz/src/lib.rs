//! Helpers shared by the fuzz targets in `src/bin/`.

use meshtls::{BundleSet, MeshCa, TrustBundle, TrustDomain};
use rustls_pki_types::CertificateDer;
use std::sync::OnceLock;

/// `&[u8]` as text, when it is UTF-8 (the text parsers take `&str`).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Splits the input into DER blobs: each starts with a two-byte big-endian length. What is
/// left after the last whole blob becomes one more blob, so a bare certificate works too.
pub fn split_ders(mut data: &[u8], max: usize) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < max {
        if data.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
            if len > 0 && data.len() >= 2 + len {
                out.push(CertificateDer::from(data[2..2 + len].to_vec()));
                data = &data[2 + len..];
                continue;
            }
        }
        out.push(CertificateDer::from(data.to_vec()));
        break;
    }
    out
}

/// The fuzzing CA (ECDSA P-256, trust domain `cluster.local`), fixed so that the seed corpora
/// can hold chains and CSRs that verify against it. Its key is a test key, committed on purpose.
pub fn ca() -> &'static MeshCa {
    static CA: OnceLock<MeshCa> = OnceLock::new();
    CA.get_or_init(|| {
        let ca = MeshCa::from_pem(
            include_str!("../ca/ca-cert.pem"),
            include_str!("../ca/ca-key.pem"),
            include_str!("../ca/cert-chain.pem"),
            include_str!("../ca/root-cert.pem"),
        );
        match ca {
            Ok(ca) => {
                // Issue once before the first input: aws-lc seeds its random generator (CPU
                // jitter entropy) on first use, which on a starved CPU took over libFuzzer's
                // 10 s timeout and was reported against the first input (fuzz/README.md).
                if let Ok(id) = meshtls::SpiffeId::new("spiffe://cluster.local/ns/fuzz/sa/warm-up")
                {
                    let _ = ca.issue(&id, &meshtls::ca::IssueParams::default());
                }
                ca
            }
            Err(e) => panic!("fuzz setup: cannot load fuzz/ca: {e}"),
        }
    })
}

/// The bundles that trust [`ca`] for `cluster.local`.
pub fn bundles() -> &'static BundleSet {
    static SET: OnceLock<BundleSet> = OnceLock::new();
    SET.get_or_init(|| {
        let ca = ca();
        let bundle = TrustBundle::new(td("cluster.local"), ca.root_certs_der().to_vec());
        match bundle.and_then(|b| BundleSet::from_bundles([b])) {
            Ok(set) => set,
            Err(e) => panic!("fuzz setup: cannot build the bundle set: {e}"),
        }
    })
}

/// A trust domain known to be valid.
pub fn td(name: &str) -> TrustDomain {
    match TrustDomain::new(name) {
        Ok(td) => td,
        Err(e) => panic!("fuzz setup: {e}"),
    }
}
