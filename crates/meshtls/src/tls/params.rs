//! Istio's TLS parameters for mesh mTLS, mapped onto rustls.
//!
//! What an Istio sidecar negotiates on inbound mesh mTLS (`BuildInboundTLS`):
//!
//! - TLS 1.2 to TLS 1.3; TLS 1.3 only when the mesh config sets
//!   `meshMTLS.minProtocolVersion: TLSV1_3` ([`MtlsParams::from_mesh`]).
//! - For TLS 1.2, Istio's `SupportedCiphers`, in this order (`meshMTLS.cipherSuites` replaces
//!   it):
//!
//!   | Istio / OpenSSL name | rustls (aws-lc-rs) |
//!   |---|---|
//!   | `ECDHE-ECDSA-AES256-GCM-SHA384` | `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384` |
//!   | `ECDHE-RSA-AES256-GCM-SHA384` | `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384` |
//!   | `ECDHE-ECDSA-AES128-GCM-SHA256` | `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` |
//!   | `ECDHE-RSA-AES128-GCM-SHA256` | `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` |
//!   | `AES256-GCM-SHA384` | **not offered**: static-RSA key exchange, which rustls does not implement |
//!   | `AES128-GCM-SHA256` | **not offered**: static-RSA key exchange, which rustls does not implement |
//!
//!   The two static-RSA suites have no forward secrecy; every Envoy and OpenSSL peer also
//!   offers the ECDHE ones, so dropping them loses no interoperability with a sidecar. The
//!   CBC-mode names Istio also accepts in `cipherSuites` (`ECDHE-RSA-AES128-SHA`, `AES128-SHA`,
//!   ...) are likewise not offered by rustls; [`MtlsParams::from_mesh`] records them in
//!   [`MtlsParams::not_offered`] instead of failing, and fails only when nothing usable is left
//!   for TLS 1.2.
//! - TLS 1.3 suites are not configurable in Envoy (BoringSSL offers all three); meshtls offers
//!   the same three: `TLS13_AES_128_GCM_SHA256`, `TLS13_AES_256_GCM_SHA384`,
//!   `TLS13_CHACHA20_POLY1305_SHA256`.
//! - Key-exchange groups are not set for mesh mTLS ("Mesh mTLS does not respect ECDH curves"),
//!   so the provider's defaults apply (aws-lc-rs: X25519MLKEM768, X25519, P-256, P-384).
//!
//! ALPN: see the `ALPN_*` constants, [`SIDECAR_TCP_ALPN`], [`SIDECAR_HTTP_ALPN`] (what an inbound
//! sidecar advertises) and [`PERMISSIVE_MTLS_ALPN`] (what makes a PERMISSIVE sidecar pick its
//! mTLS chain).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::cipher_suite as suites;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::error::TlsError;
use crate::mesh::MeshConfig;

/// ALPN `istio`: Istio's generic mTLS marker (TCP traffic without metadata exchange).
pub const ALPN_ISTIO: &[u8] = b"istio";
/// ALPN `istio-peer-exchange`: mTLS with Istio's metadata exchange (TCP chains).
pub const ALPN_ISTIO_PEER_EXCHANGE: &[u8] = b"istio-peer-exchange";
/// ALPN `istio-http/1.0`: mesh mTLS carrying HTTP/1.0.
pub const ALPN_ISTIO_HTTP10: &[u8] = b"istio-http/1.0";
/// ALPN `istio-http/1.1`: mesh mTLS carrying HTTP/1.1.
pub const ALPN_ISTIO_HTTP11: &[u8] = b"istio-http/1.1";
/// ALPN `istio-h2`: mesh mTLS carrying HTTP/2.
pub const ALPN_ISTIO_H2: &[u8] = b"istio-h2";
/// ALPN `h2`.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN `http/1.1`.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Istio's `allIstioMtlsALPNs`: a ClientHello offering any of these reaches the mTLS filter
/// chain of a PERMISSIVE sidecar port. TLS without one of them is passed through as if it were
/// plaintext, so **a gateway doing mTLS to a PERMISSIVE sidecar must offer one**.
pub const PERMISSIVE_MTLS_ALPN: &[&[u8]] = &[
    ALPN_ISTIO,
    ALPN_ISTIO_PEER_EXCHANGE,
    ALPN_ISTIO_HTTP10,
    ALPN_ISTIO_HTTP11,
    ALPN_ISTIO_H2,
];

/// Istio's `mtlsHTTPALPNs`: the ALPNs an outbound sidecar's `istio.alpn` filter sends for HTTP.
pub const MTLS_HTTP_ALPN: &[&[u8]] = &[ALPN_ISTIO_HTTP10, ALPN_ISTIO_HTTP11, ALPN_ISTIO_H2];

/// What an inbound sidecar advertises on TCP filter chains (`ALPNDownstreamWithMxc`).
pub const SIDECAR_TCP_ALPN: &[&[u8]] = &[ALPN_ISTIO_PEER_EXCHANGE, ALPN_H2, ALPN_HTTP11];

/// What an inbound sidecar advertises on HTTP filter chains.
pub const SIDECAR_HTTP_ALPN: &[&[u8]] = &[ALPN_H2, ALPN_HTTP11];

/// What an outbound sidecar offers on ISTIO_MUTUAL TCP clusters (`ALPNInMeshWithMxc`).
pub const SIDECAR_CLIENT_TCP_ALPN: &[&[u8]] = &[ALPN_ISTIO_PEER_EXCHANGE, ALPN_ISTIO];

/// What a gateway offers towards a sidecar serving HTTP/1.1: an Istio ALPN first, so that a
/// PERMISSIVE sidecar picks its mTLS chain, then `http/1.1` for servers that only know that.
pub const GATEWAY_HTTP11_ALPN: &[&[u8]] = &[ALPN_ISTIO_HTTP11, ALPN_HTTP11];

/// Istio's default TLS 1.2 cipher list (`SupportedCiphers`), in Istio's order, including the two
/// entries rustls cannot offer.
pub const ISTIO_TLS12_CIPHERS: &[&str] = &[
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
];

/// Cipher names Istio accepts in `meshMTLS.cipherSuites` that rustls does not implement
/// (static-RSA key exchange or CBC mode).
const NOT_IN_RUSTLS: &[&str] = &[
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-SHA",
    "AES256-SHA",
];

/// The rustls suite for an Istio (OpenSSL-style) TLS 1.2 cipher name, if rustls offers it.
pub fn tls12_suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "ECDHE-ECDSA-AES256-GCM-SHA384" => suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384" => suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-AES128-GCM-SHA256" => suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305" => suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

/// A TLS protocol version meshtls negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// `"TLSv1.2"` or `"TLSv1.3"` (OpenSSL's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    pub(crate) fn from_rustls(v: rustls::ProtocolVersion) -> Option<Self> {
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rustls protocol-version list for `min..=max`.
pub(crate) fn protocol_versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<&'static [&'static SupportedProtocolVersion], TlsError> {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static ONLY12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    match (min, max) {
        (TlsVersion::Tls12, TlsVersion::Tls13) => Ok(BOTH),
        (TlsVersion::Tls13, TlsVersion::Tls13) => Ok(ONLY13),
        (TlsVersion::Tls12, TlsVersion::Tls12) => Ok(ONLY12),
        (TlsVersion::Tls13, TlsVersion::Tls12) => Err(TlsError::VersionRange {
            min: min.as_str(),
            max: max.as_str(),
        }),
    }
}

/// Istio's mesh-mTLS parameters: protocol versions and the TLS 1.2 cipher list.
#[derive(Debug, Clone, PartialEq)]
pub struct MtlsParams {
    min_version: TlsVersion,
    tls12_suites: Vec<SupportedCipherSuite>,
    not_offered: Vec<String>,
}

impl Default for MtlsParams {
    fn default() -> Self {
        Self::istio_default()
    }
}

impl MtlsParams {
    /// Istio's defaults: TLS 1.2 to 1.3 and the four ECDHE-GCM suites of `SupportedCiphers`
    /// (the two static-RSA entries are in [`MtlsParams::not_offered`]).
    pub fn istio_default() -> Self {
        let mut params = MtlsParams {
            min_version: TlsVersion::Tls12,
            tls12_suites: Vec::new(),
            not_offered: Vec::new(),
        };
        for name in ISTIO_TLS12_CIPHERS {
            match tls12_suite_by_name(name) {
                Some(suite) => params.tls12_suites.push(suite),
                None => params.not_offered.push((*name).to_owned()),
            }
        }
        params
    }

    /// The parameters a sidecar of this mesh uses: `meshMTLS.minProtocolVersion` (only
    /// `TLSV1_3` raises the minimum) and `meshMTLS.cipherSuites` when set.
    ///
    /// A cipher name that is neither Istio's nor OpenSSL's is an error naming it; a known name
    /// rustls does not implement is recorded in [`MtlsParams::not_offered`]; a list that leaves
    /// no TLS 1.2 suite while TLS 1.2 is allowed is an error.
    pub fn from_mesh(mesh: &MeshConfig) -> Result<Self, TlsError> {
        let mut params = if mesh.cipher_suites().is_empty() {
            Self::istio_default()
        } else {
            Self::collect_tls12_ciphers(mesh.cipher_suites())?
        };
        if mesh.min_protocol_version().requires_tls13() {
            params.min_version = TlsVersion::Tls13;
        }
        params.check()?;
        Ok(params)
    }

    /// TLS 1.2 to 1.3 with `names` (OpenSSL-style, as in `meshMTLS.cipherSuites`) for TLS 1.2.
    pub fn with_tls12_ciphers<S: AsRef<str>>(names: &[S]) -> Result<Self, TlsError> {
        let params = Self::collect_tls12_ciphers(names)?;
        params.check()?;
        Ok(params)
    }

    fn collect_tls12_ciphers<S: AsRef<str>>(names: &[S]) -> Result<Self, TlsError> {
        let mut params = MtlsParams {
            min_version: TlsVersion::Tls12,
            tls12_suites: Vec::new(),
            not_offered: Vec::new(),
        };
        for name in names {
            let name = name.as_ref();
            if let Some(suite) = tls12_suite_by_name(name) {
                if !params.tls12_suites.contains(&suite) {
                    params.tls12_suites.push(suite);
                }
            } else if NOT_IN_RUSTLS.contains(&name) {
                params.not_offered.push(name.to_owned());
            } else {
                return Err(TlsError::UnknownCipher {
                    name: name.to_owned(),
                });
            }
        }
        Ok(params)
    }

    fn check(&self) -> Result<(), TlsError> {
        if self.min_version == TlsVersion::Tls12 && self.tls12_suites.is_empty() {
            return Err(TlsError::NoCipherSuites {
                not_offered: self.not_offered.clone(),
            });
        }
        Ok(())
    }

    /// Raises the minimum protocol version to TLS 1.3 (or lowers it back to 1.2).
    pub fn with_min_version(mut self, min: TlsVersion) -> Result<Self, TlsError> {
        self.min_version = min;
        self.check()?;
        Ok(self)
    }

    /// The lowest protocol version accepted (the highest is always TLS 1.3).
    pub fn min_version(&self) -> TlsVersion {
        self.min_version
    }

    /// The TLS 1.2 suites offered, in preference order.
    pub fn tls12_suites(&self) -> &[SupportedCipherSuite] {
        &self.tls12_suites
    }

    /// Configured cipher names that rustls cannot offer (and are therefore left out).
    pub fn not_offered(&self) -> &[String] {
        &self.not_offered
    }

    /// The aws-lc-rs provider restricted to these TLS 1.2 suites plus the three TLS 1.3 suites.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.cipher_suites = tls13_suites();
        provider
            .cipher_suites
            .extend(self.tls12_suites.iter().copied());
        Arc::new(provider)
    }
}

fn tls13_suites() -> Vec<SupportedCipherSuite> {
    vec![
        suites::TLS13_AES_128_GCM_SHA256,
        suites::TLS13_AES_256_GCM_SHA384,
        suites::TLS13_CHACHA20_POLY1305_SHA256,
    ]
}

/// aws-lc-rs's rustls provider restricted to Istio's default suites: the three TLS 1.3 suites
/// and the four ECDHE-GCM suites of Istio's TLS 1.2 list. The default of every meshtls builder.
pub fn istio_provider() -> Arc<CryptoProvider> {
    MtlsParams::istio_default().provider()
}

/// The IANA name of a negotiated suite (e.g. `TLS13_AES_128_GCM_SHA256`).
pub fn suite_name(suite: SupportedCipherSuite) -> String {
    let text = format!("{:?}", suite.suite());
    text
}
