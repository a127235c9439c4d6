//! A small, strict DER reader for the X.509 fields the SVID profile needs.
//!
//! rustls-webpki validates paths but exposes none of the extensions the SPIFFE profile is
//! about (BasicConstraints, KeyUsage, ExtendedKeyUsage, URI SANs, name constraints). Reading
//! them here costs well under a microsecond per certificate and allocates nothing, which keeps
//! a full SVID verification within a few percent of webpki's own path validation. Only DER is
//! accepted: definite, minimal lengths; low tag numbers; no trailing bytes.

/// A DER decoding failure, rendered into error messages by the caller.
pub(crate) type DerResult<T> = Result<T, String>;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xA0;
const TAG_ISSUER_UID: u8 = 0x81;
const TAG_SUBJECT_UID: u8 = 0x82;
const TAG_EXTENSIONS: u8 = 0xA3;
const TAG_GN_URI: u8 = 0x86;
const TAG_PERMITTED: u8 = 0xA0;
const TAG_EXCLUDED: u8 = 0xA1;

const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const OID_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
pub(crate) const OID_KP_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
pub(crate) const OID_KP_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// KeyUsage bits, numbered as RFC 5280 §4.2.1.3 does (bit 0 = digitalSignature), stored with
/// bit 0 as the most significant bit of a `u16`.
pub(crate) const KU_DIGITAL_SIGNATURE: u16 = 0x8000;
pub(crate) const KU_KEY_CERT_SIGN: u16 = 0x0400;
pub(crate) const KU_CRL_SIGN: u16 = 0x0200;

const KU_NAMES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

/// Cursor over a DER byte string.
#[derive(Clone, Copy, Debug)]
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

    /// Reads one TLV: `(tag, value, whole encoding)`.
    pub(crate) fn read_tlv(&mut self) -> DerResult<(u8, &'a [u8], &'a [u8])> {
        let start = self.data;
        let (&tag, rest) = self
            .data
            .split_first()
            .ok_or_else(|| "truncated: a DER element was expected".to_owned())?;
        if tag & 0x1f == 0x1f {
            return Err(format!("tag 0x{tag:02x} uses the high-tag-number form"));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| "truncated: a DER length was expected".to_owned())?;
        let len = if first < 0x80 {
            usize::from(first)
        } else if first == 0x80 {
            return Err("indefinite length (BER, not DER)".to_owned());
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 || rest.len() < n {
                return Err("length field too large or truncated".to_owned());
            }
            let (bytes, after) = rest.split_at(n);
            if bytes.first() == Some(&0) {
                return Err("non-minimal length encoding".to_owned());
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err("non-minimal length encoding".to_owned());
            }
            rest = after;
            len
        };
        if rest.len() < len {
            return Err(format!(
                "truncated: element of {len} bytes, {} left",
                rest.len()
            ));
        }
        let (value, after) = rest.split_at(len);
        let whole_len = start.len() - after.len();
        self.data = after;
        Ok((tag, value, &start[..whole_len]))
    }

    /// Reads one element that must carry `tag`, returning its value.
    pub(crate) fn read(&mut self, tag: u8, what: &str) -> DerResult<&'a [u8]> {
        let (t, value, _) = self.read_tlv()?;
        if t != tag {
            return Err(format!(
                "{what}: expected DER tag 0x{tag:02x}, found 0x{t:02x}"
            ));
        }
        Ok(value)
    }

    /// Reads an element with `tag` if the next one has it.
    pub(crate) fn read_optional(&mut self, tag: u8, what: &str) -> DerResult<Option<&'a [u8]>> {
        if self.peek_tag() == Some(tag) {
            return self.read(tag, what).map(Some);
        }
        Ok(None)
    }

    pub(crate) fn finish(&self, what: &str) -> DerResult<()> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what}: {} unexpected trailing bytes",
                self.data.len()
            ))
        }
    }
}

fn read_bool(value: &[u8], what: &str) -> DerResult<bool> {
    match value {
        [0xff] => Ok(true),
        [0x00] => Ok(false),
        _ => Err(format!("{what}: malformed BOOLEAN")),
    }
}

/// BasicConstraints as read from the certificate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BasicConstraints {
    pub(crate) ca: bool,
}

/// KeyUsage bits and criticality.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyUsage {
    pub(crate) bits: u16,
    pub(crate) critical: bool,
}

impl KeyUsage {
    pub(crate) fn has(&self, bit: u16) -> bool {
        self.bits & bit != 0
    }

    /// The names of the bits set, for messages and `inspect`.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        KU_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.bits & (0x8000 >> i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// ExtendedKeyUsage summary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtKeyUsage<'a> {
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    /// The SEQUENCE OF OID contents, for naming the purposes in messages.
    value: &'a [u8],
}

impl ExtKeyUsage<'_> {
    pub(crate) fn has_both(&self) -> bool {
        self.server_auth && self.client_auth
    }

    /// The purposes, by name where known, else as dotted OIDs.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut r = Reader::new(self.value);
        let mut out = Vec::new();
        while let Ok(oid) = r.read(TAG_OID, "extended key usage") {
            out.push(eku_name(oid));
        }
        out
    }
}

fn eku_name(oid: &[u8]) -> String {
    const KP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03];
    if let Some(&[n]) = oid.strip_prefix(KP) {
        let name = match n {
            1 => Some("serverAuth"),
            2 => Some("clientAuth"),
            3 => Some("codeSigning"),
            4 => Some("emailProtection"),
            8 => Some("timeStamping"),
            9 => Some("OCSPSigning"),
            _ => None,
        };
        if let Some(name) = name {
            return name.to_owned();
        }
    }
    if oid == [0x55, 0x1d, 0x25, 0x00] {
        return "anyExtendedKeyUsage".to_owned();
    }
    oid_to_string(oid)
}

/// Dotted-decimal form of an OID's content bytes.
pub(crate) fn oid_to_string(oid: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut acc: u64 = 0;
    let mut first = true;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if first {
                let (a, b) = if acc < 40 {
                    (0, acc)
                } else if acc < 80 {
                    (1, acc - 40)
                } else {
                    (2, acc - 80)
                };
                parts.push(a.to_string());
                parts.push(b.to_string());
                first = false;
            } else {
                parts.push(acc.to_string());
            }
            acc = 0;
        }
    }
    parts.join(".")
}

/// SubjectAltName summary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SubjectAltName<'a> {
    pub(crate) critical: bool,
    pub(crate) uri_count: usize,
    pub(crate) first_uri: Option<&'a [u8]>,
    value: &'a [u8],
}

impl<'a> SubjectAltName<'a> {
    /// Every URI SAN, in order.
    pub(crate) fn uris(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        general_names(self.value).filter_map(|(tag, v)| (tag == TAG_GN_URI).then_some(v))
    }

    /// Every DNS SAN, in order.
    pub(crate) fn dns_names(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        general_names(self.value).filter_map(|(tag, v)| (tag == 0x82).then_some(v))
    }

    /// Every IP SAN, in order.
    pub(crate) fn ip_addresses(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        general_names(self.value).filter_map(|(tag, v)| (tag == 0x87).then_some(v))
    }
}

fn general_names(value: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut r = Reader::new(value);
    std::iter::from_fn(move || r.read_tlv().ok().map(|(t, v, _)| (t, v)))
}

/// The fields of one certificate that SVID verification reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CertInfo<'a> {
    /// The Subject Name's contents (empty for an empty subject).
    pub(crate) subject: &'a [u8],
    /// SubjectPublicKeyInfo, whole encoding.
    pub(crate) spki: &'a [u8],
    /// The serial number's content bytes.
    pub(crate) serial: &'a [u8],
    /// NotBefore, seconds since the Unix epoch.
    pub(crate) not_before: i64,
    /// NotAfter, seconds since the Unix epoch.
    pub(crate) not_after: i64,
    pub(crate) basic_constraints: Option<BasicConstraints>,
    pub(crate) key_usage: Option<KeyUsage>,
    pub(crate) ext_key_usage: Option<ExtKeyUsage<'a>>,
    pub(crate) subject_alt_name: Option<SubjectAltName<'a>>,
    /// Whether NameConstraints has a URI-typed subtree (permitted or excluded).
    pub(crate) uri_name_constraints: bool,
    /// Whether a NameConstraints extension is present at all.
    pub(crate) name_constraints: bool,
}

impl<'a> CertInfo<'a> {
    /// Parses a DER X.509 v3 certificate.
    pub(crate) fn parse(der: &'a [u8]) -> DerResult<Self> {
        let mut outer = Reader::new(der);
        let cert = outer.read(TAG_SEQUENCE, "certificate")?;
        outer.finish("certificate")?;
        let mut c = Reader::new(cert);
        let tbs = c.read(TAG_SEQUENCE, "tbsCertificate")?;
        c.read(TAG_SEQUENCE, "signatureAlgorithm")?;
        c.read(TAG_BIT_STRING, "signatureValue")?;
        c.finish("certificate")?;

        let mut t = Reader::new(tbs);
        let version = t.read_optional(TAG_VERSION, "version")?;
        let v3 = match version {
            Some(v) => {
                let mut vr = Reader::new(v);
                let n = vr.read(TAG_INTEGER, "version")?;
                vr.finish("version")?;
                n == [2]
            }
            None => false,
        };
        if !v3 {
            return Err("not an X.509 v3 certificate (an SVID needs v3 extensions)".to_owned());
        }
        let serial = t.read(TAG_INTEGER, "serialNumber")?;
        t.read(TAG_SEQUENCE, "signature")?;
        t.read(TAG_SEQUENCE, "issuer")?;
        let validity = t.read(TAG_SEQUENCE, "validity")?;
        let subject = t.read(TAG_SEQUENCE, "subject")?;
        let (spki_tag, _, spki) = t.read_tlv()?;
        if spki_tag != TAG_SEQUENCE {
            return Err("subjectPublicKeyInfo: expected a SEQUENCE".to_owned());
        }
        t.read_optional(TAG_ISSUER_UID, "issuerUniqueID")?;
        t.read_optional(TAG_SUBJECT_UID, "subjectUniqueID")?;
        let extensions = t.read_optional(TAG_EXTENSIONS, "extensions")?;
        t.finish("tbsCertificate")?;

        let mut vr = Reader::new(validity);
        let not_before = read_time(&mut vr, "notBefore")?;
        let not_after = read_time(&mut vr, "notAfter")?;
        vr.finish("validity")?;

        let mut info = CertInfo {
            subject,
            spki,
            serial,
            not_before,
            not_after,
            basic_constraints: None,
            key_usage: None,
            ext_key_usage: None,
            subject_alt_name: None,
            uri_name_constraints: false,
            name_constraints: false,
        };
        if let Some(ext) = extensions {
            info.read_extensions(ext)?;
        }
        Ok(info)
    }

    fn read_extensions(&mut self, wrapped: &'a [u8]) -> DerResult<()> {
        let mut w = Reader::new(wrapped);
        let list = w.read(TAG_SEQUENCE, "extensions")?;
        w.finish("extensions")?;
        let mut r = Reader::new(list);
        if r.is_empty() {
            return Err("extensions: empty list".to_owned());
        }
        // Certificates carry a handful of extensions: a linear scan beats hashing.
        let mut seen: [&[u8]; 64] = [&[]; 64];
        let mut seen_len = 0;
        while !r.is_empty() {
            let ext = r.read(TAG_SEQUENCE, "extension")?;
            let mut e = Reader::new(ext);
            let oid = e.read(TAG_OID, "extension id")?;
            let critical = match e.read_optional(TAG_BOOLEAN, "extension critical flag")? {
                Some(v) => read_bool(v, "extension critical flag")?,
                None => false,
            };
            let value = e.read(TAG_OCTET_STRING, "extension value")?;
            e.finish("extension")?;
            if seen[..seen_len].contains(&oid) {
                return Err(format!(
                    "extension {} appears twice (RFC 5280 §4.2)",
                    oid_to_string(oid)
                ));
            }
            if seen_len == seen.len() {
                return Err("more than 64 extensions".to_owned());
            }
            seen[seen_len] = oid;
            seen_len += 1;
            match oid {
                OID_BASIC_CONSTRAINTS => self.basic_constraints = Some(parse_bc(value)?),
                OID_KEY_USAGE => {
                    self.key_usage = Some(KeyUsage {
                        bits: parse_ku(value)?,
                        critical,
                    })
                }
                OID_EXT_KEY_USAGE => self.ext_key_usage = Some(parse_eku(value)?),
                OID_SUBJECT_ALT_NAME => self.subject_alt_name = Some(parse_san(value, critical)?),
                OID_NAME_CONSTRAINTS => {
                    self.name_constraints = true;
                    self.uri_name_constraints = parse_nc_has_uri(value)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn parse_bc(value: &[u8]) -> DerResult<BasicConstraints> {
    let mut outer = Reader::new(value);
    let seq = outer.read(TAG_SEQUENCE, "basic constraints")?;
    outer.finish("basic constraints")?;
    let mut r = Reader::new(seq);
    let ca = match r.read_optional(TAG_BOOLEAN, "basic constraints cA")? {
        Some(v) => read_bool(v, "basic constraints cA")?,
        None => false,
    };
    if let Some(len) = r.read_optional(TAG_INTEGER, "basic constraints pathLenConstraint")? {
        if len.is_empty() || len[0] & 0x80 != 0 {
            return Err("basic constraints: negative or empty pathLenConstraint".to_owned());
        }
    }
    r.finish("basic constraints")?;
    Ok(BasicConstraints { ca })
}

fn parse_ku(value: &[u8]) -> DerResult<u16> {
    let mut outer = Reader::new(value);
    let bits = outer.read(TAG_BIT_STRING, "key usage")?;
    outer.finish("key usage")?;
    let (&unused, content) = bits
        .split_first()
        .ok_or_else(|| "key usage: empty BIT STRING".to_owned())?;
    if unused > 7 || (content.is_empty() && unused != 0) {
        return Err("key usage: malformed BIT STRING".to_owned());
    }
    if content.len() > 2 {
        return Err("key usage: more than 9 bits".to_owned());
    }
    let hi = content.first().copied().unwrap_or(0);
    let lo = content.get(1).copied().unwrap_or(0);
    Ok((u16::from(hi) << 8) | u16::from(lo))
}

fn parse_eku(value: &[u8]) -> DerResult<ExtKeyUsage<'_>> {
    let mut outer = Reader::new(value);
    let seq = outer.read(TAG_SEQUENCE, "extended key usage")?;
    outer.finish("extended key usage")?;
    let mut r = Reader::new(seq);
    if r.is_empty() {
        return Err("extended key usage: empty list (RFC 5280 requires at least one)".to_owned());
    }
    let (mut server_auth, mut client_auth) = (false, false);
    while !r.is_empty() {
        let oid = r.read(TAG_OID, "extended key usage purpose")?;
        server_auth |= oid == OID_KP_SERVER_AUTH;
        client_auth |= oid == OID_KP_CLIENT_AUTH;
    }
    Ok(ExtKeyUsage {
        server_auth,
        client_auth,
        value: seq,
    })
}

fn parse_san(value: &[u8], critical: bool) -> DerResult<SubjectAltName<'_>> {
    let mut outer = Reader::new(value);
    let seq = outer.read(TAG_SEQUENCE, "subject alternative name")?;
    outer.finish("subject alternative name")?;
    let mut r = Reader::new(seq);
    if r.is_empty() {
        return Err("subject alternative name: empty list".to_owned());
    }
    let mut uri_count = 0;
    let mut first_uri = None;
    while !r.is_empty() {
        let (tag, v, _) = r.read_tlv()?;
        match tag {
            TAG_GN_URI => {
                uri_count += 1;
                if first_uri.is_none() {
                    first_uri = Some(v);
                }
            }
            // otherName, rfc822Name, dNSName, x400Address, directoryName, ediPartyName,
            // iPAddress, registeredID.
            0xa0 | 0x81 | 0x82 | 0xa3 | 0xa4 | 0xa5 | 0x87 | 0x88 => {}
            _ => {
                return Err(format!(
                    "subject alternative name: invalid GeneralName tag 0x{tag:02x}"
                ));
            }
        }
    }
    Ok(SubjectAltName {
        critical,
        uri_count,
        first_uri,
        value: seq,
    })
}

fn parse_nc_has_uri(value: &[u8]) -> DerResult<bool> {
    let mut outer = Reader::new(value);
    let seq = outer.read(TAG_SEQUENCE, "name constraints")?;
    outer.finish("name constraints")?;
    let mut r = Reader::new(seq);
    let mut has_uri = false;
    for tag in [TAG_PERMITTED, TAG_EXCLUDED] {
        if let Some(subtrees) = r.read_optional(tag, "name constraints subtrees")? {
            let mut s = Reader::new(subtrees);
            while !s.is_empty() {
                let subtree = s.read(TAG_SEQUENCE, "name constraints subtree")?;
                let mut g = Reader::new(subtree);
                let (base_tag, _, _) = g.read_tlv()?;
                has_uri |= base_tag == TAG_GN_URI;
            }
        }
    }
    r.finish("name constraints")?;
    Ok(has_uri)
}

fn read_time(r: &mut Reader<'_>, what: &str) -> DerResult<i64> {
    let (tag, value, _) = r.read_tlv()?;
    let digits = |s: &[u8]| -> DerResult<i64> {
        s.iter().try_fold(0i64, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(format!("{what}: malformed time"))
            }
        })
    };
    let (year, rest) = match (tag, value.len()) {
        (TAG_UTC_TIME, 13) => {
            let yy = digits(&value[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (TAG_GENERALIZED_TIME, 15) => (digits(&value[..4])?, &value[4..]),
        _ => {
            return Err(format!(
                "{what}: expected UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ"
            ));
        }
    };
    if rest[10] != b'Z' {
        return Err(format!("{what}: time must be in UTC (end in Z)"));
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!("{what}: date or time out of range"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A public key, as the JWK members that describe it (RFC 7518 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey<'a> {
    /// `kty: RSA` with modulus and exponent (big-endian, no leading zeros).
    Rsa { n: &'a [u8], e: &'a [u8] },
    /// `kty: EC` with curve name and coordinates.
    Ec {
        crv: &'static str,
        x: &'a [u8],
        y: &'a [u8],
    },
    /// `kty: OKP`, `crv: Ed25519` or `Ed448`.
    Okp { crv: &'static str, x: &'a [u8] },
}

impl PublicKey<'_> {
    pub(crate) fn kty(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "RSA",
            PublicKey::Ec { .. } => "EC",
            PublicKey::Okp { .. } => "OKP",
        }
    }
}

/// Reads a SubjectPublicKeyInfo into JWK terms.
pub(crate) fn public_key(spki: &[u8]) -> DerResult<PublicKey<'_>> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    const ED448: &[u8] = &[0x2b, 0x65, 0x71];

    let mut outer = Reader::new(spki);
    let seq = outer.read(TAG_SEQUENCE, "subjectPublicKeyInfo")?;
    let mut r = Reader::new(seq);
    let alg = r.read(TAG_SEQUENCE, "subjectPublicKeyInfo algorithm")?;
    let key_bits = r.read(TAG_BIT_STRING, "subjectPublicKey")?;
    let key = match key_bits.split_first() {
        Some((0, key)) => key,
        _ => return Err("subjectPublicKey: malformed BIT STRING".to_owned()),
    };
    let mut a = Reader::new(alg);
    let oid = a.read(TAG_OID, "public key algorithm")?;
    match oid {
        RSA => {
            let mut kr = Reader::new(key);
            let mut k = Reader::new(kr.read(TAG_SEQUENCE, "RSA public key")?);
            let n = strip_integer(k.read(TAG_INTEGER, "RSA modulus")?);
            let e = strip_integer(k.read(TAG_INTEGER, "RSA exponent")?);
            Ok(PublicKey::Rsa { n, e })
        }
        EC => {
            let curve = a.read(TAG_OID, "EC curve")?;
            let (crv, size) = match curve {
                P256 => ("P-256", 32),
                P384 => ("P-384", 48),
                P521 => ("P-521", 66),
                other => {
                    return Err(format!(
                        "EC curve {} is not a JWK curve",
                        oid_to_string(other)
                    ));
                }
            };
            match key.split_first() {
                Some((4, xy)) if xy.len() == 2 * size => Ok(PublicKey::Ec {
                    crv,
                    x: &xy[..size],
                    y: &xy[size..],
                }),
                _ => Err("EC point is not in uncompressed form".to_owned()),
            }
        }
        ED25519 => Ok(PublicKey::Okp {
            crv: "Ed25519",
            x: key,
        }),
        ED448 => Ok(PublicKey::Okp {
            crv: "Ed448",
            x: key,
        }),
        other => Err(format!(
            "public key algorithm {} has no JWK key type",
            oid_to_string(other)
        )),
    }
}

fn strip_integer(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [0, rest @ ..] = v {
        if rest.is_empty() {
            break;
        }
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1950, 1, 1), -7_305);
    }

    #[test]
    fn lengths_must_be_minimal_and_definite() {
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).read_tlv().is_err());
        assert!(
            Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5])
                .read_tlv()
                .is_err()
        );
        assert!(Reader::new(&[0x04, 0x82, 0x00, 0x81]).read_tlv().is_err());
        assert!(Reader::new(&[0x04, 0x03, 1, 2]).read_tlv().is_err());
        assert!(Reader::new(&[0x1f, 0x01, 0x00]).read_tlv().is_err());
        let mut ok = Reader::new(&[0x04, 0x02, 1, 2, 0x05, 0x00]);
        assert_eq!(ok.read(TAG_OCTET_STRING, "x").unwrap(), &[1, 2]);
        assert!(ok.finish("x").is_err());
    }

    #[test]
    fn oids_render_dotted() {
        assert_eq!(oid_to_string(OID_KP_SERVER_AUTH), "1.3.6.1.5.5.7.3.1");
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "1.2.840.10045.2.1"
        );
        assert_eq!(eku_name(OID_KP_CLIENT_AUTH), "clientAuth");
    }
}
