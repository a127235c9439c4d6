//! Byte-level SPIFFE ID grammar (SPIFFE-ID.md §2), with go-spiffe's parse order.

use crate::error::{SpiffeIdError, SpiffeIdErrorKind as Kind};

pub(crate) const SCHEME: &str = "spiffe://";
/// SPIFFE-ID.md §2.3: a trust domain is at most 255 bytes.
pub(crate) const MAX_TRUST_DOMAIN_LEN: usize = 255;

const TD: u8 = 1;
const PATH: u8 = 2;

/// One table lookup per byte: bit `TD` for `[a-z0-9._-]`, bit `PATH` for `[a-zA-Z0-9._-]`.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let lower =
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_';
        if lower {
            t[c] = TD | PATH;
        } else if b.is_ascii_uppercase() {
            t[c] = PATH;
        }
        c += 1;
    }
    t
};

#[inline]
pub(crate) fn is_td_byte(b: u8) -> bool {
    CLASS[b as usize] & TD != 0
}

#[inline]
pub(crate) fn is_path_byte(b: u8) -> bool {
    CLASS[b as usize] & PATH != 0
}

/// Checks a bare trust-domain name; returns it unchanged on success.
pub(crate) fn check_trust_domain_name(name: &str, what: &'static str) -> Result<(), SpiffeIdError> {
    if name.is_empty() {
        return Err(SpiffeIdError::new(
            what,
            name,
            Kind::MissingTrustDomain,
            None,
        ));
    }
    if let Some(pos) = name.bytes().position(|b| !is_td_byte(b)) {
        return Err(SpiffeIdError::new(
            what,
            name,
            Kind::BadTrustDomainChar,
            Some(pos),
        ));
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::new(
            what,
            name,
            Kind::TrustDomainTooLong,
            None,
        ));
    }
    Ok(())
}

/// Parses a full SPIFFE ID strictly; returns the byte length of the trust domain.
pub(crate) fn parse_id(input: &str, what: &'static str) -> Result<usize, SpiffeIdError> {
    let bytes = input.as_bytes();
    if bytes.is_empty() {
        return Err(SpiffeIdError::new(what, input, Kind::Empty, None));
    }
    if !input.starts_with(SCHEME) {
        return Err(SpiffeIdError::new(what, input, Kind::WrongScheme, Some(0)));
    }
    let rest = &bytes[SCHEME.len()..];
    let mut td_len = 0;
    while td_len < rest.len() {
        let b = rest[td_len];
        if b == b'/' {
            break;
        }
        if !is_td_byte(b) {
            return Err(SpiffeIdError::new(
                what,
                input,
                Kind::BadTrustDomainChar,
                Some(SCHEME.len() + td_len),
            ));
        }
        td_len += 1;
    }
    if td_len == 0 {
        return Err(SpiffeIdError::new(
            what,
            input,
            Kind::MissingTrustDomain,
            Some(SCHEME.len()),
        ));
    }
    if td_len > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::new(
            what,
            input,
            Kind::TrustDomainTooLong,
            None,
        ));
    }
    check_path(input, SCHEME.len() + td_len, what)?;
    Ok(td_len)
}

/// Checks the path part of `input` starting at byte `start` (empty, or `/seg(/seg)*`).
pub(crate) fn check_path(
    input: &str,
    start: usize,
    what: &'static str,
) -> Result<(), SpiffeIdError> {
    let path = &input.as_bytes()[start..];
    if path.is_empty() {
        return Ok(());
    }
    // go-spiffe walks segment by segment: an empty or dot segment is reported when its
    // terminating '/' (or the end) is reached; a bad byte as soon as it is seen.
    let mut seg_start = 0;
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'/' {
            if i > 0 {
                check_segment(input, start, &path[seg_start..i], seg_start, what)?;
            }
            seg_start = i + 1;
        } else if !is_path_byte(b) {
            return Err(SpiffeIdError::new(
                what,
                input,
                Kind::BadPathSegmentChar,
                Some(start + i),
            ));
        }
        i += 1;
    }
    if seg_start == path.len() {
        // The path ends with '/'.
        return Err(SpiffeIdError::new(
            what,
            input,
            Kind::TrailingSlash,
            Some(input.len() - 1),
        ));
    }
    check_segment(input, start, &path[seg_start..], seg_start, what)
}

fn check_segment(
    input: &str,
    start: usize,
    segment: &[u8],
    at: usize,
    what: &'static str,
) -> Result<(), SpiffeIdError> {
    match segment {
        b"" => Err(SpiffeIdError::new(
            what,
            input,
            Kind::EmptySegment,
            Some(start + at),
        )),
        b"." | b".." => Err(SpiffeIdError::new(
            what,
            input,
            Kind::DotSegment,
            Some(start + at),
        )),
        _ => Ok(()),
    }
}

/// Checks one path segment given to a builder.
pub(crate) fn check_single_segment(segment: &str, what: &'static str) -> Result<(), SpiffeIdError> {
    if segment.is_empty() {
        return Err(SpiffeIdError::new(what, segment, Kind::EmptySegment, None));
    }
    if let Some(pos) = segment.bytes().position(|b| b == b'/') {
        return Err(SpiffeIdError::new(
            what,
            segment,
            Kind::BadSegment,
            Some(pos),
        ));
    }
    if let Some(pos) = segment.bytes().position(|b| !is_path_byte(b)) {
        return Err(SpiffeIdError::new(
            what,
            segment,
            Kind::BadPathSegmentChar,
            Some(pos),
        ));
    }
    if segment == "." || segment == ".." {
        return Err(SpiffeIdError::new(what, segment, Kind::DotSegment, None));
    }
    Ok(())
}
