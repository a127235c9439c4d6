//! The sidecar side: a rustls `ServerConfig` that requires and verifies mesh client certificates.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::{ServerConfig, ServerConnection};

use super::common::{CommonSettings, check_connection, config_error};
use super::material::{MaterialResolver, TlsMaterial};
use super::params::{MtlsParams, TlsVersion};
use super::peer::Peer;
use super::sniff::ClientHelloInfo;
use super::verifier::{PeerPolicy, SpiffeClientCertVerifier};
use crate::authz::{self, Authorizer};
use crate::error::Error;
use crate::identity::TrustDomain;
use crate::mesh::MeshConfig;

/// How many sessions a server with resumption enabled remembers.
const SESSION_CACHE_SIZE: usize = 256;

/// Builds the server side of mesh mTLS, as an inbound Istio sidecar does it.
///
/// - The client certificate is required and verified as an X.509-SVID against the bundle of
///   its own trust domain, which must be one of the accepted trust domains (Istio's
///   `TrustDomainsForValidation`: the mesh trust domain, its aliases and the `caCertificates`
///   trust domains; [`ServerConfigBuilder::from_mesh`] sets them). Without an explicit list only
///   the trust domain of the server's own SVID is accepted.
/// - Then the authorizer decides (default: any peer that passed the above, which is what a
///   sidecar's PeerAuthentication alone enforces; AuthorizationPolicy-like rules go here).
/// - TLS 1.2–1.3 (1.3 only for `TLSV1_3`), Istio's TLS 1.2 ciphers, on an explicit
///   [`CryptoProvider`] (default: [`MtlsParams::provider`], aws-lc-rs restricted to Istio's
///   suites). No process-wide provider is installed or read.
/// - Session resumption is off unless enabled; see [`MtlsServerConfig::check_connection`].
///
/// ```no_run
/// # fn demo(material: meshtls::tls::TlsMaterial) -> Result<(), meshtls::Error> {
/// let mesh = meshtls::MeshConfig::from_yaml("trustDomainAliases: [old.example]")?;
/// let server = meshtls::tls::ServerConfigBuilder::from_mesh(material, &mesh)?
///     .alpn_protocols(meshtls::tls::params::SIDECAR_HTTP_ALPN)
///     .build()?;
/// let rustls_config = server.rustls_config();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServerConfigBuilder {
    common: CommonSettings,
    trust_domains: Option<Vec<TrustDomain>>,
    authorizer: Arc<dyn Authorizer>,
}

impl ServerConfigBuilder {
    /// A builder presenting `material`'s SVID and verifying clients with its bundles.
    pub fn new(material: TlsMaterial) -> Self {
        ServerConfigBuilder {
            common: CommonSettings::new(material),
            trust_domains: None,
            authorizer: authz::any(),
        }
    }

    /// A builder with the mesh's TLS parameters ([`MtlsParams::from_mesh`]) and accepted trust
    /// domains ([`MeshConfig::trust_domains_for_validation`]).
    pub fn from_mesh(material: TlsMaterial, mesh: &MeshConfig) -> Result<Self, Error> {
        Ok(Self::new(material)
            .params(MtlsParams::from_mesh(mesh)?)
            .trust_domains(mesh.trust_domains_for_validation()))
    }

    /// Protocol versions and TLS 1.2 ciphers.
    pub fn params(mut self, params: MtlsParams) -> Self {
        self.common.params = params;
        self
    }

    /// Caps the protocol version (Istio's maximum is TLS 1.3; lower it only to test TLS 1.2).
    pub fn max_version(mut self, max: TlsVersion) -> Self {
        self.common.max_version = max;
        self
    }

    /// Uses `provider` as given instead of the aws-lc-rs provider restricted by the params.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.common.provider = Some(provider);
        self
    }

    /// The trust domains whose SVIDs are accepted (each still needs a bundle).
    pub fn trust_domains(mut self, trust_domains: impl IntoIterator<Item = TrustDomain>) -> Self {
        self.trust_domains = Some(trust_domains.into_iter().collect());
        self
    }

    /// Decides, after verification, whether a client may connect.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// The ALPN protocols to select from, in preference order (see
    /// [`params::SIDECAR_HTTP_ALPN`](super::params::SIDECAR_HTTP_ALPN)).
    pub fn alpn_protocols<P: AsRef<[u8]>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.common.set_alpn(protocols);
        self
    }

    /// Enables session resumption (session IDs and TLS 1.3 tickets, in memory). Off by default:
    /// rustls does not run certificate verifiers on resumed sessions, so a resumed connection is
    /// authorized only by [`MtlsServerConfig::check_connection`].
    pub fn session_resumption(mut self, enabled: bool) -> Self {
        self.common.resumption = enabled;
        self
    }

    /// Builds the configs.
    pub fn build(self) -> Result<MtlsServerConfig, Error> {
        let common = self.common;
        let trust_domains = self
            .trust_domains
            .unwrap_or_else(|| vec![common.material.spiffe_id().trust_domain()]);
        let authorizer = self.authorizer;
        let prepared = common.prepare(Some(trust_domains), || Ok(authorizer))?;
        let mut config = ServerConfig::builder_with_provider(prepared.provider)
            .with_protocol_versions(prepared.versions)
            .map_err(config_error)?
            .with_client_cert_verifier(Arc::new(SpiffeClientCertVerifier(Arc::clone(
                &prepared.policy,
            ))))
            .with_cert_resolver(Arc::new(MaterialResolver(common.material.clone())));
        if common.resumption {
            config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
        } else {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        let without_alpn = Arc::new(config.clone());
        config.alpn_protocols = common.alpn;
        Ok(MtlsServerConfig {
            with_alpn: Arc::new(config),
            without_alpn,
            policy: prepared.policy,
            material: common.material,
            resumption: common.resumption,
        })
    }
}

/// A built sidecar-side configuration: the rustls config plus what meshtls needs to check
/// connections after the handshake.
#[derive(Debug, Clone)]
pub struct MtlsServerConfig {
    with_alpn: Arc<ServerConfig>,
    without_alpn: Arc<ServerConfig>,
    policy: Arc<PeerPolicy>,
    material: TlsMaterial,
    resumption: bool,
}

impl MtlsServerConfig {
    /// The rustls config. With resumption enabled, call
    /// [`MtlsServerConfig::check_connection`] after every handshake.
    pub fn rustls_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.with_alpn)
    }

    /// The config to use for a connection whose ClientHello is `hello`.
    ///
    /// rustls aborts a handshake whose ALPN offer shares nothing with the server's list;
    /// Envoy instead continues without ALPN. A gateway offering only `istio-http/1.1` to a
    /// sidecar advertising `h2, http/1.1` relies on Envoy's behaviour, so for such hellos this
    /// returns the same config without ALPN.
    pub fn config_for(&self, hello: &ClientHelloInfo) -> Arc<ServerConfig> {
        let ours = &self.with_alpn.alpn_protocols;
        if hello.alpn.is_empty() || ours.iter().any(|p| hello.alpn.contains(p)) {
            Arc::clone(&self.with_alpn)
        } else {
            Arc::clone(&self.without_alpn)
        }
    }

    /// A new server connection on [`MtlsServerConfig::rustls_config`].
    pub fn new_connection(&self) -> Result<ServerConnection, Error> {
        ServerConnection::new(self.rustls_config()).map_err(config_error)
    }

    /// Replaces the authorizer; the next handshake (and every resumed session checked by
    /// [`MtlsServerConfig::check_connection`]) uses it.
    pub fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        self.policy.set_authorizer(authorizer);
    }

    /// The material the config presents and verifies with.
    pub fn material(&self) -> &TlsMaterial {
        &self.material
    }

    pub(crate) fn policy(&self) -> &Arc<PeerPolicy> {
        &self.policy
    }

    /// Whether session resumption is enabled.
    pub fn session_resumption(&self) -> bool {
        self.resumption
    }

    /// The authenticated peer of a connection whose handshake completed.
    ///
    /// On a full handshake the verifier already checked the chain and authorized the ID. On a
    /// resumed session rustls runs no verifier, so this verifies the stored chain against the
    /// current bundles and authorizes it with the current authorizer again; a connection that
    /// fails must be closed (go-spiffe's and Envoy's resumption bug, not repeated here).
    pub fn check_connection(&self, conn: &ServerConnection) -> Result<Peer, Error> {
        check_connection(&self.policy, conn)
    }
}
