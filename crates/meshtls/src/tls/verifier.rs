//! rustls verifiers that check a peer by its X.509-SVID, never by DNS name.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::material::TlsMaterial;
use crate::authz::{self, Authorizer};
use crate::error::Error;
use crate::identity::TrustDomain;
use crate::svid::VerifiedSvid;

/// Who is acceptable as a peer: SVID verification against the material's bundles, a trust
/// domain allow-list, then an authorizer (replaceable at run time).
pub(crate) struct PeerPolicy {
    material: TlsMaterial,
    trust_domains: Option<Arc<dyn Authorizer>>,
    authorizer: RwLock<Arc<dyn Authorizer>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for PeerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerPolicy")
            .field(
                "trust_domains",
                &self.trust_domains.as_ref().map(|a| a.describe()),
            )
            .field("authorizer", &self.authorizer().describe())
            .finish_non_exhaustive()
    }
}

impl PeerPolicy {
    pub(crate) fn new(
        material: TlsMaterial,
        trust_domains: Option<Vec<TrustDomain>>,
        authorizer: Arc<dyn Authorizer>,
        provider: &CryptoProvider,
    ) -> Self {
        PeerPolicy {
            material,
            trust_domains: trust_domains.map(authz::member_of),
            authorizer: RwLock::new(authorizer),
            algorithms: provider.signature_verification_algorithms,
        }
    }

    pub(crate) fn authorizer(&self) -> Arc<dyn Authorizer> {
        match self.authorizer.read() {
            Ok(a) => Arc::clone(&a),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        match self.authorizer.write() {
            Ok(mut a) => *a = authorizer,
            Err(poisoned) => *poisoned.into_inner() = authorizer,
        }
    }

    /// Verifies the chain as an X.509-SVID against the current bundles, checks the trust
    /// domain, then authorizes the peer.
    pub(crate) fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedSvid, Error> {
        let verified = self
            .material
            .verifier()
            .verify_parts(end_entity, intermediates, now)?;
        if let Some(trust_domains) = &self.trust_domains {
            trust_domains.authorize_verified(&verified)?;
        }
        self.authorizer().authorize_verified(&verified)?;
        Ok(verified)
    }
}

pub(crate) fn to_rustls(err: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
}

/// Why a handshake failed, in words: meshtls's own reason (e.g. the authorizer's refusal)
/// when one of its verifiers refused the peer, otherwise the error's `Display`. Accepts what
/// tokio-rustls and `std::io` hand back (an `io::Error` wrapping a `rustls::Error`) as well as
/// a bare `rustls::Error`. Use it instead of `to_string()`: rustls renders a verifier's own
/// error as a Rust `Debug` dump (`Other(OtherError(...))`).
pub fn handshake_error_message(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if let Some(inner) = io.get_ref() {
            return handshake_error_message(inner);
        }
    }
    match err.downcast_ref::<rustls::Error>() {
        Some(tls) => explain(tls),
        None => err.to_string(),
    }
}

/// Renders a rustls handshake error, recovering meshtls's own reason where a verifier failed.
pub(crate) fn explain(err: &rustls::Error) -> String {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = err {
        if let Some(ours) = inner.downcast_ref::<Error>() {
            return ours.to_string();
        }
    }
    err.to_string()
}

/// The handshake-signature half of a verifier, the same on both sides (the provider's
/// signature algorithms). A macro because rustls's `ClientCertVerifier` and
/// `ServerCertVerifier` are separate traits that both require these methods.
macro_rules! handshake_signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.algorithms.supported_schemes()
        }
    };
}

/// The server side's verifier of client certificates (client certificate required).
#[derive(Debug)]
pub(crate) struct SpiffeClientCertVerifier(pub(crate) Arc<PeerPolicy>);

impl ClientCertVerifier for SpiffeClientCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA names: the bundles rotate, and clients in a mesh have one certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .check(end_entity, intermediates, now)
            .map_err(to_rustls)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_methods!();
}

/// The client side's verifier of server certificates: by SPIFFE ID, ignoring the server name.
#[derive(Debug)]
pub(crate) struct SpiffeServerCertVerifier(pub(crate) Arc<PeerPolicy>);

impl ServerCertVerifier for SpiffeServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .check(end_entity, intermediates, now)
            .map_err(to_rustls)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_methods!();
}
