//! The server's transport: tonic's server (HTTP/2 by hyper, gRPC framing and status by
//! tonic, the unary call by [`tonic::server::Grpc`] with [`tonic_prost::ProstCodec`]) on TLS
//! connections accepted here with tokio-rustls and the crate's rustls config, so that the
//! caller's client certificate chain reaches [`IstioCaServer::answer`] (a connection's
//! [`tonic::transport::server::Connected`] info). The service is written without generated
//! code: one method, routed by its path.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::body::Body;
use tonic::server::{Grpc, UnaryService};
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use super::grpc::CodeName as _;
use super::messages::{CREATE_CERTIFICATE_PATH, IstioCertificateRequest, IstioCertificateResponse};
use super::server::{CallContext, IstioCaServer};
use crate::error::{CaProtocolError, Error};

/// The largest request message accepted (64 KiB: a CSR is about 1 KiB).
const MAX_REQUEST_MESSAGE: usize = 64 * 1024;
/// The largest answer sent (gRPC's usual 4 MiB; a chain is a few KiB).
const MAX_ANSWER_MESSAGE: usize = 4 * 1024 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call may take to send its request (a client that stops sending loses the
/// call, not the server's memory).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls in flight on one connection.
const MAX_STREAMS: u32 = 200;
/// The largest header list of a call (the token is about 1 KiB).
const MAX_HEADER_LIST: u32 = 16 * 1024;
/// HTTP/2 flow-control windows (a stream's and the connection's).
const WINDOW: u32 = 1024 * 1024;
/// How long a stopping server waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The client certificate chain of a connection, leaf first (empty without one); tonic puts
/// it into each request's extensions.
#[derive(Debug, Clone)]
struct PeerChain(Arc<[CertificateDer<'static>]>);

/// One accepted TLS connection as tonic's server sees it: its I/O, its peer chain, and the
/// server's stop switch (once the grace period after shutdown has passed, the connection's
/// reads and writes fail, which ends it).
struct CaConn {
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    chain: PeerChain,
    killed: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
}

impl CaConn {
    fn new(
        tls: tokio_rustls::server::TlsStream<TcpStream>,
        mut kill: watch::Receiver<bool>,
    ) -> Self {
        let chain = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        CaConn {
            tls,
            chain: PeerChain(chain),
            killed: Box::pin(async move {
                // A dropped sender (the server gone) kills too.
                let _ = kill.wait_for(|k| *k).await;
            }),
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        match self.killed.as_mut().poll(cx) {
            Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the ca server stopped",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl Connected for CaConn {
    type ConnectInfo = PeerChain;

    fn connect_info(&self) -> PeerChain {
        self.chain.clone()
    }
}

impl AsyncRead for CaConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for CaConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.tls).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}

/// Serves on `listener` with `tls` until `shutdown` completes; see [`IstioCaServer::serve`].
pub(crate) async fn serve<F>(
    server: IstioCaServer,
    tls: Arc<rustls::ServerConfig>,
    listener: TcpListener,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // `stopping`: shutdown began (stop accepting, GOAWAY); `kill`: the grace period is over.
    let (stopping_tx, stopping) = watch::channel(false);
    let (kill_tx, kill) = watch::channel(false);
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel::<Result<CaConn, Infallible>>(64);
    let accept = tokio::spawn(accept_loop(
        listener,
        acceptor,
        conn_tx,
        stopping.clone(),
        kill,
    ));
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    };
    let serving = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS)
        .http2_max_header_list_size(MAX_HEADER_LIST)
        .initial_stream_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .serve_with_incoming_shutdown(
            CaService { server },
            tokio_stream::wrappers::ReceiverStream::new(conn_rx),
            signal,
        );
    tokio::pin!(serving);
    let mut stopped = stopping.clone();
    let grace_over = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let result = tokio::select! {
        r = &mut serving => r,
        () = grace_over => {
            log::info!("ca server: connections still open after {SHUTDOWN_GRACE:?}, closed");
            Ok(())
        }
    };
    let _ = kill_tx.send(true);
    accept.abort();
    result.map_err(|e| {
        CaProtocolError::Config {
            what: "server",
            value: "serve".to_owned(),
            rule: e.to_string(),
        }
        .into()
    })
}

/// Accepts TCP connections and runs their TLS handshakes concurrently (each within
/// [`HANDSHAKE_TIMEOUT`]); a failed handshake never stops the server. Closes the listener as
/// soon as `stopping` turns true.
async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    conns: tokio::sync::mpsc::Sender<Result<CaConn, Infallible>>,
    mut stopping: watch::Receiver<bool>,
    kill: watch::Receiver<bool>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
            _ = stopping.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                log::warn!("ca server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, conns, kill) = (acceptor.clone(), conns.clone(), kill.clone());
        handshakes.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = conns.send(Ok(CaConn::new(tls, kill))).await;
                }
                Ok(Err(e)) => log::info!("ca server: tls handshake with {peer} failed: {e}"),
                Err(_) => log::info!("ca server: tls handshake with {peer} timed out"),
            }
        });
    }
}

/// `IstioCertificateService` as a tower service for tonic's server (what generated code
/// would be; written by hand, as the messages are).
#[derive(Clone)]
struct CaService {
    server: IstioCaServer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<Body>> for CaService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let server = self.server.clone();
        Box::pin(async move { Ok(route(server, request).await) })
    }
}

/// One call: route, read, answer.
async fn route(server: IstioCaServer, request: http::Request<Body>) -> http::Response<Body> {
    if request.method() != http::Method::POST || request.uri().path() != CREATE_CERTIFICATE_PATH {
        log::warn!(
            "ca server: UNIMPLEMENTED: {} {} is not a method of this service",
            request.method(),
            request.uri().path()
        );
        return Status::unimplemented("unknown method").into_http();
    }
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_grpc_content_type(content_type) {
        log::warn!("ca server: content-type {content_type:?} is not application/grpc");
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(status) => {
            log::warn!("ca server: {} ({})", status.code().name(), status.message());
            return status.into_http();
        }
    };
    let answered = Arc::new(AtomicBool::new(false));
    let mut grpc = Grpc::new(tonic_prost::ProstCodec::default())
        .apply_max_message_size_config(Some(MAX_REQUEST_MESSAGE), Some(MAX_ANSWER_MESSAGE));
    let method = CreateCertificate {
        server,
        answered: answered.clone(),
    };
    let request = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(body)));
    let response = grpc.unary(method, request).await;
    if !answered.load(Ordering::Relaxed) {
        // tonic refused the request before the method saw it (a message it cannot decode).
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map_or("?", |c| tonic::Code::from_i32(c).name());
        log::warn!("ca server: {code}: the request message was not decoded");
    }
    response
}

/// `application/grpc`, optionally with a `+format` or `;parameters` suffix. Kept because
/// tonic 0.14's server does not look at the content type, and gRPC's HTTP/2 protocol
/// document asks for HTTP 415 when it is not gRPC's (the raw HTTP/2 test of
/// python/tests/test_ca_protocol.py checks it).
fn is_grpc_content_type(value: &str) -> bool {
    match value.strip_prefix("application/grpc") {
        Some(rest) => rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'),
        None => false,
    }
}

/// Reads a call's whole body, at most one 64 KiB message and its 5-byte prefix, within
/// [`REQUEST_TIMEOUT`]. Kept because tonic 0.14's unary server bounds each message but not
/// the body: it reads the first message and then drains any number more (80,000 bytes of
/// zeros are 16,000 empty messages, read to the end before the method runs, for as long as the
/// client keeps sending). Two rules of the prefix are checked here too, where tonic differs
/// from grpc-go (istiod's gRPC): a message announced over the limit is RESOURCE_EXHAUSTED
/// (tonic says OUT_OF_RANGE), and a second message in a unary call is refused (tonic drops it
/// unread). The decoding itself is tonic's.
async fn read_body(mut body: Body) -> Result<Bytes, Status> {
    let limit = 5 + MAX_REQUEST_MESSAGE;
    let mut data = BytesMut::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| Status::cancelled(format!("request stream failed: {e}")))?;
            if let Ok(chunk) = frame.into_data() {
                if data.len() + chunk.len() > limit {
                    return Err(Status::resource_exhausted("request message too large"));
                }
                data.extend_from_slice(&chunk);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Err(Status::deadline_exceeded("request not received in time")),
    }
    if let Some(prefix) = data.get(1..5) {
        let announced = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if announced > MAX_REQUEST_MESSAGE {
            return Err(Status::resource_exhausted("request message too large"));
        }
        if data.len() > 5 + announced {
            return Err(Status::internal("more than one request message"));
        }
    }
    Ok(data.freeze())
}

/// The one method: the transport's facts into a [`CallContext`], the answer from
/// [`IstioCaServer::answer`], logged.
struct CreateCertificate {
    server: IstioCaServer,
    answered: Arc<AtomicBool>,
}

impl UnaryService<IstioCertificateRequest> for CreateCertificate {
    type Response = IstioCertificateResponse;
    type Future = std::future::Ready<Result<Response<IstioCertificateResponse>, Status>>;

    fn call(&mut self, request: Request<IstioCertificateRequest>) -> Self::Future {
        self.answered.store(true, Ordering::Relaxed);
        let no_chain = PeerChain(Arc::from(Vec::new()));
        let chain = request.extensions().get::<PeerChain>().unwrap_or(&no_chain);
        let header = |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok());
        let ctx = CallContext {
            peer_chain: &chain.0,
            authorization: header("authorization"),
            cluster_id: header("clusterid"),
        };
        std::future::ready(match self.server.answer(&ctx, request.get_ref()) {
            Ok((identity, ttl, answer)) => {
                log::info!(
                    "ca server: OK: signed a certificate chain of {} entries for {identity}, ttl {}s",
                    answer.cert_chain.len(),
                    ttl.as_secs()
                );
                Ok(Response::new(answer))
            }
            Err(refusal) => {
                log::warn!(
                    "ca server: {} ({}): {}",
                    refusal.code,
                    refusal.message,
                    refusal.reason
                );
                Err(Status::new(refusal.grpc_code(), refusal.message))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_type() {
        assert!(is_grpc_content_type("application/grpc"));
        assert!(is_grpc_content_type("application/grpc+proto"));
        assert!(is_grpc_content_type("application/grpc;charset=utf-8"));
        assert!(!is_grpc_content_type("application/grpcx"));
        assert!(!is_grpc_content_type("application/json"));
        assert!(!is_grpc_content_type(""));
    }

    fn framed(flag: u8, says: u32, message: &[u8]) -> Body {
        let mut out = vec![flag];
        out.extend_from_slice(&says.to_be_bytes());
        out.extend_from_slice(message);
        Body::new(http_body_util::Full::new(Bytes::from(out)))
    }

    fn code(r: Result<Bytes, Status>) -> tonic::Code {
        r.err().map_or(tonic::Code::Ok, |s| s.code())
    }

    #[tokio::test]
    async fn body_rules() {
        assert_eq!(code(read_body(framed(0, 1, b"x")).await), tonic::Code::Ok);
        // Cut short and compression flags are tonic's to judge.
        assert_eq!(code(read_body(framed(0, 9, b"x")).await), tonic::Code::Ok);
        assert_eq!(
            code(read_body(framed(0, 1, b"xy")).await),
            tonic::Code::Internal
        );
        assert_eq!(
            code(read_body(framed(0, 70_000, b"")).await),
            tonic::Code::ResourceExhausted
        );
        let big = vec![0u8; 5 + MAX_REQUEST_MESSAGE + 1];
        assert_eq!(
            code(read_body(Body::new(http_body_util::Full::new(Bytes::from(big)))).await),
            tonic::Code::ResourceExhausted
        );
    }
}
