//! The peer of an established connection: its SPIFFE ID and what was negotiated.

use rustls::CommonState;
use rustls_pki_types::CertificateDer;

use super::params::{TlsVersion, suite_name};
use crate::error::{Error, TlsError};
use crate::identity::SpiffeId;
use crate::svid::leaf_spiffe_id_of_der;

/// The SPIFFE ID in a certificate's single URI SAN, read by the one leaf-ID extraction (same
/// limits and rules as verification; no path validation: use it on certificates a meshtls
/// verifier already accepted).
pub(crate) fn spiffe_id_of_cert(cert: &CertificateDer<'_>) -> Result<SpiffeId, Error> {
    leaf_spiffe_id_of_der(cert.as_ref()).map_err(|e| {
        TlsError::NoSpiffeId {
            reason: e.to_string(),
        }
        .into()
    })
}

/// The SPIFFE ID of a connection's peer, from the leaf certificate it presented (or, on a
/// resumed session, the one stored with the session).
///
/// This reads the identity only; it is meaningful on connections whose configs came from
/// meshtls's builders, whose verifiers checked the chain during the handshake. For resumed
/// sessions use [`MtlsServerConfig::check_connection`](super::MtlsServerConfig::check_connection)
/// or [`MtlsClientConfig::check_connection`](super::MtlsClientConfig::check_connection), which
/// verify and authorize the stored identity again.
pub fn peer_spiffe_id(conn: &CommonState) -> Result<SpiffeId, Error> {
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(TlsError::NoPeerCertificate)?;
    spiffe_id_of_cert(leaf)
}

/// An authenticated and authorized mTLS peer, with what the handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    spiffe_id: SpiffeId,
    certificate: CertificateDer<'static>,
    version: Option<TlsVersion>,
    cipher_suite: Option<String>,
    alpn: Option<Vec<u8>>,
    resumed: bool,
}

impl Peer {
    pub(crate) fn from_connection(conn: &CommonState, spiffe_id: SpiffeId) -> Result<Self, Error> {
        let certificate = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or(TlsError::NoPeerCertificate)?
            .clone()
            .into_owned();
        Ok(Peer {
            spiffe_id,
            certificate,
            version: conn.protocol_version().and_then(TlsVersion::from_rustls),
            cipher_suite: conn.negotiated_cipher_suite().map(suite_name),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        })
    }

    /// The peer's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The peer's leaf certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> Option<TlsVersion> {
        self.version
    }

    /// The negotiated cipher suite's IANA name (e.g. `TLS13_AES_128_GCM_SHA256`).
    pub fn cipher_suite(&self) -> Option<&str> {
        self.cipher_suite.as_deref()
    }

    /// The negotiated ALPN protocol, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// True when the session was resumed (and the identity re-checked by meshtls).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Lower-case hex SHA-256 of the peer's leaf certificate DER (Envoy's XFCC `Hash`).
    pub fn certificate_sha256_hex(&self) -> String {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.certificate.as_ref());
        let mut out = String::with_capacity(64);
        for b in digest.as_ref() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// An Envoy-style `X-Forwarded-Client-Cert` element, as an Istio sidecar sets it for the
    /// application: `By=<local id>;Hash=<sha256 of the peer leaf>;URI=<peer id>`.
    pub fn xfcc(&self, local: &SpiffeId) -> String {
        format!(
            "By={};Hash={};URI={}",
            local,
            self.certificate_sha256_hex(),
            self.spiffe_id
        )
    }
}
