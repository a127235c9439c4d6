//! The acceptor's side: what ztunnel does on a pod's port 15008, for a process written with
//! meshtls that mesh workloads reach over HBONE.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::io::BatchedTls;
use super::stream::HboneStream;
use super::{
    ALPN_H2, CONNECT_TIMEOUT, CONNECTION_WINDOW, DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_HEADER_LIST_SIZE, MAX_FRAME_SIZE, MAX_SEND_BUFFER, STREAM_WINDOW,
};
use crate::authz::{self, Authorizer};
use crate::error::{Error, HboneError};
use crate::identity::IstioIdentity;
use crate::tls::{
    MtlsParams, MtlsServerConfig, Peer, ServerConfigBuilder, TlsMaterial, TlsVersion,
};

/// How many accepted CONNECTs may wait for [`HboneListener::accept`]; more are answered 503.
const ACCEPT_QUEUE: usize = 1024;
/// How many connections an acceptor serves at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 10_000;

/// The authorizer ztunnel applies to clients: an Istio identity
/// (`spiffe://<td>/ns/<ns>/sa/<sa>`) in the trust domain of the server's own SVID, no aliases.
pub fn istio_same_trust_domain(material: &TlsMaterial) -> Arc<dyn Authorizer> {
    let td = material.spiffe_id().trust_domain();
    authz::from_fn(
        format!(
            "an istio identity spiffe://{td}/ns/<ns>/sa/<sa> (same trust domain as the server)"
        ),
        move |peer| {
            IstioIdentity::from_spiffe_id(peer).is_ok_and(|istio| istio.trust_domain() == &td)
        },
    )
}

/// Builds an [`HboneServer`].
#[derive(Debug)]
pub struct HboneServerBuilder {
    material: TlsMaterial,
    authorizer: Option<Arc<dyn Authorizer>>,
    policy: Option<Arc<dyn Authorizer>>,
    ports: Option<HashSet<u16>>,
    max_concurrent_streams: u32,
    max_header_list_size: u32,
}

impl HboneServerBuilder {
    /// An acceptor presenting `material`'s SVID (the workload's own identity) and verifying
    /// clients with its bundles.
    pub fn new(material: TlsMaterial) -> Self {
        HboneServerBuilder {
            material,
            authorizer: None,
            policy: None,
            ports: None,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
        }
    }

    /// Who may complete the TLS handshake (default [`istio_same_trust_domain`], as ztunnel).
    /// A refused client fails the handshake.
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// An authorization policy per CONNECT: a refused client's CONNECT is answered 401, as
    /// ztunnel answers when an AuthorizationPolicy denies (default: none).
    pub fn policy(mut self, policy: Arc<dyn Authorizer>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The target ports served; a CONNECT to another port is answered 503 (default: any port).
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = Some(ports.into_iter().collect());
        self
    }

    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` (default 200, as ztunnel).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = n;
        self
    }

    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` (default 64 KiB, as ztunnel).
    pub fn max_header_list_size(mut self, n: u32) -> Self {
        self.max_header_list_size = n;
        self
    }

    /// Builds the acceptor: TLS 1.3 only, ALPN `h2`, client certificate required, no session
    /// resumption.
    pub fn build(self) -> Result<HboneServer, Error> {
        let authorizer = self
            .authorizer
            .unwrap_or_else(|| istio_same_trust_domain(&self.material));
        let tls = ServerConfigBuilder::new(self.material)
            .params(MtlsParams::istio_default().with_min_version(TlsVersion::Tls13)?)
            .max_version(TlsVersion::Tls13)
            .alpn_protocols([ALPN_H2])
            .authorizer(authorizer)
            .session_resumption(false)
            .build()?;
        Ok(HboneServer {
            inner: Arc::new(ServerInner {
                tls,
                policy: self.policy,
                ports: self.ports,
                max_concurrent_streams: self.max_concurrent_streams,
                max_header_list_size: self.max_header_list_size,
            }),
        })
    }
}

#[derive(Debug)]
struct ServerInner {
    tls: MtlsServerConfig,
    policy: Option<Arc<dyn Authorizer>>,
    ports: Option<HashSet<u16>>,
    max_concurrent_streams: u32,
    max_header_list_size: u32,
}

/// An HBONE acceptor's settings; [`HboneServer::bind`] starts one.
#[derive(Debug, Clone)]
pub struct HboneServer {
    inner: Arc<ServerInner>,
}

impl HboneServer {
    /// The TLS configuration it serves with.
    pub fn tls_config(&self) -> &MtlsServerConfig {
        &self.inner.tls
    }

    /// Listens on `address` (ztunnel's port is [`HBONE_PORT`](super::HBONE_PORT)).
    pub async fn bind(&self, address: SocketAddr) -> Result<HboneListener, Error> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| HboneError::Listener {
                address: address.to_string(),
                reason: e.to_string(),
            })?;
        self.listen(listener)
    }

    /// Serves connections arriving on `listener`, in tasks of the current tokio runtime; the
    /// CONNECTs that pass come out of [`HboneListener::accept`].
    pub fn listen(&self, listener: TcpListener) -> Result<HboneListener, Error> {
        let local_addr = listener.local_addr().map_err(|e| HboneError::Listener {
            address: "?".to_owned(),
            reason: e.to_string(),
        })?;
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&self.inner), tx));
        Ok(HboneListener {
            local_addr,
            rx,
            task,
        })
    }
}

/// A running acceptor. Dropping it stops accepting connections (streams already handed out
/// keep working).
#[derive(Debug)]
pub struct HboneListener {
    local_addr: SocketAddr,
    rx: mpsc::Receiver<HboneRequest>,
    task: JoinHandle<()>,
}

impl Drop for HboneListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HboneListener {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next CONNECT that passed every check (TLS, client identity, method, authority,
    /// port, policy), not yet answered: [`HboneRequest::accept`] answers 200 and gives the
    /// stream. `None` when the listener failed.
    pub async fn accept(&mut self) -> Option<HboneRequest> {
        self.rx.recv().await
    }

    /// Forwards every tunnel to `upstream`, answering 503 when nothing listens there, until
    /// the listener fails.
    pub async fn forward(mut self, upstream: Upstream) {
        while let Some(request) = self.accept().await {
            tokio::spawn(async move {
                let _ = request.forward(upstream).await;
            });
        }
    }
}

/// Where [`HboneListener::forward`] sends a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// Always this address (`meshtls hbone serve --forward 127.0.0.1:8080`).
    Address(SocketAddr),
    /// The CONNECT target's port on this IP (ztunnel's in-pod mode: the app's port on the
    /// pod's address; `127.0.0.1` for an app on loopback).
    TargetPortOn(IpAddr),
}

/// One CONNECT that passed the acceptor's checks, not yet answered.
#[derive(Debug)]
pub struct HboneRequest {
    peer: Arc<Peer>,
    target: SocketAddr,
    headers: HeaderMap,
    respond: h2::server::SendResponse<Bytes>,
    body: h2::RecvStream,
}

impl HboneRequest {
    /// The authenticated client (its SPIFFE ID, the negotiated TLS parameters).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The CONNECT target (`:authority`), whose IP is the address the connection arrived on.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The request's headers (`baggage`, `traceparent`, `forwarded` when the caller sent them).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Answers 200 and returns the tunnel.
    pub fn accept(mut self) -> Result<HboneStream, Error> {
        let send = self
            .respond
            .send_response(status_response(StatusCode::OK), false)
            .map_err(|e| HboneError::Closed {
                via: self.target.to_string(),
                reason: e.to_string(),
            })?;
        Ok(HboneStream::new(send, self.body, None))
    }

    /// Refuses the tunnel with `status` (401 denied by policy, 503 no upstream, 400 bad
    /// request are what ztunnel answers).
    pub fn refuse(mut self, status: StatusCode) {
        let _ = self.respond.send_response(status_response(status), true);
    }

    /// Connects to `upstream` and copies bytes both ways until both sides end; 503 when the
    /// connection to the upstream fails.
    pub async fn forward(self, upstream: Upstream) -> Result<(), Error> {
        let address = match upstream {
            Upstream::Address(a) => a,
            Upstream::TargetPortOn(ip) => SocketAddr::new(ip, self.target.port()),
        };
        let dialled = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await;
        let mut tcp = match dialled {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                self.refuse(StatusCode::SERVICE_UNAVAILABLE);
                return Err(HboneError::Unreachable {
                    via: address.to_string(),
                    reason: e.to_string(),
                }
                .into());
            }
            Err(_) => {
                self.refuse(StatusCode::SERVICE_UNAVAILABLE);
                return Err(HboneError::Unreachable {
                    via: address.to_string(),
                    reason: format!("no connection within {CONNECT_TIMEOUT:?}"),
                }
                .into());
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut stream = self.accept()?;
        tokio::io::copy_bidirectional(&mut stream, &mut tcp)
            .await
            .map_err(|e| HboneError::Closed {
                via: address.to_string(),
                reason: e.to_string(),
            })?;
        Ok(())
    }
}

fn status_response(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<ServerInner>,
    tx: mpsc::Sender<HboneRequest>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors and the like: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let server = Arc::clone(&server);
        let tx = tx.clone();
        tokio::spawn(async move {
            serve_connection(tcp, server, tx).await;
            drop(permit);
        });
    }
}

/// The IP an authority names must be the one the connection arrived on (IPv4-mapped IPv6 and
/// IPv4 compare equal).
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

async fn serve_connection(
    tcp: TcpStream,
    server: Arc<ServerInner>,
    tx: mpsc::Sender<HboneRequest>,
) {
    let Ok(local) = tcp.local_addr() else { return };
    let _ = tcp.set_nodelay(true);
    let acceptor = TlsAcceptor::from(server.tls.rustls_config());
    let tls = match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        _ => return,
    };
    let Ok(peer) = server.tls.check_connection(tls.get_ref().1) else {
        return;
    };
    let peer = Arc::new(peer);
    let handshake = h2::server::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_concurrent_streams(server.max_concurrent_streams)
        .max_header_list_size(server.max_header_list_size)
        .handshake::<_, Bytes>(BatchedTls::new(tls));
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(conn)) => conn,
        _ => return,
    };
    while let Some(next) = conn.accept().await {
        let Ok((request, respond)) = next else { break };
        if let Some(request) = check(&server, local, &peer, request, respond) {
            if let Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) =
                tx.try_send(request)
            {
                r.refuse(StatusCode::SERVICE_UNAVAILABLE);
            }
        }
    }
}

/// ztunnel's checks of one CONNECT, answering refusals itself.
fn check(
    server: &ServerInner,
    local: SocketAddr,
    peer: &Arc<Peer>,
    request: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) -> Option<HboneRequest> {
    let mut refuse = |status| {
        let _ = respond.send_response(status_response(status), true);
    };
    if request.method() != Method::CONNECT {
        refuse(StatusCode::BAD_REQUEST);
        return None;
    }
    let target = request
        .uri()
        .authority()
        .and_then(|a| a.as_str().parse::<SocketAddr>().ok());
    let Some(target) = target else {
        refuse(StatusCode::BAD_REQUEST);
        return None;
    };
    if !same_ip(target.ip(), local.ip()) {
        refuse(StatusCode::BAD_REQUEST);
        return None;
    }
    if server
        .ports
        .as_ref()
        .is_some_and(|ports| !ports.contains(&target.port()))
    {
        refuse(StatusCode::SERVICE_UNAVAILABLE);
        return None;
    }
    if let Some(policy) = &server.policy {
        if !policy.allows(peer.spiffe_id()) {
            refuse(StatusCode::UNAUTHORIZED);
            return None;
        }
    }
    let (parts, body) = request.into_parts();
    Some(HboneRequest {
        peer: Arc::clone(peer),
        target,
        headers: parts.headers,
        respond,
        body,
    })
}
