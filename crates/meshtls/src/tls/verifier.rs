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
use super::pending::{Authorizer, verify_svid};
use crate::error::{AuthzError, Error};
use crate::identity::{SpiffeId, TrustDomain};

/// Who is acceptable as a peer: SVID verification against the material's bundles, a trust
/// domain allow-list, then an authorizer (replaceable at run time).
pub(crate) struct PeerPolicy {
    material: TlsMaterial,
    trust_domains: Option<Vec<TrustDomain>>,
    authorizer: RwLock<Arc<dyn Authorizer>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for PeerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerPolicy")
            .field("trust_domains", &self.trust_domains)
            .field("authorizer", &self.authorizer())
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
            trust_domains,
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

    /// Verifies `chain` (leaf first) as an X.509-SVID against the current bundles, checks the
    /// trust domain, then authorizes the ID.
    pub(crate) fn check(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, Error> {
        let bundles = self.material.bundles();
        let verified = verify_svid(chain, &bundles, now)?;
        let id = verified.spiffe_id().clone();
        if let Some(accepted) = &self.trust_domains {
            if !accepted.iter().any(|td| id.is_member_of(td)) {
                return Err(AuthzError::Denied(format!(
                    "{id} is not in an accepted trust domain ({})",
                    accepted
                        .iter()
                        .map(TrustDomain::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into());
            }
        }
        self.authorizer().authorize(&id)?;
        Ok(id)
    }

    fn check_split(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(CertificateDer::from(end_entity.as_ref()));
        chain.extend(
            intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );
        self.check(&chain, now).map_err(to_rustls)
    }
}

pub(crate) fn to_rustls(err: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
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
        self.0.check_split(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

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
        self.0.check_split(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

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
}
