//! The one PEM reader and writer (rustls-pki-types' `PemObject` underneath): certificate
//! chains, bundles and private keys.

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::CaError;

/// PEM text of one DER object (64-column base64, `\n` line ends).
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let mut out = String::with_capacity(der.len() * 4 / 3 + 80);
    pem_into(&mut out, label, der);
    out
}

/// Appends PEM text of one DER object.
pub(crate) fn pem_into(out: &mut String, label: &str, der: &[u8]) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let bytes = b64.as_bytes();
    for line in bytes.chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// Certificates as concatenated PEM `CERTIFICATE` blocks.
pub(crate) fn pem_certs(certs: &[CertificateDer<'_>]) -> String {
    let mut out = String::with_capacity(certs.iter().map(|c| c.len() * 4 / 3 + 80).sum());
    for c in certs {
        pem_into(&mut out, "CERTIFICATE", c);
    }
    out
}

/// The largest PEM text read (16 MiB, as for manifests and bundles).
pub(crate) const MAX_PEM_BYTES: usize = 16 * 1024 * 1024;

/// Reads the `CERTIFICATE` blocks of a PEM text. Text outside the blocks is ignored;
/// whitespace-only text gives no certificates; any other block kind (e.g. a private key) and
/// text with no block at all are errors.
pub(crate) fn parse_pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(format!(
            "the PEM text is {} bytes, more than the {MAX_PEM_BYTES} bytes meshtls reads",
            pem.len()
        ));
    }
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = item.map_err(|e| pem_error(&e))?;
        if kind != SectionKind::Certificate {
            return Err(format!(
                "found a {kind:?} PEM block: only CERTIFICATE blocks are accepted"
            ));
        }
        out.push(CertificateDer::from(der));
    }
    if out.is_empty() && !pem.trim().is_empty() {
        return Err(format!(
            "no CERTIFICATE PEM block found (text starts {})",
            quote(pem)
        ));
    }
    Ok(out)
}

/// Reads the first `CERTIFICATE REQUEST` block of a PEM text (a PKCS#10 CSR), within the
/// same size cap as every PEM read; the error says what is wrong, for the caller to wrap.
pub(crate) fn csr_from_pem(pem: &str) -> Result<CertificateSigningRequestDer<'static>, String> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(format!(
            "the PEM text is {} bytes, more than the {MAX_PEM_BYTES} bytes meshtls reads",
            pem.len()
        ));
    }
    CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("no pem certificate request found ({e})"))
}

/// Reads PEM that must hold only `CERTIFICATE` blocks, at least one; `what` names the file
/// or role in errors.
pub(crate) fn certificates_from_pem(
    pem: &str,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let material = |reason: String| CaError::Material {
        what: what.to_owned(),
        reason,
    };
    let certs = parse_pem_certificates(pem).map_err(material)?;
    if certs.is_empty() {
        return Err(material("holds no pem certificate".to_owned()));
    }
    Ok(certs)
}

/// Reads exactly one private key from PEM (`PRIVATE KEY`, `RSA PRIVATE KEY` or
/// `EC PRIVATE KEY`).
pub(crate) fn private_key_from_pem(
    pem: &str,
    what: &str,
) -> Result<Zeroizing<PrivateKeyDer<'static>>, CaError> {
    let mut found: Option<Zeroizing<PrivateKeyDer<'static>>> = None;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der_bytes) = item.map_err(|e| CaError::Material {
            what: what.to_owned(),
            reason: format!("invalid pem ({})", pem_error(&e)),
        })?;
        let der_bytes = Zeroizing::new(der_bytes);
        let key = Zeroizing::new(match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der_bytes.to_vec().into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der_bytes.to_vec().into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der_bytes.to_vec().into()),
            other => {
                return Err(CaError::Material {
                    what: what.to_owned(),
                    reason: format!("holds a {other:?} pem block where a private key belongs"),
                });
            }
        });
        if found.is_some() {
            return Err(CaError::Material {
                what: what.to_owned(),
                reason: "holds more than one private key".to_owned(),
            });
        }
        found = Some(key);
    }
    found.ok_or_else(|| CaError::Material {
        what: what.to_owned(),
        reason:
            "holds no unencrypted pem private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                .to_owned(),
    })
}

/// A PEM syntax error in words, quoting at most 40 characters of the offending line (the
/// reader's own messages print whole lines as byte lists).
pub(crate) fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a section has no end line \"-----END {}-----\"",
            String::from_utf8_lossy(end_marker)
                .chars()
                .take(40)
                .collect::<String>()
        ),
        E::IllegalSectionStart { line } => format!(
            "malformed section start line {}",
            quote(&String::from_utf8_lossy(line))
        ),
        E::Base64Decode(_) => "a section's body is not valid base64".to_owned(),
        E::SectionTooLarge => "a section is larger than 256 MB".to_owned(),
        other => other.to_string(),
    }
}

/// At most 40 characters of `text`, quoted with Rust's escapes (bounded, printable).
pub(crate) fn quote(text: &str) -> String {
    let mut head: String = text.trim_start().chars().take(40).collect();
    if text.trim_start().chars().count() > 40 {
        head.push_str("...");
    }
    format!("{head:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_a_bounded_part_of_the_bad_value() {
        let long = format!("-----BEGIN CERTIFICATE{}\nAAAA\n", "x".repeat(5000));
        let e = parse_pem_certificates(&long).unwrap_err();
        assert!(e.len() < 200, "{e}");
        assert!(
            e.starts_with("malformed section start line \"-----BEGIN CERTIFICATExxxx"),
            "{e}"
        );
        let e = certificates_from_pem(&"garbage ".repeat(1000), "ca-cert.pem").unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
        assert!(
            e.to_string().starts_with(
                "ca-cert.pem: no CERTIFICATE PEM block found (text starts \"garbage garbage"
            ),
            "{e}"
        );
        let e = private_key_from_pem(
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            "ca-key.pem",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ca-key.pem: invalid pem (a section's body is not valid base64)"
        );
        let e = private_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n", "k").unwrap_err();
        assert!(
            e.to_string()
                .contains("has no end line \"-----END PRIVATE KEY-----\""),
            "{e}"
        );
    }
}
