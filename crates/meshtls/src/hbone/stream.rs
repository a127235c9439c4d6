//! One HBONE tunnel as a byte stream: an HTTP/2 CONNECT stream's DATA frames in both
//! directions, behind tokio's `AsyncRead` and `AsyncWrite`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes one write hands to h2 (one write becomes at most this much DATA; h2 cuts it
/// into frames of the peer's maximum frame size).
const MAX_WRITE: usize = 256 * 1024;

/// What a stream releases when it is dropped (the client pool's stream count).
pub(crate) trait OnDrop: Send + Sync {
    fn stream_closed(&self);
}

/// A tunnelled byte stream (either side of an HBONE CONNECT), implementing tokio's
/// [`AsyncRead`] and [`AsyncWrite`].
///
/// - Reading returns the peer's bytes; end of file when the peer ended its side
///   (END_STREAM), an error of kind [`io::ErrorKind::ConnectionReset`] when it reset the
///   stream.
/// - [`AsyncWrite::poll_shutdown`] ends our side (END_STREAM) while reading goes on, like a TCP
///   half-close.
/// - Dropping the stream resets it (`CANCEL`) unless both sides had ended.
pub struct HboneStream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    buffered: Bytes,
    /// A read error met after some bytes were returned, for the next read.
    read_error: Option<io::Error>,
    read_done: bool,
    write_done: bool,
    on_drop: Option<Box<dyn OnDrop>>,
}

impl std::fmt::Debug for HboneStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HboneStream")
            .field("buffered", &self.buffered.len())
            .field("read_done", &self.read_done)
            .field("write_done", &self.write_done)
            .finish_non_exhaustive()
    }
}

impl HboneStream {
    pub(crate) fn new(
        send: SendStream<Bytes>,
        recv: RecvStream,
        on_drop: Option<Box<dyn OnDrop>>,
    ) -> Self {
        HboneStream {
            send,
            recv,
            buffered: Bytes::new(),
            read_error: None,
            read_done: false,
            write_done: false,
            on_drop,
        }
    }

    /// Turns a stream error into an I/O error: a reset keeps its HTTP/2 reason in the message.
    fn io_error(e: h2::Error) -> io::Error {
        if e.is_io() {
            return e.into_io().unwrap_or_else(|| io::Error::other("hbone i/o"));
        }
        let kind = if e.is_reset() || e.reason().is_some() {
            io::ErrorKind::ConnectionReset
        } else {
            io::ErrorKind::BrokenPipe
        };
        io::Error::new(kind, format!("hbone stream: {e}"))
    }
}

impl Drop for HboneStream {
    fn drop(&mut self) {
        if !(self.read_done && self.write_done) {
            self.send.send_reset(h2::Reason::CANCEL);
        }
        if let Some(d) = self.on_drop.take() {
            d.stream_closed();
        }
    }
}

impl AsyncRead for HboneStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.read_error.take() {
            return Poll::Ready(Err(e));
        }
        // Fills `buf` from as many received frames as are ready (one frame is 16 KiB).
        let mut filled = false;
        loop {
            if !this.buffered.is_empty() {
                let n = this.buffered.len().min(buf.remaining());
                buf.put_slice(&this.buffered[..n]);
                this.buffered.advance(n);
                filled = true;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            if this.read_done {
                return Poll::Ready(Ok(()));
            }
            let next = match this.recv.poll_data(cx) {
                Poll::Pending if filled => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            match next {
                Some(Ok(chunk)) => {
                    // The bytes are ours now: give the peer its window back at once.
                    let _ = this.recv.flow_control().release_capacity(chunk.len());
                    this.buffered = chunk;
                }
                Some(Err(e)) if filled => {
                    this.read_error = Some(Self::io_error(e));
                    return Poll::Ready(Ok(()));
                }
                Some(Err(e)) => return Poll::Ready(Err(Self::io_error(e))),
                None => this.read_done = true,
            }
        }
    }
}

impl AsyncWrite for HboneStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.write_done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "hbone stream: write after shutdown",
            )));
        }
        let want = buf.len().min(MAX_WRITE);
        loop {
            let have = this.send.capacity();
            if have > 0 {
                let n = have.min(want);
                // h2 queues what it is given: the bytes are copied once, into a `Bytes`.
                let data = Bytes::copy_from_slice(&buf[..n]);
                return match this.send.send_data(data, false) {
                    Ok(()) => Poll::Ready(Ok(n)),
                    Err(e) => Poll::Ready(Err(Self::io_error(e))),
                };
            }
            this.send.reserve_capacity(want);
            match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(Self::io_error(e))),
                None => {
                    // The stream is gone: say why when it was a reset.
                    return match this.send.poll_reset(cx) {
                        Poll::Ready(Ok(reason)) => Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            format!("hbone stream reset by the peer: {reason:?}"),
                        ))),
                        _ => Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "hbone stream closed",
                        ))),
                    };
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // h2's connection task writes queued frames as soon as it runs.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_done {
            this.write_done = true;
            this.send.reserve_capacity(0);
            if let Err(e) = this.send.send_data(Bytes::new(), true) {
                return Poll::Ready(Err(Self::io_error(e)));
            }
        }
        Poll::Ready(Ok(()))
    }
}
