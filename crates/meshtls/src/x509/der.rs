//! The DER the crate writes and reads itself: one strict reader, tag and OID constants and a
//! tag-length-value writer.
//!
//! The CA assembles certificates from pre-encoded pieces (the constant parts are encoded once
//! per CA), so the writer only needs TLV framing. The reader accepts only DER (definite,
//! minimal lengths; low tag numbers; trailing bytes are the caller's [`Reader::finish`]) over
//! borrowed slices and allocates nothing, so SVID verification can read the certificate
//! profile fields on every handshake; CSR, key and SPKI parsing in `ca` and certificate-profile
//! parsing in `svid` are built on it.

/// Universal and context tags used here.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[0]` constructed (explicit version, CSR attributes).
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[1]` constructed (the public key inside an `ECPrivateKey`; excluded subtrees).
    pub const CONTEXT_1: u8 = 0xa1;
    /// `[3]` constructed (certificate extensions).
    pub const CONTEXT_3: u8 = 0xa3;
    /// `[0]` primitive (the key identifier inside an authority key identifier).
    pub const CONTEXT_PRIM_0: u8 = 0x80;
    /// `[1]` primitive (`issuerUniqueID`).
    pub const CONTEXT_PRIM_1: u8 = 0x81;
    /// `[2]` primitive (`dNSName` in a general name).
    pub const CONTEXT_PRIM_2: u8 = 0x82;
    /// `[6]` primitive (`uniformResourceIdentifier` in a general name).
    pub const CONTEXT_PRIM_6: u8 = 0x86;
    /// `[7]` primitive (`iPAddress` in a general name).
    pub const CONTEXT_PRIM_7: u8 = 0x87;
}

/// Object identifiers, as the content bytes of an OID TLV.
pub(crate) mod oid {
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const SECP256R1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const SECP521R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    pub const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub const ED448: &[u8] = &[0x2b, 0x65, 0x71];
    pub const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    pub const SUBJECT_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x0e];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    pub const KP_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    pub const KP_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

    /// Dotted-decimal text of an OID's content bytes, for error messages.
    pub(crate) fn dotted(content: &[u8]) -> String {
        let mut arcs: Vec<u64> = Vec::new();
        let mut acc: u64 = 0;
        for &b in content {
            acc = (acc << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let (first, second) = match acc {
                        0..=39 => (0, acc),
                        40..=79 => (1, acc - 40),
                        _ => (2, acc - 80),
                    };
                    arcs.push(first);
                    arcs.push(second);
                } else {
                    arcs.push(acc);
                }
                acc = 0;
            }
        }
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Number of bytes a DER length field takes for `len`.
pub(crate) fn length_size(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

/// Size of a whole TLV whose content is `len` bytes.
pub(crate) fn tlv_size(len: usize) -> usize {
    1 + length_size(len) + len
}

/// Appends a tag and a length.
pub(crate) fn header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    match length_size(len) {
        1 => out.push(len as u8),
        n => {
            out.push(0x80 | (n - 1) as u8);
            for i in (0..n - 1).rev() {
                out.push((len >> (8 * i)) as u8);
            }
        }
    }
}

/// Appends a whole TLV.
pub(crate) fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// Returns a TLV as a new vector.
pub(crate) fn tlv_vec(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlv_size(content.len()));
    tlv(&mut out, tag, content);
    out
}

/// A SEQUENCE of already-encoded parts.
pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    constructed(tag::SEQUENCE, parts)
}

/// A constructed TLV of already-encoded parts.
pub(crate) fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(tlv_size(len));
    header(&mut out, tag, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// A non-negative INTEGER from big-endian magnitude bytes (leading zeros are dropped, a zero
/// byte is prepended when the top bit is set).
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let digits = &magnitude[start..];
    if digits.is_empty() {
        return vec![tag::INTEGER, 1, 0];
    }
    let pad = usize::from(digits[0] & 0x80 != 0);
    let mut out = Vec::with_capacity(tlv_size(digits.len() + pad));
    header(&mut out, tag::INTEGER, digits.len() + pad);
    if pad == 1 {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlv_size(content.len() + 1));
    header(&mut out, tag::BIT_STRING, content.len() + 1);
    out.push(0);
    out.extend_from_slice(content);
    out
}

/// An `Extension`: `SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`.
pub(crate) fn extension(oid_content: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let oid = tlv_vec(tag::OID, oid_content);
    let octets = tlv_vec(tag::OCTET_STRING, value);
    if critical {
        sequence(&[&oid, &[tag::BOOLEAN, 1, 0xff], &octets])
    } else {
        sequence(&[&oid, &octets])
    }
}

/// Why DER could not be read. Carries no heap data, so a failed read allocates nothing; the
/// caller renders it (with `Display`) into its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerError {
    /// No bytes left where an element was expected.
    NoTag,
    /// A tag in the high-tag-number form.
    HighTag(u8),
    /// A tag with no length after it.
    NoLength,
    /// The BER indefinite length form.
    Indefinite,
    /// A long-form length of more than four bytes, or cut short.
    LengthTooLong,
    /// A length that has a shorter encoding.
    NonMinimal,
    /// Content shorter than its length says.
    Truncated { len: usize, left: usize },
    /// An element with the wrong tag; `what` names the field when the caller did.
    UnexpectedTag {
        what: Option<&'static str>,
        expected: u8,
        found: u8,
    },
    /// Bytes left after the last element; `what` names the enclosing field when known.
    Trailing {
        what: Option<&'static str>,
        count: usize,
    },
    /// A BIT STRING whose unused-bit count is not zero.
    UnusedBits,
}

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            DerError::NoTag => f.write_str("truncated: a DER element was expected"),
            DerError::HighTag(t) => write!(f, "tag 0x{t:02x} uses the high-tag-number form"),
            DerError::NoLength => f.write_str("truncated: a DER length was expected"),
            DerError::Indefinite => f.write_str("indefinite length (BER, not DER)"),
            DerError::LengthTooLong => f.write_str("length field too large or truncated"),
            DerError::NonMinimal => f.write_str("non-minimal length encoding"),
            DerError::Truncated { len, left } => {
                write!(f, "truncated: element of {len} bytes, {left} left")
            }
            DerError::UnexpectedTag {
                what,
                expected,
                found,
            } => {
                if let Some(what) = what {
                    write!(f, "{what}: ")?;
                }
                write!(f, "expected DER tag 0x{expected:02x}, found 0x{found:02x}")
            }
            DerError::Trailing { what, count } => {
                if let Some(what) = what {
                    write!(f, "{what}: ")?;
                }
                write!(f, "{count} unexpected trailing bytes")
            }
            DerError::UnusedBits => f.write_str("bit string with unused bits"),
        }
    }
}

impl From<DerError> for String {
    fn from(e: DerError) -> String {
        e.to_string()
    }
}

/// A strict reader over borrowed DER: definite, minimal lengths; low tag numbers; callers
/// check for trailing bytes with [`Reader::finish`]. Reading allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads any TLV: (tag, content, the whole TLV).
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), DerError> {
        let start = self.data;
        let (&tag, rest) = start.split_first().ok_or(DerError::NoTag)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::HighTag(tag));
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError::NoLength)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else if first == 0x80 {
            return Err(DerError::Indefinite);
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 || rest.len() < n {
                return Err(DerError::LengthTooLong);
            }
            let (bytes, after) = rest.split_at(n);
            if bytes.first() == Some(&0) {
                return Err(DerError::NonMinimal);
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(DerError::NonMinimal);
            }
            rest = after;
            len
        };
        if rest.len() < len {
            return Err(DerError::Truncated {
                len,
                left: rest.len(),
            });
        }
        let (content, after) = rest.split_at(len);
        let whole_len = start.len() - after.len();
        self.data = after;
        Ok((tag, content, &start[..whole_len]))
    }

    fn read_tagged(
        &mut self,
        expected: u8,
        what: Option<&'static str>,
    ) -> Result<(&'a [u8], &'a [u8]), DerError> {
        let (found, content, whole) = self.read_any()?;
        if found != expected {
            return Err(DerError::UnexpectedTag {
                what,
                expected,
                found,
            });
        }
        Ok((content, whole))
    }

    /// Reads a TLV with the expected tag and returns its content.
    pub(crate) fn read(&mut self, expected: u8) -> Result<&'a [u8], DerError> {
        self.read_tagged(expected, None).map(|(content, _)| content)
    }

    /// Like [`Reader::read`], naming the field in the error.
    pub(crate) fn read_field(
        &mut self,
        expected: u8,
        what: &'static str,
    ) -> Result<&'a [u8], DerError> {
        self.read_tagged(expected, Some(what))
            .map(|(content, _)| content)
    }

    /// Reads an element with `expected` tag if the next one has it.
    pub(crate) fn read_optional(
        &mut self,
        expected: u8,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(expected) {
            return self.read_field(expected, what).map(Some);
        }
        Ok(None)
    }

    /// Reads a TLV with the expected tag and returns the whole TLV.
    pub(crate) fn read_whole(&mut self, expected: u8) -> Result<&'a [u8], DerError> {
        self.read_tagged(expected, None).map(|(_, whole)| whole)
    }

    /// Reads a BIT STRING with no unused bits and returns its bytes.
    pub(crate) fn read_bit_string(&mut self) -> Result<&'a [u8], DerError> {
        let content = self.read(tag::BIT_STRING)?;
        match content.split_first() {
            Some((0, bits)) => Ok(bits),
            _ => Err(DerError::UnusedBits),
        }
    }

    fn finish_with(&self, what: Option<&'static str>) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError::Trailing {
                what,
                count: self.data.len(),
            })
        }
    }

    /// Fails unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DerError> {
        self.finish_with(None)
    }

    /// Like [`Reader::finish`], naming the field in the error.
    pub(crate) fn finish_field(&self, what: &'static str) -> Result<(), DerError> {
        self.finish_with(Some(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 1000, 65535, 65536] {
            let content = vec![7u8; len];
            let enc = tlv_vec(tag::OCTET_STRING, &content);
            assert_eq!(enc.len(), tlv_size(len));
            let mut r = Reader::new(&enc);
            assert_eq!(r.read(tag::OCTET_STRING).unwrap(), &content[..]);
            r.finish().unwrap();
        }
    }

    #[test]
    fn non_minimal_length_is_rejected() {
        let mut r = Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]);
        assert!(r.read_any().is_err());
        let mut r = Reader::new(&[0x30, 0x80, 0, 0]);
        assert!(r.read_any().is_err());
    }

    #[test]
    fn lengths_must_be_minimal_and_definite() {
        assert!(Reader::new(&[0x04, 0x82, 0x00, 0x81]).read_any().is_err());
        assert!(Reader::new(&[0x04, 0x03, 1, 2]).read_any().is_err());
        assert!(Reader::new(&[0x1f, 0x01, 0x00]).read_any().is_err());
        let mut ok = Reader::new(&[0x04, 0x02, 1, 2, 0x05, 0x00]);
        assert_eq!(ok.read_field(tag::OCTET_STRING, "x").unwrap(), &[1, 2]);
        assert_eq!(
            ok.finish_field("x").unwrap_err().to_string(),
            "x: 2 unexpected trailing bytes"
        );
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 0x7f]), vec![2, 1, 0x7f]);
        assert_eq!(unsigned_integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0]), vec![2, 1, 0]);
    }

    #[test]
    fn oid_text() {
        assert_eq!(oid::dotted(oid::SECP384R1), "1.3.132.0.34");
        assert_eq!(oid::dotted(oid::RSA_ENCRYPTION), "1.2.840.113549.1.1.1");
        assert_eq!(oid::dotted(oid::KP_SERVER_AUTH), "1.3.6.1.5.5.7.3.1");
    }
}
