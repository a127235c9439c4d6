//! CSR creation: every key kind makes a request that OpenSSL (`openssl req -verify`) and
//! pyca/cryptography verify, that names exactly the SPIFFE ID, and that `MeshCa::sign_csr`
//! accepts; the returned chain pairs with the request's key into an `Svid`.

use crate::ca_support as support;

use std::process::Command;
use std::time::Duration;

use meshtls::ca::{CaParams, KeyKind, MeshCa};
use meshtls::{Csr, CsrParams, SpiffeId, TrustDomain};
use support::*;

fn id() -> SpiffeId {
    SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc").unwrap()
}

#[test]
fn every_key_kind_verifies_with_openssl_and_signs() {
    let mut p = CaParams::new(TrustDomain::new("cluster.local").unwrap());
    p.key = KeyKind::EcP256;
    let ca = MeshCa::create(&p).unwrap();
    let scratch = Scratch::new("csr");
    for kind in KeyKind::ALL {
        let csr = Csr::new(&id(), &CsrParams::with_key(kind)).unwrap();
        let path = scratch.write(&format!("{kind}.csr"), &csr.pem());
        let (ok, out) = openssl(&[
            "req",
            "-verify",
            "-noout",
            "-text",
            "-in",
            path.to_str().unwrap(),
        ]);
        assert!(ok, "{kind}: {out}");
        assert!(
            out.contains("URI:spiffe://cluster.local/ns/gateway/sa/agc"),
            "{kind}: {out}"
        );
        assert!(!out.contains("DNS:"), "{kind}: {out}");
        let issued = ca
            .sign_csr(&csr.pem(), &id(), Duration::from_secs(3600))
            .unwrap();
        // The DER form signs too.
        ca.sign_csr_der(csr.der().as_ref(), &id(), Duration::from_secs(3600))
            .unwrap();
        let svid = csr.into_svid(issued.cert_chain_der().to_vec()).unwrap();
        assert_eq!(svid.spiffe_id(), &id());
    }
}

#[test]
fn pyca_cryptography_verifies_the_request() {
    let csr = Csr::new(
        &id(),
        &CsrParams {
            key: KeyKind::EcP384,
            dns_names: vec!["gw.example".into()],
        },
    )
    .unwrap();
    let script = r#"
import sys
from cryptography import x509
csr = x509.load_pem_x509_csr(sys.stdin.buffer.read())
assert csr.is_signature_valid, "bad signature"
san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
print(san.get_values_for_type(x509.UniformResourceIdentifier), san.get_values_for_type(x509.DNSName), len(csr.subject))
"#;
    let mut child = match Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("python3 is required for this test: {e}"),
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(csr.pem().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "['spiffe://cluster.local/ns/gateway/sa/agc'] ['gw.example'] 0"
    );
}

#[test]
fn a_tampered_request_is_refused_by_the_ca_and_openssl() {
    let ca = MeshCa::create(&CaParams::default()).unwrap();
    let csr = Csr::new(&id(), &CsrParams::default()).unwrap();
    let mut der = csr.der().as_ref().to_vec();
    let n = der.len();
    der[n - 5] ^= 0x01; // inside the signature
    assert!(
        ca.sign_csr_der(&der, &id(), Duration::from_secs(3600))
            .is_err()
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let td_only = SpiffeId::new("spiffe://cluster.local").unwrap();
    let err = Csr::new(&td_only, &CsrParams::default()).unwrap_err();
    assert!(err.to_string().contains("non-root path"), "{err}");
    let err = Csr::new(
        &id(),
        &CsrParams {
            key: KeyKind::EcP256,
            dns_names: vec!["bad name".into()],
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"bad name\""), "{err}");
    // A chain for another identity does not pair with the request.
    let ca = MeshCa::create(&CaParams::default()).unwrap();
    let csr = Csr::new(&id(), &CsrParams::default()).unwrap();
    let other = SpiffeId::new("spiffe://cluster.local/ns/x/sa/y").unwrap();
    let issued = ca
        .sign_csr(&csr.pem(), &other, Duration::from_secs(60))
        .unwrap();
    let err = csr.into_svid(issued.cert_chain_der().to_vec()).unwrap_err();
    assert!(err.to_string().contains("was requested"), "{err}");
    // Debug never shows the key.
    let csr = Csr::new(&id(), &CsrParams::default()).unwrap();
    assert!(!format!("{csr:?}").contains("PRIVATE"));
}
