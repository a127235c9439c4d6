//! [`inspect_certificate`]: what a certificate says about itself, for people and scripts.

use rustls_pki_types::{CertificateDer, UnixTime};

use super::verify::{check_leaf, fmt_time, leaf_spiffe_id};
use crate::error::SvidError;
use crate::x509::cert::{self as der, CertInfo, PublicKey};
use crate::x509::time::unix_time_seconds;

/// The SVID-relevant fields of one certificate (`meshtls inspect`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CertificateSummary {
    /// Subject, RFC 4514 style (`""` when empty).
    pub subject: String,
    /// Issuer, RFC 4514 style.
    pub issuer: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// NotBefore, RFC 3339.
    pub not_before: String,
    /// NotAfter, RFC 3339.
    pub not_after: String,
    /// Key type and size, e.g. `EC P-256` or `RSA 2048`.
    pub public_key: String,
    /// BasicConstraints `cA`, `None` when the extension is absent.
    pub is_ca: Option<bool>,
    /// KeyUsage bits by name, `None` when the extension is absent.
    pub key_usage: Option<Vec<String>>,
    /// Whether KeyUsage is critical.
    pub key_usage_critical: bool,
    /// ExtendedKeyUsage purposes, `None` when the extension is absent.
    pub extended_key_usage: Option<Vec<String>>,
    /// URI SANs.
    pub uri_sans: Vec<String>,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// IP SANs.
    pub ip_sans: Vec<String>,
    /// Whether the SAN extension is critical.
    pub san_critical: bool,
    /// Whether NameConstraints has URI subtrees.
    pub uri_name_constraints: bool,
    /// The SPIFFE ID, when the certificate has exactly one URI SAN and it is one.
    pub spiffe_id: Option<String>,
    /// Why the certificate would be refused as a leaf SVID at the inspection time (profile and
    /// validity only: no chain, no bundle), `None` when it would pass those checks.
    pub leaf_problem: Option<String>,
}

/// Reads a certificate's SVID-relevant fields and checks it against the leaf profile at `now`.
pub fn inspect_certificate(
    cert: &CertificateDer<'_>,
    now: UnixTime,
) -> Result<CertificateSummary, SvidError> {
    let malformed = |reason: String| SvidError::Malformed { index: 0, reason };
    let info = CertInfo::parse(cert.as_ref()).map_err(malformed)?;
    let name = |whole: &[u8], what: &str| {
        crate::x509::name::rfc4514_der(whole)
            .ok_or_else(|| malformed(format!("{what}: malformed distinguished name")))
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let san = info.subject_alt_name;
    let now_secs = unix_time_seconds(now);
    let (spiffe_id, leaf_problem) = match leaf_spiffe_id(&info) {
        Ok(id) => {
            let problem = check_leaf(&info, &id, now_secs)
                .err()
                .map(|e| e.to_string());
            (Some(id.to_string()), problem)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(CertificateSummary {
        subject: name(info.subject_der, "subject")?,
        issuer: name(info.issuer_der, "issuer")?,
        serial: info.serial.iter().map(|b| format!("{b:02x}")).collect(),
        not_before: fmt_time(info.not_before),
        not_after: fmt_time(info.not_after),
        public_key: describe_key(info.spki),
        is_ca: info.basic_constraints.map(|bc| bc.ca),
        key_usage: info
            .key_usage
            .map(|ku| ku.names().into_iter().map(str::to_owned).collect()),
        key_usage_critical: info.key_usage.is_some_and(|ku| ku.critical),
        extended_key_usage: info.ext_key_usage.map(|e| e.names()),
        uri_sans: san
            .map(|s| s.uris().map(text).collect())
            .unwrap_or_default(),
        dns_sans: san
            .map(|s| s.dns_names().map(text).collect())
            .unwrap_or_default(),
        ip_sans: san
            .map(|s| s.ip_addresses().map(ip_text).collect())
            .unwrap_or_default(),
        san_critical: san.is_some_and(|s| s.critical),
        uri_name_constraints: info.uri_name_constraints,
        spiffe_id,
        leaf_problem,
    })
}

fn describe_key(spki: &[u8]) -> String {
    match der::public_key(spki) {
        Ok(PublicKey::Rsa { n, .. }) => {
            let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
            format!("RSA {bits}")
        }
        Ok(PublicKey::Ec { crv, .. }) => format!("EC {crv}"),
        Ok(PublicKey::Okp { crv, .. }) => crv.to_owned(),
        Err(e) => format!("unknown ({e})"),
    }
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}
