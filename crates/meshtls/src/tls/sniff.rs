//! TLS-or-plaintext sniffing over the first bytes of a connection, like Envoy's TLS inspector.
//!
//! A PERMISSIVE sidecar serves mTLS and plaintext on one port. It decides from the first bytes a
//! client sends: a TLS handshake record carrying a ClientHello is TLS (and its ALPN list decides
//! whether it is *mesh* mTLS), anything else is plaintext. [`sniff`] is that decision as a pure
//! function: give it the bytes received so far and it answers [`Sniffed::NeedMoreBytes`] until it
//! can decide. It never consumes input; the caller replays the bytes to whichever path wins.
//!
//! ```
//! use meshtls::tls::sniff::{sniff, Sniffed};
//!
//! assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniffed::Plaintext);
//! assert!(matches!(sniff(&[0x16, 0x03]), Sniffed::NeedMoreBytes { .. }));
//! ```

use std::fmt;

/// TLS record content type `handshake`.
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
/// Handshake message type `client_hello`.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
/// RFC 8446 §5.1: a plaintext record's length MUST NOT exceed 2^14.
const MAX_RECORD_PAYLOAD: usize = 1 << 14;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// The largest ClientHello [`sniff`] reassembles. Envoy's TLS inspector stops at 64 KiB too;
/// post-quantum key shares make hellos of a few KiB, far below this.
pub const MAX_CLIENT_HELLO_LEN: usize = 64 * 1024;

/// The verdict on the first bytes of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// The bytes so far are a valid prefix of a TLS ClientHello; read at least `at_least` bytes
    /// in total before asking again.
    NeedMoreBytes {
        /// The total number of bytes (not additional ones) needed for the next step.
        at_least: usize,
    },
    /// Not a TLS handshake record: the connection is plaintext (or a protocol meshtls does not
    /// inspect, such as SSLv2's hello, which rustls does not speak either).
    Plaintext,
    /// A complete TLS ClientHello.
    ClientHello(ClientHelloInfo),
    /// The connection starts like a TLS handshake record but is not a well-formed ClientHello.
    Malformed(MalformedHello),
}

/// What a ClientHello offers that matters for routing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    /// The `server_name` extension's host name, if any (as sent, not validated as DNS).
    pub server_name: Option<String>,
    /// The ALPN protocols, in the client's order (empty when the extension is absent).
    pub alpn: Vec<Vec<u8>>,
    /// `supported_versions` (TLS 1.3's extension), in the client's order; empty when absent.
    pub supported_versions: Vec<u16>,
    /// The ClientHello's `legacy_version` (0x0303 for TLS 1.2 and 1.3 clients).
    pub legacy_version: u16,
    /// How many bytes of the connection the ClientHello's records took.
    pub len: usize,
}

impl ClientHelloInfo {
    /// True when the client offers any of `protocols` by ALPN.
    pub fn offers_any_alpn(&self, protocols: &[&[u8]]) -> bool {
        self.alpn.iter().any(|p| protocols.contains(&p.as_slice()))
    }

    /// True when the client offers TLS 1.3 (via `supported_versions`).
    pub fn offers_tls13(&self) -> bool {
        self.supported_versions.contains(&0x0304)
    }

    /// The ALPN protocols as text (lossy for non-UTF-8 values), for logs.
    pub fn alpn_strings(&self) -> Vec<String> {
        self.alpn
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }
}

/// Why bytes that start like a TLS handshake are not a usable ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedHello {
    /// Byte offset in the connection where the problem was found.
    pub offset: usize,
    /// The rule that was broken.
    pub reason: String,
}

impl fmt::Display for MalformedHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

/// Decides what `bytes`, the first bytes received on a connection, are.
///
/// - [`Sniffed::Plaintext`] as soon as the first byte is not a handshake record (`0x16`) or the
///   record's major version is not 3; one byte is enough for HTTP/1.x, HTTP/2's preface and most
///   other protocols.
/// - [`Sniffed::NeedMoreBytes`] while the bytes are a valid but incomplete ClientHello (a hello
///   split over several records is reassembled).
/// - [`Sniffed::ClientHello`] with the SNI and ALPN list once complete.
/// - [`Sniffed::Malformed`] when a handshake record does not hold a well-formed ClientHello
///   (wrong message type, lengths that do not add up, a hello over [`MAX_CLIENT_HELLO_LEN`]).
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let Some(&first) = bytes.first() else {
        return Sniffed::NeedMoreBytes { at_least: 1 };
    };
    if first != CONTENT_TYPE_HANDSHAKE {
        return Sniffed::Plaintext;
    }
    if bytes.len() < 2 {
        return Sniffed::NeedMoreBytes { at_least: 2 };
    }
    if bytes[1] != 3 {
        return Sniffed::Plaintext;
    }
    match reassemble(bytes) {
        Err(verdict) => verdict,
        Ok((handshake, len)) => match parse_client_hello(&handshake) {
            Ok(mut info) => {
                info.len = len;
                Sniffed::ClientHello(info)
            }
            Err(reason) => Sniffed::Malformed(MalformedHello {
                offset: RECORD_HEADER_LEN,
                reason,
            }),
        },
    }
}

fn malformed(offset: usize, reason: impl Into<String>) -> Sniffed {
    Sniffed::Malformed(MalformedHello {
        offset,
        reason: reason.into(),
    })
}

/// Collects the handshake message from consecutive handshake records; returns the message
/// (header included) and the number of connection bytes it took.
fn reassemble(bytes: &[u8]) -> Result<(Vec<u8>, usize), Sniffed> {
    let mut handshake: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        if bytes.len() < pos + RECORD_HEADER_LEN {
            return Err(Sniffed::NeedMoreBytes {
                at_least: pos + RECORD_HEADER_LEN,
            });
        }
        let header = &bytes[pos..pos + RECORD_HEADER_LEN];
        if header[0] != CONTENT_TYPE_HANDSHAKE {
            return Err(malformed(
                pos,
                format!(
                    "record of content type {} inside a ClientHello (expected 22, handshake)",
                    header[0]
                ),
            ));
        }
        if header[1] != 3 {
            return Err(malformed(
                pos + 1,
                format!("record version {}.{} is not TLS", header[1], header[2]),
            ));
        }
        let record_len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if record_len == 0 {
            return Err(malformed(pos + 3, "empty handshake record"));
        }
        if record_len > MAX_RECORD_PAYLOAD {
            return Err(malformed(
                pos + 3,
                format!("record length {record_len} exceeds the TLS limit of 16384"),
            ));
        }
        let body_start = pos + RECORD_HEADER_LEN;
        let body_end = body_start + record_len;
        // Decide on the message type as early as possible: one byte of the first record is
        // enough to refuse a non-ClientHello without waiting for the whole record.
        if handshake.is_empty()
            && bytes.len() > body_start
            && bytes[body_start] != HANDSHAKE_CLIENT_HELLO
        {
            return Err(malformed(
                body_start,
                format!(
                    "handshake message type {} is not a ClientHello (1)",
                    bytes[body_start]
                ),
            ));
        }
        if bytes.len() < body_end {
            return Err(Sniffed::NeedMoreBytes { at_least: body_end });
        }
        handshake.extend_from_slice(&bytes[body_start..body_end]);
        pos = body_end;
        if handshake.len() >= HANDSHAKE_HEADER_LEN {
            let msg_len = usize::from(handshake[1]) << 16
                | usize::from(handshake[2]) << 8
                | usize::from(handshake[3]);
            let total = HANDSHAKE_HEADER_LEN + msg_len;
            if total > MAX_CLIENT_HELLO_LEN {
                return Err(malformed(
                    RECORD_HEADER_LEN + 1,
                    format!(
                        "ClientHello length {msg_len} exceeds the limit of {MAX_CLIENT_HELLO_LEN}"
                    ),
                ));
            }
            if handshake.len() > total {
                return Err(malformed(
                    pos,
                    "bytes after the ClientHello in its last record",
                ));
            }
            if handshake.len() == total {
                return Ok((handshake, pos));
            }
        }
    }
}

/// A bounds-checked reader over a handshake message.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(format!(
                "{what} of {n} bytes runs past the end of the ClientHello ({} bytes left)",
                self.bytes.len() - self.pos
            )),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec_u8(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = usize::from(self.u8(what)?);
        self.take(n, what)
    }

    fn vec_u16(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = usize::from(self.u16(what)?);
        self.take(n, what)
    }

    fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

fn parse_client_hello(message: &[u8]) -> Result<ClientHelloInfo, String> {
    let mut r = Reader::new(&message[HANDSHAKE_HEADER_LEN..]);
    let legacy_version = r.u16("legacy_version")?;
    if legacy_version >> 8 != 3 {
        return Err(format!(
            "ClientHello legacy_version {legacy_version:#06x} is not TLS"
        ));
    }
    r.take(32, "random")?;
    let session_id = r.vec_u8("legacy_session_id")?;
    if session_id.len() > 32 {
        return Err(format!(
            "legacy_session_id of {} bytes exceeds 32",
            session_id.len()
        ));
    }
    let suites = r.vec_u16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(format!(
            "cipher_suites length {} is not a non-zero even number",
            suites.len()
        ));
    }
    let compression = r.vec_u8("legacy_compression_methods")?;
    if compression.is_empty() {
        return Err("legacy_compression_methods is empty".to_owned());
    }
    let mut info = ClientHelloInfo {
        legacy_version,
        ..ClientHelloInfo::default()
    };
    if r.is_empty() {
        // A hello without extensions is legal (TLS 1.2 and older).
        return Ok(info);
    }
    let mut extensions = Reader::new(r.vec_u16("extensions")?);
    if !r.is_empty() {
        return Err("bytes after the extensions block".to_owned());
    }
    let mut seen: Vec<u16> = Vec::new();
    while !extensions.is_empty() {
        let ext_type = extensions.u16("extension type")?;
        let data = extensions.vec_u16("extension data")?;
        if seen.contains(&ext_type) {
            // RFC 8446 §4.2: at most one extension of each type.
            return Err(format!("extension {ext_type} appears twice"));
        }
        seen.push(ext_type);
        match ext_type {
            EXT_SERVER_NAME => info.server_name = parse_server_name(data)?,
            EXT_ALPN => info.alpn = parse_alpn(data)?,
            EXT_SUPPORTED_VERSIONS => info.supported_versions = parse_versions(data)?,
            _ => {}
        }
    }
    Ok(info)
}

fn parse_server_name(data: &[u8]) -> Result<Option<String>, String> {
    let mut r = Reader::new(data);
    let mut list = Reader::new(r.vec_u16("server_name_list")?);
    if !r.is_empty() {
        return Err("bytes after server_name_list".to_owned());
    }
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8("server name type")?;
        let name = list.vec_u16("server name")?;
        // RFC 6066 §3: only host_name (0) is defined; one per type.
        if name_type == 0 {
            if host.is_some() {
                return Err("two host_name entries in server_name".to_owned());
            }
            if name.is_empty() {
                return Err("empty host_name in server_name".to_owned());
            }
            let text = std::str::from_utf8(name)
                .ok()
                .filter(|t| t.is_ascii())
                .ok_or_else(|| "host_name in server_name is not ASCII".to_owned())?;
            host = Some(text.to_owned());
        }
    }
    Ok(host)
}

fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut r = Reader::new(data);
    let mut list = Reader::new(r.vec_u16("protocol_name_list")?);
    if !r.is_empty() {
        return Err("bytes after protocol_name_list".to_owned());
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let name = list.vec_u8("protocol name")?;
        if name.is_empty() {
            return Err("empty protocol name in ALPN".to_owned());
        }
        out.push(name.to_vec());
    }
    if out.is_empty() {
        return Err("empty ALPN protocol_name_list".to_owned());
    }
    Ok(out)
}

fn parse_versions(data: &[u8]) -> Result<Vec<u16>, String> {
    let mut r = Reader::new(data);
    let list = r.vec_u8("supported_versions")?;
    if !r.is_empty() || list.len() % 2 != 0 {
        return Err("malformed supported_versions".to_owned());
    }
    Ok(list
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}
