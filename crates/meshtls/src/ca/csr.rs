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
