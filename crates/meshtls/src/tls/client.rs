//! The gateway side: a rustls `ClientConfig` that presents a mesh SVID and verifies the
//! sidecar by its SPIFFE ID.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection};
use rustls_pki_types::ServerName;

use super::common::{CommonSettings, check_connection, config_error};
use super::material::{MaterialResolver, TlsMaterial};
use super::params::{MtlsParams, TlsVersion};
use super::peer::Peer;
use super::verifier::{PeerPolicy, SpiffeServerCertVerifier};
use crate::authz::{self, Authorizer};
use crate::error::{Error, TlsError};
use crate::identity::{SpiffeId, TrustDomain, expand_spiffe_ids};

/// Builds the client side of mesh mTLS, as a gateway (or an outbound sidecar on ISTIO_MUTUAL)
/// does it.
///
/// - Presents the material's SVID as the client certificate.
/// - Verifies the server's chain as an X.509-SVID against the bundle of its trust domain, then
///   requires its SPIFFE ID to be **exactly** one of the expected IDs, expanded with the trust
///   domain aliases (Istio's `ExpandWithTrustDomains`), and/or accepted by an authorizer. The
///   server name is never used for verification; it only goes into SNI.
/// - TLS 1.2–1.3 by default; ALPN empty by default (use
///   [`params::ALPN_ISTIO_HTTP11`](super::params::ALPN_ISTIO_HTTP11) or another Istio ALPN so a
///   PERMISSIVE sidecar selects its mTLS chain).
/// - Explicit [`CryptoProvider`] (default: aws-lc-rs restricted to Istio's suites); session
///   resumption off unless enabled.
///
/// ```no_run
/// # fn demo(material: meshtls::tls::TlsMaterial) -> Result<(), meshtls::Error> {
/// use meshtls::tls::{ClientConfigBuilder, params};
/// let sidecar = meshtls::SpiffeId::new("spiffe://cluster.local/ns/demo/sa/api")?;
/// let client = ClientConfigBuilder::new(material)
///     .expect_server_ids([sidecar])
///     .alpn_protocols([params::ALPN_ISTIO_HTTP11, params::ALPN_HTTP11])
///     .build()?;
/// let conn = client.connect(None)?; // no SNI; the sidecar does not match on it
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientConfigBuilder {
    common: CommonSettings,
    expected: Vec<SpiffeId>,
    aliases: Vec<TrustDomain>,
    authorizer: Option<Arc<dyn Authorizer>>,
    sni: bool,
}

impl ClientConfigBuilder {
    /// A builder presenting `material`'s SVID and verifying servers with its bundles.
    pub fn new(material: TlsMaterial) -> Self {
        ClientConfigBuilder {
            common: CommonSettings::new(material),
            expected: Vec::new(),
            aliases: Vec::new(),
            authorizer: None,
            sni: true,
        }
    }

    /// The server must present one of these SPIFFE IDs (after alias expansion).
    pub fn expect_server_ids(mut self, ids: impl IntoIterator<Item = SpiffeId>) -> Self {
        self.expected.extend(ids);
        self
    }

    /// Trust-domain aliases: each expected ID is also accepted in each alias trust domain.
    pub fn trust_domain_aliases(mut self, aliases: impl IntoIterator<Item = TrustDomain>) -> Self {
        self.aliases = aliases.into_iter().collect();
        self
    }

    /// An authorizer for the server's ID (combined with the expected IDs when both are given:
    /// both must accept).
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// TLS 1.2 ciphers (and the minimum version).
    pub fn params(mut self, params: MtlsParams) -> Self {
        self.common.params = params;
        self
    }

    /// Offers only versions in `min..=max`.
    pub fn versions(mut self, min: TlsVersion, max: TlsVersion) -> Result<Self, Error> {
        self.common.params = self.common.params.with_min_version(min)?;
        self.common.max_version = max;
        Ok(self)
    }

    /// Uses `provider` as given instead of the aws-lc-rs provider restricted by the params.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.common.provider = Some(provider);
        self
    }

    /// The ALPN protocols to offer, in preference order.
    pub fn alpn_protocols<P: AsRef<[u8]>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.common.set_alpn(protocols);
        self
    }

    /// Whether to send SNI when [`MtlsClientConfig::connect`] is given a DNS name (default on).
    pub fn sni(mut self, enabled: bool) -> Self {
        self.sni = enabled;
        self
    }

    /// Enables session resumption (in-memory). Off by default; when on, call
    /// [`MtlsClientConfig::check_connection`] after every handshake: rustls runs no verifier on
    /// resumed sessions.
    pub fn session_resumption(mut self, enabled: bool) -> Self {
        self.common.resumption = enabled;
        self
    }

    /// Builds the config. Fails with [`TlsError::NoServerIdentity`] when neither expected IDs
    /// nor an authorizer was given.
    pub fn build(self) -> Result<MtlsClientConfig, Error> {
        let common = self.common;
        let expected = expand_spiffe_ids(&self.expected, &self.aliases)?;
        let authorizer = self.authorizer;
        // The bundle lookup by the leaf's trust domain is the only trust-domain rule here: the
        // exact IDs (or the authorizer) already pin the acceptable servers.
        let prepared = common.prepare(None, || match (expected.is_empty(), authorizer) {
            (true, None) => Err(TlsError::NoServerIdentity.into()),
            (true, Some(a)) => Ok(a),
            (false, None) => Ok(authz::one_of(expected.clone())),
            (false, Some(a)) => Ok(authz::both(authz::one_of(expected.clone()), a)),
        })?;
        let mut config = ClientConfig::builder_with_provider(prepared.provider)
            .with_protocol_versions(prepared.versions)
            .map_err(config_error)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SpiffeServerCertVerifier(Arc::clone(
                &prepared.policy,
            ))))
            .with_client_cert_resolver(Arc::new(MaterialResolver(common.material.clone())));
        config.alpn_protocols = common.alpn;
        config.enable_sni = self.sni;
        config.resumption = if common.resumption {
            Resumption::default()
        } else {
            Resumption::disabled()
        };
        Ok(MtlsClientConfig {
            config: Arc::new(config),
            policy: prepared.policy,
            expected,
            material: common.material,
        })
    }
}

/// A built gateway-side configuration.
#[derive(Debug, Clone)]
pub struct MtlsClientConfig {
    config: Arc<ClientConfig>,
    policy: Arc<PeerPolicy>,
    expected: Vec<SpiffeId>,
    material: TlsMaterial,
}

impl MtlsClientConfig {
    /// The rustls config. With resumption enabled, call
    /// [`MtlsClientConfig::check_connection`] after every handshake.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The expected server IDs after alias expansion (empty when only an authorizer decides).
    pub fn expected_server_ids(&self) -> &[SpiffeId] {
        &self.expected
    }

    /// The material the config presents and verifies with.
    pub fn material(&self) -> &TlsMaterial {
        &self.material
    }

    pub(crate) fn policy(&self) -> &Arc<PeerPolicy> {
        &self.policy
    }

    /// Replaces the authorizer (the expected IDs stay in force when they were given).
    pub fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        if self.expected.is_empty() {
            self.policy.set_authorizer(authorizer);
        } else {
            self.policy.set_authorizer(authz::both(
                authz::one_of(self.expected.clone()),
                authorizer,
            ));
        }
    }

    /// A new client connection (see [`server_name_for`]). `server_name` goes into SNI only (a
    /// DNS name, e.g. Istio's `outbound_.8080_._.api.demo.svc.cluster.local`); `None` sends no
    /// SNI, which is fine for a sidecar: the inbound side does not match on SNI.
    pub fn connect(&self, server_name: Option<&str>) -> Result<ClientConnection, Error> {
        ClientConnection::new(self.rustls_config(), server_name_for(server_name)?)
            .map_err(config_error)
    }

    /// The authenticated server of a connection whose handshake completed; on a resumed
    /// session the stored chain is verified and authorized again (see
    /// [`MtlsServerConfig::check_connection`](super::MtlsServerConfig::check_connection)).
    pub fn check_connection(&self, conn: &ClientConnection) -> Result<Peer, Error> {
        check_connection(&self.policy, conn)
    }
}

/// The rustls [`ServerName`] for an optional SNI value, for use with async adapters such as
/// tokio-rustls: a DNS name is sent as SNI (never used for verification); `None` gives a
/// loopback IP address, for which rustls sends no SNI.
pub fn server_name_for(sni: Option<&str>) -> Result<ServerName<'static>, Error> {
    match sni {
        Some(text) => ServerName::try_from(text.to_owned()).map_err(|e| {
            TlsError::InvalidServerName {
                name: text.to_owned(),
                reason: format!(
                    "{e} (SNI must be a DNS name; Istio's `outbound|port||host` cluster names are not)"
                ),
            }
            .into()
        }),
        // rustls sends no SNI for an IP address; the address is not used for verification.
        None => Ok(ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into())),
    }
}
