//! Certificate assembly (Istio's templates, pre-encoded per CA) and [`CaCert`], the CA's owned
//! view of the certificates it holds.

use rustls_pki_types::CertificateDer;

use crate::error::CaError;
use crate::x509::cert::{CertInfo, KU_KEY_CERT_SIGN, KeyUsage};
use crate::x509::der::{self, Reader, oid, tag};
use crate::x509::key::{self, SigningKey};
use crate::x509::name;
use crate::x509::time::validity;

/// A random positive serial of up to 128 bits as a DER INTEGER (Istio's `genSerialNum`: a
/// uniform value in `[1, 2^128)`; a zero draw is retried because RFC 5280 wants a positive
/// serial).
pub(crate) fn random_serial() -> Result<Vec<u8>, CaError> {
    Ok(der::unsigned_integer(&random_serial_bytes()?))
}

/// The 128 random bits of a serial, never all zero.
fn random_serial_bytes() -> Result<[u8; 16], CaError> {
    let mut bytes = [0u8; 16];
    loop {
        // Straight from aws-lc's fork-safe DRBG: a per-process pool would hand the same
        // serials to both sides of a fork().
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CaError::Crypto {
            action: "drawing a serial number",
        })?;
        if bytes.iter().any(|&b| b != 0) {
            return Ok(bytes);
        }
    }
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
    /// The subject `Name`, whole TLV.
    pub(crate) subject: &'a [u8],
    /// The new certificate's key.
    pub(crate) key: &'a SigningKey,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) path_len: Option<u8>,
    pub(crate) uri_san: Option<&'a str>,
}

fn datetime(unix: i64) -> Result<time::OffsetDateTime, CaError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| CaError::InvalidParam {
            param: "validity",
            value: unix.to_string(),
            rule: "a certificate time must fall in years 0000 to 9999".to_owned(),
        })
}

fn inexpressible(what: &'static str, name: &[u8], why: String) -> CaError {
    CaError::InvalidParam {
        param: what,
        value: crate::x509::name::rfc4514_der(name).unwrap_or_default(),
        rule: format!("the certificate generator cannot write this name back exactly ({why})"),
    }
}

/// Builds a CA certificate with rcgen (Istio's `forCA` profile: KU keyCertSign only,
/// critical; basic constraints CA:true, critical; Go's SHA-1 subject key identifier; AKI when
/// not self-signed; no EKU). `issuer` is the issuer's subject `Name` and key identifier; the
/// issued certificate's issuer name is checked to be exactly that `Name` (RFC 5280 §7.1 name
/// chaining), so an issuer whose name rcgen cannot reproduce (multi-valued RDNs, an attribute
/// type twice) is refused rather than chained wrongly.
pub(crate) fn build_ca(
    t: &CaTemplate<'_>,
    issuer: Option<(&[u8], &[u8])>,
    signer: &SigningKey,
) -> Result<Vec<u8>, CaError> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyIdMethod, KeyUsagePurpose};
    let mut params = CertificateParams::default();
    params.distinguished_name =
        name::to_rcgen(t.subject).map_err(|why| inexpressible("subject", t.subject, why))?;
    params.not_before = datetime(t.not_before)?;
    params.not_after = datetime(t.not_after)?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&random_serial_bytes()?));
    params.is_ca = IsCa::Ca(match t.path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&t.key.spki()));
    if let Some(uri) = t.uri_san {
        let uri = rcgen::string::Ia5String::try_from(uri).map_err(|_| CaError::InvalidParam {
            param: "uri san",
            value: uri.to_owned(),
            rule: "must be ASCII".to_owned(),
        })?;
        params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    }
    let signed = match issuer {
        None => params.self_signed(t.key),
        Some((issuer_name, issuer_key_id)) => {
            params.use_authority_key_identifier_extension = true;
            let mut issuer_params = CertificateParams::default();
            issuer_params.distinguished_name = name::to_rcgen(issuer_name)
                .map_err(|why| inexpressible("issuer subject", issuer_name, why))?;
            issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(issuer_key_id.to_vec());
            params.signed_by(t.key, &rcgen::Issuer::new(issuer_params, signer))
        }
    }
    .map_err(|_| CaError::Crypto {
        action: "signing a ca certificate",
    })?;
    let der = signed.der().to_vec();
    let info = CertInfo::parse(&der).map_err(|reason| CaError::Material {
        what: "generated ca certificate".to_owned(),
        reason,
    })?;
    let issuer_name = issuer.map_or(t.subject, |(n, _)| n);
    if info.subject_der != t.subject {
        return Err(inexpressible(
            "subject",
            t.subject,
            "re-encoded differently".to_owned(),
        ));
    }
    if info.issuer_der != issuer_name {
        return Err(inexpressible(
            "issuer subject",
            issuer_name,
            "re-encoded differently".to_owned(),
        ));
    }
    Ok(der)
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

/// A certificate of the CA's material, owned: its DER and the facts the CA uses, read once
/// through the strict certificate view ([`CertInfo`]).
#[derive(Clone)]
pub(crate) struct CaCert {
    pub(crate) der: CertificateDer<'static>,
    /// Byte ranges into `der`.
    subject: (usize, usize),
    issuer: (usize, usize),
    spki: (usize, usize),
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) is_ca: bool,
    pub(crate) path_len: Option<u64>,
    pub(crate) key_usage: Option<KeyUsage>,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) uri_sans: Vec<String>,
}

impl std::fmt::Debug for CaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaCert")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("is_ca", &self.is_ca)
            .field("uri_sans", &self.uri_sans)
            .finish_non_exhaustive()
    }
}

fn offset_of(outer: &[u8], inner: &[u8]) -> (usize, usize) {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    (start, start + inner.len())
}

fn malformed(what: &str, reason: String) -> CaError {
    CaError::Material {
        what: what.to_owned(),
        reason: format!("malformed certificate ({reason})"),
    }
}

impl CaCert {
    /// Reads a certificate with the strict view; `what` names it in errors.
    pub(crate) fn parse(der: CertificateDer<'static>, what: &str) -> Result<Self, CaError> {
        let bytes: &[u8] = der.as_ref();
        let info = CertInfo::parse(bytes).map_err(|reason| malformed(what, reason))?;
        let uri_sans = info
            .subject_alt_name
            .map(|san| {
                san.uris()
                    .map(|u| String::from_utf8_lossy(u).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let cert = CaCert {
            subject: offset_of(bytes, info.subject_der),
            issuer: offset_of(bytes, info.issuer_der),
            spki: offset_of(bytes, info.spki),
            not_before: info.not_before,
            not_after: info.not_after,
            is_ca: info.basic_constraints.is_some_and(|bc| bc.ca),
            path_len: info.basic_constraints.and_then(|bc| bc.path_len),
            key_usage: info.key_usage,
            subject_key_id: info.subject_key_id.map(<[u8]>::to_vec),
            uri_sans,
            der: CertificateDer::from(Vec::new()),
        };
        Ok(CaCert { der, ..cert })
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
    pub(crate) fn is_self_issued(&self) -> bool {
        self.issuer() == self.subject()
    }
    /// Whether KeyUsage, when present, allows signing certificates.
    pub(crate) fn may_sign_certificates(&self) -> bool {
        self.key_usage.is_none_or(|ku| ku.has(KU_KEY_CERT_SIGN))
    }

    /// The key identifier leaves signed by this certificate carry as their AKI: the SKI if
    /// the certificate has one, else one computed from its key.
    pub(crate) fn key_id_for_children(&self) -> Vec<u8> {
        self.subject_key_id
            .clone()
            .unwrap_or_else(|| key_identifier(self.spki()))
    }

    /// Checks that `issuer` signed this certificate (names and signature).
    pub(crate) fn check_issued_by(&self, issuer: &CaCert) -> Result<(), String> {
        if self.issuer() != issuer.subject() {
            return Err("its issuer name differs from the next certificate's subject".to_owned());
        }
        let info = CertInfo::parse(self.der.as_ref())?;
        let key = key::parse_spki(issuer.spki(), "issuer key").map_err(|e| e.to_string())?;
        key::verify_signature(&key, info.signature_algorithm, info.tbs, info.signature)
            .map_err(|e| format!("its signature does not verify with the issuer's key ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
