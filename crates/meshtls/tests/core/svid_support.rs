//! Certificates for the SVID tests, generated with rcgen (aws-lc-rs): a good profile by
//! default, and a hook to break any field of it.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use time::OffsetDateTime;

/// 2030-01-01T00:00:00Z: the verification time of the tests. Certificates are valid from
/// 2026-01-01 to 2036-01-01 unless a test changes that.
pub const NOW: i64 = 1_893_456_000;

pub fn now() -> UnixTime {
    at(NOW)
}

pub fn at(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs as u64))
}

pub fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

pub fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

pub fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().unwrap())
}

/// A CA (root or intermediate) with its key.
pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub der: CertificateDer<'static>,
}

/// A leaf certificate with its key.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    pub key: KeyPair,
}

impl Leaf {
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

fn base_validity(p: &mut CertificateParams) {
    p.not_before = rcgen::date_time_ymd(2026, 1, 1);
    p.not_after = rcgen::date_time_ymd(2036, 1, 1);
}

/// Signing-certificate profile: CN, cA=true, keyCertSign+cRLSign, `spiffe://<td>`.
pub fn ca_params(td: &str, cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    base_validity(&mut p);
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, td);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.subject_alt_names = vec![uri(&format!("spiffe://{td}"))];
    p
}

/// Istio's workload profile: empty subject, critical URI SAN, cA=false, KU
/// digitalSignature+keyEncipherment, EKU serverAuth+clientAuth.
pub fn leaf_params(id: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    base_validity(&mut p);
    p.distinguished_name = DistinguishedName::new();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.subject_alt_names = vec![uri(id)];
    p
}

pub fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

pub fn ec() -> KeyPair {
    key(&rcgen::PKCS_ECDSA_P256_SHA256)
}

impl Ca {
    /// A self-signed root for `td`.
    pub fn root(td: &str) -> Ca {
        Ca::root_with(td, |_| {})
    }

    pub fn root_with(td: &str, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
        Ca::root_with_key(td, ec(), edit)
    }

    pub fn root_with_key(td: &str, key: KeyPair, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = ca_params(td, &format!("{td} root"));
        edit(&mut params);
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca { params, key, der }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// An intermediate signed by this CA.
    pub fn intermediate(&self, td: &str, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
        let key = ec();
        let mut params = ca_params(td, &format!("{td} intermediate"));
        edit(&mut params);
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Ca { params, key, der }
    }

    /// A leaf with the workload profile for `id`, then `edit` applied.
    pub fn leaf(&self, id: &str, edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = leaf_params(id);
        edit(&mut params);
        self.sign_leaf(&params)
    }

    pub fn sign_leaf(&self, params: &CertificateParams) -> Leaf {
        let key = ec();
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Leaf { der, key }
    }

    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A DER element.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// NameConstraints with one permitted URI subtree (`host`), as a critical extension.
pub fn uri_name_constraint(host: &str) -> CustomExtension {
    let general_name = tlv(0x86, host.as_bytes());
    let subtree = tlv(0x30, &general_name);
    let permitted = tlv(0xa0, &subtree);
    let value = tlv(0x30, &permitted);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
    ext.set_criticality(true);
    ext
}

/// A KeyUsage extension with `bits` (RFC 5280 numbering, bit 0 = digitalSignature).
pub fn key_usage_ext(bits: &[u8], critical: bool) -> CustomExtension {
    let mut byte = 0u8;
    for b in bits {
        byte |= 0x80 >> b;
    }
    let unused = byte.trailing_zeros().min(7) as u8;
    let value = tlv(0x03, &[unused, byte]);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 15], value);
    ext.set_criticality(critical);
    ext
}

/// A SubjectAltName extension with the given URIs, with chosen criticality.
pub fn san_ext(uris: &[&str], critical: bool) -> CustomExtension {
    let names: Vec<u8> = uris.iter().flat_map(|u| tlv(0x86, u.as_bytes())).collect();
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 17], tlv(0x30, &names));
    ext.set_criticality(critical);
    ext
}

/// `bytes` with the bytes at `flips` (positions wrapped to the length) flipped and cut at
/// `cut` (wrapped too): the fuzz-style damage of the mutation tests.
pub fn mutate(mut bytes: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for (at, x) in flips {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] ^= x | 1;
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c % (bytes.len() + 1));
    }
    bytes
}
