//! X.509 and JWT sources that stay current: a background task keeps a Workload API stream
//! open, reconnects with backoff, and feeds every update into meshtls's TLS material.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use zeroize::Zeroizing;

use super::client::{JwtSvidToken, SvidSelector, Watch, WorkloadApiClient, X509Context, X509Svid};
use crate::bundle::BundleSet;
use crate::error::{Error, StatusCode, WorkloadClientError};
use crate::jwt::{JwtBundleSet, JwtPolicy, JwtSvid};
use crate::tls::TlsMaterial;

/// How a source waits for its first update and reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// Which SVID the TLS material carries (default: the first, the default identity).
    pub selector: SvidSelector,
    /// How long [`X509Source::start`] / [`JwtSource::start`] wait for the first update
    /// (retrying meanwhile) before reporting the last error (default 30 s).
    pub initial_timeout: Duration,
    /// The first retry delay (default 200 ms); it doubles per failure up to
    /// [`SourceOptions::backoff_max`], with up to 10 % jitter, and resets after an update.
    pub backoff_initial: Duration,
    /// The longest retry delay (default 30 s).
    pub backoff_max: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            selector: SvidSelector::First,
            initial_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl SourceOptions {
    fn check(&self) -> Result<(), WorkloadClientError> {
        let bad = |name, value: Duration, rule| WorkloadClientError::Option {
            name,
            value: format!("{value:?}"),
            rule,
        };
        if self.backoff_initial.is_zero() {
            return Err(bad(
                "backoff_initial",
                self.backoff_initial,
                "must be more than 0",
            ));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(bad(
                "backoff_max",
                self.backoff_max,
                "must be at least backoff_initial",
            ));
        }
        Ok(())
    }
}

/// A source's health: whether it has a current state and the last error it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// Updates applied so far.
    pub updates: u64,
    /// The last error (cleared by the next update).
    pub last_error: Option<WorkloadClientError>,
    /// Whether the source has stopped for good (an `InvalidArgument` or `Unimplemented`
    /// answer, or [`X509Source::close`]).
    pub stopped: bool,
    /// Whether the server withdrew the identity (`PermissionDenied` on an open stream): the
    /// source then ceases using it until the next update.
    pub withdrawn: bool,
}

struct Shared<T> {
    current: RwLock<Option<Arc<T>>>,
    status: Mutex<SourceStatus>,
    generation: watch::Sender<u64>,
}

impl<T> Shared<T> {
    fn new() -> Self {
        Shared {
            current: RwLock::new(None),
            status: Mutex::new(SourceStatus::default()),
            generation: watch::channel(0).0,
        }
    }

    fn status(&self) -> SourceStatus {
        match self.status.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn with_status(&self, f: impl FnOnce(&mut SourceStatus)) {
        match self.status.lock() {
            Ok(mut s) => f(&mut s),
            Err(p) => f(&mut p.into_inner()),
        }
        // Waiters (first update, wait_for_update) look at the status too.
        self.generation.send_modify(|_| {});
    }

    fn current(&self) -> Option<Arc<T>> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, value: Option<Arc<T>>) {
        match self.current.write() {
            Ok(mut c) => *c = value,
            Err(p) => *p.into_inner() = value,
        }
    }

    fn updated(&self, value: T) {
        self.set(Some(Arc::new(value)));
        self.with_status(|s| {
            s.updates += 1;
            s.last_error = None;
            s.withdrawn = false;
        });
        self.generation.send_modify(|g| *g += 1);
    }

    /// Records an error; returns whether it withdrew the identity.
    fn failed(&self, error: WorkloadClientError, on_stream: bool) -> bool {
        let withdrawn = on_stream && error.code() == Some(StatusCode::PermissionDenied);
        if withdrawn {
            self.set(None);
        }
        let stopped = !error.is_retryable();
        self.with_status(|s| {
            s.last_error = Some(error);
            s.withdrawn |= withdrawn;
            s.stopped |= stopped;
        });
        withdrawn
    }

    /// Waits until generation > `after`, the source stops, or `timeout` passes.
    async fn wait_for_update(&self, after: u64, timeout: Duration) -> Result<u64, Error> {
        let mut rx = self.generation.subscribe();
        let wait = async {
            loop {
                let generation = *rx.borrow_and_update();
                if generation > after {
                    return Ok(generation);
                }
                let status = self.status();
                if status.stopped {
                    return Err(status.last_error.unwrap_or(WorkloadClientError::Closed));
                }
                if rx.changed().await.is_err() {
                    return Err(WorkloadClientError::Closed);
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(self
                .status()
                .last_error
                .unwrap_or(WorkloadClientError::Timeout {
                    what: "update".to_owned(),
                    endpoint: String::new(),
                    millis: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                })
                .into()),
        }
    }
}

/// Aborts the background task when the last handle goes.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    // Up to 10 % longer, from the clock's low bits (spreads reconnecting clients apart).
    d + d.mul_f64(f64::from(nanos % 1000) / 10_000.0)
}

/// The watch loop shared by both sources: open, apply every message, retry with backoff on
/// what the standard says to retry, stop on the rest.
async fn run<T, S, O>(
    shared: Arc<Shared<S>>,
    options: SourceOptions,
    open: impl Fn() -> O,
    apply: impl Fn(T) -> Result<S, WorkloadClientError>,
    on_withdraw: impl Fn(),
) where
    O: Future<Output = Result<Watch<T>, WorkloadClientError>>,
{
    let mut delay = options.backoff_initial;
    loop {
        match open().await {
            Ok(mut stream) => loop {
                match stream.next().await {
                    Some(Ok(message)) => match apply(message) {
                        Ok(state) => {
                            shared.updated(state);
                            delay = options.backoff_initial;
                        }
                        // An unusable message is discarded (§4.5); the stream stays open.
                        Err(e) => {
                            shared.failed(e, false);
                        }
                    },
                    Some(Err(e)) => {
                        if shared.failed(e, true) {
                            on_withdraw();
                        }
                        break;
                    }
                    // The server ended the stream: reconnect at once (§4.2).
                    None => break,
                }
            },
            Err(e) => {
                shared.failed(e, false);
            }
        }
        if shared.status().stopped {
            return;
        }
        tokio::time::sleep(jitter(delay)).await;
        delay = (delay * 2).min(options.backoff_max);
    }
}

/// The selected X.509-SVID and the bundles of one update.
#[derive(Debug, Clone)]
pub struct X509State {
    /// The whole update.
    pub context: X509Context,
    /// The SVID the selector picked (the one the TLS material carries).
    pub svid: X509Svid,
}

/// X.509-SVIDs and bundles from the Workload API, kept current by a background task, and a
/// [`TlsMaterial`] that follows them: every rotation reaches the next handshake of every
/// rustls config built from [`X509Source::tls_material`].
///
/// Errors follow SPIFFE Workload Endpoint §6: `Unavailable`, `PermissionDenied` and an
/// unreachable endpoint are retried with backoff; `InvalidArgument` and `Unimplemented`
/// stop the source. A `PermissionDenied` on an open stream withdraws the identity: the
/// source reports no SVID and the TLS material's bundles are emptied (no peer verifies)
/// until the server sends an identity again.
pub struct X509Source {
    shared: Arc<Shared<X509State>>,
    material: TlsMaterial,
    client: WorkloadApiClient,
    _task: Arc<Task>,
}

impl fmt::Debug for X509Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Source")
            .field("client", &self.client)
            .field("status", &self.shared.status())
            .finish_non_exhaustive()
    }
}

impl X509Source {
    /// Starts watching `FetchX509SVID` and waits for the first update (retrying for up to
    /// [`SourceOptions::initial_timeout`]); reports the last error when none came.
    pub async fn start(
        client: WorkloadApiClient,
        options: SourceOptions,
    ) -> Result<X509Source, Error> {
        options.check()?;
        let shared = Arc::new(Shared::<X509State>::new());
        let material: Arc<Mutex<Option<TlsMaterial>>> = Arc::new(Mutex::new(None));
        let task = {
            let shared = Arc::clone(&shared);
            let client = client.clone();
            let selector = options.selector.clone();
            let material = Arc::clone(&material);
            let withdraw = Arc::clone(&material);
            let opts = options.clone();
            tokio::spawn(async move {
                run(
                    shared,
                    opts,
                    || client.watch_x509_context(),
                    move |context: X509Context| {
                        let svid = context.select(&selector)?.clone();
                        feed(&material, &svid, context.bundles())?;
                        Ok(X509State { context, svid })
                    },
                    // The identity was withdrawn: no peer verifies until the next update.
                    || {
                        if let Some(m) = lock(&withdraw).as_ref() {
                            m.set_bundles(BundleSet::new());
                        }
                    },
                )
                .await;
            })
        };
        let task = Arc::new(Task(task));
        shared.wait_for_update(0, options.initial_timeout).await?;
        let material = lock(&material).clone().ok_or(WorkloadClientError::Closed)?;
        Ok(X509Source {
            shared,
            material,
            client,
            _task: task,
        })
    }

    /// The TLS material (own SVID and bundles) that follows this source; build
    /// [`ServerConfigBuilder`](crate::tls::ServerConfigBuilder) /
    /// [`ClientConfigBuilder`](crate::tls::ClientConfigBuilder) configs from it.
    pub fn tls_material(&self) -> TlsMaterial {
        self.material.clone()
    }

    /// The current state, or the reason there is none (withdrawn, stopped).
    pub fn state(&self) -> Result<Arc<X509State>, Error> {
        self.shared.current().ok_or_else(|| {
            self.shared
                .status()
                .last_error
                .unwrap_or(WorkloadClientError::Closed)
                .into()
        })
    }

    /// The selected X.509-SVID.
    pub fn svid(&self) -> Result<X509Svid, Error> {
        Ok(self.state()?.svid.clone())
    }

    /// The current bundles.
    pub fn bundles(&self) -> Result<BundleSet, Error> {
        Ok(self.state()?.context.bundles().clone())
    }

    /// Health and the last error.
    pub fn status(&self) -> SourceStatus {
        self.shared.status()
    }

    /// The number of updates so far (1 after [`X509Source::start`]).
    pub fn generation(&self) -> u64 {
        *self.shared.generation.borrow()
    }

    /// Waits for an update after `after` (a [`X509Source::generation`]); returns the new
    /// generation, the error that stopped the source, or the last error after `timeout`.
    pub async fn wait_for_update(&self, after: u64, timeout: Duration) -> Result<u64, Error> {
        self.shared.wait_for_update(after, timeout).await
    }

    /// A receiver of the generation counter, for `changed().await` loops.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    /// The client the source uses.
    pub fn client(&self) -> &WorkloadApiClient {
        &self.client
    }

    /// Stops the background task (dropping the last handle does too).
    pub fn close(&self) {
        self._task.0.abort();
        self.shared.with_status(|s| s.stopped = true);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn feed(
    material: &Mutex<Option<TlsMaterial>>,
    svid: &X509Svid,
    bundles: &BundleSet,
) -> Result<(), WorkloadClientError> {
    let chain = svid.svid().cert_chain_der().to_vec();
    let key = Zeroizing::new(svid.svid().private_key_der().secret_der().to_vec());
    let mut slot = lock(material);
    let unusable = |e: Error| WorkloadClientError::Response {
        method: "FetchX509SVID",
        endpoint: String::new(),
        reason: e.to_string(),
    };
    match slot.as_ref() {
        Some(m) => {
            m.set_svid_der(chain, &key).map_err(unusable)?;
            m.set_bundles(bundles.clone());
        }
        None => {
            *slot = Some(TlsMaterial::from_der(chain, &key, bundles.clone()).map_err(unusable)?);
        }
    }
    Ok(())
}

/// JWT bundles from the Workload API kept current by a background task, JWT-SVIDs fetched on
/// demand, and local validation by meshtls's JWT-SVID policy against the current bundles.
pub struct JwtSource {
    shared: Arc<Shared<JwtBundleSet>>,
    client: WorkloadApiClient,
    selector: SvidSelector,
    task: Arc<Task>,
}

impl fmt::Debug for JwtSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSource")
            .field("client", &self.client)
            .field("status", &self.shared.status())
            .finish_non_exhaustive()
    }
}

impl JwtSource {
    /// Starts watching `FetchJWTBundles` and waits for the first update, as
    /// [`X509Source::start`] does.
    pub async fn start(
        client: WorkloadApiClient,
        options: SourceOptions,
    ) -> Result<JwtSource, Error> {
        options.check()?;
        let shared = Arc::new(Shared::<JwtBundleSet>::new());
        let task = {
            let shared = Arc::clone(&shared);
            let client = client.clone();
            let opts = options.clone();
            tokio::spawn(async move {
                run(shared, opts, || client.watch_jwt_bundles(), Ok, || {}).await;
            })
        };
        let task = Arc::new(Task(task));
        shared.wait_for_update(0, options.initial_timeout).await?;
        Ok(JwtSource {
            shared,
            client,
            selector: options.selector,
            task,
        })
    }

    /// The current JWT bundles.
    pub fn bundles(&self) -> Result<Arc<JwtBundleSet>, Error> {
        self.shared.current().ok_or_else(|| {
            self.shared
                .status()
                .last_error
                .unwrap_or(WorkloadClientError::Closed)
                .into()
        })
    }

    /// A JWT-SVID for `audiences` from the server, picked by the source's selector.
    pub async fn fetch_svid<S: AsRef<str>>(&self, audiences: &[S]) -> Result<JwtSvidToken, Error> {
        self.client.fetch_jwt_svid(audiences, &self.selector).await
    }

    /// Validates `token` locally by `policy` against the current bundles (the bundle of the
    /// token's own trust domain, never a pool).
    pub fn validate(&self, token: &str, policy: &JwtPolicy) -> Result<JwtSvid, Error> {
        let bundles = self.bundles()?;
        Ok(crate::jwt::validate(token, &bundles, policy)?)
    }

    /// Health and the last error.
    pub fn status(&self) -> SourceStatus {
        self.shared.status()
    }

    /// The number of bundle updates so far.
    pub fn generation(&self) -> u64 {
        *self.shared.generation.borrow()
    }

    /// Waits for a bundle update after `after`, as [`X509Source::wait_for_update`].
    pub async fn wait_for_update(&self, after: u64, timeout: Duration) -> Result<u64, Error> {
        self.shared.wait_for_update(after, timeout).await
    }

    /// The client the source uses.
    pub fn client(&self) -> &WorkloadApiClient {
        &self.client
    }

    /// Stops the background task.
    pub fn close(&self) {
        self.task.0.abort();
        self.shared.with_status(|s| s.stopped = true);
    }
}
