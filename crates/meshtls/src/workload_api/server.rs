//! The Workload API server: `SpiffeWorkloadAPI` over tonic's gRPC codec on hyper's HTTP/2
//! server, on a unix socket (or tcp on loopback).
//!
//! What each call gets, in order:
//! 1. an unknown method (the WIT profile's `FetchWITSVID`/`FetchWITBundles` included) →
//!    `Unimplemented`;
//! 2. without exactly one `workload.spiffe.io: true` metadata value → `InvalidArgument`
//!    ("security header missing from request");
//! 3. an injected fault (test mode) → its status;
//! 4. attestation: the peer credentials of the connection (uid, gid, pid), the binary's path
//!    and groups through `/proc/<pid>`, then the pid-reuse guard → `Unauthenticated` when the
//!    pid no longer names the process that connected;
//! 5. the caller's entries (every entry whose selectors it has); none → `PermissionDenied`
//!    ("no identity issued") for the four fetch calls. `ValidateJWTSVID` needs no identity.
//!
//! Streams send the caller's full state at once, then again on every change (a rotation, a
//! registration or bundle reload); a message equal to the last one sent is not sent again. A
//! caller whose last entry was withdrawn gets `PermissionDenied` and its stream ends; a
//! withdrawn entry among several disappears from the next message (redaction).
//!
//! Every stream reads one shared, immutable snapshot through a `tokio::sync::watch` channel:
//! a rotation is one publication, and a stream whose reader is slow never holds up the others
//! (it skips to the latest state when it is polled again).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, BoxStream, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use zeroize::Zeroizing;

use super::attest::{AttestError, PeerCred};
use super::authority::{AuthorityFix, c_core_authority_len};
use super::proto;
use super::registration::{Entry, Registration};
use crate::bundle::TrustBundle;
use crate::ca::{IssueParams, KeyKind, MeshCa};
use crate::error::{Error, WorkloadApiError, quote};
use crate::identity::{SpiffeId, TrustDomain};
use crate::jwt::{JwksShape, JwtBundle, JwtBundleSet, JwtPolicy, JwtSigner};
use crate::svid::{RotationPolicy, Svid};

/// The default lifetime of an X.509-SVID (SPIRE's default).
pub const DEFAULT_X509_TTL: Duration = Duration::from_secs(3600);
/// The default lifetime of a JWT-SVID (SPIRE's default).
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(300);

/// Where the server listens: `unix:///absolute/path` or `tcp://<loopback IP>:<port>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListenAddress {
    /// A unix socket at this absolute path.
    Unix(PathBuf),
    /// A tcp socket on a loopback address (port 0 picks a free port when bound).
    Tcp(SocketAddr),
}

impl ListenAddress {
    /// Parses the address as `SPIFFE_ENDPOINT_SOCKET` writes it (the Workload Endpoint
    /// standard): `unix:///path` (no authority, an absolute path) or `tcp://IP:port` (an IP,
    /// a port, nothing else). A tcp address must be on loopback: the server attests tcp
    /// callers through the local socket table, which only a local peer is in.
    pub fn parse(text: &str) -> Result<ListenAddress, WorkloadApiError> {
        let bad = |rule: &str| WorkloadApiError::Invalid {
            what: "address",
            value: quote(text),
            rule: rule.to_owned(),
        };
        if text.contains(['?', '#']) {
            return Err(bad("a query or fragment is not allowed"));
        }
        if let Some(rest) = text.strip_prefix("unix://") {
            if !rest.starts_with('/') {
                return Err(bad(
                    "unix addresses are unix:///absolute/path (no authority)",
                ));
            }
            if rest.len() == 1 {
                return Err(bad("the socket path is empty"));
            }
            return Ok(ListenAddress::Unix(PathBuf::from(rest)));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let addr: SocketAddr = rest
                .parse()
                .map_err(|_| bad("tcp addresses are tcp://IP:port (an IP, a port, no path)"))?;
            if !addr.ip().is_loopback() {
                return Err(bad(
                    "the server listens on loopback only (127.0.0.0/8 or ::1)",
                ));
            }
            return Ok(ListenAddress::Tcp(addr));
        }
        Err(bad("the scheme must be unix:// or tcp://"))
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::Unix(p) => write!(f, "unix://{}", p.display()),
            ListenAddress::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// The server's options; every limit has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Lifetime of the X.509-SVIDs (default [`DEFAULT_X509_TTL`]); they are renewed at
    /// Istio's rule, when half of it has passed (with 1 % jitter), and pushed to every stream.
    pub x509_ttl: Duration,
    /// Lifetime of the JWT-SVIDs (default [`DEFAULT_JWT_TTL`]).
    pub jwt_ttl: Duration,
    /// The key type of the X.509-SVIDs (default EC P-256).
    pub key: KeyKind,
    /// The most open connections; further callers wait in the listen backlog (default 1024).
    pub max_connections: usize,
    /// The most concurrent calls (streams) on one connection (default 128).
    pub max_streams_per_connection: u32,
    /// The largest request message accepted, in bytes (default 64 KiB).
    pub max_request_bytes: usize,
    /// The largest response message sent, in bytes (default 4 MiB).
    pub max_response_bytes: usize,
    /// The most audiences in one `FetchJWTSVID` call (default 32).
    pub max_jwt_audiences: usize,
    /// How often the registration and bundle files are checked for changes (default 1 s).
    pub reload_interval: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            x509_ttl: DEFAULT_X509_TTL,
            jwt_ttl: DEFAULT_JWT_TTL,
            key: KeyKind::EcP256,
            max_connections: 1024,
            max_streams_per_connection: 128,
            max_request_bytes: 64 * 1024,
            max_response_bytes: 4 * 1024 * 1024,
            max_jwt_audiences: 32,
            reload_interval: Duration::from_secs(1),
        }
    }
}

/// A fault injected for tests: the next calls fail with this status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub code: Code,
    pub message: String,
    /// How many more calls fail (`None`: all until cleared).
    pub remaining: Option<u32>,
}

/// Where the registration comes from.
#[derive(Debug, Clone)]
enum RegistrationSource {
    Static(Arc<Registration>),
    File(PathBuf),
}

/// One issued X.509-SVID as the wire wants it.
struct Issued {
    chain: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
    rotate_at: SystemTime,
}

/// What every call reads: replaced whole on each change.
pub(crate) struct Snapshot {
    registration: Arc<Registration>,
    svids: HashMap<String, Arc<Issued>>,
    own_td: String,
    own_bundle: Vec<u8>,
    federated_x509: BTreeMap<String, Vec<u8>>,
    jwt_bundles: JwtBundleSet,
    jwt_map: HashMap<String, Vec<u8>>,
    /// Streams opened before this epoch changed end with `interrupt`'s status.
    interrupt_epoch: u64,
    interrupt: Option<(Code, String)>,
    /// The last forced rotation carried out.
    rotation_epoch: u64,
    generation: u64,
}

struct Shared {
    options: ServerOptions,
    ca: Arc<MeshCa>,
    signer: JwtSigner,
    registration: Mutex<RegistrationSource>,
    federated: Vec<(TrustDomain, PathBuf)>,
    fault: Mutex<Option<Fault>>,
    rotations_requested: AtomicU64,
    interrupts: Mutex<(u64, Option<(Code, String)>)>,
    wake: Notify,
    snapshot: watch::Sender<Arc<Snapshot>>,
}

/// Configures a [`WorkloadApiServer`]: the CA that mints the SVIDs, the registration, the
/// federated bundles and the options.
#[derive(Debug)]
pub struct WorkloadApiServerBuilder {
    ca: Arc<MeshCa>,
    signer: Option<JwtSigner>,
    registration: Option<RegistrationSource>,
    federated: Vec<(TrustDomain, PathBuf)>,
    options: ServerOptions,
}

impl WorkloadApiServerBuilder {
    /// The JWT-SVID signer (by default a fresh EC P-256 key of the CA's trust domain, held in
    /// memory).
    pub fn jwt_signer(mut self, signer: JwtSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// A fixed registration (replace it later with [`WorkloadApiServer::set_registration`]).
    pub fn registration(mut self, registration: Registration) -> Self {
        self.registration = Some(RegistrationSource::Static(Arc::new(registration)));
        self
    }

    /// A registration file (YAML or JSON, see [`Registration`]), read at start and again
    /// whenever its content changes. A change that does not parse is logged and the previous
    /// registration kept.
    pub fn registration_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.registration = Some(RegistrationSource::File(path.into()));
        self
    }

    /// A federated trust domain's bundle, a SPIFFE bundle JSON file (its `x509-svid` keys
    /// go to the X.509 bundles, its `jwt-svid` keys to the JWT bundles), reloaded on change.
    pub fn federated_bundle_file(
        mut self,
        trust_domain: TrustDomain,
        path: impl Into<PathBuf>,
    ) -> Self {
        self.federated.push((trust_domain, path.into()));
        self
    }

    /// The options.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// Binds `address`, issues the first SVIDs and serves on the current tokio runtime until
    /// [`WorkloadApiServer::shutdown`] (or until the handle is dropped). A unix socket path
    /// that holds a stale socket (nothing answers) is replaced; a live one is an error.
    pub async fn serve(self, address: &ListenAddress) -> Result<WorkloadApiServer, Error> {
        check_options(&self.options)?;
        let registration = self.registration.ok_or_else(|| WorkloadApiError::Invalid {
            what: "setting",
            value: "registration".to_owned(),
            rule: "a registration (entries or a file) is required".to_owned(),
        })?;
        let signer = match self.signer {
            Some(s) => s,
            None => JwtSigner::generate(self.ca.trust_domain().clone(), KeyKind::EcP256)?,
        };
        if signer.trust_domain() != self.ca.trust_domain() {
            return Err(WorkloadApiError::Invalid {
                what: "setting",
                value: signer.trust_domain().as_str().to_owned(),
                rule: format!(
                    "the jwt signer's trust domain must be the ca's ({})",
                    self.ca.trust_domain().as_str()
                ),
            }
            .into());
        }
        let mut state = MaintainState::default();
        let (first, _) = state
            .refresh(
                &self.ca,
                &signer,
                &registration,
                &self.federated,
                &self.options,
                false,
                true,
            )
            .await?;
        let (tx, rx) = watch::channel(Arc::new(first));
        let shared = Arc::new(Shared {
            options: self.options,
            ca: self.ca,
            signer,
            registration: Mutex::new(registration),
            federated: self.federated,
            fault: Mutex::new(None),
            rotations_requested: AtomicU64::new(0),
            interrupts: Mutex::new((0, None)),
            wake: Notify::new(),
            snapshot: tx,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let (bound, accept) = bind_and_accept(address, shared.clone(), stop_rx.clone()).await?;
        let maintain = tokio::spawn(maintain(shared.clone(), state, stop_rx));
        Ok(WorkloadApiServer {
            address: bound,
            shared,
            snapshot: rx,
            stop: stop_tx,
            tasks: vec![accept, maintain],
        })
    }
}

fn check_options(o: &ServerOptions) -> Result<(), WorkloadApiError> {
    let bad = |value: String, rule: &str| WorkloadApiError::Invalid {
        what: "setting",
        value,
        rule: rule.to_owned(),
    };
    if o.x509_ttl < Duration::from_secs(2) {
        return Err(bad(
            format!("x509_ttl={}s", o.x509_ttl.as_secs_f64()),
            "at least 2 seconds",
        ));
    }
    if o.jwt_ttl.is_zero() || o.jwt_ttl > crate::jwt::MAX_JWT_TTL {
        return Err(bad(
            format!("jwt_ttl={}s", o.jwt_ttl.as_secs()),
            "between 1 second and the jwt maximum",
        ));
    }
    for (name, v) in [
        ("max_connections", o.max_connections),
        (
            "max_streams_per_connection",
            o.max_streams_per_connection as usize,
        ),
        ("max_request_bytes", o.max_request_bytes),
        ("max_response_bytes", o.max_response_bytes),
        ("max_jwt_audiences", o.max_jwt_audiences),
    ] {
        if v == 0 {
            return Err(bad(format!("{name}=0"), "must be at least 1"));
        }
    }
    if o.reload_interval < Duration::from_millis(10) {
        return Err(bad(
            format!("reload_interval={}ms", o.reload_interval.as_millis()),
            "at least 10 ms",
        ));
    }
    Ok(())
}

/// A running Workload API server. Dropping it stops the server (as
/// [`WorkloadApiServer::shutdown`] does, without waiting).
pub struct WorkloadApiServer {
    address: ListenAddress,
    shared: Arc<Shared>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for WorkloadApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiServer")
            .field("address", &self.address)
            .field("trust_domain", &self.shared.ca.trust_domain().as_str())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl WorkloadApiServer {
    /// A builder for a server whose SVIDs `ca` mints (a `MeshCa` or an `Arc` of one).
    pub fn builder(ca: impl Into<Arc<MeshCa>>) -> WorkloadApiServerBuilder {
        WorkloadApiServerBuilder {
            ca: ca.into(),
            signer: None,
            registration: None,
            federated: Vec::new(),
            options: ServerOptions::default(),
        }
    }

    /// The address bound (a tcp port 0 replaced by the port chosen).
    pub fn address(&self) -> &ListenAddress {
        &self.address
    }

    /// The value a workload puts in `SPIFFE_ENDPOINT_SOCKET` to reach this server.
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// The CA that mints the X.509-SVIDs.
    pub fn ca(&self) -> &MeshCa {
        &self.shared.ca
    }

    /// The JWT-SVID signer.
    pub fn jwt_signer(&self) -> &JwtSigner {
        &self.shared.signer
    }

    /// The options in force.
    pub fn options(&self) -> &ServerOptions {
        &self.shared.options
    }

    /// How many states have been published (1 after start; one more per rotation, reload or
    /// injected interruption).
    pub fn generation(&self) -> u64 {
        self.snapshot.borrow().generation
    }

    /// Renews every X.509-SVID now and returns once the new ones are published to every open
    /// stream (each stream sends them as soon as its reader takes them).
    pub async fn rotate(&self) {
        let want = self
            .shared
            .rotations_requested
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        self.shared.wake.notify_one();
        let mut rx = self.snapshot.clone();
        let _ = rx.wait_for(|s| s.rotation_epoch >= want).await;
    }

    /// Replaces the registration (a file given to the builder is no longer read) and returns
    /// once the new state is published: streams of callers that lost an entry send the
    /// smaller set, or end with `PermissionDenied` when nothing is left.
    pub async fn set_registration(&self, registration: Registration) {
        if let Ok(mut source) = self.shared.registration.lock() {
            *source = RegistrationSource::Static(Arc::new(registration));
        }
        self.rotate_or_refresh().await;
    }

    async fn rotate_or_refresh(&self) {
        let before = self.generation();
        self.shared.wake.notify_one();
        let mut rx = self.snapshot.clone();
        let _ = rx.wait_for(|s| s.generation > before).await;
    }

    pub(crate) fn inject_fault(&self, fault: Option<Fault>) {
        if let Ok(mut f) = self.shared.fault.lock() {
            *f = fault;
        }
    }

    pub(crate) async fn interrupt_streams(&self, code: Code, message: String) {
        if let Ok(mut i) = self.shared.interrupts.lock() {
            i.0 += 1;
            i.1 = Some((code, message));
        }
        self.rotate_or_refresh().await;
    }

    /// Stops accepting, closes every connection (open streams end) and removes the unix
    /// socket file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let ListenAddress::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for WorkloadApiServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if !self.tasks.is_empty() {
            if let ListenAddress::Unix(path) = &self.address {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The maintenance task's own state: what it last read and issued.
#[derive(Default)]
struct MaintainState {
    registration: Option<Arc<Registration>>,
    registration_text: Option<String>,
    federated_text: HashMap<PathBuf, String>,
    federated_x509: BTreeMap<String, Vec<u8>>,
    federated_jwt: Vec<JwtBundle>,
    svids: HashMap<String, Arc<Issued>>,
    rotation_epoch: u64,
    interrupt_epoch: u64,
    generation: u64,
}

impl MaintainState {
    /// Reloads what changed, issues what is missing or due, and returns the new snapshot
    /// when anything changed (always on `first`).
    #[allow(clippy::too_many_arguments)]
    async fn refresh(
        &mut self,
        ca: &Arc<MeshCa>,
        signer: &JwtSigner,
        source: &RegistrationSource,
        federated: &[(TrustDomain, PathBuf)],
        options: &ServerOptions,
        force: bool,
        first: bool,
    ) -> Result<(Snapshot, bool), Error> {
        let mut changed = first || force;
        // The registration.
        match source {
            RegistrationSource::Static(r) => {
                if self
                    .registration
                    .as_ref()
                    .is_none_or(|old| !Arc::ptr_eq(old, r))
                {
                    r.check_trust_domains(&[ca.trust_domain()])?;
                    self.registration = Some(r.clone());
                    self.registration_text = None;
                    changed = true;
                }
            }
            RegistrationSource::File(path) => {
                match read_changed(path, self.registration_text.as_deref()) {
                    Ok(None) => {}
                    Ok(Some(text)) => {
                        let parsed = Registration::from_text(&text).and_then(|r| {
                            r.check_trust_domains(&[ca.trust_domain()])?;
                            Ok(r)
                        });
                        match parsed {
                            Ok(r) => {
                                self.registration = Some(Arc::new(r));
                                changed = true;
                            }
                            Err(e) if first => return Err(e),
                            Err(e) => log::warn!(
                                "workload api: registration {} not reloaded: {e}",
                                path.display()
                            ),
                        }
                        self.registration_text = Some(text);
                    }
                    Err(e) if first => return Err(e),
                    Err(e) => log::warn!("workload api: {e}"),
                }
            }
        }
        // Federated bundles.
        for (td, path) in federated {
            let old = self.federated_text.get(path).map(String::as_str);
            match read_changed(path, old) {
                Ok(None) => {}
                Ok(Some(text)) => {
                    let parsed = TrustBundle::from_spiffe_json(td.clone(), &text)
                        .map_err(Error::from)
                        .and_then(|x| {
                            let j =
                                JwtBundle::from_jwks(td.clone(), &text, JwksShape::SpiffeBundle)?;
                            Ok((x, j))
                        });
                    match parsed {
                        Ok((x509, jwt)) => {
                            let key = td.id().as_str().to_owned();
                            self.federated_x509.insert(key, concat_der(x509.roots()));
                            self.federated_jwt.retain(|b| b.trust_domain() != td);
                            self.federated_jwt.push(jwt);
                            changed = true;
                        }
                        Err(e) if first => return Err(e),
                        Err(e) => {
                            log::warn!("workload api: bundle {} not reloaded: {e}", path.display())
                        }
                    }
                    self.federated_text.insert(path.clone(), text);
                }
                Err(e) if first => return Err(e),
                Err(e) => log::warn!("workload api: {e}"),
            }
        }
        // The SVIDs: one per registered identity, renewed when due or forced.
        let registration = self.registration.clone().unwrap_or_default();
        let now = SystemTime::now();
        let wanted: Vec<&SpiffeId> = registration
            .entries()
            .iter()
            .map(Entry::spiffe_id)
            .collect();
        let before = self.svids.len();
        // A set, so that dropping the SVIDs of removed entries stays linear in the entries.
        let keep: std::collections::HashSet<&str> = wanted.iter().map(|w| w.as_str()).collect();
        self.svids.retain(|id, _| keep.contains(id.as_str()));
        changed |= self.svids.len() != before;
        let due: Vec<SpiffeId> = wanted
            .iter()
            .filter(|id| {
                force
                    || self
                        .svids
                        .get(id.as_str())
                        .is_none_or(|s| s.rotate_at <= now)
            })
            .map(|id| (*id).clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !due.is_empty() {
            let params = IssueParams {
                ttl: options.x509_ttl,
                key: options.key,
                dns_names: Vec::new(),
            };
            let ca2 = Arc::clone(ca);
            let issued = tokio::task::spawn_blocking(move || {
                due.into_iter()
                    .map(|id| (id.clone(), ca2.issue(&id, &params)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| WorkloadApiError::Issue {
                kind: "x509-svid",
                spiffe_id: "(all)".to_owned(),
                reason: e.to_string(),
            })?;
            for (id, result) in issued {
                match result {
                    Ok(svid) => {
                        self.svids
                            .insert(id.as_str().to_owned(), Arc::new(to_issued(&svid)));
                        changed = true;
                    }
                    Err(e) => {
                        let err = WorkloadApiError::Issue {
                            kind: "x509-svid",
                            spiffe_id: id.as_str().to_owned(),
                            reason: e.to_string(),
                        };
                        if first {
                            return Err(err.into());
                        }
                        log::warn!("workload api: {err}");
                    }
                }
            }
        }
        if changed {
            self.generation += 1;
        }
        let mut jwt_bundles = JwtBundleSet::new().with(signer.bundle());
        for b in &self.federated_jwt {
            jwt_bundles.insert(b.clone());
        }
        let jwt_map = jwt_bundles
            .to_workload_api_map()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        let snap = Snapshot {
            registration,
            svids: self.svids.clone(),
            own_td: ca.trust_domain().id().as_str().to_owned(),
            own_bundle: concat_der(ca.root_certs_der()),
            federated_x509: self.federated_x509.clone(),
            jwt_bundles,
            jwt_map,
            interrupt_epoch: self.interrupt_epoch,
            interrupt: None,
            rotation_epoch: self.rotation_epoch,
            generation: self.generation,
        };
        Ok((snap, changed))
    }

    fn next_due(&self) -> Option<SystemTime> {
        self.svids.values().map(|s| s.rotate_at).min()
    }
}

fn to_issued(svid: &Svid) -> Issued {
    let policy = RotationPolicy::default();
    Issued {
        chain: concat_der(svid.cert_chain_der()),
        key: Zeroizing::new(svid.private_key_der().secret_der().to_vec()),
        rotate_at: svid.rotation_time(&policy),
    }
}

fn concat_der(certs: &[rustls_pki_types::CertificateDer<'static>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(certs.iter().map(|c| c.len()).sum());
    for c in certs {
        out.extend_from_slice(c);
    }
    out
}

/// The file's text when it differs from `old` (`None` when unchanged).
fn read_changed(path: &Path, old: Option<&str>) -> Result<Option<String>, Error> {
    let text = crate::x509::fs::read_text(path)?;
    if old == Some(text.as_str()) {
        return Ok(None);
    }
    Ok(Some(text.as_str().to_owned()))
}

async fn maintain(shared: Arc<Shared>, mut state: MaintainState, mut stop: watch::Receiver<bool>) {
    let mut done_rotations = 0u64;
    // A renewal that failed leaves its SVID due: without a floor the loop would retry at once,
    // forever (an expired CA would burn a core). Failed renewals back off from 1 s to 60 s.
    let mut retry_after = Duration::ZERO;
    loop {
        let now = SystemTime::now();
        let next = state
            .next_due()
            .and_then(|t| t.duration_since(now).ok())
            .unwrap_or_default()
            .max(retry_after)
            .min(shared.options.reload_interval.max(retry_after));
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = shared.wake.notified() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let requested = shared.rotations_requested.load(Ordering::SeqCst);
        let force = requested > done_rotations;
        let source = match shared.registration.lock() {
            Ok(s) => s.clone(),
            Err(_) => continue,
        };
        let (interrupt_epoch, interrupt) = match shared.interrupts.lock() {
            Ok(i) => i.clone(),
            Err(_) => continue,
        };
        let old = shared.snapshot.borrow().clone();
        let result = state
            .refresh(
                &shared.ca,
                &shared.signer,
                &source,
                &shared.federated,
                &shared.options,
                force,
                false,
            )
            .await;
        match result {
            Ok((mut snap, changed)) => {
                if force {
                    done_rotations = requested;
                    state.rotation_epoch = requested;
                    snap.rotation_epoch = requested;
                }
                let interrupted = interrupt_epoch != old.interrupt_epoch;
                state.interrupt_epoch = interrupt_epoch;
                snap.interrupt_epoch = interrupt_epoch;
                snap.interrupt = interrupt;
                if interrupted && !changed {
                    state.generation += 1;
                    snap.generation = state.generation;
                }
                if changed || interrupted {
                    shared.snapshot.send_replace(Arc::new(snap));
                }
            }
            Err(e) => log::warn!("workload api: refresh failed: {e}"),
        }
        let still_due = state.next_due().is_some_and(|t| t <= SystemTime::now());
        retry_after = if still_due {
            (retry_after * 2).clamp(RENEW_RETRY_MIN, RENEW_RETRY_MAX)
        } else {
            Duration::ZERO
        };
    }
}

/// The first pause after a failed renewal; it doubles on each further failure.
const RENEW_RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest pause between retries of a failed renewal.
const RENEW_RETRY_MAX: Duration = Duration::from_secs(60);

/// Binds the listener and spawns its accept loop.
async fn bind_and_accept(
    address: &ListenAddress,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<(ListenAddress, JoinHandle<()>), Error> {
    let sock_err = |action: &'static str, e: &std::io::Error| WorkloadApiError::Socket {
        action,
        address: address.to_string(),
        kind: e.kind(),
        reason: e.to_string(),
    };
    let limit = Arc::new(Semaphore::new(shared.options.max_connections));
    match address {
        ListenAddress::Unix(path) => {
            if path.exists() {
                match tokio::net::UnixStream::connect(path).await {
                    Ok(_) => {
                        return Err(WorkloadApiError::Socket {
                            action: "bind",
                            address: address.to_string(),
                            kind: std::io::ErrorKind::AddrInUse,
                            reason: "another server answers on this socket".to_owned(),
                        }
                        .into());
                    }
                    Err(_) => {
                        std::fs::remove_file(path).map_err(|e| sock_err("remove stale", &e))?
                    }
                }
            }
            let listener =
                tokio::net::UnixListener::bind(path).map_err(|e| sock_err("bind", &e))?;
            let task = tokio::spawn(accept_loop(
                stop,
                limit,
                Listener::Unix(listener, c_core_authority_len(path)),
                shared,
            ));
            Ok((address.clone(), task))
        }
        ListenAddress::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| sock_err("bind", &e))?;
            let local = listener.local_addr().map_err(|e| sock_err("bind", &e))?;
            let task = tokio::spawn(accept_loop(
                stop,
                limit,
                Listener::Tcp(listener, local),
                shared,
            ));
            Ok((ListenAddress::Tcp(local), task))
        }
    }
}

enum Listener {
    Unix(tokio::net::UnixListener, usize),
    Tcp(tokio::net::TcpListener, SocketAddr),
}

async fn accept_loop(
    mut stop: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
    listener: Listener,
    shared: Arc<Shared>,
) {
    let conn_stop = stop.clone();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            a = async {
                match &listener {
                    Listener::Unix(l, authority_len) => l.accept().await.map(|(s, _)| {
                        let cred = PeerCred::of_unix(&s);
                        let s = AuthorityFix::new(s, Some(*authority_len));
                        tokio::spawn(serve_connection(s, cred, shared.clone(), permit, conn_stop.clone()));
                    }),
                    Listener::Tcp(l, local) => l.accept().await.map(|(s, peer)| {
                        let _ = s.set_nodelay(true);
                        let cred = PeerCred::of_tcp(peer, *local);
                        tokio::spawn(serve_connection(s, cred, shared.clone(), permit, conn_stop.clone()));
                    }),
                }
            } => a,
            _ = stop.changed() => return,
        };
        if let Err(e) = accepted {
            // EMFILE and friends: back off instead of spinning.
            log::warn!("workload api: accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve_connection<S>(
    io: S,
    cred: PeerCred,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cred = Arc::new(cred);
    let svc_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = svc_shared.clone();
        let cred = cred.clone();
        async move { Ok::<_, Infallible>(handle(shared, cred, req).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(shared.options.max_streams_per_connection)
        .max_header_list_size(16 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = stop.changed() => {}
    }
    drop(permit);
}

type Reply = http::Response<tonic::body::Body>;

async fn handle(shared: Arc<Shared>, cred: Arc<PeerCred>, req: http::Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let known = [
        proto::FETCH_X509_SVID,
        proto::FETCH_X509_BUNDLES,
        proto::FETCH_JWT_SVID,
        proto::FETCH_JWT_BUNDLES,
        proto::VALIDATE_JWT_SVID,
    ];
    if !known.contains(&path.as_str()) {
        return Status::unimplemented(format!("method {} is not implemented", quote(&path)))
            .into_http();
    }
    let header: Vec<_> = req
        .headers()
        .get_all(proto::SECURITY_HEADER)
        .iter()
        .collect();
    if header.len() != 1 || header[0].as_bytes() != proto::SECURITY_HEADER_VALUE.as_bytes() {
        return Status::invalid_argument("security header missing from request").into_http();
    }
    if let Some(status) = take_fault(&shared) {
        return status.into_http();
    }
    let caller = match cred.attest() {
        Ok(c) => c,
        Err(AttestError::Vanished(m)) => {
            return Status::unauthenticated(format!(
                "could not verify existence of the original caller: {m}"
            ))
            .into_http();
        }
    };
    let selectors = caller.selectors();
    let o = &shared.options;
    let limits = (Some(o.max_request_bytes), Some(o.max_response_bytes));
    let call = Call {
        shared: shared.clone(),
        selectors: Arc::new(selectors),
    };
    match path.as_str() {
        proto::FETCH_X509_SVID => {
            let mut g = tonic::server::Grpc::new(ProstCodec::default())
                .apply_max_message_size_config(limits.0, limits.1);
            g.server_streaming(X509SvidSvc(call), req).await
        }
        proto::FETCH_X509_BUNDLES => {
            let mut g = tonic::server::Grpc::new(ProstCodec::default())
                .apply_max_message_size_config(limits.0, limits.1);
            g.server_streaming(X509BundlesSvc(call), req).await
        }
        proto::FETCH_JWT_BUNDLES => {
            let mut g = tonic::server::Grpc::new(ProstCodec::default())
                .apply_max_message_size_config(limits.0, limits.1);
            g.server_streaming(JwtBundlesSvc(call), req).await
        }
        proto::FETCH_JWT_SVID => {
            let mut g = tonic::server::Grpc::new(ProstCodec::default())
                .apply_max_message_size_config(limits.0, limits.1);
            g.unary(JwtSvidSvc(call), req).await
        }
        _ => {
            let mut g = tonic::server::Grpc::new(ProstCodec::default())
                .apply_max_message_size_config(limits.0, limits.1);
            g.unary(ValidateSvc(call), req).await
        }
    }
}

fn take_fault(shared: &Shared) -> Option<Status> {
    let mut guard = shared.fault.lock().ok()?;
    let fault = guard.as_mut()?;
    let status = Status::new(fault.code, fault.message.clone());
    match &mut fault.remaining {
        Some(0) => {
            *guard = None;
            return None;
        }
        Some(1) => *guard = None,
        Some(n) => *n -= 1,
        None => {}
    }
    Some(status)
}

#[derive(Clone)]
struct Call {
    shared: Arc<Shared>,
    selectors: Arc<Vec<String>>,
}

fn no_identity() -> Status {
    Status::permission_denied("no identity issued")
}

type BoxFut<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, Status>> + Send>>;

/// A stream of full states: the first at once, then one per published change that alters
/// what this caller sees.
fn watch_stream<M, F>(call: Call, build: F) -> BoxStream<'static, Result<M, Status>>
where
    M: Clone + PartialEq + Send + Sync + 'static,
    F: Fn(&Snapshot, &[String]) -> Result<M, Status> + Send + Sync + 'static,
{
    let rx = call.shared.snapshot.subscribe();
    let epoch = rx.borrow().interrupt_epoch;
    struct St<M> {
        rx: watch::Receiver<Arc<Snapshot>>,
        first: bool,
        done: bool,
        epoch: u64,
        last: Option<M>,
    }
    let st = St {
        rx,
        first: true,
        done: false,
        epoch,
        last: None,
    };
    let selectors = call.selectors.clone();
    let build = Arc::new(build);
    stream::unfold(st, move |mut st| {
        let selectors = selectors.clone();
        let build = build.clone();
        async move {
            loop {
                if st.done {
                    return None;
                }
                if !st.first && st.rx.changed().await.is_err() {
                    return None;
                }
                st.first = false;
                let snap = st.rx.borrow_and_update().clone();
                if snap.interrupt_epoch != st.epoch {
                    if let Some((code, message)) = &snap.interrupt {
                        st.done = true;
                        return Some((Err(Status::new(*code, message.clone())), st));
                    }
                    st.epoch = snap.interrupt_epoch;
                }
                match build(&snap, &selectors) {
                    Ok(msg) => {
                        if st.last.as_ref() == Some(&msg) {
                            continue;
                        }
                        st.last = Some(msg.clone());
                        return Some((Ok(msg), st));
                    }
                    Err(status) => {
                        st.done = true;
                        return Some((Err(status), st));
                    }
                }
            }
        }
    })
    .boxed()
}

fn x509_svid_response(
    snap: &Snapshot,
    selectors: &[String],
) -> Result<proto::X509SvidResponse, Status> {
    let entries = snap.registration.entries_for(selectors);
    let svids: Vec<proto::X509Svid> = entries
        .iter()
        .filter_map(|e| {
            let issued = snap.svids.get(e.spiffe_id().as_str())?;
            Some(proto::X509Svid {
                spiffe_id: e.spiffe_id().as_str().to_owned(),
                x509_svid: issued.chain.clone(),
                x509_svid_key: issued.key.to_vec(),
                bundle: snap.own_bundle.clone(),
                hint: e.hint().to_owned(),
            })
        })
        .collect();
    if svids.is_empty() {
        return Err(no_identity());
    }
    Ok(proto::X509SvidResponse {
        svids,
        crl: Vec::new(),
        federated_bundles: snap
            .federated_x509
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn has_identity(snap: &Snapshot, selectors: &[String]) -> bool {
    snap.registration
        .entries_for(selectors)
        .iter()
        .any(|e| snap.svids.contains_key(e.spiffe_id().as_str()))
}

fn x509_bundles_response(
    snap: &Snapshot,
    selectors: &[String],
) -> Result<proto::X509BundlesResponse, Status> {
    if !has_identity(snap, selectors) {
        return Err(no_identity());
    }
    let mut bundles: HashMap<String, Vec<u8>> = snap
        .federated_x509
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    bundles.insert(snap.own_td.clone(), snap.own_bundle.clone());
    Ok(proto::X509BundlesResponse {
        crl: Vec::new(),
        bundles,
    })
}

fn jwt_bundles_response(
    snap: &Snapshot,
    selectors: &[String],
) -> Result<proto::JwtBundlesResponse, Status> {
    if !has_identity(snap, selectors) {
        return Err(no_identity());
    }
    Ok(proto::JwtBundlesResponse {
        bundles: snap.jwt_map.clone(),
    })
}

struct X509SvidSvc(Call);
impl tonic::server::ServerStreamingService<proto::X509SvidRequest> for X509SvidSvc {
    type Response = proto::X509SvidResponse;
    type ResponseStream = BoxStream<'static, Result<proto::X509SvidResponse, Status>>;
    type Future = BoxFut<Self::ResponseStream>;
    fn call(&mut self, _req: tonic::Request<proto::X509SvidRequest>) -> Self::Future {
        let call = self.0.clone();
        Box::pin(async move {
            // A caller without identity is refused as a status, not as an empty stream.
            let snap = call.shared.snapshot.borrow().clone();
            x509_svid_response(&snap, &call.selectors)?;
            Ok(tonic::Response::new(watch_stream(call, x509_svid_response)))
        })
    }
}

struct X509BundlesSvc(Call);
impl tonic::server::ServerStreamingService<proto::X509BundlesRequest> for X509BundlesSvc {
    type Response = proto::X509BundlesResponse;
    type ResponseStream = BoxStream<'static, Result<proto::X509BundlesResponse, Status>>;
    type Future = BoxFut<Self::ResponseStream>;
    fn call(&mut self, _req: tonic::Request<proto::X509BundlesRequest>) -> Self::Future {
        let call = self.0.clone();
        Box::pin(async move {
            let snap = call.shared.snapshot.borrow().clone();
            x509_bundles_response(&snap, &call.selectors)?;
            Ok(tonic::Response::new(watch_stream(
                call,
                x509_bundles_response,
            )))
        })
    }
}

struct JwtBundlesSvc(Call);
impl tonic::server::ServerStreamingService<proto::JwtBundlesRequest> for JwtBundlesSvc {
    type Response = proto::JwtBundlesResponse;
    type ResponseStream = BoxStream<'static, Result<proto::JwtBundlesResponse, Status>>;
    type Future = BoxFut<Self::ResponseStream>;
    fn call(&mut self, _req: tonic::Request<proto::JwtBundlesRequest>) -> Self::Future {
        let call = self.0.clone();
        Box::pin(async move {
            let snap = call.shared.snapshot.borrow().clone();
            jwt_bundles_response(&snap, &call.selectors)?;
            Ok(tonic::Response::new(watch_stream(
                call,
                jwt_bundles_response,
            )))
        })
    }
}

struct JwtSvidSvc(Call);
impl tonic::server::UnaryService<proto::JwtSvidRequest> for JwtSvidSvc {
    type Response = proto::JwtSvidResponse;
    type Future = BoxFut<Self::Response>;
    fn call(&mut self, req: tonic::Request<proto::JwtSvidRequest>) -> Self::Future {
        let call = self.0.clone();
        Box::pin(async move {
            let req = req.into_inner();
            let max = call.shared.options.max_jwt_audiences;
            if req.audience.is_empty() {
                return Err(Status::invalid_argument("audience must be specified"));
            }
            if req.audience.len() > max {
                return Err(Status::invalid_argument(format!(
                    "{} audiences requested; at most {max}",
                    req.audience.len()
                )));
            }
            if let Some(bad) = req.audience.iter().find(|a| a.is_empty()) {
                return Err(Status::invalid_argument(format!(
                    "audience {bad:?} is empty"
                )));
            }
            let snap = call.shared.snapshot.borrow().clone();
            let entries = snap.registration.entries_for(&call.selectors);
            if entries.is_empty() {
                return Err(no_identity());
            }
            let chosen: Vec<&Entry> = if req.spiffe_id.is_empty() {
                entries
            } else {
                let found: Vec<&Entry> = entries
                    .into_iter()
                    .filter(|e| e.spiffe_id().as_str() == req.spiffe_id)
                    .collect();
                if found.is_empty() {
                    return Err(Status::permission_denied(format!(
                        "no identity issued for {}",
                        quote(&req.spiffe_id)
                    )));
                }
                found
            };
            let auds: Vec<&str> = req.audience.iter().map(String::as_str).collect();
            let mut svids = Vec::with_capacity(chosen.len());
            for e in chosen {
                let token = call
                    .shared
                    .signer
                    .mint(e.spiffe_id(), &auds, call.shared.options.jwt_ttl)
                    .map_err(|err| Status::internal(format!("cannot mint jwt-svid: {err}")))?;
                svids.push(proto::JwtSvid {
                    spiffe_id: e.spiffe_id().as_str().to_owned(),
                    svid: token,
                    hint: e.hint().to_owned(),
                });
            }
            Ok(tonic::Response::new(proto::JwtSvidResponse { svids }))
        })
    }
}

struct ValidateSvc(Call);
impl tonic::server::UnaryService<proto::ValidateJwtSvidRequest> for ValidateSvc {
    type Response = proto::ValidateJwtSvidResponse;
    type Future = BoxFut<Self::Response>;
    fn call(&mut self, req: tonic::Request<proto::ValidateJwtSvidRequest>) -> Self::Future {
        let call = self.0.clone();
        Box::pin(async move {
            let req = req.into_inner();
            if req.audience.is_empty() {
                return Err(Status::invalid_argument("audience must be specified"));
            }
            if req.svid.is_empty() {
                return Err(Status::invalid_argument("svid must be specified"));
            }
            let snap = call.shared.snapshot.borrow().clone();
            let policy = JwtPolicy::new([req.audience.as_str()])
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let svid = crate::jwt::validate(&req.svid, &snap.jwt_bundles, &policy)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let claims = prost_types::Struct {
                fields: svid
                    .claims()
                    .iter()
                    .map(|(k, v)| (k.clone(), to_prost(v)))
                    .collect(),
            };
            Ok(tonic::Response::new(proto::ValidateJwtSvidResponse {
                spiffe_id: svid.spiffe_id().as_str().to_owned(),
                claims: Some(claims),
            }))
        })
    }
}

fn to_prost(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(to_prost).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), to_prost(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}
