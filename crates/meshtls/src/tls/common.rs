//! What the client and server sides share: the settings both builders take, the steps that turn
//! them into a provider, protocol versions and a peer policy, and the post-handshake check.

use std::sync::Arc;

use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::UnixTime;

use super::material::TlsMaterial;
use super::params::{MtlsParams, TlsVersion, protocol_versions};
use super::peer::{Peer, peer_spiffe_id};
use super::verifier::PeerPolicy;
use crate::authz::Authorizer;
use crate::error::{Error, TlsError};
use crate::identity::TrustDomain;

/// The settings of [`ClientConfigBuilder`](super::ClientConfigBuilder) and
/// [`ServerConfigBuilder`](super::ServerConfigBuilder) that mean the same on both sides.
#[derive(Debug)]
pub(crate) struct CommonSettings {
    pub(crate) material: TlsMaterial,
    pub(crate) params: MtlsParams,
    pub(crate) max_version: TlsVersion,
    pub(crate) provider: Option<Arc<CryptoProvider>>,
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) resumption: bool,
}

/// What both sides build their rustls config from.
pub(crate) struct Prepared {
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) versions: &'static [&'static SupportedProtocolVersion],
    pub(crate) policy: Arc<PeerPolicy>,
}

impl CommonSettings {
    pub(crate) fn new(material: TlsMaterial) -> Self {
        CommonSettings {
            material,
            params: MtlsParams::istio_default(),
            max_version: TlsVersion::Tls13,
            provider: None,
            alpn: Vec::new(),
            resumption: false,
        }
    }

    pub(crate) fn set_alpn<P: AsRef<[u8]>>(&mut self, protocols: impl IntoIterator<Item = P>) {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
    }

    /// Checks the settings and builds the peer policy. `authorizer` runs after the ALPN check
    /// and before the version check, so a builder with several problems reports them in that
    /// order whichever side it is.
    pub(crate) fn prepare(
        &self,
        trust_domains: Option<Vec<TrustDomain>>,
        authorizer: impl FnOnce() -> Result<Arc<dyn Authorizer>, Error>,
    ) -> Result<Prepared, Error> {
        check_alpn(&self.alpn)?;
        let authorizer = authorizer()?;
        let provider = self
            .provider
            .clone()
            .unwrap_or_else(|| self.params.provider());
        let versions = protocol_versions(self.params.min_version(), self.max_version)?;
        let policy = Arc::new(PeerPolicy::new(
            self.material.clone(),
            trust_domains,
            authorizer,
            &provider,
        ));
        Ok(Prepared {
            provider,
            versions,
            policy,
        })
    }
}

pub(crate) fn check_connection(
    policy: &PeerPolicy,
    conn: &rustls::CommonState,
) -> Result<Peer, Error> {
    if conn.is_handshaking() {
        return Err(TlsError::Handshake {
            reason: "the handshake has not completed".to_owned(),
        }
        .into());
    }
    let id = if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        let chain = conn
            .peer_certificates()
            .ok_or(TlsError::NoPeerCertificate)?;
        let (end_entity, intermediates) = chain.split_first().ok_or(TlsError::NoPeerCertificate)?;
        policy
            .check(end_entity, intermediates, UnixTime::now())?
            .spiffe_id()
            .clone()
    } else {
        peer_spiffe_id(conn)?
    };
    Peer::from_connection(conn, id)
}

/// A rustls configuration error (a provider that cannot do the versions, a connection that
/// cannot be created) as meshtls's error.
pub(crate) fn config_error(e: rustls::Error) -> Error {
    TlsError::Config {
        reason: e.to_string(),
    }
    .into()
}

fn check_alpn(protocols: &[Vec<u8>]) -> Result<(), TlsError> {
    for p in protocols {
        let reason = if p.is_empty() {
            "an ALPN protocol must not be empty"
        } else if p.len() > 255 {
            "an ALPN protocol is at most 255 bytes"
        } else {
            continue;
        };
        return Err(TlsError::InvalidAlpn {
            value: String::from_utf8_lossy(p).into_owned(),
            reason,
        });
    }
    Ok(())
}
