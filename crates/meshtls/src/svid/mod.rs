//! X.509-SVIDs: your own SVID (certificate chain and private key, [`Svid`]) and the verification
//! of a peer's chain against per-trust-domain bundles, strictly by the SPIFFE standard.
//!
//! # Verifying a peer
//!
//! [`verify_svid`] runs RFC 5280 path validation with rustls-webpki (aws-lc-rs signatures)
//! against the bundle of the leaf's own trust domain, then every MUST of the X509-SVID
//! standard; [`SvidVerifier`] does the same with a cache for peers that come back. An
//! [`crate::authz::Authorizer`] then decides whether the verified peer may talk to you.
//!
//! ```
//! use meshtls::bundle::BundleSet;
//! use meshtls::svid::verify_svid;
//! use rustls_pki_types::UnixTime;
//!
//! let bundles = BundleSet::new(); // normally BundleSet::from_pem_map / from_spiffe_json
//! let err = verify_svid(&[], &bundles, UnixTime::now()).unwrap_err();
//! assert_eq!(err.to_string(), "empty certificate chain: an X509-SVID chain starts with the leaf certificate");
//! ```
//!
//! # Where meshtls is stricter than go-spiffe, and its decisions
//!
//! The verdicts of `svid-cases.md` part A, all enforced:
//! - a leaf ID without a path (A21), a leaf KeyUsage without `digitalSignature` (A22) or
//!   without KeyUsage at all (A23), a leaf without BasicConstraints (A24) and a leaf EKU with
//!   only one of `serverAuth`/`clientAuth` (A31) are rejected, though go-spiffe's `Verify`
//!   accepts them; a leaf KeyUsage that is not critical is rejected too (§4.3);
//! - A33, a signing certificate whose EKU lacks `serverAuth` or `clientAuth`: **rejected**.
//!   rustls-webpki, OpenSSL and BoringSSL (Envoy) apply a CA's EKU to everything below it, so
//!   such a chain would fail in a sidecar or a rustls peer anyway; the standard leaves it to
//!   the implementation (§4.4);
//! - A34, a signing certificate (or bundle root) with URI name constraints: **rejected**.
//!   rustls-webpki does not implement URI name constraints and fails closed; X509-SVID §4.2
//!   expects such libraries to reject these chains. Do not put URI name constraints on a mesh
//!   CA whose peers verify with rustls.
//! - Signing certificates (intermediates) need BasicConstraints `cA=true` and, where they have a
//!   KeyUsage, `keyCertSign` (A18, A19); an intermediate without KeyUsage signs, as in Go,
//!   OpenSSL and webpki (RFC 5280 §4.2.1.3 constrains a KeyUsage that is present).
//! - Bundle roots are RFC 5280 §6.1.1(d) trust anchors: their subject and key count. A root
//!   without KeyUsage or with a non-critical BasicConstraints (Istio's sample root) is an
//!   anchor, as in webpki, Go, OpenSSL, BoringSSL and GnuTLS; a root without `cA=true`, with a
//!   KeyUsage lacking `keyCertSign`, an EKU lacking `serverAuth`/`clientAuth` (A33) or URI name
//!   constraints (A34) is not. The root that ends a path must be valid at the verification
//!   time, like every other certificate of the path.
//! - [`VerifyOptions::strict_anchors`] (opt-in) also refuses roots without KeyUsage or with a
//!   non-critical BasicConstraints: `openssl verify -x509_strict` and pyca/cryptography's
//!   verifier refuse those; webpki, Go, BoringSSL (Envoy), GnuTLS and default OpenSSL accept
//!   them.

mod cache;
mod inspect;
pub(crate) mod own;
pub mod request;
mod verify;

pub use cache::{CacheStats, DEFAULT_CACHE_CAPACITY, SvidVerifier};
pub use inspect::{CertificateSummary, inspect_certificate};
pub use own::{ISTIO_GRACE_PERIOD_RATIO, ISTIO_GRACE_PERIOD_RATIO_JITTER, RotationPolicy, Svid};
pub use request::{Csr, CsrParams};
pub(crate) use verify::leaf_spiffe_id_of_der;
pub use verify::{
    MAX_CHAIN_LEN, MAX_URI_SAN_LEN, VerifiedSvid, VerifyOptions, check_private_key, verify_svid,
    verify_svid_parts, verify_svid_with,
};

/// Reads a PEM certificate chain (leaf first): only `CERTIFICATE` blocks are accepted, text
/// between them is ignored.
pub fn parse_pem_chain(
    pem: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, crate::error::SvidError> {
    let chain = crate::x509::pem::parse_pem_certificates(pem)
        .map_err(|reason| crate::error::SvidError::Pem { reason })?;
    if chain.is_empty() {
        return Err(crate::error::SvidError::EmptyChain);
    }
    Ok(chain)
}
