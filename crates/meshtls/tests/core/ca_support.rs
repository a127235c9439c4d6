//! Helpers shared by the CA integration tests: scratch directories, openssl, rustls-webpki and
//! x509-parser as independent checkers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use meshtls::TrustDomain;
use meshtls::ca::{CaParams, KeyKind, MeshCa};

use rustls_pki_types::{CertificateDer, UnixTime};

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "meshtls-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pem(certs: &[CertificateDer<'_>]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for c in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Runs a command; returns (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("command runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

pub fn openssl(args: &[&str]) -> (bool, String) {
    run(Command::new("openssl").args(args))
}

/// `openssl verify -x509_strict -purpose <purpose>` of `chain` (leaf first; a trailing root
/// in the chain is dropped, the rest are untrusted intermediates) against `roots`.
pub fn openssl_verify(chain: &[CertificateDer<'_>], roots: &[CertificateDer<'_>], purpose: &str) {
    let dir = Scratch::new("verify");
    let ca = dir.write("root.pem", &pem(roots));
    let leaf = dir.write("leaf.pem", &pem(&chain[..1]));
    let mut inter: Vec<CertificateDer<'_>> = chain[1..].to_vec();
    if inter.last().is_some_and(|c| roots.contains(c)) {
        inter.pop();
    }
    let mut args = vec![
        "verify".to_owned(),
        "-x509_strict".to_owned(),
        "-purpose".to_owned(),
        purpose.to_owned(),
        "-CAfile".to_owned(),
        ca.display().to_string(),
    ];
    if !inter.is_empty() {
        let p = dir.write("inter.pem", &pem(&inter));
        args.push("-untrusted".to_owned());
        args.push(p.display().to_string());
    }
    args.push(leaf.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = openssl(&refs);
    assert!(
        ok && text.contains(": OK"),
        "openssl verify {purpose} failed: {text}"
    );
}

/// rustls-webpki path building and EKU check for both client and server use.
pub fn webpki_verify(chain: &[CertificateDer<'_>], roots: &[CertificateDer<'_>]) {
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).unwrap().to_owned())
        .collect();
    let ee = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    let now = UnixTime::now();
    for usage in [
        webpki::KeyUsage::client_auth(),
        webpki::KeyUsage::server_auth(),
    ] {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &chain[1..],
            now,
            usage,
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("webpki rejected the chain: {e:?}"));
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn file_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The `tests/data/istio-samples` directory (Istio's `samples/certs`, see its NOTE.md).
pub fn istio_samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/istio-samples")
}

/// A scratch directory holding one of Istio's sample CAs in the plug-in layout: `""` for the
/// `cacerts` of Istio's "plug in CA certificates" task, `"-alt"` for its cluster1 alternative.
pub fn istio_sample_ca(suffix: &str) -> Scratch {
    let dir = Scratch::new("istio-sample-ca");
    let src = istio_samples();
    for (from, to) in [
        (format!("ca-cert{suffix}.pem"), "ca-cert.pem"),
        (format!("ca-key{suffix}.pem"), "ca-key.pem"),
        (format!("cert-chain{suffix}.pem"), "cert-chain.pem"),
        (format!("root-cert{suffix}.pem"), "root-cert.pem"),
    ] {
        std::fs::copy(src.join(&from), dir.path(to)).unwrap_or_else(|e| panic!("{from}: {e}"));
    }
    dir
}

/// `openssl verify` without `-x509_strict` (what OpenSSL, and Envoy's BoringSSL, accept by
/// default): `chain` leaf first, a trailing root dropped, `roots` trusted.
pub fn openssl_verify_default(
    chain: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    purpose: &str,
) -> (bool, String) {
    let dir = Scratch::new("verify");
    let ca = dir.write("root.pem", &pem(roots));
    let leaf = dir.write("leaf.pem", &pem(&chain[..1]));
    let mut inter: Vec<CertificateDer<'_>> = chain[1..].to_vec();
    if inter.last().is_some_and(|c| roots.contains(c)) {
        inter.pop();
    }
    let mut args = vec![
        "verify".to_owned(),
        "-purpose".to_owned(),
        purpose.to_owned(),
        "-CAfile".to_owned(),
        ca.display().to_string(),
    ];
    if !inter.is_empty() {
        let p = dir.write("inter.pem", &pem(&inter));
        args.push("-untrusted".to_owned());
        args.push(p.display().to_string());
    }
    args.push(leaf.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = openssl(&refs);
    (ok && text.contains(": OK"), text)
}

/// GnuTLS `certtool --verify` of `chain` (leaf first, as presented) against `roots`.
pub fn certtool_verify(
    chain: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
) -> (bool, String) {
    let dir = Scratch::new("certtool");
    let ca = dir.write("ca.pem", &pem(roots));
    let input = dir.write("chain.pem", &pem(chain));
    let (ok, text) = run(Command::new("certtool")
        .arg("--verify")
        .arg("--load-ca-certificate")
        .arg(&ca)
        .arg("--infile")
        .arg(&input));
    (
        ok && text.contains("Chain verification output: Verified"),
        text,
    )
}

/// The trust domain of the CA tests.
pub fn td() -> TrustDomain {
    TrustDomain::new("cluster.local").unwrap()
}

/// A self-signed root with `key` (Istio's root defaults otherwise).
pub fn root(key: KeyKind) -> MeshCa {
    let mut p = CaParams::new(td());
    p.key = key;
    MeshCa::create(&p).unwrap()
}

/// An intermediate with `key` under `under` (Istio's intermediate defaults otherwise).
pub fn intermediate(under: &MeshCa, key: KeyKind) -> MeshCa {
    let mut p = CaParams::intermediate(td());
    p.key = key;
    under.create_intermediate(&p).unwrap()
}
