//! gRPC's C core (grpcio, so py-spiffe, and every C-core language) sends a unix socket's path,
//! percent-encoded, as the HTTP/2 `:authority` (`tmp%2Fagent.sock`), which h2 refuses as a
//! malformed authority (a `%` in a host), resetting every stream. Go and Rust clients send
//! `localhost`. This reader sits between a unix-socket connection and h2: it rewrites the
//! value of an `:authority` header field that h2 would refuse into `x` characters of the same
//! length (the server never reads `:authority`), keeping the field's HPACK representation and
//! so the dynamic table both sides keep. Everything else passes through unchanged.
//!
//! A Huffman-coded value is rewritten only when its decoded length is known: that of the
//! server's own socket path as the C core encodes it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE_LEN: usize = 24;
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Frames larger than this are passed through unparsed (h2 refuses them anyway).
const MAX_BUFFERED: usize = 1 << 20;
/// The frame size h2 accepts by default (SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;

/// The `:authority` the C core sends for a unix socket at `path` (the path without its
/// leading `/`, every byte outside RFC 3986's unreserved set percent-encoded).
pub(crate) fn c_core_authority_len(path: &std::path::Path) -> usize {
    let text = path.to_string_lossy();
    text.trim_start_matches('/')
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                1
            } else {
                3
            }
        })
        .sum()
}

#[derive(Debug)]
pub(crate) struct AuthorityFix<S> {
    inner: S,
    expected_len: Option<usize>,
    input: Vec<u8>,
    output: Vec<u8>,
    out_pos: usize,
    preface_done: bool,
    passthrough: bool,
    /// A header block being gathered: the HEADERS frame's flags, stream, priority bytes and
    /// the fragments so far.
    pending: Option<(u8, u32, Vec<u8>, Vec<u8>)>,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub(crate) fn new(inner: S, expected_len: Option<usize>) -> Self {
        AuthorityFix {
            inner,
            expected_len,
            input: Vec::new(),
            output: Vec::new(),
            out_pos: 0,
            preface_done: false,
            passthrough: false,
            pending: None,
            eof: false,
        }
    }

    /// Moves every complete unit of `input` to `output`.
    fn process(&mut self) {
        if self.passthrough {
            self.output.append(&mut self.input);
            return;
        }
        if !self.preface_done {
            if self.input.len() < PREFACE_LEN {
                return;
            }
            self.output.extend(self.input.drain(..PREFACE_LEN));
            self.preface_done = true;
        }
        loop {
            if self.input.len() < FRAME_HEADER {
                return;
            }
            let len = (usize::from(self.input[0]) << 16)
                | (usize::from(self.input[1]) << 8)
                | usize::from(self.input[2]);
            if len > MAX_BUFFERED {
                self.passthrough = true;
                self.flush_pending_raw();
                self.output.append(&mut self.input);
                return;
            }
            if self.input.len() < FRAME_HEADER + len {
                return;
            }
            let frame: Vec<u8> = self.input.drain(..FRAME_HEADER + len).collect();
            let kind = frame[3];
            let flags = frame[4];
            let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
            let payload = &frame[FRAME_HEADER..];
            match kind {
                HEADERS => {
                    let mut body = payload;
                    let mut pad = 0usize;
                    if flags & PADDED != 0 {
                        let Some((&p, rest)) = body.split_first() else {
                            self.output.extend_from_slice(&frame);
                            continue;
                        };
                        pad = usize::from(p);
                        body = rest;
                    }
                    let mut prio = Vec::new();
                    if flags & PRIORITY != 0 {
                        if body.len() < 5 {
                            self.output.extend_from_slice(&frame);
                            continue;
                        }
                        prio = body[..5].to_vec();
                        body = &body[5..];
                    }
                    if pad > body.len() {
                        self.output.extend_from_slice(&frame);
                        continue;
                    }
                    let fragment = body[..body.len() - pad].to_vec();
                    self.pending = Some((flags, stream, prio, fragment));
                    if flags & END_HEADERS != 0 {
                        self.emit_pending();
                    }
                }
                CONTINUATION if self.pending.is_some() => {
                    if let Some(p) = self.pending.as_mut() {
                        p.3.extend_from_slice(payload);
                        if p.3.len() > MAX_BUFFERED {
                            self.passthrough = true;
                        }
                    }
                    if flags & END_HEADERS != 0 || self.passthrough {
                        self.emit_pending();
                    }
                    if self.passthrough {
                        self.output.append(&mut self.input);
                        return;
                    }
                }
                _ => self.output.extend_from_slice(&frame),
            }
        }
    }

    fn flush_pending_raw(&mut self) {
        self.emit_pending();
    }

    /// Writes the gathered header block, rewritten, as HEADERS (+ CONTINUATION) frames.
    fn emit_pending(&mut self) {
        let Some((flags, stream, prio, block)) = self.pending.take() else {
            return;
        };
        let block = rewrite_block(&block, self.expected_len).unwrap_or(block);
        let keep = flags & !(PADDED | END_HEADERS);
        let first_room = MAX_FRAME - prio.len();
        let (first, mut rest) = block.split_at(block.len().min(first_room));
        let mut payload = prio;
        payload.extend_from_slice(first);
        let end = if rest.is_empty() { END_HEADERS } else { 0 };
        write_frame(&mut self.output, HEADERS, keep | end, stream, &payload);
        while !rest.is_empty() {
            let (chunk, more) = rest.split_at(rest.len().min(MAX_FRAME));
            let end = if more.is_empty() { END_HEADERS } else { 0 };
            write_frame(&mut self.output, CONTINUATION, end, stream, chunk);
            rest = more;
        }
    }
}

fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK integer with an `n`-bit prefix at `block[*i]`; advances `*i`.
fn read_int(block: &[u8], i: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut value = usize::from(*block.get(*i)?) & max;
    *i += 1;
    if value < max {
        return Some(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *block.get(*i)?;
        *i += 1;
        value = value.checked_add(usize::from(b & 0x7f).checked_shl(shift)?)?;
        if b & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

fn write_int(out: &mut Vec<u8>, first_bits: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first_bits | value as u8);
        return;
    }
    out.push(first_bits | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A string literal at `block[*i]`: (huffman, bytes); advances `*i`.
fn read_str<'a>(block: &'a [u8], i: &mut usize) -> Option<(bool, &'a [u8])> {
    let huffman = *block.get(*i)? & 0x80 != 0;
    let len = read_int(block, i, 7)?;
    let bytes = block.get(*i..i.checked_add(len)?)?;
    *i += len;
    Some((huffman, bytes))
}

/// Whether h2 takes `value` as an authority (conservatively: no `%`, no space or control).
fn acceptable(value: &[u8]) -> bool {
    !value.iter().any(|b| *b == b'%' || *b <= b' ' || *b >= 0x7f)
}

/// The block with every unacceptable `:authority` value replaced; `None` when it cannot be
/// parsed (then it passes unchanged and h2 decides).
fn rewrite_block(block: &[u8], expected_len: Option<usize>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(block.len());
    let mut i = 0;
    while i < block.len() {
        let start = i;
        let b = block[i];
        let n = if b & 0x80 != 0 {
            read_int(block, &mut i, 7)?;
            out.extend_from_slice(&block[start..i]);
            continue;
        } else if b & 0xc0 == 0x40 {
            6
        } else if b & 0xe0 == 0x20 {
            read_int(block, &mut i, 5)?;
            out.extend_from_slice(&block[start..i]);
            continue;
        } else {
            4
        };
        let index = read_int(block, &mut i, n)?;
        let name = if index == 0 {
            Some(read_str(block, &mut i)?)
        } else {
            None
        };
        let value_start = i;
        let (huffman, value) = read_str(block, &mut i)?;
        let is_authority = index == 1 || matches!(name, Some((false, b":authority")));
        let new_len = match (is_authority, huffman) {
            (true, false) if !acceptable(value) => Some(value.len()),
            (true, true) => expected_len,
            _ => None,
        };
        match new_len {
            Some(len) => {
                out.extend_from_slice(&block[start..value_start]);
                write_int(&mut out, 0x00, 7, len);
                out.resize(out.len() + len, b'x');
            }
            None => out.extend_from_slice(&block[start..i]),
        }
    }
    Some(out)
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.output.len() {
                let n = buf.remaining().min(this.output.len() - this.out_pos);
                buf.put_slice(&this.output[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.output.len() {
                    this.output.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            if got.is_empty() {
                this.eof = true;
                this.emit_pending();
                let rest = std::mem::take(&mut this.input);
                this.output.extend_from_slice(&rest);
                continue;
            }
            this.input.extend_from_slice(got);
            this.process();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_percent_authority_becomes_xs_of_the_same_length() {
        // Literal with incremental indexing, name index 1 (:authority), plain value.
        let mut block = vec![0x41, 0x07];
        block.extend_from_slice(b"a%2Fb.s");
        block.extend_from_slice(&[0x82]); // :method GET (indexed)
        let out = rewrite_block(&block, None).unwrap();
        assert_eq!(&out[..2], &[0x41, 0x07]);
        assert_eq!(&out[2..9], b"xxxxxxx");
        assert_eq!(out[9], 0x82);
        // An acceptable authority is kept.
        let mut ok = vec![0x41, 0x09];
        ok.extend_from_slice(b"localhost");
        assert_eq!(rewrite_block(&ok, None).unwrap(), ok);
        // A Huffman value with a known length.
        let huff = vec![0x01, 0x83, 0xaa, 0xbb, 0xcc];
        assert_eq!(
            rewrite_block(&huff, Some(4)).unwrap(),
            vec![0x01, 0x04, b'x', b'x', b'x', b'x']
        );
    }

    #[test]
    fn the_c_core_authority_length() {
        assert_eq!(
            c_core_authority_len(std::path::Path::new("/dev/shm/wl-cap.sock")),
            23
        );
    }
}
