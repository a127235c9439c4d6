//! PKCS#10 certificate signing requests, read as istiod reads them: the signature must verify
//! and the key must be acceptable; the subject, the requested SANs and every other attribute
//! are ignored.

use crate::error::CaError;
use crate::x509::der::{self, Reader, tag};
use crate::x509::key::{self, PublicKeyInfo};

fn malformed(e: der::DerError) -> CaError {
    CaError::Csr {
        reason: format!("malformed pkcs#10 request ({})", e),
    }
}

/// Checks a DER CSR and returns its `SubjectPublicKeyInfo`, the only part istiod uses.
pub(crate) fn verified_public_key(csr: &[u8]) -> Result<&[u8], CaError> {
    let mut outer = Reader::new(csr);
    let mut request = Reader::new(outer.read(tag::SEQUENCE).map_err(malformed)?);
    outer.finish().map_err(malformed)?;
    let info_whole = request.read_whole(tag::SEQUENCE).map_err(malformed)?;
    let signature_algorithm = request.read(tag::SEQUENCE).map_err(malformed)?;
    let signature = request.read_bit_string().map_err(malformed)?;
    request.finish().map_err(malformed)?;

    let mut info = Reader::new(
        Reader::new(info_whole)
            .read(tag::SEQUENCE)
            .map_err(malformed)?,
    );
    let version = info.read(tag::INTEGER).map_err(malformed)?;
    if version != [0] {
        return Err(CaError::Csr {
            reason: "unsupported pkcs#10 version (only v1 exists)".to_owned(),
        });
    }
    info.read(tag::SEQUENCE).map_err(malformed)?; // subject: ignored, as istiod does
    let spki = info.read_whole(tag::SEQUENCE).map_err(malformed)?;
    info.read(tag::CONTEXT_0).map_err(malformed)?; // attributes (requested SANs): ignored
    info.finish().map_err(malformed)?;

    let public_key: PublicKeyInfo<'_> = key::parse_spki(spki, "csr public key")?;
    key::verify_signature(&public_key, signature_algorithm, info_whole, signature)
        .map_err(|reason| CaError::Csr { reason })?;
    Ok(spki)
}

/// `extensionRequest` (PKCS#9, 1.2.840.113549.1.9.14): the attribute that carries requested
/// extensions.
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
const EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];

/// The most extensions a CSR may request (the certificate reader's limit too).
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
const MAX_REQUESTED_EXTENSIONS: usize = 64;

/// What a CSR asks for besides its key: istiod ignores all of it, istio-csr's strict mode
/// judges it. Read with the crate's one DER reader; the signature is checked by
/// [`verified_public_key`], not here.
#[derive(Debug)]
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
pub(crate) struct Requested<'a> {
    /// The subject carries a CommonName.
    pub(crate) common_name: bool,
    /// Every requested extension as (OID content, `extnValue` content), in order.
    pub(crate) extensions: Vec<(&'a [u8], &'a [u8])>,
}

/// Reads the subject and the requested extensions of a DER CSR.
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
pub(crate) fn requested(csr: &[u8]) -> Result<Requested<'_>, String> {
    let m = |e: der::DerError| format!("malformed pkcs#10 request ({e})");
    let mut outer = Reader::new(csr);
    let mut request = Reader::new(outer.read(tag::SEQUENCE).map_err(m)?);
    outer.finish().map_err(m)?;
    let mut info = Reader::new(request.read(tag::SEQUENCE).map_err(m)?);
    info.read(tag::INTEGER).map_err(m)?;
    let mut subject = Reader::new(info.read(tag::SEQUENCE).map_err(m)?);
    let mut common_name = false;
    while !subject.is_empty() {
        let mut rdn = Reader::new(subject.read(tag::SET).map_err(m)?);
        while !rdn.is_empty() {
            let mut atv = Reader::new(rdn.read(tag::SEQUENCE).map_err(m)?);
            common_name |= atv.read(tag::OID).map_err(m)? == der::oid::COMMON_NAME;
        }
    }
    info.read(tag::SEQUENCE).map_err(m)?; // subjectPublicKeyInfo
    let mut attributes = Reader::new(info.read(tag::CONTEXT_0).map_err(m)?);
    info.finish().map_err(m)?;
    let mut extensions = Vec::new();
    while !attributes.is_empty() {
        let mut attribute = Reader::new(attributes.read(tag::SEQUENCE).map_err(m)?);
        let kind = attribute.read(tag::OID).map_err(m)?;
        let mut values = Reader::new(attribute.read(tag::SET).map_err(m)?);
        attribute.finish().map_err(m)?;
        if kind != EXTENSION_REQUEST {
            continue; // challengePassword and the like: nothing that names the workload
        }
        while !values.is_empty() {
            let mut list = Reader::new(values.read(tag::SEQUENCE).map_err(m)?);
            while !list.is_empty() {
                let mut ext = Reader::new(list.read(tag::SEQUENCE).map_err(m)?);
                let id = ext.read(tag::OID).map_err(m)?;
                if ext.peek_tag() == Some(tag::BOOLEAN) {
                    ext.read(tag::BOOLEAN).map_err(m)?;
                }
                let value = ext.read(tag::OCTET_STRING).map_err(m)?;
                ext.finish().map_err(m)?;
                // Requester-controlled: bounded like a certificate's extensions, so the
                // duplicate check below stays a scan of at most 64 entries.
                if extensions.len() == MAX_REQUESTED_EXTENSIONS {
                    return Err(format!(
                        "more than {MAX_REQUESTED_EXTENSIONS} requested extensions"
                    ));
                }
                if extensions.iter().any(|(seen, _)| *seen == id) {
                    return Err(format!(
                        "extension {} requested twice",
                        der::oid::dotted(id)
                    ));
                }
                extensions.push((id, value));
            }
        }
    }
    Ok(Requested {
        common_name,
        extensions,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A CertificationRequest with `n` distinct requested extensions (unsigned: `requested`
    /// reads names and extensions only).
    fn csr_with_extensions(n: u8) -> Vec<u8> {
        let exts: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let id = der::tlv_vec(tag::OID, &[0x2a, 0x03, i]);
                let inner = der::tlv_vec(tag::SEQUENCE, &[]);
                let value = der::tlv_vec(tag::OCTET_STRING, &inner);
                der::sequence(&[&id, &value])
            })
            .collect();
        let refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
        let list = der::sequence(&refs);
        let (kind, values) = (
            der::tlv_vec(tag::OID, EXTENSION_REQUEST),
            der::tlv_vec(tag::SET, &list),
        );
        let attribute = der::sequence(&[&kind, &values]);
        let (version, empty, attributes) = (
            der::tlv_vec(tag::INTEGER, &[0]),
            der::sequence(&[]),
            der::tlv_vec(tag::CONTEXT_0, &attribute),
        );
        let info = der::sequence(&[&version, &empty, &empty, &attributes]);
        let signature = der::tlv_vec(tag::BIT_STRING, &[0]);
        der::sequence(&[&info, &empty, &signature])
    }

    #[test]
    fn requested_extensions_are_bounded() {
        let ok = requested(&[]).err();
        assert!(ok.is_some(), "empty input is malformed");
        let at_limit = csr_with_extensions(64);
        let r = requested(&at_limit).expect("64 extensions are read");
        assert_eq!(r.extensions.len(), 64);
        assert!(!r.common_name);
        let e = requested(&csr_with_extensions(65)).unwrap_err();
        assert!(e.contains("more than 64 requested extensions"), "{e}");
    }
}
