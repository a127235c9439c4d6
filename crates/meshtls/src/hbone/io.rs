//! The TLS connection under HTTP/2, with writes batched.
//!
//! h2 hands its writer one DATA frame at a time (a 9-byte header and at most one maximum frame
//! size of payload), and tokio-rustls sends every write to the socket at once: a 64 KiB
//! application write became four `sendmsg` calls, each a wake-up of the receiving side.
//! [`BatchedTls`] encrypts what h2 writes into rustls's queue and sends the queue when it holds
//! [`SEND_AT`] bytes of plaintext or when h2 flushes (at the end of every round of the connection
//! task), so the socket sees a few large writes instead. Reads go through tokio-rustls
//! unchanged.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Plaintext queued in rustls before the connection task sends it without waiting for h2's
/// flush.
const SEND_AT: usize = 256 * 1024;
/// rustls's cap on the encrypted bytes it queues (its default, 64 KiB, would cut the batches).
const QUEUE_LIMIT: usize = 512 * 1024;

/// The parts of a tokio-rustls stream that [`BatchedTls`] writes through.
pub(crate) trait TlsParts: AsyncRead + AsyncWrite + Unpin {
    /// rustls's queue limit for encrypted bytes.
    fn set_queue_limit(&mut self, limit: usize);
    /// Encrypts plaintext into rustls's queue; how much it took (0 when the queue is full).
    fn encrypt(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Whether encrypted bytes wait to be sent.
    fn queued(&self) -> bool;
    /// Sends queued encrypted bytes, as much as the socket takes now.
    fn send_queued(&mut self, cx: &mut Context<'_>) -> io::Result<usize>;
}

macro_rules! tls_parts {
    ($stream:ty) => {
        impl TlsParts for $stream {
            fn set_queue_limit(&mut self, limit: usize) {
                self.get_mut().1.set_buffer_limit(Some(limit));
            }
            fn encrypt(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                io::Write::write_vectored(&mut self.get_mut().1.writer(), bufs)
            }
            fn queued(&self) -> bool {
                self.get_ref().1.wants_write()
            }
            fn send_queued(&mut self, cx: &mut Context<'_>) -> io::Result<usize> {
                let (tcp, session) = self.get_mut();
                session.write_tls(&mut SocketWriter { tcp, cx })
            }
        }
    };
}

tls_parts!(tokio_rustls::client::TlsStream<TcpStream>);
tls_parts!(tokio_rustls::server::TlsStream<TcpStream>);

/// `std::io::Write` on a non-blocking socket: `WouldBlock` when it is full (the task is woken
/// when it drains).
struct SocketWriter<'a, 'b> {
    tcp: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
}

impl io::Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.tcp).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.tcp).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tokio-rustls stream whose writes are batched (see the module's documentation).
#[derive(Debug)]
pub(crate) struct BatchedTls<S> {
    inner: S,
    /// Plaintext encrypted since the queue was last emptied.
    unsent: usize,
}

impl<S: TlsParts> BatchedTls<S> {
    pub(crate) fn new(mut inner: S) -> Self {
        inner.set_queue_limit(QUEUE_LIMIT);
        BatchedTls { inner, unsent: 0 }
    }

    /// Sends everything queued; `Pending` until the socket took it all.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.inner.queued() {
            match self.inner.send_queued(cx) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.unsent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: TlsParts> AsyncRead for BatchedTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: TlsParts> AsyncWrite for BatchedTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        loop {
            let n = this.inner.encrypt(bufs)?;
            if n > 0 {
                this.unsent += n;
                if this.unsent >= SEND_AT {
                    // Send what the socket takes now; the rest goes at the next write or flush.
                    if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                return Poll::Ready(Ok(n));
            }
            if !this.inner.queued() {
                // rustls takes no more plaintext (the connection is closing).
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            // rustls's queue is full: it must drain first.
            ready!(this.poll_send(cx))?;
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
