//! The client of Istio's CA protocol, as istio-agent and ztunnel are.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use zeroize::Zeroizing;

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use super::grpc::{Code, CodeName as _};
use super::messages::{IstioCertificateRequest, IstioCertificateResponse};
use super::transport::CaChannel;
use crate::bundle::{BundleSet, TrustBundle};
use crate::ca::KeyKind;
use crate::error::{CaProtocolError, Error};
use crate::identity::SpiffeId;
use crate::svid::own::{RotationPolicy, Svid};
use crate::svid::request::{Csr, CsrParams};
use crate::tls::TlsMaterial;

/// istiod's address inside a cluster (`defaultConfig.discoveryAddress`).
pub const DEFAULT_ADDRESS: &str = "istiod.istio-system.svc:15012";
/// Where pods find the mesh root (the `istio-ca-root-cert` ConfigMap, key `root-cert.pem`).
pub const DEFAULT_ROOT_CERT_PATH: &str = "/var/run/secrets/istio/root-cert.pem";
/// Where pods find their projected service-account token (audience `istio-ca`).
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/tokens/istio-token";
/// The server name checked when the address host contains `localhost` (port-forwarding).
pub const LOCALHOST_SERVER_NAME: &str = "istiod.istio-system.svc";

/// Where the bearer token comes from.
#[derive(Clone, Default)]
pub enum TokenSource {
    /// No token: only renewal by client certificate works.
    #[default]
    None,
    /// A fixed token.
    Fixed(Zeroizing<String>),
    /// A file re-read for every request (projected tokens are rotated on disk).
    File(PathBuf),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::None => f.write_str("None"),
            TokenSource::Fixed(_) => f.write_str("Fixed(<redacted>)"),
            TokenSource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl TokenSource {
    fn read(&self) -> Result<Option<Zeroizing<String>>, Error> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Fixed(t) => Ok(Some(t.clone())),
            TokenSource::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| Error::io("read", path, &e))?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(CaProtocolError::Config {
                        what: "token file",
                        value: path.display().to_string(),
                        rule: "is empty".to_owned(),
                    }
                    .into());
                }
                Ok(Some(Zeroizing::new(token.to_owned())))
            }
        }
    }
}

/// How to reach and trust the CA server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `host:port` (default [`DEFAULT_ADDRESS`]).
    pub address: String,
    /// The mesh root(s), PEM: the server's certificate must chain to one of them.
    pub root_cert_pem: String,
    /// The name checked on the server's certificate; default by Istio's rule
    /// ([`server_name_for_address`]). Istio's `ISTIOD_SAN`.
    pub server_name: Option<String>,
    /// The bearer token (default none).
    pub token: TokenSource,
    /// The `clusterid` metadata (default none: the server's own cluster).
    pub cluster_id: Option<String>,
    /// Extra metadata sent with every request (lower-case ASCII keys).
    pub headers: Vec<(String, String)>,
    /// Dial, handshake and request timeout (default 10 s).
    pub timeout: Duration,
    /// The rustls provider (default [`crate::tls::params::istio_provider`]).
    pub provider: Option<Arc<CryptoProvider>>,
}

impl ClientConfig {
    /// A configuration for istiod's default address trusting `root_cert_pem`.
    pub fn new(root_cert_pem: impl Into<String>) -> Self {
        ClientConfig {
            address: DEFAULT_ADDRESS.to_owned(),
            root_cert_pem: root_cert_pem.into(),
            server_name: None,
            token: TokenSource::None,
            cluster_id: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            provider: None,
        }
    }
}

/// When and how [`IstioCaClient::keep_fresh`] renews.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshParams {
    /// Lifetime asked for (default 24 h).
    pub ttl: Duration,
    /// Key kind of each new key (default `ec-p256`).
    pub key: KeyKind,
    /// Istio's rotation rule (default: half the lifetime, jitter 0.01).
    pub policy: RotationPolicy,
    /// First wait after an `UNAVAILABLE` or unreachable server (default 1 s), doubled each try.
    pub initial_backoff: Duration,
    /// The largest wait between tries (default 5 min).
    pub max_backoff: Duration,
    /// Give up (return the error) after this many failures in a row (default never).
    pub max_failures: Option<u32>,
}

impl Default for RefreshParams {
    fn default() -> Self {
        RefreshParams {
            ttl: crate::ca::DEFAULT_WORKLOAD_TTL,
            key: KeyKind::EcP256,
            policy: RotationPolicy::default(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_failures: None,
        }
    }
}

/// Splits `host:port` (IPv6 in brackets) and returns the host.
fn host_of(address: &str) -> Result<&str, CaProtocolError> {
    let bad = |rule: &str| CaProtocolError::Config {
        what: "address",
        value: address.to_owned(),
        rule: rule.to_owned(),
    };
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| bad("expected [ipv6]:port"))?;
        (h, p)
    } else {
        address
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port"))?
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad("expected host:port with a port from 1 to 65535"));
    }
    Ok(host)
}

/// Istio's server-name rule: the host part of the address, `istiod.istio-system.svc` when it
/// contains `localhost`; an explicit override wins.
///
/// ```
/// use meshtls::ca_protocol::server_name_for_address;
/// assert_eq!(server_name_for_address("istiod.istio-system.svc:15012", None)?, "istiod.istio-system.svc");
/// assert_eq!(server_name_for_address("localhost:15012", None)?, "istiod.istio-system.svc");
/// assert_eq!(server_name_for_address("10.0.0.1:15012", Some("istiod.prod.svc"))?, "istiod.prod.svc");
/// # Ok::<(), meshtls::error::CaProtocolError>(())
/// ```
pub fn server_name_for_address(
    address: &str,
    override_name: Option<&str>,
) -> Result<String, CaProtocolError> {
    let host = host_of(address)?;
    Ok(match override_name {
        Some(n) => n.to_owned(),
        None if host.contains("localhost") => LOCALHOST_SERVER_NAME.to_owned(),
        None => host.to_owned(),
    })
}

/// A gRPC status from the server as an error (the code by gRPC's name).
pub(crate) fn status_error(status: &tonic::Status) -> CaProtocolError {
    if status.code() == Code::Unauthenticated {
        CaProtocolError::Unauthenticated {
            message: status.message().to_owned(),
        }
    } else {
        CaProtocolError::Status {
            code: status.code().name().to_owned(),
            message: status.message().to_owned(),
        }
    }
}

/// `key` as the name of an ASCII custom metadata entry, if gRPC allows it: 1 or more of
/// `0-9 a-z _ - .`, not ending in `-bin` (binary entries) and not starting with `grpc-`
/// (reserved). tonic checks only HTTP's header-name rules.
fn metadata_key(key: &str) -> Option<AsciiMetadataKey> {
    let allowed = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"_-.".contains(&b))
        && !key.ends_with("-bin")
        && !key.starts_with("grpc-");
    allowed
        .then(|| AsciiMetadataKey::from_bytes(key.as_bytes()).ok())
        .flatten()
}

/// `value` as an ASCII metadata value, if gRPC allows it: printable ASCII and space only
/// (tonic also lets a tab through).
fn metadata_value(value: &str) -> Option<AsciiMetadataValue> {
    value
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b))
        .then(|| AsciiMetadataValue::try_from(value).ok())
        .flatten()
}

/// Whether a failure is worth retrying with backoff: the server unreachable or `UNAVAILABLE`.
pub(crate) fn is_retriable(err: &Error) -> bool {
    matches!(err, Error::CaProtocol(CaProtocolError::Unreachable { .. }))
        || matches!(err, Error::CaProtocol(CaProtocolError::Status { code, .. }) if code == "UNAVAILABLE")
}

/// A client of Istio's `IstioCertificateService`.
///
/// Cheap to share (`Send + Sync`); every call dials its own TLS connection, so a token file
/// and a renewed client certificate are always current.
#[derive(Debug)]
pub struct IstioCaClient {
    config: ClientConfig,
    roots: Vec<CertificateDer<'static>>,
    server_name: ServerName<'static>,
    provider: Arc<CryptoProvider>,
    token_tls: Arc<rustls::ClientConfig>,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    channel: tokio::sync::Mutex<Option<CaChannel>>,
    blocking: std::sync::OnceLock<BlockingRuntime>,
}

/// The runtime of the `_blocking` methods, created on first use; dropping it never blocks.
#[derive(Debug)]
struct BlockingRuntime(Option<tokio::runtime::Runtime>);

impl Drop for BlockingRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn config_error(what: &'static str, value: &str, rule: impl Into<String>) -> Error {
    CaProtocolError::Config {
        what,
        value: value.to_owned(),
        rule: rule.into(),
    }
    .into()
}

impl IstioCaClient {
    /// Checks the configuration (address, server name, roots, headers) and builds the client.
    pub fn new(config: ClientConfig) -> Result<IstioCaClient, Error> {
        let name = server_name_for_address(&config.address, config.server_name.as_deref())?;
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| config_error("server name", &name, "not a dns name or ip address"))?;
        let roots = crate::svid::parse_pem_chain(&config.root_cert_pem)
            .map_err(|e| config_error("mesh root", "root_cert_pem", e.to_string()))?;
        let provider = config
            .provider
            .clone()
            .unwrap_or_else(crate::tls::params::istio_provider);
        // The metadata of every call besides the token: `clusterid` first, then the extra
        // headers (which may replace it).
        let mut headers = Vec::new();
        if let Some(id) = &config.cluster_id {
            let value = metadata_value(id)
                .ok_or_else(|| config_error("cluster id", id, "not visible ascii"))?;
            headers.push((AsciiMetadataKey::from_static("clusterid"), value));
        }
        for (k, v) in &config.headers {
            let key = metadata_key(&k.to_ascii_lowercase()).ok_or_else(|| {
                config_error(
                    "header name",
                    k,
                    "not a metadata key (0-9 a-z _ - ., not ending in -bin, not grpc-)",
                )
            })?;
            let value = metadata_value(v)
                .ok_or_else(|| config_error("header value", v, "not visible ascii"))?;
            headers.push((key, value));
        }
        let token_tls = build_tls(&roots, &provider, None)?;
        Ok(IstioCaClient {
            config,
            roots,
            server_name,
            provider,
            token_tls,
            headers,
            channel: tokio::sync::Mutex::new(None),
            blocking: std::sync::OnceLock::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The name checked on the server's certificate.
    pub fn server_name(&self) -> String {
        self.server_name.to_str().into_owned()
    }

    fn tls_config(&self, client_auth: Option<&Svid>) -> Result<Arc<rustls::ClientConfig>, Error> {
        build_tls(&self.roots, &self.provider, client_auth)
    }

    /// The channel of a call: the kept one for token calls (tonic dials it again when the
    /// server closed the connection), a new one for each renewal by client certificate.
    /// Also tells whether the channel was kept from an earlier call.
    async fn channel(
        &self,
        tls: Arc<rustls::ClientConfig>,
        reuse: bool,
    ) -> Result<(CaChannel, bool), Error> {
        let mut cached = self.channel.lock().await;
        if reuse {
            if let Some(c) = cached.as_ref() {
                return Ok((c.clone(), true));
            }
        }
        let address = &self.config.address;
        let timeout = self.config.timeout;
        let channel = tokio::time::timeout(
            timeout,
            CaChannel::connect(address, &self.server_name, tls, timeout),
        )
        .await
        .map_err(|_| CaProtocolError::Unreachable {
            address: address.clone(),
            reason: format!("no connection within {timeout:?}"),
        })??;
        if reuse {
            *cached = Some(channel.clone());
        }
        Ok((channel, false))
    }

    async fn call(
        &self,
        request: IstioCertificateRequest,
        client_auth: Option<&Svid>,
    ) -> Result<IstioCertificateResponse, Error> {
        let (tls, token, reuse) = match client_auth {
            Some(svid) => (self.tls_config(Some(svid))?, None, false),
            None => (self.token_tls.clone(), self.config.token.read()?, true),
        };
        let (channel, kept) = self.channel(tls.clone(), reuse).await?;
        let mut meta = MetadataMap::with_capacity(1 + self.headers.len());
        if let Some(token) = token {
            let value = metadata_value(&format!("Bearer {}", token.as_str()))
                .ok_or_else(|| config_error("token", "<redacted>", "not visible ascii"))?;
            meta.insert("authorization", value);
        }
        for (k, v) in &self.headers {
            meta.insert(k.clone(), v.clone());
        }
        let mut result = self.send(&channel, meta.clone(), request.clone()).await;
        if let Err(CaProtocolError::Unreachable { .. } | CaProtocolError::Tls { .. }) = &result {
            if reuse {
                // A broken kept connection must not be reused.
                *self.channel.lock().await = None;
                if kept {
                    // The server may have closed the kept connection since the last call (a
                    // restart, an idle timeout): one new connection, one more try (signing a
                    // CSR twice changes nothing on the server).
                    let (channel, _) = self.channel(tls, true).await?;
                    result = self.send(&channel, meta, request).await;
                }
            }
        }
        Ok(result?)
    }

    /// One call on `channel` within the configured timeout.
    async fn send(
        &self,
        channel: &CaChannel,
        meta: MetadataMap,
        request: IstioCertificateRequest,
    ) -> Result<IstioCertificateResponse, CaProtocolError> {
        let timeout = self.config.timeout;
        tokio::time::timeout(timeout, channel.create_certificate(meta, request))
            .await
            .unwrap_or_else(|_| {
                Err(CaProtocolError::Unreachable {
                    address: self.config.address.clone(),
                    reason: format!("no answer within {timeout:?}"),
                })
            })
    }

    /// Sends one raw `CreateCertificate` request, authenticated with the token (the
    /// connection is kept for the next call), and returns the server's answer unchecked: for
    /// requests with metadata (`ImpersonatedIdentity`) or for load tests. Check the answer
    /// with [`check_response`].
    pub async fn create_certificate(
        &self,
        request: IstioCertificateRequest,
    ) -> Result<IstioCertificateResponse, Error> {
        self.call(request, None).await
    }

    fn request_for(csr: &Csr, ttl: Duration) -> IstioCertificateRequest {
        IstioCertificateRequest {
            csr: csr.pem(),
            validity_duration: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            metadata: None,
        }
    }

    /// Generates a key of `key` kind, asks the server for a certificate for `id` valid `ttl`,
    /// authenticated with the token, and returns the checked [`Svid`] (see
    /// [`check_response`]).
    pub async fn fetch_svid(
        &self,
        id: &SpiffeId,
        ttl: Duration,
        key: KeyKind,
    ) -> Result<Svid, Error> {
        let csr = Csr::new(id, &CsrParams::with_key(key))?;
        let response = self.call(Self::request_for(&csr, ttl), None).await?;
        check_response(csr, &response, &self.roots, SystemTime::now())
    }

    /// Renews `current` while it is still valid, authenticating with it as the TLS client
    /// certificate (no token is sent). The new SVID has a new key of `key` kind.
    pub async fn renew(&self, current: &Svid, ttl: Duration, key: KeyKind) -> Result<Svid, Error> {
        let csr = Csr::new(current.spiffe_id(), &CsrParams::with_key(key))?;
        let response = self
            .call(Self::request_for(&csr, ttl), Some(current))
            .await?;
        check_response(csr, &response, &self.roots, SystemTime::now())
    }

    fn block_on<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let no_runtime = |reason: String| CaProtocolError::Config {
            what: "runtime",
            value: String::new(),
            rule: reason,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(no_runtime(
                "a _blocking method was called from async code: await the async method instead"
                    .to_owned(),
            )
            .into());
        }
        if self.blocking.get().is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("meshtls-ca-client")
                .enable_all()
                .build()
                .map_err(|e| no_runtime(format!("cannot start an i/o runtime ({e})")))?;
            let _ = self.blocking.set(BlockingRuntime(Some(rt)));
        }
        let rt = self
            .blocking
            .get()
            .and_then(|r| r.0.as_ref())
            .ok_or_else(|| no_runtime("the i/o runtime is gone".to_owned()))?;
        rt.block_on(f)
    }

    /// [`IstioCaClient::fetch_svid`] for code without an async runtime (the CLI, the Python
    /// binding): runs on a small runtime of the client's own. Refused inside async code.
    pub fn fetch_svid_blocking(
        &self,
        id: &SpiffeId,
        ttl: Duration,
        key: KeyKind,
    ) -> Result<Svid, Error> {
        self.block_on(self.fetch_svid(id, ttl, key))
    }

    /// [`IstioCaClient::renew`] for code without an async runtime.
    pub fn renew_blocking(
        &self,
        current: &Svid,
        ttl: Duration,
        key: KeyKind,
    ) -> Result<Svid, Error> {
        self.block_on(self.renew(current, ttl, key))
    }

    /// Keeps `material` fresh forever: renews `current` at Istio's rotation time (half the
    /// lifetime plus jitter) by client certificate, falls back to the token once the SVID has
    /// expired or renewal is refused, retries with capped exponential backoff while the server
    /// is unreachable or `UNAVAILABLE`, and puts each new SVID into `material` so that running
    /// TLS configs use it for their next handshake. Returns only on an error that retrying
    /// cannot fix (or after `params.max_failures`).
    pub async fn keep_fresh(
        &self,
        material: &TlsMaterial,
        current: Svid,
        params: &RefreshParams,
    ) -> Result<(), Error> {
        self.keep_fresh_observed(material, current, params, &mut |_| {})
            .await
    }

    /// [`IstioCaClient::keep_fresh`], calling `renewed` with each new SVID once it is in
    /// `material`.
    async fn keep_fresh_observed(
        &self,
        material: &TlsMaterial,
        mut current: Svid,
        params: &RefreshParams,
        renewed: &mut (dyn FnMut(&Svid) + Send),
    ) -> Result<(), Error> {
        loop {
            let at = current.rotation_time(&params.policy);
            if let Ok(wait) = at.duration_since(SystemTime::now()) {
                tokio::time::sleep(wait).await;
            }
            let mut backoff = params.initial_backoff;
            let mut failures = 0u32;
            let next = loop {
                let still_valid = SystemTime::now() < current.not_after();
                let mut result = if still_valid {
                    self.renew(&current, params.ttl, params.key).await
                } else {
                    self.fetch_svid(current.spiffe_id(), params.ttl, params.key)
                        .await
                };
                if still_valid
                    && matches!(
                        result,
                        Err(Error::CaProtocol(CaProtocolError::Unauthenticated { .. }))
                    )
                    && !matches!(self.config.token, TokenSource::None)
                {
                    result = self
                        .fetch_svid(current.spiffe_id(), params.ttl, params.key)
                        .await;
                }
                match result {
                    Ok(svid) => break svid,
                    Err(e) if is_retriable(&e) => {
                        failures += 1;
                        if params.max_failures.is_some_and(|m| failures >= m) {
                            return Err(e);
                        }
                        log::warn!(
                            "ca client: renewal of {} failed, retrying in {backoff:?}: {e}",
                            current.spiffe_id()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(params.max_backoff);
                    }
                    Err(e) => return Err(e),
                }
            };
            material.set_svid(&next)?;
            renewed(&next);
            current = next;
        }
    }

    /// Runs [`IstioCaClient::keep_fresh`] on a background thread of its own (for code
    /// without an async runtime: the CLI, the Python binding). The returned handle stops it
    /// ([`RefreshHandle::stop`], or dropping the handle), tells how many renewals happened and
    /// which SVID is current, and keeps the error that ended the loop, if any.
    pub fn keep_fresh_in_background(
        self: &Arc<Self>,
        material: TlsMaterial,
        current: Svid,
        params: RefreshParams,
    ) -> Result<RefreshHandle, Error> {
        let state = Arc::new(Mutex::new(RefreshState {
            renewals: 0,
            current: current.clone(),
            error: None,
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| config_error("runtime", "", format!("cannot start a runtime ({e})")))?;
        let client = self.clone();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("meshtls-keep-fresh".to_owned())
            .spawn(move || {
                let observer = shared.clone();
                let mut renewed = move |svid: &Svid| {
                    if let Ok(mut s) = observer.lock() {
                        s.renewals += 1;
                        s.current = svid.clone();
                    }
                };
                let result = rt.block_on(async {
                    tokio::select! {
                        r = client.keep_fresh_observed(&material, current, &params, &mut renewed) => r,
                        _ = stopped => Ok(()),
                    }
                });
                if let Err(e) = result {
                    log::error!("ca client: keeping the certificate fresh stopped: {e}");
                    if let Ok(mut s) = shared.lock() {
                        s.error = Some(e);
                    }
                }
            })
            .map_err(|e| config_error("refresh thread", "", e.to_string()))?;
        Ok(RefreshHandle {
            stop: Some(stop),
            thread: Some(thread),
            state,
        })
    }
}

struct RefreshState {
    renewals: u64,
    current: Svid,
    error: Option<Error>,
}

/// A renewal loop started with [`IstioCaClient::keep_fresh_in_background`]; dropping it stops
/// the loop.
pub struct RefreshHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<RefreshState>>,
}

impl fmt::Debug for RefreshHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshHandle")
            .field("running", &self.is_running())
            .field("renewals", &self.renewals())
            .finish_non_exhaustive()
    }
}

impl RefreshHandle {
    /// Whether the loop is still running (it ends on [`RefreshHandle::stop`] or on an error
    /// that retrying cannot fix).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// How many times the SVID was renewed and put into the material.
    pub fn renewals(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.renewals)
    }

    /// The SVID the material holds now.
    pub fn current(&self) -> Option<Svid> {
        self.state.lock().ok().map(|s| s.current.clone())
    }

    /// The error that ended the loop, once (later calls return `None`).
    pub fn take_error(&self) -> Option<Error> {
        self.state.lock().ok().and_then(|mut s| s.error.take())
    }

    /// Stops the loop (a renewal in progress is abandoned; the material keeps its current
    /// SVID) and waits for the thread.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RefreshHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn build_tls(
    roots: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
    client_auth: Option<&Svid>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| config_error("mesh root", "root_cert_pem", e.to_string()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error("crypto provider", "tls versions", e.to_string()))?
        .with_root_certificates(store);
    let mut cfg = match client_auth {
        None => builder.with_no_client_auth(),
        Some(svid) => builder
            .with_client_auth_cert(svid.cert_chain_der().to_vec(), svid.private_key_der())
            .map_err(|e| {
                config_error(
                    "client certificate",
                    svid.spiffe_id().as_str(),
                    e.to_string(),
                )
            })?,
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

fn bad_chain(reason: impl Into<String>) -> Error {
    CaProtocolError::BadChain {
        reason: reason.into(),
    }
    .into()
}

/// Checks a server's answer to `csr` as istio-agent and ztunnel do, and more: at least two
/// entries (leaf and root), one PEM certificate per entry, the leaf names exactly the
/// requested SPIFFE ID and carries the request's key, and the chain verifies against `roots`
/// (the mesh root) with [`crate::verify_svid`] in the identity's trust domain. A plain
/// function, so that a fuzz target can feed it any response.
pub fn check_response(
    csr: Csr,
    response: &IstioCertificateResponse,
    roots: &[CertificateDer<'static>],
    now: SystemTime,
) -> Result<Svid, Error> {
    let entries = &response.cert_chain;
    if entries.len() < 2 {
        return Err(bad_chain(format!(
            "{} certificate entries, at least 2 (leaf and root) are required",
            entries.len()
        )));
    }
    let mut chain = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let certs = crate::svid::parse_pem_chain(entry)
            .map_err(|e| bad_chain(format!("entry {i}: {e}")))?;
        if certs.len() != 1 {
            return Err(bad_chain(format!(
                "entry {i} holds {} certificates, exactly one per entry is required",
                certs.len()
            )));
        }
        chain.extend(certs);
    }
    let id = csr.spiffe_id().clone();
    let td = id.trust_domain();
    let bundles = TrustBundle::new(td.clone(), roots.to_vec())
        .and_then(|b| BundleSet::from_bundles([b]))
        .map_err(|e| bad_chain(format!("mesh root unusable: {e}")))?;
    let verify_len = chain.len() - 1;
    let verified = crate::svid::verify_svid(&chain[..verify_len], &bundles, unix_time(now))
        .map_err(|e| bad_chain(e.to_string()))?;
    if verified.spiffe_id() != &id {
        return Err(bad_chain(format!(
            "the leaf names {} but {id} was requested",
            verified.spiffe_id()
        )));
    }
    let svid = csr.into_svid(chain).map_err(|e| bad_chain(e.to_string()))?;
    Ok(svid.with_trust_bundle(roots.to_vec()))
}

fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}
