//! gRPC's vocabulary shared by the client and the server, from gRPC's "gRPC over HTTP2"
//! protocol document: the length-prefixed message of a unary call's body, the status codes,
//! `grpc-status` and `grpc-message` (percent-encoded), the mapping of HTTP/2 stream resets to
//! codes, and the rules for custom metadata.

use http::{HeaderMap, HeaderName, HeaderValue};

/// A unary call's body: `message` behind its 5-byte prefix (not compressed, big-endian
/// length); `None` when it does not fit the prefix's 4 GiB or does not encode.
pub(crate) fn frame(message: &impl prost::Message) -> Option<Vec<u8>> {
    let len = message.encoded_len();
    let prefix = u32::try_from(len).ok()?;
    let mut body = Vec::with_capacity(5 + len);
    body.push(0);
    body.extend_from_slice(&prefix.to_be_bytes());
    message.encode(&mut body).ok()?;
    Some(body)
}

/// What is wrong with a unary call's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Fewer than the prefix's 5 bytes.
    NoMessage { len: usize },
    /// The compressed flag is set (this side offers no compression).
    Compressed,
    /// A flag other than 0 and 1.
    BadFlag(u8),
    /// The prefix announces more than the limit.
    TooLarge { len: usize, limit: usize },
    /// Fewer bytes than the prefix announces.
    Short { have: usize, says: usize },
    /// Bytes after the one message.
    Trailing { extra: usize },
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Framing::NoMessage { len } => write!(f, "body of {len} bytes, no message"),
            Framing::Compressed => f.write_str("message compressed (no compression was offered)"),
            Framing::BadFlag(flag) => write!(f, "compression flag {flag} (0 or 1 allowed)"),
            Framing::TooLarge { len, limit } => {
                write!(f, "message of {len} bytes (limit {limit})")
            }
            Framing::Short { have, says } => {
                write!(f, "message of {have} bytes, its prefix says {says}")
            }
            Framing::Trailing { extra } => {
                write!(f, "{extra} bytes after the one message of a unary call")
            }
        }
    }
}

/// The one message of a unary call's body (at most `limit` bytes), as [`frame`] writes it.
pub(crate) fn unframe(body: &[u8], limit: usize) -> Result<&[u8], Framing> {
    let Some((head, rest)) = body.split_at_checked(5) else {
        return Err(Framing::NoMessage { len: body.len() });
    };
    match head[0] {
        0 => {}
        1 => return Err(Framing::Compressed),
        flag => return Err(Framing::BadFlag(flag)),
    }
    let says = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if says > limit {
        return Err(Framing::TooLarge { len: says, limit });
    }
    match rest.len().cmp(&says) {
        std::cmp::Ordering::Less => Err(Framing::Short {
            have: rest.len(),
            says,
        }),
        std::cmp::Ordering::Greater => Err(Framing::Trailing {
            extra: rest.len() - says,
        }),
        std::cmp::Ordering::Equal => Ok(rest),
    }
}

/// A gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// The code of a number; numbers gRPC does not define are `UNKNOWN`.
    pub(crate) fn from_number(n: i64) -> Code {
        usize::try_from(n)
            .ok()
            .and_then(|i| CODES.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// The code's name as gRPC spells it (`UNAUTHENTICATED`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

/// A call's outcome: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Status {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// The status in `headers` (trailers, or the headers of a Trailers-Only answer); `None`
    /// without `grpc-status`. A `grpc-status` that is not a number is `UNKNOWN`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Status> {
        let value = headers.get("grpc-status")?;
        let message = headers
            .get("grpc-message")
            .map(|m| percent_decode(m.as_bytes()))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(value.as_bytes());
        Some(match text.trim().parse::<i64>() {
            Ok(n) => Status::new(Code::from_number(n), message),
            Err(_) => Status::new(
                Code::Unknown,
                format!("grpc-status {text:?} is not a number"),
            ),
        })
    }

    /// The status of a stream reset by the peer or of another HTTP/2 failure: the reset's
    /// reason mapped as gRPC's HTTP/2 document says (REFUSED_STREAM: UNAVAILABLE, CANCEL:
    /// CANCELLED, ENHANCE_YOUR_CALM: RESOURCE_EXHAUSTED, INADEQUATE_SECURITY:
    /// PERMISSION_DENIED, the other errors INTERNAL); without a reason, UNKNOWN.
    pub(crate) fn from_h2(e: &h2::Error) -> Status {
        let code = match e.reason() {
            Some(h2::Reason::REFUSED_STREAM) => Code::Unavailable,
            Some(h2::Reason::CANCEL) => Code::Cancelled,
            Some(h2::Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
            Some(h2::Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
            Some(_) => Code::Internal,
            None => Code::Unknown,
        };
        Status::new(code, e.to_string())
    }
}

/// `grpc-message`'s encoding: printable ASCII but `%` as is, every other byte `%XX`.
pub(crate) fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`percent_encode`]; a `%` not followed by two hex digits stays as it is,
/// bytes that are not UTF-8 become U+FFFD.
fn percent_decode(value: &[u8]) -> String {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                value.get(i + 1).and_then(|&c| hex(c)),
                value.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key` as the name of an ASCII custom metadata entry, if it may be one.
pub(crate) fn metadata_key(key: &str) -> Option<HeaderName> {
    Some(key)
        .filter(|k| is_metadata_key(k))
        .and_then(|k| HeaderName::from_bytes(k.as_bytes()).ok())
}

/// `value` as an ASCII metadata value, if it may be one.
pub(crate) fn metadata_value(value: &str) -> Option<HeaderValue> {
    Some(value)
        .filter(|v| is_metadata_value(v))
        .and_then(|v| HeaderValue::from_str(v).ok())
}

/// Whether `key` may name an ASCII custom metadata entry: 1 or more of `0-9 a-z _ - .`, not
/// ending in `-bin` (binary entries) and not starting with `grpc-` (reserved).
fn is_metadata_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"_-.".contains(&b))
        && !key.ends_with("-bin")
        && !key.starts_with("grpc-")
}

/// Whether `value` may be an ASCII metadata value: printable ASCII and space only.
fn is_metadata_value(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A body with any flag and a prefix that tells the truth (for the rules' tests).
    pub(crate) fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    #[test]
    fn framing_rules() {
        let message = prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("x".to_owned())),
        };
        let good = frame(&message).unwrap_or_default();
        assert_eq!(good, framed(0, &prost::Message::encode_to_vec(&message)));
        assert_eq!(unframe(&good, 64), Ok(&good[5..]));
        assert_eq!(unframe(&[], 64), Err(Framing::NoMessage { len: 0 }));
        assert_eq!(unframe(&good[..4], 64), Err(Framing::NoMessage { len: 4 }));
        let n = good.len() - 5;
        assert_eq!(
            unframe(&good[..good.len() - 1], 64),
            Err(Framing::Short {
                have: n - 1,
                says: n
            })
        );
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert_eq!(
            unframe(&two, 64),
            Err(Framing::Trailing { extra: good.len() })
        );
        assert_eq!(unframe(&framed(1, b"ab"), 64), Err(Framing::Compressed));
        assert_eq!(unframe(&framed(7, b""), 64), Err(Framing::BadFlag(7)));
        assert_eq!(
            unframe(&framed(0, &[0; 65]), 64),
            Err(Framing::TooLarge { len: 65, limit: 64 })
        );
        assert_eq!(unframe(&framed(0, &[0; 64]), 64), Ok(&[0u8; 64][..]));
    }

    #[test]
    fn codes_by_number_and_name() {
        for (n, code) in CODES.iter().enumerate() {
            assert_eq!(Code::from_number(n as i64), *code);
            assert_eq!(*code as usize, n);
        }
        assert_eq!(Code::from_number(17), Code::Unknown);
        assert_eq!(Code::from_number(-1), Code::Unknown);
        assert_eq!(Code::Unauthenticated.name(), "UNAUTHENTICATED");
        assert_eq!(Code::DeadlineExceeded.name(), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn status_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(Status::from_headers(&h), None);
        h.insert("grpc-status", HeaderValue::from_static("16"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("no%20way%C3%A9 100%"),
        );
        assert_eq!(
            Status::from_headers(&h),
            Some(Status::new(Code::Unauthenticated, "no wayé 100%"))
        );
        h.insert("grpc-status", HeaderValue::from_static("x1"));
        assert_eq!(
            Status::from_headers(&h).map(|s| s.code),
            Some(Code::Unknown)
        );
        h.insert("grpc-status", HeaderValue::from_static("99"));
        assert_eq!(
            Status::from_headers(&h).map(|s| s.code),
            Some(Code::Unknown)
        );
    }

    #[test]
    fn percent_encoding_round_trips() {
        for text in ["", "plain", "a b%c\né", "100%", "%%41", "\u{1F600}"] {
            assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
        }
        assert_eq!(percent_encode("a b%c\né"), "a b%25c%0A%C3%A9");
        assert_eq!(percent_decode(b"%4"), "%4");
        assert_eq!(percent_decode(b"%zz%41"), "%zzA");
        assert_eq!(percent_decode(b"%FF"), "\u{FFFD}");
    }

    #[test]
    fn reset_reasons_map_to_codes() {
        let of = |r: h2::Reason| Status::from_h2(&h2::Error::from(r)).code;
        assert_eq!(of(h2::Reason::REFUSED_STREAM), Code::Unavailable);
        assert_eq!(of(h2::Reason::CANCEL), Code::Cancelled);
        assert_eq!(of(h2::Reason::ENHANCE_YOUR_CALM), Code::ResourceExhausted);
        assert_eq!(of(h2::Reason::INADEQUATE_SECURITY), Code::PermissionDenied);
        assert_eq!(of(h2::Reason::PROTOCOL_ERROR), Code::Internal);
        assert_eq!(of(h2::Reason::NO_ERROR), Code::Internal);
    }

    #[test]
    fn metadata_rules() {
        assert!(is_metadata_key("x-extra"));
        assert!(is_metadata_key("clusterid"));
        assert!(is_metadata_key("a.b_c-1"));
        for bad in [
            "",
            "X-Extra",
            "x extra",
            "x-bin",
            "grpc-timeout",
            ":path",
            "é",
        ] {
            assert!(!is_metadata_key(bad), "{bad}");
        }
        assert!(is_metadata_value("Bearer abc.def"));
        assert!(is_metadata_value(""));
        assert!(!is_metadata_value("a\nb"));
        assert!(!is_metadata_value("é"));
        assert_eq!(
            metadata_key("x-extra"),
            Some(HeaderName::from_static("x-extra"))
        );
        assert_eq!(metadata_key("x-bin"), None);
        assert_eq!(metadata_value("a b"), Some(HeaderValue::from_static("a b")));
        assert_eq!(metadata_value("a\tb"), None);
    }
}
