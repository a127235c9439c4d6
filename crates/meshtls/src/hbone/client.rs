//! The caller's side: TLS 1.3 to `<pod>:15008`, HTTP/2 CONNECT, and a pool of connections per
//! (source identity, destination identity, address) as ztunnel keeps them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::io::BatchedTls;
use super::stream::{HboneStream, OnDrop};
use super::{
    ALPN_H2, CONNECT_TIMEOUT, CONNECTION_WINDOW, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_STREAMS_PER_CONNECTION, STREAM_WINDOW,
};
use crate::error::{Error, HboneError};
use crate::identity::SpiffeId;
use crate::tls::{ClientConfigBuilder, TlsMaterial, TlsVersion, server_name_for};

/// How an [`HboneClient`] pools and times out, with ztunnel's defaults.
#[derive(Debug, Clone)]
pub struct HboneClientConfig {
    /// Streams one connection carries at most before another is opened (ztunnel: 100).
    pub max_streams_per_connection: usize,
    /// A connection without streams for this long is closed (ztunnel: 5 minutes).
    pub idle_timeout: Duration,
    /// The most a TCP connect, the TLS handshake, the HTTP/2 handshake and the CONNECT answer
    /// may each take.
    pub connect_timeout: Duration,
    /// Headers sent with every CONNECT (e.g. `baggage`, `traceparent`, `forwarded`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Default for HboneClientConfig {
    fn default() -> Self {
        HboneClientConfig {
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            headers: Vec::new(),
        }
    }
}

impl HboneClientConfig {
    /// Adds a header sent with every CONNECT; refused when the name or value is not valid
    /// HTTP/2 (or is a pseudo-header or connection-specific header).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let bad = |rule: String| HboneError::Invalid {
            what: "header",
            value: format!("{name}: {value}"),
            rule,
        };
        let n = HeaderName::try_from(name).map_err(|e| bad(e.to_string()))?;
        if matches!(
            n.as_str(),
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "te"
                | "host"
        ) {
            return Err(
                bad("connection-specific headers are not allowed in HTTP/2".to_owned()).into(),
            );
        }
        let v = HeaderValue::try_from(value).map_err(|e| bad(e.to_string()))?;
        self.headers.push((n, v));
        Ok(self)
    }
}

/// Which connections may carry a stream: ztunnel's pool key (one source and one destination
/// identity per connection, per address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    source: SpiffeId,
    destination: SpiffeId,
    via: SocketAddr,
}

/// What a pooled connection and its streams share.
#[derive(Debug)]
struct Shared {
    id: u64,
    /// Streams open or being set up on the connection.
    active: AtomicUsize,
    closed: AtomicBool,
    idle_since: Mutex<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl OnDrop for Arc<Shared> {
    fn stream_closed(&self) {
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            *lock(&self.idle_since) = Instant::now();
        }
    }
}

struct Pooled {
    send: h2::client::SendRequest<Bytes>,
    shared: Arc<Shared>,
}

type Pool = Mutex<HashMap<PoolKey, Vec<Pooled>>>;

#[derive(Debug)]
struct Inner {
    config: HboneClientConfig,
    pool: Pool,
    dialing: Mutex<HashMap<PoolKey, Arc<tokio::sync::Mutex<()>>>>,
    next_id: AtomicUsize,
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("shared", &self.shared)
            .finish()
    }
}

/// An HBONE client: opens tunnels through ztunnel (or any HBONE server) and pools the
/// connections they ride on.
///
/// Cheap to clone (clones share the pool). Each connection is TLS 1.3 with ALPN `h2`, no SNI
/// and no session resumption; it presents the source's SVID and requires the server to present
/// exactly the destination's SPIFFE ID. Streams to the same (source, destination, address)
/// share a connection up to [`HboneClientConfig::max_streams_per_connection`]; connections
/// without streams close after [`HboneClientConfig::idle_timeout`]. The connections are driven
/// by tasks on the tokio runtime of the call that opened them.
#[derive(Debug, Clone)]
pub struct HboneClient {
    inner: Arc<Inner>,
}

impl Default for HboneClient {
    fn default() -> Self {
        Self::new(HboneClientConfig::default())
    }
}

/// Why a stream could not be opened on a pooled connection: try a new one, or give up.
enum Attempt {
    Retry(HboneError),
    Fail(HboneError),
}

impl HboneClient {
    /// A client with its own, empty pool. Refuses nothing: a cap of 0 streams is treated as 1.
    pub fn new(config: HboneClientConfig) -> Self {
        HboneClient {
            inner: Arc::new(Inner {
                config,
                pool: Mutex::new(HashMap::new()),
                dialing: Mutex::new(HashMap::new()),
                next_id: AtomicUsize::new(1),
            }),
        }
    }

    /// The process-wide client that [`connect`](super::connect) uses.
    pub fn shared() -> &'static HboneClient {
        static SHARED: OnceLock<HboneClient> = OnceLock::new();
        SHARED.get_or_init(HboneClient::default)
    }

    /// The settings.
    pub fn config(&self) -> &HboneClientConfig {
        &self.inner.config
    }

    /// Open connections (for tests and metrics).
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.pool)
            .values()
            .map(|v| {
                v.iter()
                    .filter(|p| !p.shared.closed.load(Ordering::Acquire))
                    .count()
            })
            .sum()
    }

    /// Opens a tunnel to `target` (the pod's `ip:port`) through the HBONE server at `via`
    /// (the pod's `ip:15008`), presenting `material`'s SVID and requiring the server to be
    /// `expected` (the destination's service-account identity).
    ///
    /// Errors: [`HboneError::Unreachable`], [`HboneError::Tls`], [`HboneError::PeerIdentity`],
    /// [`HboneError::Denied`] (401), [`HboneError::NoUpstream`] (503),
    /// [`HboneError::BadRequest`] (400), [`HboneError::Status`], [`HboneError::Reset`],
    /// [`HboneError::Closed`].
    pub async fn connect(
        &self,
        via: SocketAddr,
        target: SocketAddr,
        material: &TlsMaterial,
        expected: &SpiffeId,
    ) -> Result<HboneStream, Error> {
        let key = PoolKey {
            source: material.spiffe_id(),
            destination: expected.clone(),
            via,
        };
        // A pooled connection that turns out closed is dropped and the next one tried; a new
        // connection gets one attempt.
        for _ in 0..4 {
            let Some((send, shared)) = self.checkout(&key) else {
                break;
            };
            match self.open_stream(send, shared, via, target, false).await {
                Ok(stream) => return Ok(stream),
                Err(Attempt::Retry(_)) => continue,
                Err(Attempt::Fail(e)) => return Err(e.into()),
            }
        }
        // One dial per key at a time: callers that arrive meanwhile take slots on the
        // connection it makes instead of dialling their own.
        let gate = {
            let mut gates = lock(&self.inner.dialing);
            gates.retain(|_, g| Arc::strong_count(g) > 1);
            Arc::clone(gates.entry(key.clone()).or_default())
        };
        let _dialing = gate.lock().await;
        if let Some((send, shared)) = self.checkout(&key) {
            match self.open_stream(send, shared, via, target, false).await {
                Ok(stream) => return Ok(stream),
                Err(Attempt::Fail(e)) => return Err(e.into()),
                Err(Attempt::Retry(_)) => {}
            }
        }
        let (send, shared) = self.dial(&key, material).await?;
        drop(_dialing);
        match self.open_stream(send, shared, via, target, true).await {
            Ok(stream) => Ok(stream),
            Err(Attempt::Retry(e) | Attempt::Fail(e)) => Err(e.into()),
        }
    }

    /// A pooled connection for `key` with a free stream slot, its count already taken.
    fn checkout(&self, key: &PoolKey) -> Option<(h2::client::SendRequest<Bytes>, Arc<Shared>)> {
        let cap = self.inner.config.max_streams_per_connection.max(1);
        let mut pool = lock(&self.inner.pool);
        let conns = pool.get_mut(key)?;
        conns.retain(|p| !p.shared.closed.load(Ordering::Acquire));
        let p = conns
            .iter()
            .find(|p| p.shared.active.load(Ordering::Acquire) < cap)?;
        p.shared.active.fetch_add(1, Ordering::AcqRel);
        Some((p.send.clone(), Arc::clone(&p.shared)))
    }

    /// Dials a new connection for `key`, puts it in the pool with one stream slot taken.
    async fn dial(
        &self,
        key: &PoolKey,
        material: &TlsMaterial,
    ) -> Result<(h2::client::SendRequest<Bytes>, Arc<Shared>), HboneError> {
        let via = key.via;
        let timeout = self.inner.config.connect_timeout;
        let tls_config = ClientConfigBuilder::new(material.clone())
            .expect_server_ids([key.destination.clone()])
            .versions(TlsVersion::Tls13, TlsVersion::Tls13)
            .and_then(|b| {
                b.alpn_protocols([ALPN_H2])
                    .sni(false)
                    .session_resumption(false)
                    .build()
            })
            .map_err(|e| HboneError::Tls {
                via: via.to_string(),
                reason: e.to_string(),
            })?;
        let unreachable = |reason: String| HboneError::Unreachable {
            via: via.to_string(),
            reason,
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(via))
            .await
            .map_err(|_| unreachable(format!("no connection within {timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let server_name = server_name_for(None).map_err(|e| HboneError::Tls {
            via: via.to_string(),
            reason: e.to_string(),
        })?;
        let connector = TlsConnector::from(tls_config.rustls_config());
        let tls = tokio::time::timeout(timeout, connector.connect(server_name, tcp))
            .await
            .map_err(|_| HboneError::Tls {
                via: via.to_string(),
                reason: format!("no handshake within {timeout:?}"),
            })?
            .map_err(|e| handshake_error(via, &key.destination, &e))?;
        if tls.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(HboneError::Tls {
                via: via.to_string(),
                reason: "the server did not select ALPN h2".to_owned(),
            });
        }
        let (send, connection) = tokio::time::timeout(
            timeout,
            h2::client::Builder::new()
                .initial_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .max_frame_size(super::MAX_FRAME_SIZE)
                .max_send_buffer_size(super::MAX_SEND_BUFFER)
                .handshake::<_, Bytes>(BatchedTls::new(tls)),
        )
        .await
        .map_err(|_| HboneError::Closed {
            via: via.to_string(),
            reason: format!("no http/2 handshake within {timeout:?}"),
        })?
        .map_err(|e| HboneError::Closed {
            via: via.to_string(),
            reason: e.to_string(),
        })?;
        let shared = Arc::new(Shared {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed) as u64,
            active: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
        });
        lock(&self.inner.pool)
            .entry(key.clone())
            .or_default()
            .push(Pooled {
                send: send.clone(),
                shared: Arc::clone(&shared),
            });
        tokio::spawn(drive(
            connection,
            Arc::clone(&shared),
            Arc::downgrade(&self.inner),
            key.clone(),
            self.inner.config.idle_timeout,
        ));
        Ok((send, shared))
    }

    /// Sends the CONNECT on a connection whose stream slot is taken, waits for the answer.
    async fn open_stream(
        &self,
        send: h2::client::SendRequest<Bytes>,
        shared: Arc<Shared>,
        via: SocketAddr,
        target: SocketAddr,
        fresh: bool,
    ) -> Result<HboneStream, Attempt> {
        // From here on the slot is released by the guard (or by the stream that takes it over).
        let guard: Box<dyn OnDrop> = Box::new(Arc::clone(&shared));
        let guard = SlotGuard(Some(guard));
        let closed = |e: h2::Error| {
            // In TLS 1.3 the server judges our certificate after our handshake ended: its
            // refusal arrives as an alert on the first read.
            // h2 keeps only the text of an I/O error, so the alert is recognised by rustls's
            // wording.
            let text = e.to_string();
            if e.is_io() && (fresh || text.contains("received fatal alert")) {
                shared.closed.store(true, Ordering::Release);
                return Attempt::Fail(HboneError::Tls {
                    via: via.to_string(),
                    reason: format!(
                        "the server closed the new connection before answering the first CONNECT ({text}): it refused our certificate or protocol"
                    ),
                });
            }
            let err = HboneError::Closed {
                via: via.to_string(),
                reason: e.to_string(),
            };
            // A connection that went away before our stream started: use another one.
            if e.is_go_away() || e.is_io() || e.reason() == Some(h2::Reason::REFUSED_STREAM) {
                shared.closed.store(true, Ordering::Release);
                Attempt::Retry(err)
            } else {
                Attempt::Fail(stream_error(target, err, e))
            }
        };
        let timeout = self.inner.config.connect_timeout;
        let mut ready = tokio::time::timeout(timeout, send.ready())
            .await
            .map_err(|_| {
                Attempt::Fail(HboneError::Closed {
                    via: via.to_string(),
                    reason: format!("no stream slot within {timeout:?}"),
                })
            })?
            .map_err(|e| gone(&shared, via, e, fresh))?;
        let mut request = Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.uri_mut() = http::Uri::try_from(target.to_string()).map_err(|e| {
            Attempt::Fail(HboneError::Invalid {
                what: "target",
                value: target.to_string(),
                rule: e.to_string(),
            })
        })?;
        for (name, value) in &self.inner.config.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        let (response, send_stream) = ready
            .send_request(request, false)
            .map_err(|e| gone(&shared, via, e, fresh))?;
        let response = tokio::time::timeout(timeout, response)
            .await
            .map_err(|_| {
                Attempt::Fail(HboneError::Closed {
                    via: via.to_string(),
                    reason: format!("no answer to CONNECT within {timeout:?}"),
                })
            })?
            .map_err(closed)?;
        let t = target.to_string();
        let v = via.to_string();
        let refusal = match response.status() {
            StatusCode::OK => None,
            StatusCode::UNAUTHORIZED => Some(HboneError::Denied { target: t, via: v }),
            StatusCode::SERVICE_UNAVAILABLE => Some(HboneError::NoUpstream { target: t, via: v }),
            StatusCode::BAD_REQUEST => Some(HboneError::BadRequest { target: t, via: v }),
            other => Some(HboneError::Status {
                target: t,
                via: v,
                status: other.as_u16(),
            }),
        };
        if let Some(e) = refusal {
            return Err(Attempt::Fail(e));
        }
        Ok(HboneStream::new(
            send_stream,
            response.into_body(),
            guard.take(),
        ))
    }
}

/// A connection that cannot start a stream (closed, its driving task gone with its runtime):
/// taken out of use; a pooled one is retried on another connection.
fn gone(shared: &Shared, via: SocketAddr, e: h2::Error, fresh: bool) -> Attempt {
    shared.closed.store(true, Ordering::Release);
    let text = e.to_string();
    if fresh {
        return Attempt::Fail(HboneError::Tls {
            via: via.to_string(),
            reason: format!(
                "the server closed the new connection before the first CONNECT ({text}): it refused our certificate or protocol"
            ),
        });
    }
    Attempt::Retry(HboneError::Closed {
        via: via.to_string(),
        reason: text,
    })
}

/// Releases a stream slot unless a stream took it over.
struct SlotGuard(Option<Box<dyn OnDrop>>);

impl SlotGuard {
    fn take(mut self) -> Option<Box<dyn OnDrop>> {
        self.0.take()
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            d.stream_closed();
        }
    }
}

fn stream_error(target: SocketAddr, closed: HboneError, e: h2::Error) -> HboneError {
    match e.reason() {
        Some(reason) if !e.is_go_away() => HboneError::Reset {
            target: target.to_string(),
            reason: format!("{reason:?}"),
        },
        _ => closed,
    }
}

/// A failed handshake: the server's identity when our verifier refused its SPIFFE ID, TLS
/// otherwise.
fn handshake_error(via: SocketAddr, expected: &SpiffeId, e: &std::io::Error) -> HboneError {
    let reason = crate::tls::handshake_error_message(e);
    let identity = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|tls| match tls {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<Error>()
            }
            _ => None,
        })
        .is_some_and(|ours| matches!(ours, Error::Authz(_)));
    if identity {
        HboneError::PeerIdentity {
            via: via.to_string(),
            expected: expected.to_string(),
            reason,
        }
    } else {
        HboneError::Tls {
            via: via.to_string(),
            reason,
        }
    }
}

/// Drives one connection until it fails, the peer closes it, or it has been idle for
/// `idle_timeout`; then takes it out of the pool.
async fn drive(
    mut connection: h2::client::Connection<
        BatchedTls<tokio_rustls::client::TlsStream<TcpStream>>,
        Bytes,
    >,
    shared: Arc<Shared>,
    inner: Weak<Inner>,
    key: PoolKey,
    idle_timeout: Duration,
) {
    let period = (idle_timeout / 4)
        .max(Duration::from_millis(10))
        .min(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = &mut connection => break,
            () = tokio::time::sleep(period) => {
                let Some(inner) = inner.upgrade() else { break };
                // Decided under the pool's lock, so no stream is checked out meanwhile.
                let mut pool = lock(&inner.pool);
                // Idle long enough, or taken out of use and without streams.
                let idle = shared.active.load(Ordering::Acquire) == 0
                    && (shared.closed.load(Ordering::Acquire)
                        || lock(&shared.idle_since).elapsed() >= idle_timeout);
                if idle {
                    shared.closed.store(true, Ordering::Release);
                    remove(&mut pool, &key, shared.id);
                    break;
                }
            }
        }
    }
    shared.closed.store(true, Ordering::Release);
    if let Some(inner) = inner.upgrade() {
        remove(&mut lock(&inner.pool), &key, shared.id);
    }
}

fn remove(pool: &mut HashMap<PoolKey, Vec<Pooled>>, key: &PoolKey, id: u64) {
    if let Some(conns) = pool.get_mut(key) {
        conns.retain(|p| p.shared.id != id);
        if conns.is_empty() {
            pool.remove(key);
        }
    }
}
