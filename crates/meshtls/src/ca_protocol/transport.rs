//! TLS streams for tonic: the server side carries the peer's certificate chain into each
//! request's extensions; the client side hands tonic a connection meshtls dialled itself (so
//! that dial and handshake failures come back as typed errors).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
