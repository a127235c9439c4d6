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

fn kill(child: &Child, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{signal}");
}

/// Starts `ca serve` on the CA in `ca_dir` with the JWKS file `jwks`; returns the child, its
/// address, and its standard error as a channel of lines.
fn start_server(ca_dir: &Path, jwks: &Path) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let (child, address, log, _) = start_server_with(ca_dir, jwks, &[]);
    (child, address, log)
}

/// [`start_server`] with more arguments; also returns the first line (where it listens and
/// the settings in use).
fn start_server_with(
    ca_dir: &Path,
    jwks: &Path,
    extra: &[&str],
) -> (
    Child,
    String,
    std::sync::mpsc::Receiver<String>,
    serde_json::Value,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args([
            "ca",
            "serve",
            "--ca",
            s(ca_dir),
            "--listen",
            "127.0.0.1:0",
            "--jwks",
            s(jwks),
            "--issuer",
            ISSUER,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let listening: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    // Standard output's later lines go to the same channel, marked.
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if out_tx.send(format!("stdout: {line}")).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let port = listening["listening"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    (child, format!("localhost:{port}"), rx, listening)
}

/// Waits up to 15 s for a log line containing every one of `parts`.
fn wait_log(rx: &std::sync::mpsc::Receiver<String>, parts: &[&str]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no log line with {parts:?}; saw {seen:?}");
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ca serve did not exit within 15 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn fetch_with(address: &str, root: &Path, token_file: &Path, out: &Path) -> Output {
    meshtls(&[
        "istio-ca",
        "fetch",
        "--address",
        address,
        "--root",
        s(root),
        "--token-file",
        s(token_file),
        "--identity",
        GW,
        "--out",
        s(out),
    ])
}

/// What the signal tests share: a fresh CA, an issuer whose JWKS is in `jwks.json`, and that
/// issuer's token for the gateway's service account in `token-a`.
struct SignalFixture {
    dir: Scratch,
    ca_dir: PathBuf,
    root: PathBuf,
    jwks: PathBuf,
    jwks_a: String,
    token_a: PathBuf,
}

impl SignalFixture {
    fn new(name: &str) -> Self {
        let dir = Scratch::new(name);
        let ca_dir = dir.p("ca");
        assert!(
            meshtls(&["ca", "init", s(&ca_dir), "--key", "ec-p256"])
                .status
                .success()
        );
        let (a, jwks_a) = issuer();
        let jwks = dir.p("jwks.json");
        std::fs::write(&jwks, &jwks_a).unwrap();
        let token_a = dir.p("token-a");
        std::fs::write(&token_a, token(&a, "system:serviceaccount:gateway:agc")).unwrap();
        SignalFixture {
            root: ca_dir.join("root-cert.pem"),
            dir,
            ca_dir,
            jwks,
            jwks_a,
            token_a,
        }
    }
}

#[test]
fn sighup_and_a_changed_file_reload_the_jwks_and_sigterm_stops_gracefully() {
    let SignalFixture {
        dir,
        ca_dir,
        root,
        jwks,
        jwks_a,
        token_a,
    } = SignalFixture::new("ca-signals");
    let (b, jwks_b) = issuer();
    let token_b = dir.p("token-b");
    std::fs::write(&token_b, token(&b, "system:serviceaccount:gateway:agc")).unwrap();
    let (child, address, log) = start_server(&ca_dir, &jwks);
    let mut server = Server(child);
    assert!(
        fetch_with(&address, &root, &token_a, &dir.p("1"))
            .status
            .success()
    );
    assert_eq!(
        fetch_with(&address, &root, &token_b, &dir.p("2"))
            .status
            .code(),
        Some(1)
    );

    // The issuer's keys rotated; the file keeps its modification time, so only SIGHUP tells.
    let before = std::fs::metadata(&jwks).unwrap().modified().unwrap();
    std::fs::write(&jwks, &jwks_b).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&jwks)
        .unwrap()
        .set_modified(before)
        .unwrap();
    kill(&server.0, "HUP");
    wait_log(&log, &["reloaded jwks", "SIGHUP", "1 keys"]);
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the server"
    );
    // The old key's token was verified (and cached) before: refused now; the new one works.
    assert_eq!(
        fetch_with(&address, &root, &token_a, &dir.p("3"))
            .status
            .code(),
        Some(1)
    );
    assert!(
        fetch_with(&address, &root, &token_b, &dir.p("4"))
            .status
            .success()
    );

    // A new modification time reloads without a signal.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&jwks, &jwks_a).unwrap();
    wait_log(&log, &["reloaded jwks", "file changed"]);
    assert!(
        fetch_with(&address, &root, &token_a, &dir.p("5"))
            .status
            .success()
    );
    // A broken file is logged and the keys in use are kept.
    std::fs::write(&jwks, "{not json").unwrap();
    kill(&server.0, "HUP");
    wait_log(&log, &["not reloaded", "keeping the keys in use"]);
    assert!(
        fetch_with(&address, &root, &token_a, &dir.p("6"))
            .status
            .success()
    );

    // SIGTERM: graceful stop, exit 0.
    kill(&server.0, "TERM");
    let st = wait_exit(&mut server.0);
    assert!(st.success(), "exit status after SIGTERM: {st:?}");
    // The process is gone, so the pipes close and the channel ends.
    let rest: Vec<String> = log.iter().collect();
    for want in [
        "info ca server: SIGTERM: shutting down",
        "info ca server: stopped",
        "stdout: stopped on SIGTERM",
    ] {
        assert!(
            rest.iter().any(|l| l.contains(want)),
            "{want:?} not in {rest:?}"
        );
    }
}

#[test]
fn sigint_stops_gracefully() {
    let SignalFixture {
        dir,
        ca_dir,
        root,
        jwks,
        token_a,
        ..
    } = SignalFixture::new("ca-sigint");
    let (child, address, log) = start_server(&ca_dir, &jwks);
    let mut server = Server(child);
    assert!(
        fetch_with(&address, &root, &token_a, &dir.p("1"))
            .status
            .success()
    );
    kill(&server.0, "INT");
    let st = wait_exit(&mut server.0);
    assert!(st.success(), "exit status after SIGINT: {st:?}");
    wait_log(&log, &["SIGINT", "shutting down"]);
    // Nothing listens any more.
    let out = fetch_with(&address, &root, &token_a, &dir.p("2"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A call open on the server when SIGTERM arrives is answered before the process exits: the
/// client sends the request's headers and message but ends its stream only once the server
/// has begun to stop (SIGTERM logged, the listener closed), so the server holds a request in
/// flight for the whole shutdown. Dropping open calls on stop fails this test.
#[test]
fn sigterm_answers_the_call_in_flight() {
    use meshtls::ca_protocol::messages::CREATE_CERTIFICATE_PATH;
    use meshtls::ca_protocol::{IstioCertificateRequest, IstioCertificateResponse};
    use rustls_pki_types::pem::PemObject as _;

    let SignalFixture {
        dir: _dir,
        ca_dir,
        root,
        jwks,
        token_a,
        ..
    } = SignalFixture::new("ca-inflight");
    let (child, address, log) = start_server(&ca_dir, &jwks);
    let mut server = Server(child);
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&root).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tls = std::sync::Arc::new(tls);
    let id = meshtls::SpiffeId::new(GW).unwrap();
    let csr = meshtls::Csr::new(
        &id,
        &meshtls::CsrParams::with_key(meshtls::ca::KeyKind::EcP256),
    )
    .unwrap();
    let request = IstioCertificateRequest {
        csr: csr.pem(),
        validity_duration: 3600,
        metadata: None,
    };
    let bearer = format!(
        "Bearer {}",
        std::fs::read_to_string(&token_a).unwrap().trim()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let call = rt.spawn(async move {
        let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let tls = tls.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                let name = rustls_pki_types::ServerName::try_from("istiod.istio-system.svc")
                    .map_err(std::io::Error::other)?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        let channel = tonic::transport::Endpoint::from_static("http://localhost")
            .connect_with_connector(connector)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| format!("ready: {e}"))?;
        // The message now, the end of the stream when released.
        let body = OnceThenWait {
            first: Some(request),
            end: released,
        };
        let mut req = tonic::Request::new(body);
        req.metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        let codec =
            tonic_prost::ProstCodec::<IstioCertificateRequest, IstioCertificateResponse>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(CREATE_CERTIFICATE_PATH);
        grpc.client_streaming(req, path, codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    });
    // Let the request reach the server (the h2 graceful stop also accepts what is on the
    // wire when it begins), then stop the server.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!call.is_finished(), "the call ended before its stream did");
    kill(&server.0, "TERM");
    wait_log(&log, &["SIGTERM", "shutting down"]);
    // Stopping has begun once the listener is closed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting connections 10 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server exited with a call open"
    );
    release.send(()).unwrap();
    let answer = rt.block_on(call).unwrap();
    let response = answer.unwrap_or_else(|e| panic!("the call in flight was dropped: {e}"));
    assert_eq!(response.cert_chain.len(), 2, "{:?}", response.cert_chain);
    let st = wait_exit(&mut server.0);
    assert!(st.success(), "exit status after SIGTERM: {st:?}");
    let rest: Vec<String> = log.iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("OK: signed") && l.contains(GW)),
        "{rest:?}"
    );
}

/// A stream of one message that ends only once `end` fires (a client still sending).
struct OnceThenWait<T> {
    first: Option<T>,
    end: tokio::sync::oneshot::Receiver<()>,
}

impl<T: Unpin> tonic::codegen::tokio_stream::Stream for OnceThenWait<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(first));
        }
        std::future::Future::poll(std::pin::Pin::new(&mut self.end), cx).map(|_| None)
    }
}

/// One `CreateCertificate` call from tonic (an independent gRPC client) over rustls, checking
/// the server's certificate for `server_name`; the answer's chain, or the status's code and
/// message.
fn tonic_call(
    port: u16,
    root: &Path,
    server_name: &str,
    headers: &[(&'static str, String)],
    request: meshtls::ca_protocol::IstioCertificateRequest,
) -> Result<Vec<String>, (tonic::Code, String)> {
    use meshtls::ca_protocol::IstioCertificateResponse;
    use meshtls::ca_protocol::messages::CREATE_CERTIFICATE_PATH;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tls = std::sync::Arc::new(tls);
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let headers: Vec<(&'static str, String)> = headers.to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let tls = tls.clone();
            let name = name.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        let channel = tonic::transport::Endpoint::from_static("http://localhost")
            .connect_with_connector(connector)
            .await
            .map_err(|e| (tonic::Code::Unavailable, format!("connect: {e:?}")))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| (tonic::Code::Unavailable, format!("ready: {e}")))?;
        let mut req = tonic::Request::new(request);
        for (k, v) in headers {
            req.metadata_mut().insert(k, v.parse().unwrap());
        }
        let codec = tonic_prost::ProstCodec::<
            meshtls::ca_protocol::IstioCertificateRequest,
            IstioCertificateResponse,
        >::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(CREATE_CERTIFICATE_PATH);
        grpc.unary(req, path, codec)
            .await
            .map(|r| r.into_inner().cert_chain)
            .map_err(|s| (s.code(), s.message().to_owned()))
    })
}

fn csr_request(
    identity: &str,
    ttl: i64,
    impersonate: Option<&str>,
) -> (meshtls::Csr, meshtls::ca_protocol::IstioCertificateRequest) {
    let csr = meshtls::Csr::new(
        &meshtls::SpiffeId::new(identity).unwrap(),
        &meshtls::CsrParams::with_key(meshtls::ca::KeyKind::EcP256),
    )
    .unwrap();
    let mut request = meshtls::ca_protocol::IstioCertificateRequest {
        csr: csr.pem(),
        validity_duration: ttl,
        metadata: None,
    };
    if let Some(wanted) = impersonate {
        request.set_metadata_string("ImpersonatedIdentity", wanted);
    }
    (csr, request)
}

/// What is asked (case, token subject, ttl, impersonated identity, cluster header) and what
/// comes back (code, message to the caller, reason in the log).
type RefusalCase = (
    &'static str,
    &'static str,
    i64,
    Option<&'static str>,
    (&'static str, String),
    tonic::Code,
    &'static str,
    &'static str,
);

const ZTUNNEL: &str = "system:serviceaccount:istio-system:ztunnel";
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const DB: &str = "spiffe://cluster.local/ns/shop/sa/db";

/// ztunnel in shared mode, as its requests look: its own token, the pod's identity in the
/// request's `ImpersonatedIdentity`, its cluster id, the CA checked for `localhost`.
#[test]
fn serves_a_ztunnel_node_from_the_command_line() {
    let SignalFixture {
        dir,
        ca_dir,
        root,
        jwks,
        ..
    } = SignalFixture::new("ca-ztunnel");
    let (pair, jwks_text) = issuer();
    std::fs::write(&jwks, &jwks_text).unwrap();
    let bearer = |sub: &str| ("authorization", format!("Bearer {}", token(&pair, sub)));
    let east = || ("clusterid", "east".to_owned());
    let (child, address, log, first) = start_server_with(
        &ca_dir,
        &jwks,
        &[
            "--trusted-node-account",
            "istio-system/ztunnel",
            "--trusted-node-account",
            "istio-system/agent=shop/web",
            "--cluster-id",
            "east",
            "--dns",
            "localhost",
            "--min-ttl",
            "10m",
        ],
    );
    let _server = Server(child);
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(first["settings"]["cluster_id"], "east");
    assert_eq!(
        first["settings"]["dns_names"],
        serde_json::json!([
            "istiod.istio-system.svc",
            "istiod-remote.istio-system.svc",
            "istio-pilot.istio-system.svc",
            "localhost"
        ])
    );
    assert_eq!(first["settings"]["min_ttl_seconds"], 600);
    wait_log(
        &log,
        &[
            "trusted node account spiffe://cluster.local/ns/istio-system/sa/ztunnel",
            "any identity",
        ],
    );

    // ztunnel gets the pod's certificate, checking the CA as localhost and as istiod.
    for name in ["localhost", "istiod.istio-system.svc"] {
        let (csr, req) = csr_request(WEB, 3600, Some(WEB));
        let chain = tonic_call(port, &root, name, &[bearer(ZTUNNEL), east()], req)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let chain = chain
            .iter()
            .flat_map(|c| meshtls::svid::parse_pem_chain(c).unwrap())
            .collect();
        assert_eq!(csr.into_svid(chain).unwrap().spiffe_id().as_str(), WEB);
        wait_log(&log, &["OK: signed", WEB]);
    }
    // Not a name of the serving certificate.
    let (_, req) = csr_request(WEB, 3600, Some(WEB));
    let (code, msg) = tonic_call(
        port,
        &root,
        "other.example",
        &[bearer(ZTUNNEL), east()],
        req,
    )
    .unwrap_err();
    assert_eq!(code, tonic::Code::Unavailable, "{msg}");

    // Every refusal: istiod's code and message to the caller, the reason in the log.
    let cases: Vec<RefusalCase> = vec![
        (
            "an agent outside its list",
            "system:serviceaccount:istio-system:agent",
            3600,
            Some(DB),
            east(),
            tonic::Code::Unauthenticated,
            "request impersonation authentication failure",
            "trusted node account spiffe://cluster.local/ns/istio-system/sa/agent may not impersonate spiffe://cluster.local/ns/shop/sa/db",
        ),
        (
            "a workload impersonating",
            "system:serviceaccount:shop:db",
            3600,
            Some(WEB),
            east(),
            tonic::Code::Unauthenticated,
            "request impersonation authentication failure",
            "spiffe://cluster.local/ns/shop/sa/db is not a trusted node account",
        ),
        (
            "another cluster",
            ZTUNNEL,
            3600,
            None,
            ("clusterid", "Kubernetes".to_owned()),
            tonic::Code::Unauthenticated,
            "request authenticate failure",
            "client claims to be in cluster \"Kubernetes\", this server only knows \"east\"",
        ),
        (
            "under the ttl floor",
            ZTUNNEL,
            300,
            Some(WEB),
            east(),
            tonic::Code::InvalidArgument,
            "invalid certificate request",
            "requested ttl 300s is less than the min allowed ttl 600s",
        ),
        (
            "over the maximum",
            ZTUNNEL,
            91 * 86400,
            Some(WEB),
            east(),
            tonic::Code::InvalidArgument,
            "invalid certificate request",
            "is greater than the max allowed ttl 7776000s",
        ),
    ];
    for (what, sub, ttl, imp, cluster, code, message, reason) in cases {
        let (_, req) = csr_request(WEB, ttl, imp);
        let got = tonic_call(port, &root, "localhost", &[bearer(sub), cluster], req).unwrap_err();
        assert_eq!(got, (code, message.to_owned()), "{what}");
        wait_log(&log, &["warn ca server:", message, reason]);
    }
    drop(dir);
}

/// `--config` gives what does not fit on a command line; flags override it; bad values are
/// refused before serving, naming the value and the rule.
#[test]
fn config_file_and_bad_options() {
    let SignalFixture {
        dir,
        ca_dir,
        root,
        jwks,
        token_a,
        ..
    } = SignalFixture::new("ca-config");
    let conf = dir.p("ca.yaml");
    std::fs::write(
        &conf,
        "clusterId: west\ndnsNames: [ca.internal]\nminTtl: 5m\ndefaultTtl: 1h\n\
         trustedNodeAccounts:\n  - account: istio-system/ztunnel\n    mayImpersonate: [shop/web]\n",
    )
    .unwrap();
    let (child, address, log, first) = start_server_with(
        &ca_dir,
        &jwks,
        &[
            "--config",
            s(&conf),
            "--cluster-id",
            "east",
            "--dns",
            "localhost",
        ],
    );
    let server = Server(child);
    assert_eq!(first["settings"]["cluster_id"], "east");
    assert_eq!(
        first["settings"]["dns_names"],
        serde_json::json!(["ca.internal", "localhost"])
    );
    assert_eq!(first["settings"]["default_ttl_seconds"], 3600);
    wait_log(
        &log,
        &[
            "spiffe://cluster.local/ns/istio-system/sa/ztunnel may impersonate spiffe://cluster.local/ns/shop/sa/web",
        ],
    );
    // The file's default ttl (1 h, plus the 2-minute back-dating), the flag's cluster id.
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let bearer = format!(
        "Bearer {}",
        std::fs::read_to_string(&token_a).unwrap().trim()
    );
    let (csr, req) = csr_request(GW, 0, None);
    let chain = tonic_call(
        port,
        &root,
        "localhost",
        &[("authorization", bearer), ("clusterid", "east".to_owned())],
        req,
    )
    .unwrap();
    let chain = chain
        .iter()
        .flat_map(|c| meshtls::svid::parse_pem_chain(c).unwrap())
        .collect();
    let svid = csr.into_svid(chain).unwrap();
    assert_eq!(
        svid.not_after().duration_since(svid.not_before()).unwrap(),
        std::time::Duration::from_secs(3600 + 120)
    );
    drop(server);

    let base = ["ca", "serve", "--ca", s(&ca_dir), "--listen", "127.0.0.1:0"];
    let bad_conf = dir.p("bad.yaml");
    std::fs::write(&bad_conf, "clusterID: east\n").unwrap();
    for (extra, needles) in [
        (
            vec!["--trusted-node-account", "ztunnel"],
            vec!["\"ztunnel\"", "namespace/serviceaccount"],
        ),
        (
            vec!["--trusted-node-account", "istio-system/ztunnel=shop"],
            vec!["\"shop\""],
        ),
        (
            vec!["--min-ttl", "2d"],
            vec!["min 172800s, default 86400s", "min <= default <= max"],
        ),
        (vec!["--max-ttl", "91d"], vec!["max 7862400s", "7776000s"]),
        (vec!["--config", s(&bad_conf)], vec!["clusterID"]),
        (
            vec!["--no-default-dns"],
            vec!["--no-default-dns needs at least one --dns name"],
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let out = meshtls(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{extra:?}: {text}");
        for n in needles {
            assert!(text.contains(n), "{extra:?}: {n:?} not in {text}");
        }
    }
}
