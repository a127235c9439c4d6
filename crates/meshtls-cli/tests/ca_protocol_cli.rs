#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `meshtls ca serve` and `meshtls istio-ca fetch` as two processes: issuance by token, the
//! files written (key 0600, chain checked by openssl), renewal by client certificate, a bad
//! token refused with exit 1 while the server keeps serving, one log line per request.
#![cfg(feature = "grpc")]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const GW: &str = "spiffe://cluster.local/ns/gateway/sa/agc";

struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let d =
            std::env::temp_dir().join(format!("meshtls-cli-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn p(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn meshtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn issuer() -> (EcdsaKeyPair, String) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let p = pair.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
        "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])}]})
    .to_string();
    (pair, jwks)
}

fn token(pair: &EcdsaKeyPair, sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = B64.encode(br#"{"alg":"ES256","kid":"k"}"#);
    let p = B64.encode(
        serde_json::json!({"iss": ISSUER, "sub": sub, "aud": ["istio-ca"], "exp": now + 600})
            .to_string(),
    );
    let sig = pair
        .sign(&SystemRandom::new(), format!("{h}.{p}").as_bytes())
        .unwrap();
    format!("{h}.{p}.{}", B64.encode(sig.as_ref()))
}

#[test]
fn serve_and_fetch_as_two_processes() {
    let dir = Scratch::new("ca-serve");
    let ca_dir = dir.p("ca");
    let out = meshtls(&["ca", "init", s(&ca_dir), "--key", "ec-p256"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (pair, jwks) = issuer();
    std::fs::write(dir.p("jwks.json"), &jwks).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args([
            "ca",
            "serve",
            "--ca",
            s(&ca_dir),
            "--listen",
            "127.0.0.1:0",
            "--jwks",
            s(&dir.p("jwks.json")),
            "--issuer",
            ISSUER,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let listening: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    let port = listening["listening"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let address = format!("localhost:{port}");
    std::fs::write(
        dir.p("token"),
        token(&pair, "system:serviceaccount:gateway:agc"),
    )
    .unwrap();
    let root = ca_dir.join("root-cert.pem");
    let out_dir = dir.p("svid");
    let out = meshtls(&[
        "--json",
        "istio-ca",
        "fetch",
        "--address",
        &address,
        "--root",
        s(&root),
        "--token-file",
        s(&dir.p("token")),
        "--identity",
        GW,
        "--ttl",
        "1h",
        "--out",
        s(&out_dir),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["spiffe_id"], GW);
    let mode = std::fs::metadata(out_dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let verify = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            s(&out_dir.join("root-cert.pem")),
            s(&out_dir.join("cert-chain.pem")),
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Renewal with the written files as client certificate, no token.
    let renewed = dir.p("renewed");
    let out = meshtls(&[
        "istio-ca",
        "fetch",
        "--address",
        &address,
        "--root",
        s(&root),
        "--cert-dir",
        s(&out_dir),
        "--out",
        s(&renewed),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        std::fs::read(renewed.join("cert-chain.pem")).unwrap(),
        std::fs::read(out_dir.join("cert-chain.pem")).unwrap()
    );

    // A token of another issuer: refused (exit 1), and the server still serves.
    let (other, _) = issuer();
    std::fs::write(
        dir.p("bad-token"),
        token(&other, "system:serviceaccount:gateway:agc"),
    )
    .unwrap();
    let out = meshtls(&[
        "istio-ca",
        "fetch",
        "--address",
        &address,
        "--root",
        s(&root),
        "--token-file",
        s(&dir.p("bad-token")),
        "--identity",
        GW,
        "--out",
        s(&dir.p("x")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("request authenticate failure"));
    let out = meshtls(&[
        "istio-ca",
        "fetch",
        "--address",
        &address,
        "--root",
        s(&root),
        "--token-file",
        s(&dir.p("token")),
        "--identity",
        GW,
        "--out",
        s(&dir.p("again")),
    ]);
    assert!(out.status.success());
    // Bad usage: exit 2.
    let out = meshtls(&[
        "istio-ca",
        "fetch",
        "--root",
        s(&root),
        "--out",
        s(&dir.p("y")),
    ]);
    assert_eq!(out.status.code(), Some(2));

    drop(server);
    let log: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(
        log.iter()
            .filter(|l| l.contains("signed a certificate chain"))
            .count()
            >= 3,
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("UNAUTHENTICATED") && l.contains("signature does not verify")),
        "{log:?}"
    );
}
