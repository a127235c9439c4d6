//! TLS streams for tonic: the server side carries the peer's certificate chain into each
//! request's extensions; the client side hands tonic a connection meshtls dialled itself (so
//! that dial and handshake failures come back as typed errors).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::Bytes;

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

/// A tonic connector that first hands out a connection dialled beforehand, then dials anew.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) first: Arc<Mutex<Option<ClientTls>>>,
    pub(crate) address: String,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) timeout: std::time::Duration,
}

impl tower::Service<tonic::codegen::http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<ClientTls>;
    type Error = CaProtocolError;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        let this = self.clone();
        Box::pin(async move {
            let tls = match first {
                Some(tls) => tls,
                None => dial(&this.address, &this.server_name, this.config, this.timeout).await?,
            };
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}

/// A request body that looks one frame ahead after each DATA frame, so that
/// [`Body::is_end_stream`] is true as soon as the last frame was handed out. hyper then sends
/// a unary call's message as one DATA frame carrying END_STREAM instead of the message followed
/// by an empty END_STREAM frame (one write less per call).
pub(crate) struct EndAware<B: Body> {
    inner: B,
    /// A frame (or the end, `None`) polled ahead, handed out next.
    peeked: Option<Polled<B>>,
    ended: bool,
}

/// What one `poll_frame` of `B` gave.
type Polled<B> = Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>;

impl<B: Body> EndAware<B> {
    pub(crate) fn new(inner: B) -> Self {
        EndAware {
            inner,
            peeked: None,
            ended: false,
        }
    }
}

impl<B> Body for EndAware<B>
where
    B: Body + Unpin,
    B::Data: Unpin,
    B::Error: Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let frame = match this.peeked.take() {
            Some(frame) => frame,
            None => match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => return Poll::Pending,
            },
        };
        match frame {
            None => {
                this.ended = true;
                Poll::Ready(None)
            }
            Some(Ok(data)) if data.is_data() => {
                // Without waiting: only what the body already has.
                if let Poll::Ready(next) = Pin::new(&mut this.inner).poll_frame(cx) {
                    match next {
                        None => this.ended = true,
                        next => this.peeked = Some(next),
                    }
                }
                Poll::Ready(Some(Ok(data)))
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || (self.peeked.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            SizeHint::with_exact(0)
        } else if self.peeked.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

/// tonic's channel with its request bodies wrapped in [`EndAware`].
#[derive(Clone)]
pub(crate) struct EndAwareChannel(pub(crate) tonic::transport::Channel);

impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for EndAwareChannel {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = tonic::transport::channel::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        self.0
            .call(request.map(|body| tonic::body::Body::new(EndAware::new(body))))
    }
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
    fn end_aware_tells_the_end_with_the_last_data_frame() {
        let ready = |frames: Vec<Frame<Bytes>>| Slow {
            frames: frames.into(),
            slow: false,
            pending: false,
        };
        // The end already known: the frame carries it.
        let got = drain(EndAware::new(ready(vec![Frame::data(Bytes::from_static(
            b"m",
        ))])));
        assert_eq!(got, vec![(Some(Bytes::from_static(b"m")), true)]);
        // Data then trailers: the trailers come after, the end with them.
        let got = drain(EndAware::new(ready(vec![
            Frame::data(Bytes::from_static(b"a")),
            trailers(),
        ])));
        assert_eq!(
            got,
            vec![(Some(Bytes::from_static(b"a")), false), (None, false)]
        );
        // A body that is not ready at once: nothing is lost, the order is kept.
        let slow = Slow {
            frames: vec![
                Frame::data(Bytes::from_static(b"a")),
                Frame::data(Bytes::from_static(b"b")),
            ]
            .into(),
            slow: true,
            pending: true,
        };
        let got: Vec<Option<Bytes>> = drain(EndAware::new(slow))
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(
            got,
            vec![
                Some(Bytes::from_static(b"a")),
                Some(Bytes::from_static(b"b"))
            ]
        );
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
