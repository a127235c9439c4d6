//! An inbound acceptor that applies a port's mTLS mode, like an Istio sidecar's listener.
//!
//! | mode | TLS ClientHello | plaintext |
//! |---|---|---|
//! | STRICT | mTLS (any ALPN) | refused |
//! | PERMISSIVE | mTLS when an Istio ALPN ([`PERMISSIVE_MTLS_ALPN`]) is offered; otherwise passed through untouched, as Envoy's TLS-passthrough chain does | passed through |
//! | DISABLE | passed through (no inspection) | passed through |
//!
//! A connection that starts like a TLS handshake record but holds no well-formed ClientHello is
//! refused in STRICT and PERMISSIVE: it cannot become mTLS, and handing half a handshake to a
//! plaintext application helps nobody.
//!
//! [`InboundAcceptor::route`] is the decision as a pure function over the first bytes;
//! [`InboundAcceptor::accept`] runs it over a blocking stream, and with the `tokio` feature
//! `InboundAcceptor::accept_async` over an async one.

use std::fmt;
use std::io::{self, Read, Write};

use rustls::{ServerConnection, StreamOwned};

use super::common::config_error;
use super::params::PERMISSIVE_MTLS_ALPN;
use super::peer::Peer;
use super::server::MtlsServerConfig;
use super::sniff::{ClientHelloInfo, Sniffed, sniff};
use super::verifier::explain;
use crate::error::{Error, TlsError};
use crate::policy::{Decision, MtlsMode};

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Terminate mesh mTLS.
    Mtls(ClientHelloInfo),
    /// Pass the bytes through unchanged. `tls` holds the ClientHello when it was TLS without an
    /// Istio ALPN under PERMISSIVE (the application then receives raw TLS, as with Envoy).
    Plaintext {
        /// The ClientHello of a passed-through TLS connection.
        tls: Option<ClientHelloInfo>,
    },
    /// Close the connection.
    Refuse(String),
}

/// Applies a port's mode to inbound connections.
#[derive(Debug, Clone)]
pub struct InboundAcceptor {
    server: MtlsServerConfig,
    mode: MtlsMode,
}

/// An accepted inbound connection.
#[derive(Debug)]
pub enum Inbound<S: Read + Write> {
    /// Plaintext (or passed-through TLS): read from the stream as if it had not been inspected.
    Plaintext {
        /// The stream, with the inspected bytes put back in front.
        stream: Prefixed<S>,
        /// The ClientHello when it was passed-through TLS.
        tls: Option<ClientHelloInfo>,
    },
    /// An mTLS connection whose peer was verified and authorized.
    Mtls(Box<MtlsStream<S>>),
}

/// A terminated mTLS connection and its peer.
#[derive(Debug)]
pub struct MtlsStream<S: Read + Write> {
    /// The decrypted stream (read and write application data).
    pub stream: StreamOwned<ServerConnection, Prefixed<S>>,
    /// The authenticated peer.
    pub peer: Peer,
}

impl InboundAcceptor {
    /// An acceptor for a port in `mode`, terminating mTLS with `server`. `UNSET` (which
    /// resolution never returns) is taken as PERMISSIVE, Istio's meaning of "no policy".
    pub fn new(server: MtlsServerConfig, mode: MtlsMode) -> Self {
        let mode = match mode {
            MtlsMode::Unset => MtlsMode::Permissive,
            other => other,
        };
        InboundAcceptor { server, mode }
    }

    /// An acceptor applying a resolved PeerAuthentication [`Decision`] for the port.
    pub fn for_decision(server: MtlsServerConfig, decision: &Decision) -> Self {
        Self::new(server, decision.mode())
    }

    /// The mode applied (never `UNSET`).
    pub fn mode(&self) -> MtlsMode {
        self.mode
    }

    /// The server config.
    pub fn server(&self) -> &MtlsServerConfig {
        &self.server
    }

    /// Decides where a connection goes from its first bytes; `None` means "read more bytes".
    pub fn route(&self, first_bytes: &[u8]) -> Option<Route> {
        if self.mode == MtlsMode::Disable {
            return Some(Route::Plaintext { tls: None });
        }
        Some(match sniff(first_bytes) {
            Sniffed::NeedMoreBytes { .. } => return None,
            Sniffed::Plaintext => match self.mode {
                MtlsMode::Strict => {
                    Route::Refuse("plaintext connection on a port that requires mTLS".to_owned())
                }
                _ => Route::Plaintext { tls: None },
            },
            Sniffed::ClientHello(hello) => {
                if self.mode == MtlsMode::Strict || hello.offers_any_alpn(PERMISSIVE_MTLS_ALPN) {
                    Route::Mtls(hello)
                } else {
                    Route::Plaintext { tls: Some(hello) }
                }
            }
            Sniffed::Malformed(m) => Route::Refuse(format!("malformed TLS ClientHello: {m}")),
        })
    }

    pub(crate) fn refused(&self, reason: String) -> Error {
        TlsError::Refused {
            mode: self.mode.as_str(),
            reason,
        }
        .into()
    }

    /// Reads the first bytes of `stream`, applies the mode and, for mTLS, completes the
    /// handshake and checks the peer. Refused connections are an error
    /// ([`TlsError::Refused`] or [`TlsError::Handshake`]); drop the stream to close them.
    pub fn accept<S: Read + Write>(&self, mut stream: S) -> Result<Inbound<S>, Error> {
        let mut first = Vec::new();
        let mut chunk = [0u8; FIRST_READ_SIZE];
        let route = loop {
            if let Some(route) = self.route(&first) {
                break route;
            }
            let n = stream
                .read(&mut chunk)
                .map_err(|e| io_err(READING_FIRST_BYTES, &e))?;
            append_first_read(&mut first, &chunk[..n])?;
        };
        let stream = Prefixed::new(first, stream);
        match route {
            Route::Refuse(reason) => Err(self.refused(reason)),
            Route::Plaintext { tls } => Ok(Inbound::Plaintext { stream, tls }),
            Route::Mtls(hello) => {
                let mut conn =
                    ServerConnection::new(self.server.config_for(&hello)).map_err(config_error)?;
                let mut stream = stream;
                while conn.is_handshaking() {
                    conn.complete_io(&mut stream)
                        .map_err(|e| handshake_err(&e))?;
                }
                let peer = self.server.check_connection(&conn)?;
                Ok(Inbound::Mtls(Box::new(MtlsStream {
                    stream: StreamOwned::new(conn, stream),
                    peer,
                })))
            }
        }
    }
}

/// How much one read takes while the route is still unknown (a ClientHello usually fits).
const FIRST_READ_SIZE: usize = 2048;

const READING_FIRST_BYTES: &str = "reading the first bytes";

/// Appends one read (blocking or async) to the bytes seen so far; an empty read means the peer
/// closed the connection before the route was known.
pub(crate) fn append_first_read(first: &mut Vec<u8>, read: &[u8]) -> Result<(), Error> {
    if read.is_empty() {
        return Err(TlsError::Io {
            during: READING_FIRST_BYTES,
            reason: format!("the peer closed the connection after {} bytes", first.len()),
        }
        .into());
    }
    first.extend_from_slice(read);
    Ok(())
}

fn io_err(during: &'static str, e: &io::Error) -> Error {
    TlsError::Io {
        during,
        reason: e.to_string(),
    }
    .into()
}

/// A handshake I/O error, with rustls's (or meshtls's verifier's) reason when there is one.
pub(crate) fn handshake_err(e: &io::Error) -> Error {
    let reason = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => explain(tls),
        None => e.to_string(),
    };
    TlsError::Handshake { reason }.into()
}

/// A stream with bytes already read from it put back in front.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> fmt::Debug for Prefixed<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prefixed")
            .field("unread_prefix", &(self.prefix.len() - self.pos))
            .finish_non_exhaustive()
    }
}

impl<S> Prefixed<S> {
    /// `inner`, to be read after `prefix`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// The underlying stream (any unread prefix is lost).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The underlying stream, mutably (reading from it directly skips any unread prefix).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The prefix bytes not read yet.
    pub fn unread_prefix(&self) -> &[u8] {
        &self.prefix[self.pos..]
    }

    fn take_prefix(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.prefix[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        if self.pos == self.prefix.len() {
            self.prefix = Vec::new();
            self.pos = 0;
        }
        n
    }
}

impl<S: Read> Read for Prefixed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.prefix.len() {
            return Ok(self.take_prefix(buf));
        }
        self.inner.read(buf)
    }
}

impl<S: Write> Write for Prefixed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(feature = "tokio")]
mod async_io {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
    use tokio_rustls::server::TlsStream;

    use super::*;

    impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this.pos < this.prefix.len() {
                let n = this.take_prefix(buf.initialize_unfilled());
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Pin::new(&mut this.inner).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }

    /// An accepted inbound connection on an async stream.
    #[derive(Debug)]
    pub enum AsyncInbound<S> {
        /// Plaintext (or passed-through TLS).
        Plaintext {
            /// The stream, with the inspected bytes put back in front.
            stream: Prefixed<S>,
            /// The ClientHello when it was passed-through TLS.
            tls: Option<ClientHelloInfo>,
        },
        /// An mTLS connection whose peer was verified and authorized.
        Mtls {
            /// The decrypted stream.
            stream: Box<TlsStream<Prefixed<S>>>,
            /// The authenticated peer.
            peer: Peer,
        },
    }

    impl InboundAcceptor {
        /// [`InboundAcceptor::accept`] over an async stream (feature `tokio`).
        pub async fn accept_async<S>(&self, mut stream: S) -> Result<AsyncInbound<S>, Error>
        where
            S: AsyncRead + AsyncWrite + Unpin,
        {
            let mut first = Vec::new();
            let mut chunk = [0u8; FIRST_READ_SIZE];
            let route = loop {
                if let Some(route) = self.route(&first) {
                    break route;
                }
                let n = stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| io_err(READING_FIRST_BYTES, &e))?;
                append_first_read(&mut first, &chunk[..n])?;
            };
            let stream = Prefixed::new(first, stream);
            match route {
                Route::Refuse(reason) => Err(self.refused(reason)),
                Route::Plaintext { tls } => Ok(AsyncInbound::Plaintext { stream, tls }),
                Route::Mtls(hello) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(self.server.config_for(&hello));
                    let tls = acceptor
                        .accept(stream)
                        .await
                        .map_err(|e| handshake_err(&e))?;
                    let peer = self.server.check_connection(tls.get_ref().1)?;
                    Ok(AsyncInbound::Mtls {
                        stream: Box::new(tls),
                        peer,
                    })
                }
            }
        }
    }
}

#[cfg(feature = "tokio")]
pub use async_io::AsyncInbound;
