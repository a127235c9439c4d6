//! The one strict certificate view: the X.509 fields the SVID profile and the CA need.
//!
//! rustls-webpki validates paths but exposes none of the extensions the SPIFFE profile is
//! about (BasicConstraints, KeyUsage, ExtendedKeyUsage, URI SANs, name constraints). Reading
//! them here costs well under a microsecond per certificate and allocates nothing, which keeps
//! a full SVID verification within a few percent of webpki's own path validation. The reading
//! itself is the crate's strict DER [`Reader`]; this module knows the certificate profile.
//! Refused: anything but v3, malformed BOOLEANs, duplicate or empty extension lists, KeyUsage
//! of more than nine bits, negative path lengths, invalid GeneralName tags, non-UTC times.

use super::der::{Reader, oid, tag};
use super::time::read_time;

/// A profile-field decoding failure, rendered into error messages by the caller.
pub(crate) type DerResult<T> = Result<T, String>;

/// KeyUsage bits, numbered as RFC 5280 §4.2.1.3 does (bit 0 = digitalSignature), stored with
/// bit 0 as the most significant bit of a `u16` (the BIT STRING's own byte order). This is the
/// crate's one KeyUsage convention.
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

fn read_bool(value: &[u8], what: &'static str) -> DerResult<bool> {
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
    pub(crate) critical: bool,
    /// `pathLenConstraint`, saturated at `u64::MAX`.
    pub(crate) path_len: Option<u64>,
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
        while let Ok(oid) = r.read_field(tag::OID, "extended key usage") {
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
    oid::dotted(oid)
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
        general_names(self.value).filter_map(|(tag, v)| (tag == tag::CONTEXT_PRIM_6).then_some(v))
    }

    /// Every DNS SAN, in order.
    pub(crate) fn dns_names(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        general_names(self.value).filter_map(|(tag, v)| (tag == tag::CONTEXT_PRIM_2).then_some(v))
    }

    /// Every IP SAN, in order.
    pub(crate) fn ip_addresses(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        general_names(self.value).filter_map(|(tag, v)| (tag == tag::CONTEXT_PRIM_7).then_some(v))
    }
}

fn general_names(value: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut r = Reader::new(value);
    std::iter::from_fn(move || r.read_any().ok().map(|(t, v, _)| (t, v)))
}

/// The fields of one certificate that SVID verification reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CertInfo<'a> {
    /// The whole `tbsCertificate` TLV (what the signature covers).
    pub(crate) tbs: &'a [u8],
    /// The outer `signatureAlgorithm` AlgorithmIdentifier's contents.
    pub(crate) signature_algorithm: &'a [u8],
    /// The signature bits (a BIT STRING with no unused bits).
    pub(crate) signature: &'a [u8],
    /// The Subject Name's contents (empty for an empty subject).
    pub(crate) subject: &'a [u8],
    /// The whole Subject Name TLV (compared with children's issuer names).
    pub(crate) subject_der: &'a [u8],
    /// The whole Issuer Name TLV.
    pub(crate) issuer_der: &'a [u8],
    /// SubjectKeyIdentifier, when present.
    pub(crate) subject_key_id: Option<&'a [u8]>,
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
        let cert = outer.read_field(tag::SEQUENCE, "certificate")?;
        outer.finish_field("certificate")?;
        let mut c = Reader::new(cert);
        let (tbs_tag, tbs, tbs_whole) = c.read_any()?;
        if tbs_tag != tag::SEQUENCE {
            return Err("tbsCertificate: expected a SEQUENCE".to_owned());
        }
        let signature_algorithm = c.read_field(tag::SEQUENCE, "signatureAlgorithm")?;
        let signature = match c
            .read_field(tag::BIT_STRING, "signatureValue")?
            .split_first()
        {
            Some((0, bits)) => bits,
            _ => return Err("signatureValue: malformed BIT STRING".to_owned()),
        };
        c.finish_field("certificate")?;

        let mut t = Reader::new(tbs);
        let version = t.read_optional(tag::CONTEXT_0, "version")?;
        let v3 = match version {
            Some(v) => {
                let mut vr = Reader::new(v);
                let n = vr.read_field(tag::INTEGER, "version")?;
                vr.finish_field("version")?;
                n == [2]
            }
            None => false,
        };
        if !v3 {
            return Err("not an X.509 v3 certificate (an SVID needs v3 extensions)".to_owned());
        }
        let serial = t.read_field(tag::INTEGER, "serialNumber")?;
        let inner_algorithm = t.read_field(tag::SEQUENCE, "signature")?;
        if inner_algorithm != signature_algorithm {
            return Err(
                "signatureAlgorithm differs from tbsCertificate.signature (RFC 5280 §4.1.1.2)"
                    .to_owned(),
            );
        }
        let (issuer_tag, _, issuer_der) = t.read_any()?;
        if issuer_tag != tag::SEQUENCE {
            return Err("issuer: expected a SEQUENCE".to_owned());
        }
        let validity = t.read_field(tag::SEQUENCE, "validity")?;
        let (subject_tag, subject, subject_der) = t.read_any()?;
        if subject_tag != tag::SEQUENCE {
            return Err("subject: expected a SEQUENCE".to_owned());
        }
        let (spki_tag, _, spki) = t.read_any()?;
        if spki_tag != tag::SEQUENCE {
            return Err("subjectPublicKeyInfo: expected a SEQUENCE".to_owned());
        }
        t.read_optional(tag::CONTEXT_PRIM_1, "issuerUniqueID")?;
        t.read_optional(tag::CONTEXT_PRIM_2, "subjectUniqueID")?;
        let extensions = t.read_optional(tag::CONTEXT_3, "extensions")?;
        t.finish_field("tbsCertificate")?;

        let mut vr = Reader::new(validity);
        let not_before = read_time(&mut vr, "notBefore")?;
        let not_after = read_time(&mut vr, "notAfter")?;
        vr.finish_field("validity")?;

        let mut info = CertInfo {
            tbs: tbs_whole,
            signature_algorithm,
            signature,
            subject,
            subject_der,
            issuer_der,
            subject_key_id: None,
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
        let list = w.read_field(tag::SEQUENCE, "extensions")?;
        w.finish_field("extensions")?;
        let mut r = Reader::new(list);
        if r.is_empty() {
            return Err("extensions: empty list".to_owned());
        }
        // Certificates carry a handful of extensions: a linear scan beats hashing.
        let mut seen: [&[u8]; 64] = [&[]; 64];
        let mut seen_len = 0;
        while !r.is_empty() {
            let ext = r.read_field(tag::SEQUENCE, "extension")?;
            let mut e = Reader::new(ext);
            let oid = e.read_field(tag::OID, "extension id")?;
            let critical = match e.read_optional(tag::BOOLEAN, "extension critical flag")? {
                Some(v) => read_bool(v, "extension critical flag")?,
                None => false,
            };
            let value = e.read_field(tag::OCTET_STRING, "extension value")?;
            e.finish_field("extension")?;
            if seen[..seen_len].contains(&oid) {
                return Err(format!(
                    "extension {} appears twice (RFC 5280 §4.2)",
                    oid::dotted(oid)
                ));
            }
            if seen_len == seen.len() {
                return Err("more than 64 extensions".to_owned());
            }
            seen[seen_len] = oid;
            seen_len += 1;
            match oid {
                oid::BASIC_CONSTRAINTS => self.basic_constraints = Some(parse_bc(value, critical)?),
                oid::SUBJECT_KEY_IDENTIFIER => {
                    let mut r = Reader::new(value);
                    let id = r.read_field(tag::OCTET_STRING, "subject key identifier")?;
                    r.finish_field("subject key identifier")?;
                    self.subject_key_id = Some(id);
                }
                oid::KEY_USAGE => {
                    self.key_usage = Some(KeyUsage {
                        bits: parse_ku(value)?,
                        critical,
                    })
                }
                oid::EXT_KEY_USAGE => self.ext_key_usage = Some(parse_eku(value)?),
                oid::SUBJECT_ALT_NAME => self.subject_alt_name = Some(parse_san(value, critical)?),
                oid::NAME_CONSTRAINTS => {
                    self.name_constraints = true;
                    self.uri_name_constraints = parse_nc_has_uri(value)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn parse_bc(value: &[u8], critical: bool) -> DerResult<BasicConstraints> {
    let mut outer = Reader::new(value);
    let seq = outer.read_field(tag::SEQUENCE, "basic constraints")?;
    outer.finish_field("basic constraints")?;
    let mut r = Reader::new(seq);
    let ca = match r.read_optional(tag::BOOLEAN, "basic constraints cA")? {
        Some(v) => read_bool(v, "basic constraints cA")?,
        None => false,
    };
    let mut path_len = None;
    if let Some(len) = r.read_optional(tag::INTEGER, "basic constraints pathLenConstraint")? {
        if len.is_empty() || len[0] & 0x80 != 0 {
            return Err("basic constraints: negative or empty pathLenConstraint".to_owned());
        }
        if len.len() > 1 && len[0] == 0 && len[1] & 0x80 == 0 {
            return Err("basic constraints: non-minimal pathLenConstraint".to_owned());
        }
        path_len = Some(if len.len() > 9 {
            u64::MAX
        } else {
            len.iter().fold(0u64, |acc, b| {
                acc.saturating_mul(256).saturating_add(u64::from(*b))
            })
        });
    }
    r.finish_field("basic constraints")?;
    Ok(BasicConstraints {
        ca,
        critical,
        path_len,
    })
}

pub(crate) fn parse_ku(value: &[u8]) -> DerResult<u16> {
    let mut outer = Reader::new(value);
    let bits = outer.read_field(tag::BIT_STRING, "key usage")?;
    outer.finish_field("key usage")?;
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

pub(crate) fn parse_eku(value: &[u8]) -> DerResult<ExtKeyUsage<'_>> {
    let mut outer = Reader::new(value);
    let seq = outer.read_field(tag::SEQUENCE, "extended key usage")?;
    outer.finish_field("extended key usage")?;
    let mut r = Reader::new(seq);
    if r.is_empty() {
        return Err("extended key usage: empty list (RFC 5280 requires at least one)".to_owned());
    }
    let (mut server_auth, mut client_auth) = (false, false);
    while !r.is_empty() {
        let oid = r.read_field(tag::OID, "extended key usage purpose")?;
        server_auth |= oid == oid::KP_SERVER_AUTH;
        client_auth |= oid == oid::KP_CLIENT_AUTH;
    }
    Ok(ExtKeyUsage {
        server_auth,
        client_auth,
        value: seq,
    })
}

pub(crate) fn parse_san(value: &[u8], critical: bool) -> DerResult<SubjectAltName<'_>> {
    let mut outer = Reader::new(value);
    let seq = outer.read_field(tag::SEQUENCE, "subject alternative name")?;
    outer.finish_field("subject alternative name")?;
    let mut r = Reader::new(seq);
    if r.is_empty() {
        return Err("subject alternative name: empty list".to_owned());
    }
    let mut uri_count = 0;
    let mut first_uri = None;
    while !r.is_empty() {
        let (tag, v, _) = r.read_any()?;
        match tag {
            tag::CONTEXT_PRIM_6 => {
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
    let seq = outer.read_field(tag::SEQUENCE, "name constraints")?;
    outer.finish_field("name constraints")?;
    let mut r = Reader::new(seq);
    let mut has_uri = false;
    for tag in [tag::CONTEXT_0, tag::CONTEXT_1] {
        if let Some(subtrees) = r.read_optional(tag, "name constraints subtrees")? {
            let mut s = Reader::new(subtrees);
            while !s.is_empty() {
                let subtree = s.read_field(tag::SEQUENCE, "name constraints subtree")?;
                let mut g = Reader::new(subtree);
                let (base_tag, _, _) = g.read_any()?;
                has_uri |= base_tag == tag::CONTEXT_PRIM_6;
            }
        }
    }
    r.finish_field("name constraints")?;
    Ok(has_uri)
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
    let mut outer = Reader::new(spki);
    let seq = outer.read_field(tag::SEQUENCE, "subjectPublicKeyInfo")?;
    let mut r = Reader::new(seq);
    let alg = r.read_field(tag::SEQUENCE, "subjectPublicKeyInfo algorithm")?;
    let key_bits = r.read_field(tag::BIT_STRING, "subjectPublicKey")?;
    let key = match key_bits.split_first() {
        Some((0, key)) => key,
        _ => return Err("subjectPublicKey: malformed BIT STRING".to_owned()),
    };
    let mut a = Reader::new(alg);
    let oid = a.read_field(tag::OID, "public key algorithm")?;
    match oid {
        oid::RSA_ENCRYPTION => {
            let mut kr = Reader::new(key);
            let mut k = Reader::new(kr.read_field(tag::SEQUENCE, "RSA public key")?);
            let n = strip_integer(k.read_field(tag::INTEGER, "RSA modulus")?);
            let e = strip_integer(k.read_field(tag::INTEGER, "RSA exponent")?);
            Ok(PublicKey::Rsa { n, e })
        }
        oid::EC_PUBLIC_KEY => {
            let curve = a.read_field(tag::OID, "EC curve")?;
            let (crv, size) = match curve {
                oid::SECP256R1 => ("P-256", 32),
                oid::SECP384R1 => ("P-384", 48),
                oid::SECP521R1 => ("P-521", 66),
                other => {
                    return Err(format!(
                        "EC curve {} is not a JWK curve",
                        oid::dotted(other)
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
        oid::ED25519 => Ok(PublicKey::Okp {
            crv: "Ed25519",
            x: key,
        }),
        oid::ED448 => Ok(PublicKey::Okp {
            crv: "Ed448",
            x: key,
        }),
        other => Err(format!(
            "public key algorithm {} has no JWK key type",
            oid::dotted(other)
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
    fn oids_render_dotted() {
        assert_eq!(oid::dotted(oid::KP_SERVER_AUTH), "1.3.6.1.5.5.7.3.1");
        assert_eq!(
            oid::dotted(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "1.2.840.10045.2.1"
        );
        assert_eq!(eku_name(oid::KP_CLIENT_AUTH), "clientAuth");
    }
}
