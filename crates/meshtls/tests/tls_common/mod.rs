//! Shared helpers of the tls_* integration tests: throwaway mesh CAs and in-memory handshakes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};

use meshtls::ca::{CaParams, IssueParams, KeyKind};
use meshtls::tls::TlsMaterial;
use meshtls::{BundleSet, MeshCa, SpiffeId, Svid, TrustBundle, TrustDomain};
use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::CertificateDer;

/// A self-signed mesh CA (meshtls's `MeshCa`, EC P-256 to keep the tests fast) for one trust
/// domain, issuing with Istio's workload profile.
pub struct TestCa {
    pub trust_domain: TrustDomain,
    pub root: CertificateDer<'static>,
    pub root_pem: String,
    pub ca: MeshCa,
}

/// An issued workload certificate.
pub struct Issued {
    pub svid: Svid,
    /// Leaf first, then the root (Istio's chain order).
    pub chain: Vec<CertificateDer<'static>>,
    pub chain_pem: String,
    pub key_pkcs8: Vec<u8>,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(trust_domain: &str) -> Self {
        let td = TrustDomain::new(trust_domain).unwrap();
        let ca = MeshCa::create(&CaParams {
            key: KeyKind::EcP256,
            ..CaParams::new(td.clone())
        })
        .unwrap();
        TestCa {
            trust_domain: td,
            root: ca.root_certs_der()[0].clone(),
            root_pem: ca.root_cert_pem(),
            ca,
        }
    }

    /// Any SPIFFE ID, even one outside this CA's trust domain (Istio's CA signs what it is
    /// asked; verification must catch the mismatch).
    pub fn issue(&self, spiffe_id: &str) -> Issued {
        let svid = self
            .ca
            .issue(&SpiffeId::new(spiffe_id).unwrap(), &IssueParams::default())
            .unwrap();
        Issued {
            chain: svid.cert_chain_der().to_vec(),
            chain_pem: svid.cert_chain_pem(),
            key_pkcs8: svid.private_key_der().secret_der().to_vec(),
            key_pem: svid.private_key_pem().to_string(),
            svid,
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
    TlsMaterial::new(&ca.issue(spiffe_id).svid, bundles(trusted)).unwrap()
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
/// Fails the test when `tool` is missing: scripts/test.sh installs every tool the interop
/// tests run (openssl, curl, gnutls' certtool; python3 is on every machine of this project),
/// so a missing one is a broken setup, never a pass.
pub fn require(tool: &str) {
    assert!(
        have(tool),
        "{tool} is not installed: scripts/test.sh installs the interop tools"
    );
}

pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// meshtls's own error inside a rustls handshake error (a verifier or authorizer refused the
/// peer), for typed asserts; `None` for rustls's own errors.
pub fn meshtls_error(err: &rustls::Error) -> Option<&meshtls::Error> {
    match err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<meshtls::Error>()
        }
        _ => None,
    }
}

/// A client with `me`'s certificate from `ca` that expects the server `server` and speaks only
/// `version`.
pub fn client_at(
    ca: &TestCa,
    me: &str,
    server: &str,
    version: meshtls::tls::TlsVersion,
) -> meshtls::tls::MtlsClientConfig {
    meshtls::tls::ClientConfigBuilder::new(material(ca, me, &[ca]))
        .expect_server_ids([SpiffeId::new(server).unwrap()])
        .versions(version, version)
        .unwrap()
        .build()
        .unwrap()
}
