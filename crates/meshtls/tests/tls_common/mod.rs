//! Shared helpers of the tls_* integration tests: throwaway mesh CAs and in-memory handshakes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};

use meshtls::TrustDomain;
use meshtls::tls::TlsMaterial;
use meshtls::{BundleSet, TrustBundle};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::CertificateDer;

/// A self-signed mesh CA for one trust domain that issues Istio-profile workload certificates.
pub struct TestCa {
    pub trust_domain: TrustDomain,
    pub root: CertificateDer<'static>,
    pub root_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// An issued workload certificate.
pub struct Issued {
    /// Leaf first, then the root (Istio's chain order).
    pub chain: Vec<CertificateDer<'static>>,
    pub chain_pem: String,
    pub leaf_pem: String,
    pub key_pkcs8: Vec<u8>,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(trust_domain: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, trust_domain);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.subject_alt_names = vec![SanType::URI(
            format!("spiffe://{trust_domain}").try_into().unwrap(),
        )];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            trust_domain: TrustDomain::new(trust_domain).unwrap(),
            root: cert.der().clone(),
            root_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Istio's workload profile: no subject, one URI SAN, KU digitalSignature+keyEncipherment,
    /// EKU serverAuth+clientAuth.
    pub fn issue(&self, spiffe_id: &str) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into().unwrap())];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            chain: vec![cert.der().clone(), self.root.clone()],
            chain_pem: format!("{}{}", cert.pem(), self.root_pem),
            leaf_pem: cert.pem(),
            key_pkcs8: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// One bundle per trust domain, holding the roots of every CA of that trust domain.
pub fn bundles(cas: &[&TestCa]) -> BundleSet {
    let mut by_td: Vec<(TrustDomain, Vec<CertificateDer<'static>>)> = Vec::new();
    for ca in cas {
        match by_td.iter_mut().find(|(td, _)| *td == ca.trust_domain) {
            Some((_, roots)) => roots.push(ca.root.clone()),
            None => by_td.push((ca.trust_domain.clone(), vec![ca.root.clone()])),
        }
    }
    BundleSet::from_bundles(
        by_td
            .into_iter()
            .map(|(td, roots)| TrustBundle::new(td, roots).unwrap()),
    )
    .unwrap()
}

pub fn material(ca: &TestCa, spiffe_id: &str, trusted: &[&TestCa]) -> TlsMaterial {
    let issued = ca.issue(spiffe_id);
    TlsMaterial::from_der(issued.chain, &issued.key_pkcs8, bundles(trusted)).unwrap()
}

/// Drives a client and a server connection to the end of their handshakes in memory.
pub fn handshake(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    for _ in 0..20 {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
            }
            server.process_new_packets()?;
        }
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            client.process_new_packets()?;
        }
        if !client.is_handshaking()
            && !server.is_handshaking()
            && !client.wants_write()
            && !server.wants_write()
        {
            return Ok(());
        }
    }
    panic!("handshake did not finish in 20 flights");
}

/// Sends `data` from the client and reads it on the server (so that TLS 1.3 tickets and
/// client-certificate checks have been processed on both ends).
pub fn exchange(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    data: &[u8],
) -> Vec<u8> {
    client.writer().write_all(data).unwrap();
    handshake(client, server).unwrap();
    let mut out = vec![0u8; data.len()];
    server.reader().read_exact(&mut out).unwrap();
    out
}

/// Finds `tool` on PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
