//! The server side of Istio's CA protocol, with istiod's and istio-csr's rules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::net::TcpListener;

use super::grpc::{Code, CodeName as _};
use super::jwt::{JwtVerifier, PodClaim};
use super::messages::{IMPERSONATED_IDENTITY, IstioCertificateRequest, IstioCertificateResponse};
use super::token_cache::VerifiedTokens;
use crate::bundle::{BundleSet, TrustBundle};
use crate::ca::{DEFAULT_WORKLOAD_TTL, IssueParams, MAX_WORKLOAD_TTL, MeshCa};
use crate::error::{CaError, CaProtocolError, Error};
use crate::identity::{IstioIdentity, SpiffeId, TrustDomain};

/// The DNS names of the serving certificate by default: istiod's.
pub const DEFAULT_SERVING_DNS_NAMES: [&str; 3] = [
    "istiod.istio-system.svc",
    "istiod-remote.istio-system.svc",
    "istio-pilot.istio-system.svc",
];

/// The opaque message of an authentication failure (istiod's).
pub const AUTH_FAILURE: &str = "request authenticate failure";
/// The opaque message of a refused `ImpersonatedIdentity` (istiod's).
pub const IMPERSONATION_FAILURE: &str = "request impersonation authentication failure";
/// The opaque message of a request refused for its content (TTL, CSR).
pub const INVALID_REQUEST: &str = "invalid certificate request";

/// The shortest lifetime granted by default: 4 minutes. The CA back-dates NotBefore by
/// [`crate::ca::CLOCK_SKEW_GRACE`] (2 minutes, as istiod does) and agents (ztunnel, the Istio
/// agent) renew at NotBefore + half the lifetime, that is `ttl / 2 - 60 s` after issuance: at
/// 2 minutes and below they renew at once, in a loop. At 4 minutes the first renewal comes a
/// minute after issuance.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(240);

/// A node agent (ztunnel) trusted to ask for certificates of other identities
/// (`CA_TRUSTED_NODE_ACCOUNTS`). Without a pod informer, the configuration names which
/// identities it may request, or lets it request any identity of the trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAccount {
    /// The node agent's identity (`ns/sa` in the CA's trust domain).
    pub account: SpiffeId,
    /// The identities it may impersonate.
    pub may_impersonate: Vec<SpiffeId>,
    /// Whether it may impersonate any identity of the server's trust domain (istiod allows a
    /// trusted node account any service account with a pod on the caller's node; without
    /// an API server to ask, this trusts the node agent for all of them).
    pub any_identity: bool,
}

impl NodeAccount {
    /// A node agent that may impersonate exactly `may_impersonate`.
    pub fn new(account: SpiffeId, may_impersonate: Vec<SpiffeId>) -> NodeAccount {
        NodeAccount {
            account,
            may_impersonate,
            any_identity: false,
        }
    }

    /// A node agent that may impersonate any identity of the server's trust domain.
    pub fn any(account: SpiffeId) -> NodeAccount {
        NodeAccount {
            account,
            may_impersonate: Vec::new(),
            any_identity: true,
        }
    }

    fn allows(&self, wanted: &SpiffeId, trust_domain: &TrustDomain) -> bool {
        self.may_impersonate.iter().any(|i| i == wanted)
            || (self.any_identity && wanted.trust_domain() == *trust_domain)
    }
}

/// An account as istiod's `CA_TRUSTED_NODE_ACCOUNTS` names it, `namespace/serviceaccount`
/// (in `trust_domain`), or a full `spiffe://` ID.
pub fn parse_account(text: &str, trust_domain: &TrustDomain) -> Result<SpiffeId, Error> {
    if text.starts_with("spiffe://") {
        return Ok(SpiffeId::new(text)?);
    }
    let bad = || CaProtocolError::Config {
        what: "node account",
        value: text.to_owned(),
        rule: "expected namespace/serviceaccount or a spiffe:// id".to_owned(),
    };
    let (ns, sa) = text.split_once('/').ok_or_else(bad)?;
    if ns.is_empty() || sa.is_empty() || sa.contains('/') {
        return Err(bad().into());
    }
    Ok(trust_domain.id_with_path(&format!("/ns/{ns}/sa/{sa}"))?)
}

/// How the server authenticates and signs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The trust domain of issued identities; default the CA's own.
    pub trust_domain: Option<TrustDomain>,
    /// DNS names of the serving certificate (default [`DEFAULT_SERVING_DNS_NAMES`]).
    pub dns_names: Vec<String>,
    /// The service-account JWT rule; `None` accepts only client certificates. Replace it on a
    /// running server with [`IstioCaServer::set_jwt`] (a reloaded JWKS).
    pub jwt: Option<JwtVerifier>,
    /// istio-csr's strict CSR checks (the CSR's URI SANs must equal the caller's identity, no
    /// DNS/IP/e-mail SAN, no CommonName, only SAN/KeyUsage/ExtendedKeyUsage extensions).
    pub strict_csr: bool,
    /// The lifetime when a request asks for 0 or less (default 24 h).
    pub default_ttl: Duration,
    /// The longest lifetime granted; longer requests are refused (default 90 days).
    pub max_ttl: Duration,
    /// The shortest lifetime granted; shorter requests are refused (default
    /// [`DEFAULT_MIN_TTL`], so that no agent renews in a loop).
    pub min_ttl: Duration,
    /// Node agents allowed to use `ImpersonatedIdentity`.
    pub trusted_node_accounts: Vec<NodeAccount>,
    /// This server's cluster ID: a `clusterid` header naming another cluster is refused
    /// (default `Kubernetes`, istiod's).
    pub cluster_id: String,
    /// The rustls provider (default [`crate::tls::params::istio_provider`]).
    pub provider: Option<Arc<CryptoProvider>>,
    /// istiod's node authorization (feature `kube`): a trusted node account may impersonate
    /// an identity only when a pod of that service account runs on the caller's node, as a
    /// watch of the API server's pods says (see [`super::node_auth`]). With it, every trusted
    /// node account gets istiod's rule (it replaces [`NodeAccount::any_identity`]); an
    /// identity listed in [`NodeAccount::may_impersonate`] is granted in addition, without
    /// asking it.
    #[cfg(feature = "kube")]
    pub node_authorizer: Option<super::node_auth::NodeAuthorizer>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            trust_domain: None,
            dns_names: DEFAULT_SERVING_DNS_NAMES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            jwt: None,
            strict_csr: false,
            default_ttl: DEFAULT_WORKLOAD_TTL,
            max_ttl: MAX_WORKLOAD_TTL,
            min_ttl: DEFAULT_MIN_TTL,
            trusted_node_accounts: Vec::new(),
            cluster_id: "Kubernetes".to_owned(),
            provider: None,
            #[cfg(feature = "kube")]
            node_authorizer: None,
        }
    }
}

impl ServerConfig {
    /// Adds DNS names to the serving certificate's (istiod's by default), skipping ones
    /// already there.
    pub fn add_dns_names(&mut self, names: impl IntoIterator<Item = String>) {
        for n in names {
            if !self.dns_names.contains(&n) {
                self.dns_names.push(n);
            }
        }
    }
}

/// What the transport knows about one call.
#[derive(Debug, Clone, Default)]
pub struct CallContext<'a> {
    /// The TLS client certificate chain, leaf first (empty without one).
    pub peer_chain: &'a [CertificateDer<'static>],
    /// The `authorization` metadata value.
    pub authorization: Option<&'a str>,
    /// The `clusterid` metadata value.
    pub cluster_id: Option<&'a str>,
}

/// A refused call: the gRPC code, the opaque message for the caller, the full reason for the
/// log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The gRPC code's name (`UNAUTHENTICATED`, `INVALID_ARGUMENT`, `INTERNAL`).
    pub code: &'static str,
    /// What the caller is told.
    pub message: &'static str,
    /// Why, for the server's log.
    pub reason: String,
    grpc: Code,
}

impl Refusal {
    fn new(grpc: Code, message: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            code: grpc.name(),
            message,
            reason: reason.into(),
            grpc,
        }
    }
    fn unauthenticated(reason: impl Into<String>) -> Self {
        Refusal::new(Code::Unauthenticated, AUTH_FAILURE, reason)
    }
    pub(crate) fn grpc_code(&self) -> Code {
        self.grpc
    }
}

struct Inner {
    ca: Arc<MeshCa>,
    config: ServerConfig,
    trust_domain: TrustDomain,
    bundles: BundleSet,
    /// The issuer keys in use with their verified-token cache (see [`super::token_cache`]);
    /// replaced as a whole, so a cache never outlives its keys.
    jwt: std::sync::RwLock<Option<Arc<VerifiedTokens>>>,
    /// The CA's chain after the leaf (signing certificate up to the root), DER with its PEM
    /// entry, encoded once: every answer ends with it.
    tail_pem: Vec<(CertificateDer<'static>, String)>,
}

/// Serves `IstioCertificateService` from a [`MeshCa`].
///
/// Build it with [`IstioCaServer::new`], answer calls directly with
/// [`IstioCaServer::create_certificate`] (no network), or serve over TLS with
/// [`IstioCaServer::serve`] / [`IstioCaServer::start`].
#[derive(Clone)]
pub struct IstioCaServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IstioCaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstioCaServer")
            .field("trust_domain", &self.inner.trust_domain.as_str())
            .field("strict_csr", &self.inner.config.strict_csr)
            .field("jwt", &self.jwt_state().is_some())
            .finish()
    }
}

fn pem_entry(der: &CertificateDer<'_>) -> String {
    let mut pem = crate::x509::pem::pem("CERTIFICATE", der.as_ref());
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    pem
}

/// The PEM entries of `chain` (leaf first); the entries after the leaf come from `tail` (the
/// CA's chain encoded once) when they are the same certificates, as they always are for a
/// chain this server's CA signed.
fn chain_pem(
    chain: &[CertificateDer<'_>],
    tail: &[(CertificateDer<'static>, String)],
) -> Vec<String> {
    let (leaf, rest) = match chain.split_first() {
        Some(split) => split,
        None => return Vec::new(),
    };
    let mut out = Vec::with_capacity(chain.len());
    out.push(pem_entry(leaf));
    if rest.len() == tail.len() && rest.iter().zip(tail).all(|(a, (b, _))| a == b) {
        out.extend(tail.iter().map(|(_, pem)| pem.clone()));
    } else {
        out.extend(rest.iter().map(pem_entry));
    }
    out
}

impl IstioCaServer {
    /// A server for `ca` with `config`. The trust domain is `config.trust_domain` or the CA's.
    pub fn new(ca: Arc<MeshCa>, config: ServerConfig) -> Result<IstioCaServer, Error> {
        let trust_domain = config
            .trust_domain
            .clone()
            .unwrap_or_else(|| ca.trust_domain().clone());
        if config.max_ttl > MAX_WORKLOAD_TTL
            || config.default_ttl > config.max_ttl
            || config.min_ttl > config.default_ttl
        {
            return Err(CaProtocolError::Config {
                what: "ttl",
                value: format!(
                    "min {}s, default {}s, max {}s",
                    config.min_ttl.as_secs(),
                    config.default_ttl.as_secs(),
                    config.max_ttl.as_secs()
                ),
                rule: format!(
                    "need min <= default <= max <= {}s",
                    MAX_WORKLOAD_TTL.as_secs()
                ),
            }
            .into());
        }
        let bundles = BundleSet::from_bundles([TrustBundle::new(
            trust_domain.clone(),
            ca.root_certs_der().to_vec(),
        )?])?;
        let jwt = config.jwt.clone().map(|v| Arc::new(VerifiedTokens::new(v)));
        let tail_pem = ca
            .cert_chain_der()
            .iter()
            .map(|der| (der.clone(), pem_entry(der)))
            .collect();
        Ok(IstioCaServer {
            inner: Arc::new(Inner {
                ca,
                config,
                trust_domain,
                bundles,
                jwt: std::sync::RwLock::new(jwt),
                tail_pem,
            }),
        })
    }

    fn jwt_state(&self) -> Option<Arc<VerifiedTokens>> {
        match self.inner.jwt.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the service-account JWT rule of this server and every clone of it (running
    /// ones included), e.g. after the issuer's JWKS was reloaded; `None` accepts client
    /// certificates only. Tokens verified against the old keys are forgotten: the next
    /// request with any token is verified against the new keys.
    pub fn set_jwt(&self, jwt: Option<JwtVerifier>) {
        let fresh = jwt.map(|v| Arc::new(VerifiedTokens::new(v)));
        match self.inner.jwt.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// The number of issuer keys in use (0 without a JWT rule).
    pub fn jwt_key_count(&self) -> usize {
        self.jwt_state().map_or(0, |s| s.verifier().key_count())
    }

    /// The trust domain of issued identities.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.inner.trust_domain
    }

    /// Authenticates the caller as istiod does, in order: a client certificate of this trust
    /// domain (its URI SAN), then the bearer token against the JWT rule.
    ///
    /// A token that verified is remembered (by its SHA-256) for at most five minutes, with
    /// `exp`/`nbf` re-checked on every use, so the answer is the one a fresh verification
    /// gives; see [`crate::ca_protocol::token_cache`].
    pub fn authenticate(&self, ctx: &CallContext<'_>) -> Result<SpiffeId, Refusal> {
        self.authenticate_at(ctx, SystemTime::now())
    }

    pub(crate) fn authenticate_at(
        &self,
        ctx: &CallContext<'_>,
        now: SystemTime,
    ) -> Result<SpiffeId, Refusal> {
        self.authenticate_caller_at(ctx, now).map(|(id, _)| id)
    }

    /// [`IstioCaServer::authenticate_at`], also returning the pod a bound token names (none
    /// for a client certificate).
    fn authenticate_caller_at(
        &self,
        ctx: &CallContext<'_>,
        now: SystemTime,
    ) -> Result<(SpiffeId, Option<PodClaim>), Refusal> {
        let inner = &self.inner;
        let mut reasons = Vec::new();
        if !ctx.peer_chain.is_empty() {
            match crate::svid::verify_svid(ctx.peer_chain, &inner.bundles, UnixTime::now()) {
                Ok(v) if v.spiffe_id().trust_domain() == inner.trust_domain => {
                    return Ok((v.spiffe_id().clone(), None));
                }
                Ok(v) => reasons.push(format!(
                    "client certificate {} is not of trust domain {}",
                    v.spiffe_id(),
                    inner.trust_domain
                )),
                Err(e) => reasons.push(format!("client certificate: {e}")),
            }
        }
        match (ctx.authorization, self.jwt_state()) {
            (None, _) => reasons.push("no bearer token".to_owned()),
            (Some(_), None) => {
                reasons.push("bearer token given but no jwt rule configured".to_owned())
            }
            (Some(value), Some(verifier)) => {
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "));
                match token {
                    None => reasons.push("authorization is not a bearer token".to_owned()),
                    Some(token) => {
                        if let Some(cluster) = ctx.cluster_id.filter(|c| !c.is_empty()) {
                            if cluster != inner.config.cluster_id {
                                return Err(Refusal::unauthenticated(format!(
                                    "client claims to be in cluster {cluster:?}, this server only knows {:?}",
                                    inner.config.cluster_id
                                )));
                            }
                        }
                        match verifier.verify_caller(token.trim(), &inner.trust_domain, now) {
                            Ok(caller) => return Ok(caller),
                            Err(e) => reasons.push(e.to_string()),
                        }
                    }
                }
            }
        }
        Err(Refusal::unauthenticated(reasons.join("; ")))
    }

    /// Answers one `CreateCertificate` call (authentication, impersonation, TTL, CSR rules,
    /// signing). Never panics on any input.
    pub fn create_certificate(
        &self,
        ctx: &CallContext<'_>,
        request: &IstioCertificateRequest,
    ) -> Result<IstioCertificateResponse, Refusal> {
        self.answer(ctx, request).map(|(_, _, resp)| resp)
    }

    /// [`IstioCaServer::create_certificate`], also returning the identity signed and the TTL.
    pub(crate) fn answer(
        &self,
        ctx: &CallContext<'_>,
        request: &IstioCertificateRequest,
    ) -> Result<(SpiffeId, Duration, IstioCertificateResponse), Refusal> {
        let inner = &self.inner;
        let (caller, pod) = self.authenticate_caller_at(ctx, SystemTime::now())?;
        let identity = match request.metadata_string(IMPERSONATED_IDENTITY) {
            None => caller.clone(),
            Some(wanted) => {
                let refuse = |why: String| {
                    Refusal::new(
                        Code::Unauthenticated,
                        IMPERSONATION_FAILURE,
                        format!("impersonation failed for identity {wanted:?}: {why}"),
                    )
                };
                let accounts = &inner.config.trusted_node_accounts;
                if accounts.is_empty() {
                    return Err(refuse(format!(
                        "{caller} asked, and no trusted node accounts are configured"
                    )));
                }
                let wanted_id = SpiffeId::new(wanted)
                    .map_err(|e| refuse(format!("{caller} asked for a bad identity: {e}")))?;
                let of_caller: Vec<&NodeAccount> =
                    accounts.iter().filter(|n| n.account == caller).collect();
                if of_caller.is_empty() {
                    return Err(refuse(format!("{caller} is not a trusted node account")));
                }
                if !of_caller
                    .iter()
                    .any(|n| n.may_impersonate.contains(&wanted_id))
                {
                    self.authorize_node(&of_caller, &caller, pod.as_ref(), &wanted_id)
                        .map_err(refuse)?;
                }
                wanted_id
            }
        };
        if IstioIdentity::from_spiffe_id(&identity).is_err() && ctx.peer_chain.is_empty() {
            return Err(Refusal::unauthenticated(format!(
                "{identity} is not an istio identity"
            )));
        }
        let ttl = if request.validity_duration <= 0 {
            inner.config.default_ttl
        } else {
            let asked = Duration::from_secs(request.validity_duration.unsigned_abs());
            if asked > inner.config.max_ttl {
                return Err(Refusal::new(
                    Code::InvalidArgument,
                    INVALID_REQUEST,
                    format!(
                        "{identity}: requested ttl {}s is greater than the max allowed ttl {}s",
                        asked.as_secs(),
                        inner.config.max_ttl.as_secs()
                    ),
                ));
            }
            if asked < inner.config.min_ttl {
                return Err(Refusal::new(
                    Code::InvalidArgument,
                    INVALID_REQUEST,
                    format!(
                        "{identity}: requested ttl {}s is less than the min allowed ttl {}s \
                         (agents renew at notBefore + half the lifetime and notBefore is \
                         back-dated by {}s: a shorter ttl makes them renew in a loop)",
                        asked.as_secs(),
                        inner.config.min_ttl.as_secs(),
                        crate::ca::CLOCK_SKEW_GRACE.as_secs()
                    ),
                ));
            }
            asked
        };
        if inner.config.strict_csr {
            check_strict_csr(&request.csr, &identity).map_err(|reason| {
                Refusal::new(
                    Code::InvalidArgument,
                    INVALID_REQUEST,
                    format!("{identity}: {reason}"),
                )
            })?;
        }
        let issued = inner
            .ca
            .sign_csr(&request.csr, &identity, ttl)
            .map_err(|e| {
                let code = match &e {
                    Error::Ca(
                        CaError::Csr { .. }
                        | CaError::UnsupportedKey { .. }
                        | CaError::InvalidTtl { .. }
                        | CaError::IdentityWithoutPath { .. },
                    ) => Code::InvalidArgument,
                    _ => Code::Internal,
                };
                let msg = if code == Code::InvalidArgument {
                    INVALID_REQUEST
                } else {
                    "certificate signing failed"
                };
                Refusal::new(code, msg, format!("{identity}: {e}"))
            })?;
        let cert_chain = chain_pem(issued.cert_chain_der(), &inner.tail_pem);
        Ok((identity, ttl, IstioCertificateResponse { cert_chain }))
    }

    /// The decision for a trusted node account asking for an identity it does not list: the
    /// node authorizer's when there is one, else [`NodeAccount::any_identity`].
    fn authorize_node(
        &self,
        accounts: &[&NodeAccount],
        caller: &SpiffeId,
        pod: Option<&PodClaim>,
        wanted: &SpiffeId,
    ) -> Result<(), String> {
        let inner = &self.inner;
        let _ = pod;
        if wanted.trust_domain() != inner.trust_domain {
            return Err(format!(
                "trusted node account {caller} may not impersonate {wanted}: not of trust \
                 domain {}",
                inner.trust_domain
            ));
        }
        #[cfg(feature = "kube")]
        if let Some(nodes) = &inner.config.node_authorizer {
            let caller = IstioIdentity::from_spiffe_id(caller)
                .map_err(|e| format!("caller {caller} is not an istio identity: {e}"))?;
            return nodes.authorize(&caller, pod, wanted);
        }
        if accounts
            .iter()
            .any(|n| n.allows(wanted, &inner.trust_domain))
        {
            Ok(())
        } else {
            Err(format!(
                "trusted node account {caller} may not impersonate {wanted}"
            ))
        }
    }

    /// The rustls config of the serving side: TLS 1.2/1.3, ALPN `h2`, a serving certificate
    /// issued now by the CA for the configured DNS names, client certificates optional and
    /// verified against the CA's roots.
    fn rustls_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let inner = &self.inner;
        let provider = inner
            .config
            .provider
            .clone()
            .unwrap_or_else(crate::tls::params::istio_provider);
        let tls_err = |e: String| CaProtocolError::Config {
            what: "tls",
            value: "server".to_owned(),
            rule: e,
        };
        let mut roots = rustls::RootCertStore::empty();
        for r in inner.ca.root_certs_der() {
            roots.add(r.clone()).map_err(|e| tls_err(e.to_string()))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_err(e.to_string()))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| tls_err(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(ServingCert::new(self.clone(), provider.clone())?));
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Serves on `listener` until `shutdown` completes, with tonic's server over TLS
    /// connections accepted with this server's rustls config. TLS handshakes run concurrently
    /// with a 10 s limit; a failed handshake or a bad request never stops the server. On
    /// shutdown the listener is closed at once, every connection gets HTTP/2's GOAWAY, and the
    /// calls in flight have one second to finish.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> Result<(), Error>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let tls = self.rustls_config()?;
        super::service::serve(self, tls, listener, shutdown).await
    }

    /// Binds `listen` and serves on a background thread with its own runtime (for code
    /// without one: the CLI, Python, tests). Stop it with [`RunningServer::stop`] or by
    /// dropping it.
    pub fn start(self, listen: SocketAddr) -> Result<RunningServer, Error> {
        let config_err = move |what: &'static str, e: std::io::Error| CaProtocolError::Config {
            what,
            value: listen.to_string(),
            rule: e.to_string(),
        };
        let std_listener =
            std::net::TcpListener::bind(listen).map_err(|e| config_err("listen address", e))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| config_err("listen address", e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| config_err("listen address", e))?;
        // Build the TLS config now so that configuration errors surface here.
        self.rustls_config()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), Error>>();
        let thread = std::thread::Builder::new()
            .name("meshtls-ca-server".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("meshtls-ca-srv")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(config_err("runtime", e).into()));
                        return;
                    }
                };
                let result = rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener)
                        .map_err(|e| Error::from(config_err("listen address", e)))?;
                    let _ = ready_tx.send(Ok(()));
                    self.serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await
                });
                if let Err(e) = result {
                    log::error!("ca server on {addr} stopped: {e}");
                }
            })
            .map_err(|e| config_err("server thread", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(CaProtocolError::Config {
                    what: "server thread",
                    value: listen.to_string(),
                    rule: "stopped before serving".to_owned(),
                }
                .into());
            }
        }
        Ok(RunningServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The serving certificate: issued by the CA for istiod's names, re-issued once half of its
/// lifetime has passed (Istio's rotation rule), so a long-running server never presents an
/// expired certificate.
struct ServingCert {
    server: IstioCaServer,
    provider: Arc<CryptoProvider>,
    current: std::sync::RwLock<(Arc<rustls::sign::CertifiedKey>, SystemTime)>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServingCert")
    }
}

const SERVING_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl ServingCert {
    fn new(server: IstioCaServer, provider: Arc<CryptoProvider>) -> Result<Self, Error> {
        let first = Self::issue(&server, &provider)?;
        Ok(ServingCert {
            server,
            provider,
            current: std::sync::RwLock::new(first),
        })
    }

    fn issue(
        server: &IstioCaServer,
        provider: &Arc<CryptoProvider>,
    ) -> Result<(Arc<rustls::sign::CertifiedKey>, SystemTime), Error> {
        let inner = &server.inner;
        let serving_id = inner
            .trust_domain
            .id_with_path("/ns/istio-system/sa/istiod")?;
        let svid = inner.ca.issue(
            &serving_id,
            &IssueParams {
                ttl: SERVING_TTL.min(inner.config.max_ttl),
                dns_names: inner.config.dns_names.clone(),
                ..Default::default()
            },
        )?;
        let key = provider
            .key_provider
            .load_private_key(svid.private_key_der())
            .map_err(|e| CaProtocolError::Config {
                what: "serving key",
                value: serving_id.to_string(),
                rule: e.to_string(),
            })?;
        let certified = rustls::sign::CertifiedKey::new(svid.cert_chain_der().to_vec(), key);
        let renew_at = svid.rotation_time(&crate::svid::own::RotationPolicy::default());
        Ok((Arc::new(certified), renew_at))
    }
}

impl rustls::server::ResolvesServerCert for ServingCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let (key, renew_at) = self.current.read().ok()?.clone();
        if SystemTime::now() < renew_at {
            return Some(key);
        }
        match Self::issue(&self.server, &self.provider) {
            Ok(fresh) => {
                let key = fresh.0.clone();
                if let Ok(mut slot) = self.current.write() {
                    *slot = fresh;
                }
                Some(key)
            }
            Err(e) => {
                log::error!("ca server: cannot re-issue the serving certificate: {e}");
                Some(key)
            }
        }
    }
}

/// A server started with [`IstioCaServer::start`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (with the actual port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops serving and waits for the server thread.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// istio-csr's CSR rules: only the caller's URI SAN, no other names, no CommonName, only the
/// SAN/KeyUsage/ExtendedKeyUsage extensions with Istio's values.
fn check_strict_csr(pem: &str, identity: &SpiffeId) -> Result<(), String> {
    use crate::x509::cert::{parse_eku, parse_ku, parse_san};
    use crate::x509::der::{oid, tag};
    use rustls_pki_types::pem::PemObject as _;
    let der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("no pem certificate request ({e})"))?;
    let requested = crate::ca::csr::requested(der.as_ref())?;
    if requested.common_name {
        return Err("the request carries a common name".to_owned());
    }
    let mut uris: Vec<String> = Vec::new();
    for (id, value) in &requested.extensions {
        match *id {
            oid::SUBJECT_ALT_NAME => {
                let san = parse_san(value, false)?;
                if let Some(d) = san.dns_names().next() {
                    let d = String::from_utf8_lossy(d);
                    return Err(format!("the request asks for dns name {d:?}"));
                }
                if san.ip_addresses().next().is_some() {
                    return Err("the request asks for an ip address".to_owned());
                }
                let mut names = crate::x509::der::Reader::new(value);
                let mut list = crate::x509::der::Reader::new(
                    names.read(tag::SEQUENCE).map_err(|e| e.to_string())?,
                );
                while let Ok((t, v, _)) = list.read_any() {
                    match t {
                        tag::CONTEXT_PRIM_6 => uris.push(String::from_utf8_lossy(v).into_owned()),
                        0x81 => {
                            let e = String::from_utf8_lossy(v);
                            return Err(format!("the request asks for e-mail address {e:?}"));
                        }
                        _ => return Err("the request asks for an unsupported name type".to_owned()),
                    }
                }
            }
            oid::KEY_USAGE => {
                // digitalSignature (0x8000) and keyEncipherment (0x2000) only.
                if parse_ku(value)? & !0xa000 != 0 {
                    return Err("key usage beyond digitalSignature and keyEncipherment".to_owned());
                }
            }
            oid::EXT_KEY_USAGE => {
                let eku = parse_eku(value)?;
                if eku
                    .names()
                    .iter()
                    .any(|n| n != "serverAuth" && n != "clientAuth")
                {
                    return Err("extended key usage beyond serverAuth and clientAuth".to_owned());
                }
            }
            _ => {
                return Err(
                    "the request carries an extension other than san, key usage and extended key usage"
                        .to_owned(),
                );
            }
        }
    }
    if uris != [identity.as_str()] {
        return Err(format!(
            "the request's uri sans {uris:?} are not exactly [{identity}]"
        ));
    }
    Ok(())
}
