//! Interop with real TLS peers, TLS 1.2 and 1.3: openssl s_client, curl and Python's ssl
//! against the meshtls sidecar side; openssl s_server against the meshtls gateway side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::tls_common::{Issued, TestCa, material};
use meshtls::MeshConfig;
use meshtls::SpiffeId;
use meshtls::policy::MtlsMode;
use meshtls::tls::{
    ClientConfigBuilder, Inbound, InboundAcceptor, ServerConfigBuilder, TlsVersion,
};

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("meshtls-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A STRICT sidecar on loopback: each mTLS connection gets an HTTP 200 naming the peer;
/// every outcome is reported on the channel.
fn sidecar(ca: &TestCa, mesh: &MeshConfig) -> (u16, mpsc::Receiver<Result<String, String>>) {
    let server = ServerConfigBuilder::from_mesh(material(ca, SIDECAR, &[ca]), mesh)
        .unwrap()
        .build()
        .unwrap();
    let acceptor = InboundAcceptor::new(server, MtlsMode::Strict);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for sock in listener.incoming() {
            let sock = sock.unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let outcome = match acceptor.accept(sock) {
                Ok(Inbound::Mtls(mut m)) => {
                    let mut reader = BufReader::new(&mut m.stream);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let body = format!("hello {}\n", m.peer.spiffe_id());
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    m.stream.write_all(response.as_bytes()).unwrap();
                    m.stream.conn.send_close_notify();
                    let _ = m.stream.flush();
                    Ok(m.peer.spiffe_id().to_string())
                }
                Ok(Inbound::Plaintext { .. }) => Err("plaintext accepted".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(outcome);
        }
    });
    (port, rx)
}

fn files(dir: &Dir, ca: &TestCa, issued: &Issued) -> (String, String, String) {
    (
        dir.write("chain.pem", &issued.chain_pem),
        dir.write("key.pem", &issued.key_pem),
        dir.write("root.pem", &ca.root_pem),
    )
}

fn s_client(port: u16, version: TlsVersion, cert: Option<(&str, &str)>, root: &str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-quiet",
    ])
    .args(["-CAfile", root, "-verify_return_error"])
    .arg(match version {
        TlsVersion::Tls12 => "-tls1_2",
        TlsVersion::Tls13 => "-tls1_3",
    });
    if let Some((chain, key)) = cert {
        cmd.args(["-cert", chain, "-key", key]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /api/headers HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        .unwrap();
    wait_output(child)
}

fn wait_output(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    format!("{out}\n--- stderr ---\n{err}")
}

#[test]
fn openssl_s_client_against_the_sidecar() {
    crate::tls_common::require("openssl");
    let ca = TestCa::new("cluster.local");
    let foreign = TestCa::new("foreign.example");
    let (port, seen) = sidecar(&ca, &MeshConfig::default());
    let dir = Dir::new("s_client");
    let (chain, key, root) = files(&dir, &ca, &ca.issue(GATEWAY));
    let intruder = foreign.issue("spiffe://foreign.example/ns/demo/sa/intruder");
    let foreign_chain = dir.write("foreign-chain.pem", &intruder.chain_pem);
    let foreign_key = dir.write("foreign-key.pem", &intruder.key_pem);
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        // Accepted: the sidecar's chain verifies in OpenSSL, the HTTP response comes back.
        let out = s_client(port, version, Some((&chain, &key)), &root);
        assert!(out.contains("HTTP/1.1 200 OK"), "{version}: {out}");
        assert!(
            out.contains(&format!("hello {GATEWAY}")),
            "{version}: {out}"
        );
        assert_eq!(seen.recv().unwrap(), Ok(GATEWAY.to_owned()));

        // No client certificate: refused.
        let out = s_client(port, version, None, &root);
        assert!(!out.contains("200 OK"), "{version}: {out}");
        let refusal = seen.recv().unwrap().unwrap_err();
        assert!(refusal.contains("handshake failed"), "{refusal}");

        // A certificate from a foreign trust domain: refused.
        let out = s_client(port, version, Some((&foreign_chain, &foreign_key)), &root);
        assert!(!out.contains("200 OK"), "{version}: {out}");
        let refusal = seen.recv().unwrap().unwrap_err();
        assert!(refusal.contains("foreign.example"), "{refusal}");
    }
}

/// curl's `--pinnedpubkey` value for a certificate: the base64 SHA-256 of its SPKI.
fn spki_pin(cert_der: &[u8]) -> String {
    use base64::Engine as _;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.public_key().raw);
    format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

#[test]
fn curl_with_a_client_certificate_against_the_sidecar() {
    crate::tls_common::require("curl");
    let ca = TestCa::new("cluster.local");
    let (port, seen) = sidecar(&ca, &MeshConfig::default());
    let dir = Dir::new("curl");
    let (chain, key, _root) = files(&dir, &ca, &ca.issue(GATEWAY));
    // The sidecar's certificate has no DNS name, so curl cannot check it by host name: pin
    // its key instead (curl has no SPIFFE ID check).
    let mut probe = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([SpiffeId::new(SIDECAR).unwrap()])
        .build()
        .unwrap()
        .connect(None)
        .unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    probe.complete_io(&mut sock).unwrap();
    let pin = spki_pin(probe.peer_certificates().unwrap()[0].as_ref());
    drop(sock);
    let _ = seen.recv().unwrap();
    for (flags, expect) in [
        (["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
        (["--tlsv1.3", "--tls-max", "1.3"], "TLSv1.3"),
    ] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-v",
                "--max-time",
                "10",
                "-k",
                "--pinnedpubkey",
                &pin,
            ])
            .args(flags)
            .args(["--cert", &chain, "--key", &key])
            .arg(format!("https://127.0.0.1:{port}/api/headers"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stdout, format!("hello {GATEWAY}\n"));
        assert!(
            stderr.contains(&format!("SSL connection using {expect}")),
            "{stderr}"
        );
        assert_eq!(seen.recv().unwrap(), Ok(GATEWAY.to_owned()));
    }
    // Without --cert: refused.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-k"])
        .arg(format!("https://127.0.0.1:{port}/api/headers"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(seen.recv().unwrap().is_err());
}

const PY_CLIENT: &str = r#"
import socket, ssl, sys
port, root, chain, key, version = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False  # the sidecar has no DNS name; the chain is still verified
ctx.load_verify_locations(root)
if chain != "-":
    ctx.load_cert_chain(chain, key)
v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
ctx.minimum_version = ctx.maximum_version = v
ctx.set_alpn_protocols(["istio-http/1.1", "http/1.1"])
try:
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(tls.version(), tls.selected_alpn_protocol())
            print(data.decode())
except (ssl.SSLError, OSError) as e:
    print("refused:", type(e).__name__, e)
"#;

#[test]
fn python_ssl_client_against_the_sidecar() {
    crate::tls_common::require("python3");
    let ca = TestCa::new("cluster.local");
    let (port, seen) = sidecar(&ca, &MeshConfig::default());
    let dir = Dir::new("python");
    let (chain, key, root) = files(&dir, &ca, &ca.issue(GATEWAY));
    let script = dir.write("client.py", PY_CLIENT);
    for (version, name) in [("1.2", "TLSv1.2"), ("1.3", "TLSv1.3")] {
        let out = Command::new("python3")
            .args([&script, &port.to_string(), &root, &chain, &key, version])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with(&format!("{name} None")), "{stdout}");
        assert!(stdout.contains(&format!("hello {GATEWAY}")), "{stdout}");
        assert_eq!(seen.recv().unwrap(), Ok(GATEWAY.to_owned()));

        let out = Command::new("python3")
            .args([&script, &port.to_string(), &root, "-", "-", version])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("refused:"), "{stdout}");
        assert!(seen.recv().unwrap().is_err());
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gateway_get(
    port: u16,
    expect: &str,
    version: TlsVersion,
    ca: &TestCa,
) -> Result<(String, String), String> {
    let client = ClientConfigBuilder::new(material(ca, GATEWAY, &[ca]))
        .expect_server_ids([SpiffeId::new(expect).unwrap()])
        .versions(version, version)
        .unwrap()
        .build()
        .unwrap();
    let mut conn = client.connect(None).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    let peer = client.check_connection(&conn).map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    Ok((
        peer.spiffe_id().to_string(),
        String::from_utf8_lossy(&out).into_owned(),
    ))
}

#[test]
fn gateway_client_against_openssl_s_server() {
    crate::tls_common::require("openssl");
    let ca = TestCa::new("cluster.local");
    let dir = Dir::new("s_server");
    let (chain, key, root) = files(&dir, &ca, &ca.issue(SIDECAR));
    for (flag, version) in [
        ("-tls1_2", TlsVersion::Tls12),
        ("-tls1_3", TlsVersion::Tls13),
    ] {
        let port = free_port();
        let _server = Killed(
            Command::new("openssl")
                .args(["s_server", "-accept", &port.to_string(), "-www", flag])
                .args(["-cert", &chain, "-key", &key, "-CAfile", &root])
                .args(["-Verify", "2", "-verify_return_error"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(port);
        let (peer, page) = gateway_get(port, SIDECAR, version, &ca).unwrap();
        assert_eq!(peer, SIDECAR);
        // s_server's -www page shows the client certificate it verified: ours.
        assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
        assert!(
            page.contains(if version == TlsVersion::Tls12 {
                "TLSv1.2"
            } else {
                "TLSv1.3"
            }),
            "{page}"
        );
        assert!(page.contains("Client certificate"), "{page}");

        let err = gateway_get(
            port,
            "spiffe://cluster.local/ns/demo/sa/other",
            version,
            &ca,
        )
        .unwrap_err();
        assert!(err.contains(SIDECAR), "{err}");
    }
}
