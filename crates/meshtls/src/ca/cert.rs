//! Certificate assembly (Istio's templates, pre-encoded per CA) and the certificate facts the
//! CA needs from certificates it loads.

use rustls_pki_types::CertificateDer;

use super::key::SigningKey;
use crate::der::{self, Reader, oid, tag};
use crate::error::CaError;

/// A random positive serial of up to 128 bits as a DER INTEGER (Istio's `genSerialNum`: a
/// uniform value in `[1, 2^128)`; a zero draw is retried because RFC 5280 wants a positive
/// serial).
pub(crate) fn random_serial() -> Result<Vec<u8>, CaError> {
    let mut bytes = [0u8; 16];
    loop {
        // Straight from aws-lc's fork-safe DRBG: a per-process pool would hand the same
        // serials to both sides of a fork().
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CaError::Crypto {
            action: "drawing a serial number",
        })?;
        if bytes.iter().any(|&b| b != 0) {
            return Ok(der::unsigned_integer(&bytes));
        }
    }
}

/// A calendar date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

/// Unix seconds to the proleptic Gregorian calendar (the era/day-of-era method: 400-year eras
/// of 146097 days, years counted from March so the leap day comes last).
fn civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: month as u8,
        day: day as u8,
        hour: (secs / 3600) as u8,
        minute: (secs % 3600 / 60) as u8,
        second: (secs % 60) as u8,
    }
}

fn time_out_of_range(unix: i64) -> CaError {
    CaError::InvalidParam {
        param: "validity",
        value: unix.to_string(),
        rule: "a certificate time must fall in years 0000 to 9999".to_owned(),
    }
}

/// Appends an RFC 5280 time: UTCTime for 1950–2049, GeneralizedTime otherwise.
pub(crate) fn push_time(out: &mut Vec<u8>, unix: i64) -> Result<(), CaError> {
    let t = civil(unix);
    if !(0..=9999).contains(&t.year) {
        return Err(time_out_of_range(unix));
    }
    let two = |out: &mut Vec<u8>, v: u8| {
        out.push(b'0' + v / 10);
        out.push(b'0' + v % 10);
    };
    let year = t.year as u16;
    if (1950..2050).contains(&year) {
        out.extend_from_slice(&[tag::UTC_TIME, 13]);
        two(out, (year % 100) as u8);
    } else {
        out.extend_from_slice(&[tag::GENERALIZED_TIME, 15]);
        two(out, (year / 100) as u8);
        two(out, (year % 100) as u8);
    }
    two(out, t.month);
    two(out, t.day);
    two(out, t.hour);
    two(out, t.minute);
    two(out, t.second);
    out.push(b'Z');
    Ok(())
}

/// Size of an encoded time.
fn time_size(unix: i64) -> usize {
    // 1950-01-01T00:00:00Z and 2050-01-01T00:00:00Z.
    if (-631_152_000..2_524_608_000).contains(&unix) {
        15
    } else {
        17
    }
}

/// `Validity ::= SEQUENCE { notBefore, notAfter }`.
pub(crate) fn validity(not_before: i64, not_after: i64) -> Result<Vec<u8>, CaError> {
    let len = time_size(not_before) + time_size(not_after);
    let mut out = Vec::with_capacity(2 + len);
    der::header(&mut out, tag::SEQUENCE, len);
    push_time(&mut out, not_before)?;
    push_time(&mut out, not_after)?;
    Ok(out)
}

/// Go's choice of string type for a name attribute: PrintableString when every character is
/// in its alphabet, UTF8String otherwise.
fn directory_string(value: &str) -> Vec<u8> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let t = if printable {
        tag::PRINTABLE_STRING
    } else {
        tag::UTF8_STRING
    };
    der::tlv_vec(t, value.as_bytes())
}

/// A `Name` with `O=<organization>` and an optional `CN` (Go's attribute order: O before CN).
pub(crate) fn name(organization: &str, common_name: Option<&str>) -> Vec<u8> {
    let rdn = |attr_oid: &[u8], value: &str| {
        let atv = der::sequence(&[&der::tlv_vec(tag::OID, attr_oid), &directory_string(value)]);
        der::constructed(tag::SET, &[&atv])
    };
    let mut rdns = vec![rdn(oid::ORGANIZATION, organization)];
    if let Some(cn) = common_name {
        rdns.push(rdn(oid::COMMON_NAME, cn));
    }
    let parts: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    der::sequence(&parts)
}

/// The subject key identifier of a public key: SHA-1 of the subjectPublicKey bits (RFC 5280
/// §4.2.1.2 method 1, which is what Go computes for CA certificates).
pub(crate) fn key_identifier(spki: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(spki);
    let bits = r
        .read(tag::SEQUENCE)
        .ok()
        .and_then(|content| {
            let mut inner = Reader::new(content);
            inner.read(tag::SEQUENCE).ok()?;
            inner.read_bit_string().ok()
        })
        .unwrap_or(spki);
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bits)
        .as_ref()
        .to_vec()
}

/// `[0] EXPLICIT Version v3`.
const VERSION_V3: &[u8] = &[0xa0, 0x03, 0x02, 0x01, 0x02];

/// Signs a TBS certificate given as its content parts and returns the certificate DER.
pub(crate) fn sign_certificate(key: &SigningKey, tbs_parts: &[&[u8]]) -> Result<Vec<u8>, CaError> {
    let tbs_len: usize = tbs_parts.iter().map(|p| p.len()).sum();
    let alg = key.signature_algorithm();
    let body_max = der::tlv_size(tbs_len) + alg.len() + der::tlv_size(key.max_signature_len() + 1);
    let mut out = Vec::with_capacity(4 + body_max);
    // Room for the outer header: every certificate here is 256..=65535 bytes long, which
    // takes exactly four header bytes; the rare other size is fixed up below.
    out.extend_from_slice(&[tag::SEQUENCE, 0x82, 0, 0]);
    der::header(&mut out, tag::SEQUENCE, tbs_len);
    for p in tbs_parts {
        out.extend_from_slice(p);
    }
    let mut signature = Vec::with_capacity(key.max_signature_len());
    key.sign_into(&out[4..], &mut signature)?;
    out.extend_from_slice(alg);
    der::header(&mut out, tag::BIT_STRING, signature.len() + 1);
    out.push(0);
    out.extend_from_slice(&signature);
    let body = out.len() - 4;
    if (0x100..=0xffff).contains(&body) {
        out[2] = (body >> 8) as u8;
        out[3] = body as u8;
    } else {
        let mut head = Vec::with_capacity(6);
        der::header(&mut head, tag::SEQUENCE, body);
        out.splice(0..4, head);
    }
    Ok(out)
}

/// What a CA certificate should contain.
pub(crate) struct CaTemplate<'a> {
    pub(crate) subject: &'a [u8],
    pub(crate) spki: &'a [u8],
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) path_len: Option<u8>,
    pub(crate) uri_san: Option<&'a str>,
}

/// Builds a CA certificate (Istio's `forCA` profile: KU keyCertSign only, critical; basic
/// constraints CA:true, critical; SKI; AKI when not self-signed; no EKU).
pub(crate) fn build_ca(
    t: &CaTemplate<'_>,
    issuer: Option<(&[u8], &[u8])>,
    signer: &SigningKey,
) -> Result<Vec<u8>, CaError> {
    let serial = random_serial()?;
    let validity = validity(t.not_before, t.not_after)?;
    let ski = key_identifier(t.spki);
    let mut bc_content = vec![tag::BOOLEAN, 1, 0xff];
    if let Some(n) = t.path_len {
        bc_content.extend_from_slice(&der::unsigned_integer(&[n]));
    }
    let mut exts = Vec::new();
    exts.extend(der::extension(
        oid::KEY_USAGE,
        true,
        &[tag::BIT_STRING, 2, 2, 0x04],
    ));
    exts.extend(der::extension(
        oid::BASIC_CONSTRAINTS,
        true,
        &der::tlv_vec(tag::SEQUENCE, &bc_content),
    ));
    exts.extend(der::extension(
        oid::SUBJECT_KEY_IDENTIFIER,
        false,
        &der::tlv_vec(tag::OCTET_STRING, &ski),
    ));
    let (issuer_name, issuer_ski) = match issuer {
        Some((name, ski)) => (name, Some(ski)),
        None => (t.subject, None),
    };
    if let Some(aki) = issuer_ski {
        exts.extend(authority_key_id_ext(aki));
    }
    if let Some(uri) = t.uri_san {
        let names = der::tlv_vec(tag::CONTEXT_PRIM_6, uri.as_bytes());
        exts.extend(der::extension(
            oid::SUBJECT_ALT_NAME,
            false,
            &der::tlv_vec(tag::SEQUENCE, &names),
        ));
    }
    let exts = der::tlv_vec(tag::CONTEXT_3, &der::tlv_vec(tag::SEQUENCE, &exts));
    sign_certificate(
        signer,
        &[
            VERSION_V3,
            &serial,
            signer.signature_algorithm(),
            issuer_name,
            &validity,
            t.subject,
            t.spki,
            &exts,
        ],
    )
}

fn authority_key_id_ext(key_id: &[u8]) -> Vec<u8> {
    let inner = der::tlv_vec(tag::CONTEXT_PRIM_0, key_id);
    der::extension(
        oid::AUTHORITY_KEY_IDENTIFIER,
        false,
        &der::tlv_vec(tag::SEQUENCE, &inner),
    )
}

/// The parts of a workload certificate that are the same for every leaf a CA issues, encoded
/// once: the signature algorithm and issuer name, and the KU/EKU/BC/AKI extensions.
#[derive(Debug, Clone)]
pub(crate) struct LeafTemplate {
    /// `signature AlgorithmIdentifier` followed by `issuer Name`.
    alg_and_issuer: Vec<u8>,
    /// KU (critical) + EKU + BC (critical, CA:false) + AKI, each a whole `Extension`.
    constant_extensions: Vec<u8>,
}

/// KeyUsage digitalSignature | keyEncipherment, critical.
const LEAF_KEY_USAGE: &[u8] = &[
    0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x05, 0xa0,
];
/// ExtKeyUsage serverAuth, clientAuth (Istio's order), not critical.
const LEAF_EXT_KEY_USAGE: &[u8] = &[
    0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x25, 0x04, 0x16, 0x30, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01,
    0x05, 0x05, 0x07, 0x03, 0x01, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
];
/// BasicConstraints present with cA false (the DEFAULT is omitted in DER), critical as Go
/// always marks it.
const LEAF_BASIC_CONSTRAINTS: &[u8] = &[
    0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00,
];
/// An empty subject `Name`.
const EMPTY_NAME: &[u8] = &[0x30, 0x00];

impl LeafTemplate {
    pub(crate) fn new(signer: &SigningKey, issuer_name: &[u8], issuer_key_id: &[u8]) -> Self {
        let alg = signer.signature_algorithm();
        let mut alg_and_issuer = Vec::with_capacity(alg.len() + issuer_name.len());
        alg_and_issuer.extend_from_slice(alg);
        alg_and_issuer.extend_from_slice(issuer_name);
        let mut constant_extensions = Vec::new();
        constant_extensions.extend_from_slice(LEAF_KEY_USAGE);
        constant_extensions.extend_from_slice(LEAF_EXT_KEY_USAGE);
        constant_extensions.extend_from_slice(LEAF_BASIC_CONSTRAINTS);
        constant_extensions.extend(authority_key_id_ext(issuer_key_id));
        LeafTemplate {
            alg_and_issuer,
            constant_extensions,
        }
    }

    /// Builds and signs one workload certificate.
    pub(crate) fn issue(
        &self,
        signer: &SigningKey,
        spki: &[u8],
        not_before: i64,
        not_after: i64,
        uri: &str,
        dns_names: &[String],
    ) -> Result<(Vec<u8>, Vec<u8>), CaError> {
        let serial = random_serial()?;
        let validity = validity(not_before, not_after)?;
        // SAN: one URI, then the DNS names; critical because the subject is empty.
        let names_len = der::tlv_size(uri.len())
            + dns_names
                .iter()
                .map(|d| der::tlv_size(d.len()))
                .sum::<usize>();
        let san_value_len = der::tlv_size(names_len);
        // OID (5) + BOOLEAN (3) + OCTET STRING header and content.
        let san_ext_len = 5 + 3 + der::tlv_size(san_value_len);
        let exts_len = self.constant_extensions.len() + der::tlv_size(san_ext_len);
        let mut exts = Vec::with_capacity(der::tlv_size(der::tlv_size(exts_len)));
        der::header(&mut exts, tag::CONTEXT_3, der::tlv_size(exts_len));
        der::header(&mut exts, tag::SEQUENCE, exts_len);
        exts.extend_from_slice(&self.constant_extensions);
        der::header(&mut exts, tag::SEQUENCE, san_ext_len);
        exts.extend_from_slice(&[tag::OID, 3, 0x55, 0x1d, 0x11, tag::BOOLEAN, 1, 0xff]);
        der::header(&mut exts, tag::OCTET_STRING, san_value_len);
        der::header(&mut exts, tag::SEQUENCE, names_len);
        der::tlv(&mut exts, tag::CONTEXT_PRIM_6, uri.as_bytes());
        for d in dns_names {
            der::tlv(&mut exts, tag::CONTEXT_PRIM_2, d.as_bytes());
        }
        let cert = sign_certificate(
            signer,
            &[
                VERSION_V3,
                &serial,
                &self.alg_and_issuer,
                &validity,
                EMPTY_NAME,
                spki,
                &exts,
            ],
        )?;
        Ok((cert, serial))
    }
}

/// The facts of a certificate that the CA checks and uses.
#[derive(Clone)]
pub(crate) struct CertInfo {
    pub(crate) der: CertificateDer<'static>,
    /// Byte ranges into `der`.
    tbs: (usize, usize),
    issuer: (usize, usize),
    subject: (usize, usize),
    spki: (usize, usize),
    serial: (usize, usize),
    signature_algorithm: Vec<u8>,
    signature: Vec<u8>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) is_ca: bool,
    pub(crate) path_len: Option<u64>,
    /// KeyUsage bits (bit 0 = digitalSignature ... bit 5 = keyCertSign, 6 = cRLSign), when
    /// the extension is present.
    pub(crate) key_usage: Option<u16>,
    pub(crate) key_usage_critical: bool,
    pub(crate) has_basic_constraints: bool,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) uri_sans: Vec<String>,
    pub(crate) dns_sans: Vec<String>,
    pub(crate) other_sans: usize,
    pub(crate) san_critical: bool,
}

impl std::fmt::Debug for CertInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertInfo")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("is_ca", &self.is_ca)
            .field("uri_sans", &self.uri_sans)
            .finish_non_exhaustive()
    }
}

pub(crate) const KU_KEY_CERT_SIGN: u16 = 1 << 5;

fn offset_of(outer: &[u8], inner: &[u8]) -> (usize, usize) {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    (start, start + inner.len())
}

impl CertInfo {
    /// Parses a certificate; `what` names it in errors.
    pub(crate) fn parse(der_bytes: CertificateDer<'static>, what: &str) -> Result<Self, CaError> {
        let fail = |e: der::DerError| CaError::Material {
            what: what.to_owned(),
            reason: format!("malformed certificate ({})", e),
        };
        let bytes: &[u8] = der_bytes.as_ref();
        let mut outer = Reader::new(bytes);
        let mut cert = Reader::new(outer.read(tag::SEQUENCE).map_err(fail)?);
        outer.finish().map_err(fail)?;
        let tbs_whole = cert.read_whole(tag::SEQUENCE).map_err(fail)?;
        let signature_algorithm = cert.read(tag::SEQUENCE).map_err(fail)?.to_vec();
        let signature = cert.read_bit_string().map_err(fail)?.to_vec();
        cert.finish().map_err(fail)?;

        let tbs_content = Reader::new(tbs_whole).read(tag::SEQUENCE).map_err(fail)?;
        let mut tbs = Reader::new(tbs_content);
        if tbs.peek_tag() != Some(tag::CONTEXT_0) {
            return Err(CaError::Material {
                what: what.to_owned(),
                reason: "not an x.509 v3 certificate".to_owned(),
            });
        }
        let version = tbs.read(tag::CONTEXT_0).map_err(fail)?;
        if version != [tag::INTEGER, 1, 2] {
            return Err(CaError::Material {
                what: what.to_owned(),
                reason: "not an x.509 v3 certificate".to_owned(),
            });
        }
        let serial = tbs.read(tag::INTEGER).map_err(fail)?;
        tbs.read(tag::SEQUENCE).map_err(fail)?;
        let issuer = tbs.read_whole(tag::SEQUENCE).map_err(fail)?;
        let mut validity = Reader::new(tbs.read(tag::SEQUENCE).map_err(fail)?);
        let not_before = read_time(&mut validity).map_err(fail)?;
        let not_after = read_time(&mut validity).map_err(fail)?;
        validity.finish().map_err(fail)?;
        let subject = tbs.read_whole(tag::SEQUENCE).map_err(fail)?;
        let spki = tbs.read_whole(tag::SEQUENCE).map_err(fail)?;
        let mut info = CertInfo {
            tbs: offset_of(bytes, tbs_whole),
            issuer: offset_of(bytes, issuer),
            subject: offset_of(bytes, subject),
            spki: offset_of(bytes, spki),
            serial: offset_of(bytes, serial),
            signature_algorithm,
            signature,
            not_before,
            not_after,
            is_ca: false,
            path_len: None,
            key_usage: None,
            key_usage_critical: false,
            has_basic_constraints: false,
            subject_key_id: None,
            uri_sans: Vec::new(),
            dns_sans: Vec::new(),
            other_sans: 0,
            san_critical: false,
            der: CertificateDer::from(Vec::new()),
        };
        // Skip issuerUniqueID / subjectUniqueID.
        while matches!(tbs.peek_tag(), Some(0x81 | 0x82 | 0xa1 | 0xa2)) {
            tbs.read_any().map_err(fail)?;
        }
        if tbs.peek_tag() == Some(tag::CONTEXT_3) {
            let mut wrapper = Reader::new(tbs.read(tag::CONTEXT_3).map_err(fail)?);
            let mut exts = Reader::new(wrapper.read(tag::SEQUENCE).map_err(fail)?);
            wrapper.finish().map_err(fail)?;
            let mut seen: Vec<&[u8]> = Vec::new();
            while !exts.is_empty() {
                let mut ext = Reader::new(exts.read(tag::SEQUENCE).map_err(fail)?);
                let ext_oid = ext.read(tag::OID).map_err(fail)?;
                if seen.contains(&ext_oid) {
                    return Err(CaError::Material {
                        what: what.to_owned(),
                        reason: format!("extension {} appears twice", oid::dotted(ext_oid)),
                    });
                }
                seen.push(ext_oid);
                let critical = if ext.peek_tag() == Some(tag::BOOLEAN) {
                    ext.read(tag::BOOLEAN).map_err(fail)? == [0xff]
                } else {
                    false
                };
                let value = ext.read(tag::OCTET_STRING).map_err(fail)?;
                ext.finish().map_err(fail)?;
                info.read_extension(ext_oid, critical, value)
                    .map_err(fail)?;
            }
        }
        tbs.finish().map_err(fail)?;
        info.der = der_bytes;
        Ok(info)
    }

    fn read_extension(
        &mut self,
        ext_oid: &[u8],
        critical: bool,
        value: &[u8],
    ) -> Result<(), der::DerError> {
        let mut r = Reader::new(value);
        if ext_oid == oid::BASIC_CONSTRAINTS {
            self.has_basic_constraints = true;
            let mut bc = Reader::new(r.read(tag::SEQUENCE)?);
            if bc.peek_tag() == Some(tag::BOOLEAN) {
                self.is_ca = bc.read(tag::BOOLEAN)? == [0xff];
            }
            if bc.peek_tag() == Some(tag::INTEGER) {
                let n = bc.read(tag::INTEGER)?;
                if n.len() > 8 {
                    return Err(der::DerError::Invalid("path length constraint too large"));
                }
                self.path_len = Some(n.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
            }
            bc.finish()?;
        } else if ext_oid == oid::KEY_USAGE {
            let bits = r.read(tag::BIT_STRING)?;
            let mut value: u16 = 0;
            if let Some((_, rest)) = bits.split_first() {
                for (i, &b) in rest.iter().take(2).enumerate() {
                    value |= u16::from(b.reverse_bits()) << (8 * i);
                }
            }
            self.key_usage = Some(value);
            self.key_usage_critical = critical;
        } else if ext_oid == oid::SUBJECT_KEY_IDENTIFIER {
            self.subject_key_id = Some(r.read(tag::OCTET_STRING)?.to_vec());
        } else if ext_oid == oid::SUBJECT_ALT_NAME {
            self.san_critical = critical;
            let mut names = Reader::new(r.read(tag::SEQUENCE)?);
            while !names.is_empty() {
                let (t, content, _) = names.read_any()?;
                match t {
                    tag::CONTEXT_PRIM_6 => self
                        .uri_sans
                        .push(String::from_utf8_lossy(content).into_owned()),
                    tag::CONTEXT_PRIM_2 => self
                        .dns_sans
                        .push(String::from_utf8_lossy(content).into_owned()),
                    _ => self.other_sans += 1,
                }
            }
        } else {
            return Ok(());
        }
        r.finish()
    }

    pub(crate) fn tbs(&self) -> &[u8] {
        &self.der[self.tbs.0..self.tbs.1]
    }
    pub(crate) fn issuer(&self) -> &[u8] {
        &self.der[self.issuer.0..self.issuer.1]
    }
    pub(crate) fn subject(&self) -> &[u8] {
        &self.der[self.subject.0..self.subject.1]
    }
    pub(crate) fn spki(&self) -> &[u8] {
        &self.der[self.spki.0..self.spki.1]
    }
    /// The serial's content bytes (big-endian two's complement).
    pub(crate) fn serial(&self) -> &[u8] {
        &self.der[self.serial.0..self.serial.1]
    }
    pub(crate) fn is_self_issued(&self) -> bool {
        self.issuer() == self.subject()
    }

    /// The key identifier leaves signed by this certificate carry as their AKI: the SKI if
    /// the certificate has one, else one computed from its key.
    pub(crate) fn key_id_for_children(&self) -> Vec<u8> {
        self.subject_key_id
            .clone()
            .unwrap_or_else(|| key_identifier(self.spki()))
    }

    /// Checks that `issuer` signed this certificate (names and signature).
    pub(crate) fn check_issued_by(&self, issuer: &CertInfo) -> Result<(), String> {
        if self.issuer() != issuer.subject() {
            return Err("its issuer name differs from the next certificate's subject".to_owned());
        }
        let key = super::key::parse_spki(issuer.spki(), "issuer key").map_err(|e| e.to_string())?;
        super::key::verify_signature(&key, &self.signature_algorithm, self.tbs(), &self.signature)
            .map_err(|e| format!("its signature does not verify with the issuer's key ({e})"))
    }
}

/// Reads a UTCTime or GeneralizedTime (the `Z` forms RFC 5280 requires) as Unix seconds.
fn read_time(r: &mut Reader<'_>) -> Result<i64, der::DerError> {
    let (t, content, _) = r.read_any()?;
    let (year, rest) = match t {
        tag::UTC_TIME if content.len() == 13 => {
            let yy = i32::from(two_digits(&content[0..2])?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &content[2..])
        }
        tag::GENERALIZED_TIME if content.len() == 15 => {
            let hi = i32::from(two_digits(&content[0..2])?);
            let lo = i32::from(two_digits(&content[2..4])?);
            (hi * 100 + lo, &content[4..])
        }
        _ => return Err(der::DerError::Invalid("invalid certificate time")),
    };
    if rest[10] != b'Z' {
        return Err(der::DerError::Invalid("certificate time is not in UTC"));
    }
    let month = time::Month::try_from(two_digits(&rest[0..2])?)
        .map_err(|_| der::DerError::Invalid("invalid month"))?;
    let date = time::Date::from_calendar_date(year, month, two_digits(&rest[2..4])?)
        .map_err(|_| der::DerError::Invalid("invalid date"))?;
    let tod = time::Time::from_hms(
        two_digits(&rest[4..6])?,
        two_digits(&rest[6..8])?,
        two_digits(&rest[8..10])?,
    )
    .map_err(|_| der::DerError::Invalid("invalid time of day"))?;
    Ok(time::PrimitiveDateTime::new(date, tod)
        .assume_utc()
        .unix_timestamp())
}

fn two_digits(b: &[u8]) -> Result<u8, der::DerError> {
    match b {
        [h @ b'0'..=b'9', l @ b'0'..=b'9'] => Ok((h - b'0') * 10 + (l - b'0')),
        _ => Err(der::DerError::Invalid(
            "invalid digits in a certificate time",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_across_the_utc_time_boundary() {
        for unix in [
            0i64,
            1_700_000_000,
            2_524_607_999,
            2_524_608_000,
            4_102_444_800,
        ] {
            let enc = validity(unix, unix + 1).unwrap();
            let mut r = Reader::new(&enc);
            let mut v = Reader::new(r.read(tag::SEQUENCE).unwrap());
            assert_eq!(read_time(&mut v).unwrap(), unix);
            assert_eq!(read_time(&mut v).unwrap(), unix + 1);
        }
        // 2049-12-31T23:59:59Z is the last UTCTime; 2050 switches to GeneralizedTime.
        let mut out = Vec::new();
        push_time(&mut out, 2_524_607_999).unwrap();
        assert_eq!(out[0], tag::UTC_TIME);
        out.clear();
        push_time(&mut out, 2_524_608_000).unwrap();
        assert_eq!(out[0], tag::GENERALIZED_TIME);
    }

    #[test]
    fn civil_dates_agree_with_the_time_crate() {
        let mut unix: i64 = -62_167_219_200; // 0000-01-01
        while unix < 253_402_300_800 {
            let ours = civil(unix);
            let theirs = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
            assert_eq!(ours.year, i64::from(theirs.year()), "{unix}");
            assert_eq!(ours.month, u8::from(theirs.month()), "{unix}");
            assert_eq!(ours.day, theirs.day(), "{unix}");
            assert_eq!(ours.hour, theirs.hour(), "{unix}");
            assert_eq!(ours.minute, theirs.minute(), "{unix}");
            assert_eq!(ours.second, theirs.second(), "{unix}");
            unix += 86_399 * 3 + 7_777;
        }
        assert!(
            push_time(&mut Vec::new(), 253_402_300_800).is_err(),
            "year 10000"
        );
        assert!(
            push_time(&mut Vec::new(), -62_167_219_201).is_err(),
            "year -1"
        );
    }

    #[test]
    fn serials_are_positive_and_minimal() {
        for _ in 0..200 {
            let s = random_serial().unwrap();
            assert_eq!(s[0], tag::INTEGER);
            let content = &s[2..];
            assert_eq!(usize::from(s[1]), content.len());
            assert!(content.len() <= 17);
            assert_eq!(content[0] & 0x80, 0, "positive");
            if content.len() > 1 {
                assert!(content[0] != 0 || content[1] & 0x80 != 0, "minimal");
            }
        }
    }

    #[test]
    fn constant_leaf_extensions_are_what_the_encoder_builds() {
        use der::oid;
        let ku = der::extension(oid::KEY_USAGE, true, &[tag::BIT_STRING, 2, 5, 0xa0]);
        assert_eq!(ku, LEAF_KEY_USAGE);
        let purposes = der::sequence(&[
            &der::tlv_vec(tag::OID, oid::KP_SERVER_AUTH),
            &der::tlv_vec(tag::OID, oid::KP_CLIENT_AUTH),
        ]);
        assert_eq!(
            der::extension(oid::EXT_KEY_USAGE, false, &purposes),
            LEAF_EXT_KEY_USAGE
        );
        let bc = der::extension(oid::BASIC_CONSTRAINTS, true, &[tag::SEQUENCE, 0]);
        assert_eq!(bc, LEAF_BASIC_CONSTRAINTS);
    }

    #[test]
    fn printable_or_utf8() {
        assert_eq!(directory_string("cluster.local")[0], tag::PRINTABLE_STRING);
        assert_eq!(directory_string("my_td")[0], tag::UTF8_STRING);
    }
}
