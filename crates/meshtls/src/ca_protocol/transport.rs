//! The transport: on the server side TLS streams for tonic that carry the peer's certificate
//! chain into each request's extensions, and answer bodies cut into small DATA frames; on the
//! client side a connection meshtls dials itself (so that dial and handshake failures come
//! back as typed errors) with HTTP/2 spoken by h2 directly.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::Bytes;

use super::client::status_error;
use crate::error::CaProtocolError;

/// The client certificate chain of a server-side connection (empty without one).
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerChain(pub(crate) Arc<Vec<CertificateDer<'static>>>);

pub(crate) struct ServerTls(pub(crate) tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for ServerTls {
    type ConnectInfo = PeerChain;
    fn connect_info(&self) -> PeerChain {
        let certs = self
            .0
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        PeerChain(Arc::new(certs))
    }
}

impl AsyncRead for ServerTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

pub(crate) type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

/// Dials `address` and completes the TLS handshake, mapping failures to typed errors.
pub(crate) async fn dial(
    address: &str,
    server_name: &ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    timeout: std::time::Duration,
) -> Result<ClientTls, CaProtocolError> {
    let unreachable = |reason: String| CaProtocolError::Unreachable {
        address: address.to_owned(),
        reason,
    };
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| unreachable(format!("no connection within {timeout:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let connector = TlsConnector::from(config);
    let tls = tokio::time::timeout(timeout, connector.connect(server_name.clone(), tcp))
        .await
        .map_err(|_| unreachable(format!("no tls handshake within {timeout:?}")))?
        .map_err(|e| CaProtocolError::Tls {
            address: address.to_owned(),
            server_name: server_name.to_str().into_owned(),
            reason: e.to_string(),
        })?;
    Ok(tls)
}

/// The largest answer the client reads (tonic's default limit).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One HTTP/2 connection to the CA server, driven by h2 directly: a call queues its HEADERS
/// and its one DATA frame (with END_STREAM) together, so they leave in one write, and no task
/// besides the connection's own runs per call.
#[derive(Clone)]
pub(crate) struct H2Channel {
    send: h2::client::SendRequest<Bytes>,
    uri: tonic::codegen::http::Uri,
}

impl std::fmt::Debug for H2Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Channel").field("uri", &self.uri).finish()
    }
}

fn h2_unreachable(address: &str, e: &h2::Error) -> CaProtocolError {
    CaProtocolError::Unreachable {
        address: address.to_owned(),
        reason: e.to_string(),
    }
}

/// An h2 failure of one call: the connection gone (unreachable) or the stream reset (the
/// gRPC code of the reset's reason, as tonic maps it).
fn call_error(address: &str, e: h2::Error) -> CaProtocolError {
    if e.is_io() || e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return h2_unreachable(address, &e);
    }
    status_error(&tonic::Status::from_error(Box::new(e)))
}

/// The gRPC code of an answer without `grpc-status` that is not HTTP 200 (gRPC's mapping of
/// HTTP status codes).
fn http_status_code(status: tonic::codegen::http::StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 => tonic::Code::Internal,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::Unimplemented,
        429 | 502..=504 => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    }
}

impl H2Channel {
    /// Starts HTTP/2 on a dialled connection; the connection runs as a task of the current
    /// runtime until every clone of the channel is dropped or the peer closes it.
    pub(crate) async fn connect(tls: ClientTls, address: &str) -> Result<Self, CaProtocolError> {
        let uri = tonic::codegen::http::Uri::try_from(format!(
            "http://{address}{}",
            super::messages::CREATE_CERTIFICATE_PATH
        ))
        .map_err(|e| CaProtocolError::Unreachable {
            address: address.to_owned(),
            reason: e.to_string(),
        })?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(2 * 1024 * 1024)
            .initial_connection_window_size(5 * 1024 * 1024)
            .handshake::<_, Bytes>(tls)
            .await
            .map_err(|e| h2_unreachable(address, &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("ca client: connection ended: {e}");
            }
        });
        Ok(H2Channel { send, uri })
    }

    /// Whether the connection can take a new call now (waits for a stream slot).
    pub(crate) async fn ready(&self, address: &str) -> Result<(), CaProtocolError> {
        self.send
            .clone()
            .ready()
            .await
            .map(drop)
            .map_err(|e| h2_unreachable(address, &e))
    }

    /// One unary gRPC call of `CreateCertificate` with `headers` (the metadata), `message`
    /// encoded as its body.
    pub(crate) async fn create_certificate(
        &self,
        address: &str,
        headers: tonic::codegen::http::HeaderMap,
        message: &super::messages::IstioCertificateRequest,
    ) -> Result<super::messages::IstioCertificateResponse, CaProtocolError> {
        use prost::Message as _;
        use tonic::codegen::http;
        let len = message.encoded_len();
        let prefix = u32::try_from(len).map_err(|_| CaProtocolError::Status {
            code: "RESOURCE_EXHAUSTED".to_owned(),
            message: format!("request of {len} bytes"),
        })?;
        let mut body = Vec::with_capacity(5 + len);
        body.push(0);
        body.extend_from_slice(&prefix.to_be_bytes());
        message
            .encode(&mut body)
            .map_err(|e| CaProtocolError::Status {
                code: "INTERNAL".to_owned(),
                message: e.to_string(),
            })?;
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        let h = request.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        h.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("meshtls/", env!("CARGO_PKG_VERSION"))),
        );
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| h2_unreachable(address, &e))?;
        let (response, mut stream) = send
            .send_request(request, false)
            .map_err(|e| call_error(address, e))?;
        stream
            .send_data(Bytes::from(body), true)
            .map_err(|e| call_error(address, e))?;
        let response = response.await.map_err(|e| call_error(address, e))?;
        let (parts, mut body) = response.into_parts();
        // Trailers-Only (how errors come): the status is in the headers.
        if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
            if status.code() != tonic::Code::Ok {
                return Err(status_error(&status));
            }
        }
        if parts.status != http::StatusCode::OK {
            return Err(status_error(&tonic::Status::new(
                http_status_code(parts.status),
                format!("http status {}", parts.status),
            )));
        }
        let mut answer: Vec<u8> = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| call_error(address, e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if answer.len() + chunk.len() > MAX_ANSWER + 5 {
                return Err(status_error(&tonic::Status::new(
                    tonic::Code::ResourceExhausted,
                    format!("answer larger than {MAX_ANSWER} bytes"),
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(|e| call_error(address, e))?;
        let status = trailers
            .as_ref()
            .and_then(tonic::Status::from_header_map)
            .or_else(|| tonic::Status::from_header_map(&parts.headers));
        match status {
            Some(s) if s.code() == tonic::Code::Ok => {}
            Some(s) => return Err(status_error(&s)),
            None => {
                return Err(status_error(&tonic::Status::new(
                    tonic::Code::Unknown,
                    "answer without grpc-status",
                )));
            }
        }
        decode_answer(&answer)
    }
}

/// The one length-prefixed, uncompressed message of an answer's body.
fn decode_answer(
    body: &[u8],
) -> Result<super::messages::IstioCertificateResponse, CaProtocolError> {
    use prost::Message as _;
    let bad = |why: String| status_error(&tonic::Status::new(tonic::Code::Internal, why));
    let (head, rest) = body
        .split_at_checked(5)
        .ok_or_else(|| bad(format!("answer of {} bytes, no message", body.len())))?;
    if head[0] != 0 {
        return Err(bad(
            "compressed answer (no compression was offered)".to_owned()
        ));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if rest.len() != len {
        return Err(bad(format!(
            "answer message of {} bytes, its prefix says {len}",
            rest.len()
        )));
    }
    super::messages::IstioCertificateResponse::decode(rest)
        .map_err(|e| bad(format!("answer message: {e}")))
}

/// The longest DATA frame payload [`SmallFrames`] hands out: below h2's threshold (256 bytes
/// with vectored writes) above which a payload is written from its own buffer and the frames
/// after it wait for the next write.
const SMALL_FRAME: usize = 255;

/// A response body whose DATA frames are cut into pieces of at most [`SMALL_FRAME`] bytes
/// (the bytes are shared, not copied). h2 copies frames that small into its write buffer, so
/// a unary answer's HEADERS, DATA and trailers go out in one write instead of two.
pub(crate) struct SmallFrames<B> {
    inner: B,
    rest: Bytes,
}

impl<B> SmallFrames<B> {
    pub(crate) fn new(inner: B) -> Self {
        SmallFrames {
            inner,
            rest: Bytes::new(),
        }
    }
}

impl<B> Body for SmallFrames<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.rest = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
        }
        let piece = this.rest.split_to(this.rest.len().min(SMALL_FRAME));
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        // The upper bound first: a lower bound above the upper one is refused.
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint.set_lower(
            inner
                .lower()
                .saturating_add(rest)
                .min(hint.upper().unwrap_or(u64::MAX)),
        );
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body handing out `frames` one per poll; when `slow`, each after one `Pending`.
    struct Slow {
        frames: std::collections::VecDeque<Frame<Bytes>>,
        slow: bool,
        pending: bool,
    }

    impl Body for Slow {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.pending {
                self.pending = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.pending = self.slow;
            Poll::Ready(self.frames.pop_front().map(Ok))
        }
    }

    fn trailers() -> Frame<Bytes> {
        let mut map = tonic::codegen::http::HeaderMap::new();
        map.insert(
            "grpc-status",
            tonic::codegen::http::HeaderValue::from_static("0"),
        );
        Frame::trailers(map)
    }

    /// Polls `body` to its end: the frames (data as bytes, trailers as `None`) and, after each
    /// frame, whether the body said it had ended.
    fn drain<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Vec<(Option<Bytes>, bool)>
    where
        B::Error: std::fmt::Debug,
    {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Pending => continue,
                Poll::Ready(None) => return out,
                Poll::Ready(Some(frame)) => {
                    let frame = match frame {
                        Ok(f) => f,
                        Err(e) => panic!("body error {e:?}"),
                    };
                    out.push((frame.into_data().ok(), body.is_end_stream()));
                }
            }
        }
    }

    #[test]
    fn small_frames_cut_data_and_keep_the_rest() {
        let message: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let body = Slow {
            frames: vec![Frame::data(Bytes::from(message.clone())), trailers()].into(),
            slow: true,
            pending: true,
        };
        let got = drain(SmallFrames::new(body));
        let pieces: Vec<Bytes> = got.iter().filter_map(|(d, _)| d.clone()).collect();
        assert!(pieces.iter().all(|p| p.len() <= SMALL_FRAME));
        assert_eq!(pieces.len(), 1000usize.div_ceil(SMALL_FRAME));
        assert_eq!(pieces.concat(), message);
        // The trailers last.
        assert_eq!(got.last().map(|(d, _)| d.is_none()), Some(true));
    }
}
