//! HBONE (Istio ambient's tunnel): meshtls's client and acceptor against each other, and
//! against Istio's own Go implementation (istio.io/istio/pkg/hbone, built by
//! scripts/build-peers.sh into ~/.cache/meshtls-peers; the Go tests skip visibly without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod tls_common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use meshtls::error::HboneError;
use meshtls::hbone::{HboneClient, HboneClientConfig, HboneListener, HboneServerBuilder, Upstream};
use meshtls::tls::{ClientConfigBuilder, TlsMaterial, TlsVersion};
use meshtls::{Error, SpiffeId, authz};
use tls_common::{Issued, TestCa, bundles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const SERVER_ID: &str = "spiffe://cluster.local/ns/shop/sa/api";
const CLIENT_ID: &str = "spiffe://cluster.local/ns/gateway/sa/agc";

struct Mesh {
    ca: TestCa,
    server: Issued,
    client: Issued,
    server_material: TlsMaterial,
    client_material: TlsMaterial,
}

fn mesh() -> Mesh {
    let ca = TestCa::new("cluster.local");
    let server = ca.issue(SERVER_ID);
    let client = ca.issue(CLIENT_ID);
    let server_material = TlsMaterial::new(&server.svid, bundles(&[&ca])).unwrap();
    let client_material = TlsMaterial::new(&client.svid, bundles(&[&ca])).unwrap();
    Mesh {
        ca,
        server,
        client,
        server_material,
        client_material,
    }
}

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

fn hbone_err(e: Error) -> HboneError {
    match e {
        Error::Hbone(h) => h,
        other => panic!("expected an hbone error, got {other:?}"),
    }
}

/// An acceptor on 127.0.0.1 whose application echoes every tunnel; the peer IDs and targets
/// it saw come out of the channel.
async fn echo_acceptor(
    builder: HboneServerBuilder,
) -> (SocketAddr, mpsc::UnboundedReceiver<(String, SocketAddr)>) {
    let server = builder.build().unwrap();
    let mut listener: HboneListener = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(request) = listener.accept().await {
            let _ = tx.send((request.peer().spiffe_id().to_string(), request.target()));
            let stream = request.accept().unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(stream);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, rx)
}

/// A plain TCP echo server on 127.0.0.1.
async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A port where nothing listens.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn roundtrip(mut stream: meshtls::hbone::HboneStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.unwrap();
    back
}

#[tokio::test]
async fn tunnel_through_meshtls_acceptor_carries_bytes_both_ways() {
    let m = mesh();
    let (via, mut seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let target: SocketAddr = format!("127.0.0.1:{}", 8080).parse().unwrap();
    let client = HboneClient::default();
    let stream = client
        .connect(via, target, &m.client_material, &id(SERVER_ID))
        .await
        .unwrap();
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(roundtrip(stream, &message).await, message);
    let (peer, got_target) = seen.recv().await.unwrap();
    assert_eq!(peer, CLIENT_ID);
    assert_eq!(got_target, target);
}

/// One read takes every DATA frame that has arrived (frames are 16 KiB), as a TCP socket's read
/// takes every segment, instead of one frame per read.
#[tokio::test]
async fn one_read_takes_every_frame_that_arrived() {
    let m = mesh();
    let server = HboneServerBuilder::new(m.server_material.clone())
        .build()
        .unwrap();
    let mut listener = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let via = listener.local_addr();
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
    let expected = sent.clone();
    tokio::spawn(async move {
        let request = listener.accept().await.unwrap();
        let mut s = request.accept().unwrap();
        s.write_all(&sent).await.unwrap();
        s.shutdown().await.unwrap();
        // Keep the stream (and the listener) until the client is done.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    });
    let client = HboneClient::default();
    let mut s = client
        .connect(via, via, &m.client_material, &id(SERVER_ID))
        .await
        .unwrap();
    // Everything the acceptor wrote arrives (12+ frames) before the first read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut buf = vec![0u8; 1024 * 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        n > 16 * 1024,
        "the first read returned {n} bytes: one frame, not every frame that had arrived"
    );
    let mut got = buf[..n].to_vec();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, expected);
    s.shutdown().await.unwrap();
}

/// Megabytes in both directions on three streams of one connection at once: the batched writes
/// (many frames of several streams per TLS write) reach Istio's Go server (golang.org/x/net's
/// HTTP/2) and come back whole.
#[tokio::test]
async fn large_transfers_with_istio_go_server_keep_every_byte() {
    let Some(peer) = go_peer() else { return };
    let m = mesh();
    let files = Files::new("server-large");
    let server = GoServer::start(&peer, files.identity("server", &m.server, &m.ca.root_pem));
    let echo = tcp_echo().await;
    let client = HboneClient::default();
    let mut runs = Vec::new();
    for k in 0..3u32 {
        let s = client
            .connect(server.1, echo, &m.client_material, &id(SERVER_ID))
            .await
            .unwrap();
        let message: Vec<u8> = (0..(6u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(k) >> 13) as u8)
            .collect();
        runs.push(tokio::spawn(async move {
            // Written and read at once: the echo sends back while we write.
            let (mut r, mut w) = tokio::io::split(s);
            let reader = tokio::spawn(async move {
                let mut back = Vec::new();
                r.read_to_end(&mut back).await.unwrap();
                back
            });
            w.write_all(&message).await.unwrap();
            w.shutdown().await.unwrap();
            reader.await.unwrap() == message
        }));
    }
    for r in runs {
        assert!(
            r.await.unwrap(),
            "a 6 MiB echo through Go's server came back changed"
        );
    }
    assert_eq!(client.connection_count(), 1);
}

#[tokio::test]
async fn streams_share_a_pooled_connection_up_to_the_cap_and_idle_ones_close() {
    let m = mesh();
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let target: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let client = HboneClient::new(HboneClientConfig {
        max_streams_per_connection: 2,
        idle_timeout: Duration::from_millis(300),
        ..HboneClientConfig::default()
    });
    let server = id(SERVER_ID);
    let a = client
        .connect(via, target, &m.client_material, &server)
        .await
        .unwrap();
    let b = client
        .connect(via, target, &m.client_material, &server)
        .await
        .unwrap();
    assert_eq!(
        client.connection_count(),
        1,
        "two streams multiplexed on one connection"
    );
    let c = client
        .connect(via, target, &m.client_material, &server)
        .await
        .unwrap();
    assert_eq!(
        client.connection_count(),
        2,
        "the third stream is over the cap of 2"
    );
    for s in [a, b, c] {
        assert_eq!(roundtrip(s, b"ping").await, b"ping");
    }
    // Another source identity never shares a connection (ztunnel's pool key).
    let other = m.ca.issue("spiffe://cluster.local/ns/gateway/sa/other");
    let other = TlsMaterial::new(&other.svid, bundles(&[&m.ca])).unwrap();
    let d = client.connect(via, target, &other, &server).await.unwrap();
    assert_eq!(client.connection_count(), 3);
    drop(d);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        client.connection_count(),
        0,
        "idle connections closed after the timeout"
    );
    // And a new stream dials again.
    let e = client
        .connect(via, target, &m.client_material, &server)
        .await
        .unwrap();
    assert_eq!(roundtrip(e, b"again").await, b"again");
}

#[tokio::test]
async fn server_with_the_wrong_identity_is_a_peer_identity_error() {
    let m = mesh();
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let err = HboneClient::default()
        .connect(
            via,
            "127.0.0.1:80".parse().unwrap(),
            &m.client_material,
            &id("spiffe://cluster.local/ns/shop/sa/other"),
        )
        .await
        .unwrap_err();
    match hbone_err(err) {
        HboneError::PeerIdentity {
            expected, reason, ..
        } => {
            assert_eq!(expected, "spiffe://cluster.local/ns/shop/sa/other");
            assert!(reason.contains(SERVER_ID), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_from_another_trust_domain_is_refused_in_the_handshake() {
    let m = mesh();
    let other_ca = TestCa::new("other.example");
    let stranger = other_ca.issue("spiffe://other.example/ns/gateway/sa/agc");
    // Both sides trust both roots: only ztunnel's same-trust-domain rule can refuse.
    let both = bundles(&[&m.ca, &other_ca]);
    let server_material = TlsMaterial::new(&m.server.svid, both.clone()).unwrap();
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(server_material)).await;
    let stranger = TlsMaterial::new(&stranger.svid, both).unwrap();
    let err = HboneClient::default()
        .connect(
            via,
            "127.0.0.1:80".parse().unwrap(),
            &stranger,
            &id(SERVER_ID),
        )
        .await
        .unwrap_err();
    let e = hbone_err(err);
    assert!(matches!(e, HboneError::Tls { .. }), "{e:?}");
    // A non-Istio identity in the same trust domain is refused too (ztunnel drops it).
    let agc = m.ca.issue("spiffe://cluster.local/gateway/agc");
    let agc = TlsMaterial::new(&agc.svid, bundles(&[&m.ca])).unwrap();
    let err = HboneClient::default()
        .connect(via, "127.0.0.1:80".parse().unwrap(), &agc, &id(SERVER_ID))
        .await
        .unwrap_err();
    let e = hbone_err(err);
    assert!(matches!(e, HboneError::Tls { .. }), "{e:?}");
}

#[tokio::test]
async fn tls12_is_refused_by_the_acceptor() {
    let m = mesh();
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let config = ClientConfigBuilder::new(m.client_material.clone())
        .expect_server_ids([id(SERVER_ID)])
        .versions(TlsVersion::Tls12, TlsVersion::Tls12)
        .unwrap()
        .alpn_protocols(["h2"])
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(via).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config.rustls_config());
    let err = connector
        .connect(meshtls::tls::server_name_for(None).unwrap(), tcp)
        .await
        .unwrap_err();
    let text = meshtls::tls::handshake_error_message(&err);
    assert!(text.contains("ProtocolVersion"), "{text}");
}

#[tokio::test]
async fn refusals_are_typed_401_400_503() {
    let m = mesh();
    let client = HboneClient::default();
    let server = id(SERVER_ID);
    // 401: a per-CONNECT policy that denies the caller.
    let deny = authz::id(id("spiffe://cluster.local/ns/ops/sa/admin"));
    let (via, _seen) =
        echo_acceptor(HboneServerBuilder::new(m.server_material.clone()).policy(deny)).await;
    let err = client
        .connect(
            via,
            "127.0.0.1:80".parse().unwrap(),
            &m.client_material,
            &server,
        )
        .await
        .unwrap_err();
    assert!(matches!(hbone_err(err), HboneError::Denied { .. }));

    // 400: the authority's IP is not the address dialled.
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let err = client
        .connect(
            via,
            "127.0.0.2:80".parse().unwrap(),
            &m.client_material,
            &server,
        )
        .await
        .unwrap_err();
    let e = hbone_err(err);
    assert!(matches!(e, HboneError::BadRequest { .. }), "{e:?}");
    assert!(e.to_string().contains("127.0.0.2:80"), "{e}");

    // 503: a port the acceptor does not serve, and a forward to a closed port.
    let (via, _seen) =
        echo_acceptor(HboneServerBuilder::new(m.server_material.clone()).ports([8080])).await;
    let err = client
        .connect(
            via,
            "127.0.0.1:9090".parse().unwrap(),
            &m.client_material,
            &server,
        )
        .await
        .unwrap_err();
    assert!(matches!(hbone_err(err), HboneError::NoUpstream { .. }));

    let listener = HboneServerBuilder::new(m.server_material.clone())
        .build()
        .unwrap()
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let via = listener.local_addr();
    let closed = closed_port();
    tokio::spawn(listener.forward(Upstream::TargetPortOn("127.0.0.1".parse().unwrap())));
    let err = client
        .connect(via, closed, &m.client_material, &server)
        .await
        .unwrap_err();
    assert!(matches!(hbone_err(err), HboneError::NoUpstream { .. }));
    // The same acceptor forwards to a port where something listens.
    let echo = tcp_echo().await;
    let s = client
        .connect(via, echo, &m.client_material, &server)
        .await
        .unwrap();
    assert_eq!(roundtrip(s, b"forwarded").await, b"forwarded");
}

#[tokio::test]
async fn acceptor_survives_hostile_clients() {
    let m = mesh();
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    // Garbage instead of a ClientHello.
    let mut tcp = tokio::net::TcpStream::connect(via).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tcp.read_to_end(&mut sink).await;
    // TLS fine, then garbage instead of HTTP/2's preface.
    let config = ClientConfigBuilder::new(m.client_material.clone())
        .expect_server_ids([id(SERVER_ID)])
        .versions(TlsVersion::Tls13, TlsVersion::Tls13)
        .unwrap()
        .alpn_protocols(["h2"])
        .build()
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(config.rustls_config());
    let tcp = tokio::net::TcpStream::connect(via).await.unwrap();
    let mut tls = connector
        .connect(meshtls::tls::server_name_for(None).unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let _ = tls.read_to_end(&mut sink).await;
    // HTTP/2 with a GET (400), a CONNECT without a port (400), a CONNECT reset at once.
    let tcp = tokio::net::TcpStream::connect(via).await.unwrap();
    let tls = connector
        .connect(meshtls::tls::server_name_for(None).unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(conn);
    let get = http::Request::builder()
        .method("GET")
        .uri("https://127.0.0.1/")
        .body(())
        .unwrap();
    let (answer, _) = send.send_request(get, true).unwrap();
    assert_eq!(answer.await.unwrap().status(), StatusCode::BAD_REQUEST);
    let no_port = http::Request::builder()
        .method("CONNECT")
        .uri("127.0.0.1")
        .body(())
        .unwrap();
    let (answer, _) = send.send_request(no_port, false).unwrap();
    assert_eq!(answer.await.unwrap().status(), StatusCode::BAD_REQUEST);
    for _ in 0..50 {
        let c = http::Request::builder()
            .method("CONNECT")
            .uri("127.0.0.1:80")
            .body(())
            .unwrap();
        let (_answer, mut stream) = send.send_request(c, false).unwrap();
        stream.send_reset(h2::Reason::INTERNAL_ERROR);
    }
    // Still serving.
    let s = HboneClient::default()
        .connect(
            via,
            "127.0.0.1:80".parse().unwrap(),
            &m.client_material,
            &id(SERVER_ID),
        )
        .await
        .unwrap();
    assert_eq!(roundtrip(s, b"alive").await, b"alive");
}

#[tokio::test]
async fn many_concurrent_streams_over_the_pool() {
    let m = mesh();
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let client = HboneClient::default();
    let server = Arc::new(id(SERVER_ID));
    let material = Arc::new(m.client_material.clone());
    let mut tasks = Vec::new();
    for i in 0..300u32 {
        let (client, server, material) = (client.clone(), server.clone(), material.clone());
        tasks.push(tokio::spawn(async move {
            let s = client
                .connect(via, "127.0.0.1:80".parse().unwrap(), &material, &server)
                .await
                .unwrap();
            let msg = format!("stream {i}");
            assert_eq!(roundtrip(s, msg.as_bytes()).await, msg.as_bytes());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 300 streams, at most 100 per connection; closed streams free their slots, so fewer
    // connections may do.
    let n = client.connection_count();
    assert!((1..=3).contains(&n), "{n} connections");
}

// ---- Istio's own HBONE implementation (istio.io/istio/pkg/hbone) ----

/// The Go peer built by scripts/build-peers.sh, or None (the test then skips, saying why).
fn go_peer() -> Option<PathBuf> {
    cached_peer("hbone-peer", std::env::var_os("MESHTLS_HBONE_PEER"))
}

/// A binary of scripts/build-peers.sh's cache (`$MESHTLS_PEERS_CACHE` or
/// ~/.cache/meshtls-peers), or None after saying why.
fn cached_peer(name: &str, explicit: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let path = explicit.map(PathBuf::from).or_else(|| {
        std::env::var_os("MESHTLS_PEERS_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/meshtls-peers"))
            })
            .map(|dir| dir.join(name))
    })?;
    if path.is_file() {
        Some(path)
    } else {
        // CI always builds the peers (scripts/test.sh runs scripts/build-peers.sh): there a
        // missing peer is a failure, never a pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "Istio's {name} is missing in CI ({}): scripts/build-peers.sh did not build it",
            path.display()
        );
        eprintln!(
            "SKIP: Istio's {name} not built ({}); run scripts/build-peers.sh",
            path.display()
        );
        None
    }
}

struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("meshtls-hbone-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }
    /// cert, key, ca flags for `issued` trusting `ca_pem`.
    fn identity(&self, prefix: &str, issued: &Issued, ca_pem: &str) -> Vec<String> {
        vec![
            "--cert".into(),
            self.write(&format!("{prefix}-chain.pem"), &issued.chain_pem),
            "--key".into(),
            self.write(&format!("{prefix}-key.pem"), &issued.key_pem),
            "--ca".into(),
            self.write(&format!("{prefix}-ca.pem"), ca_pem),
        ]
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the Go peer with `args`, `stdin` as input; (success, stdout).
async fn run_go(peer: &Path, args: Vec<String>, stdin: Vec<u8>) -> (bool, String) {
    let peer = peer.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(peer)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Istio's HBONE server (pkg/hbone.NewServer over TLS 1.3), killed on drop.
struct GoServer(Child, SocketAddr);

impl GoServer {
    fn start(peer: &Path, identity: Vec<String>) -> Self {
        let mut child = Command::new(peer)
            .arg("server")
            .args(identity)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("go server said {line:?}"))
            .trim()
            .parse()
            .unwrap();
        GoServer(child, addr)
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn istio_go_dialer_reaches_the_meshtls_acceptor() {
    let Some(peer) = go_peer() else { return };
    let m = mesh();
    let files = Files::new("dialer");
    let (via, mut seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    let go_client = files.identity("client", &m.client, &m.ca.root_pem);
    let message = "hello from istio's hbone dialer\n".repeat(100);
    let mut args: Vec<String> = vec!["dial".into()];
    args.extend(go_client.clone());
    args.extend([
        "--via".into(),
        via.to_string(),
        "--target".into(),
        "127.0.0.1:8080".into(),
        "--server-id".into(),
        SERVER_ID.into(),
        "--read".into(),
        message.len().to_string(),
    ]);
    let (ok, out) = run_go(&peer, args, message.clone().into_bytes()).await;
    assert!(ok, "{out}");
    assert_eq!(out, message);
    let (peer_id, target) = seen.recv().await.unwrap();
    assert_eq!(peer_id, CLIENT_ID);
    assert_eq!(target, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());

    // Istio's dialer refuses a meshtls acceptor with another identity than expected.
    let mut args: Vec<String> = vec!["dial".into()];
    args.extend(go_client.clone());
    args.extend([
        "--via".into(),
        via.to_string(),
        "--target".into(),
        "127.0.0.1:8080".into(),
        "--server-id".into(),
        "spiffe://cluster.local/ns/shop/sa/other".into(),
        "--read".into(),
        "1".into(),
    ]);
    let (ok, out) = run_go(&peer, args, b"x".to_vec()).await;
    assert!(!ok && out.contains("server identity"), "{out}");
}

/// `status` mode: one CONNECT with golang.org/x/net/http2, printing the answer.
async fn go_status(
    peer: &Path,
    identity: &[String],
    via: SocketAddr,
    target: &str,
    extra: &[&str],
) -> (bool, String) {
    let mut args: Vec<String> = vec!["status".into()];
    args.extend(identity.iter().cloned());
    args.extend([
        "--via".into(),
        via.to_string(),
        "--target".into(),
        target.into(),
        "--server-id".into(),
        SERVER_ID.into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run_go(peer, args, Vec::new()).await
}

#[tokio::test]
async fn go_clients_get_the_acceptors_refusals() {
    let Some(peer) = go_peer() else { return };
    let m = mesh();
    let files = Files::new("refusals");
    let go_client = files.identity("client", &m.client, &m.ca.root_pem);
    let (via, _seen) = echo_acceptor(HboneServerBuilder::new(m.server_material.clone())).await;
    // 200, then 400 for an authority that is not the dialled IP.
    let (ok, out) = go_status(&peer, &go_client, via, "127.0.0.1:8080", &[]).await;
    assert!(ok && out.trim() == "status 200", "{out}");
    let (ok, out) = go_status(&peer, &go_client, via, "10.1.2.3:8080", &[]).await;
    assert!(ok && out.trim() == "status 400", "{out}");
    // TLS 1.2 offered: refused.
    let (ok, out) = go_status(&peer, &go_client, via, "127.0.0.1:8080", &["--tls12"]).await;
    assert!(!ok && out.contains("protocol version"), "{out}");
    // A client from another trust domain (its root trusted by nobody here): refused.
    let other_ca = TestCa::new("other.example");
    let stranger = other_ca.issue("spiffe://other.example/ns/gateway/sa/agc");
    let go_stranger = files.identity("stranger", &stranger, &m.ca.root_pem);
    let (ok, out) = go_status(&peer, &go_stranger, via, "127.0.0.1:8080", &[]).await;
    assert!(!ok && out.starts_with("error:"), "{out}");
    // 401 from a per-CONNECT policy.
    let deny = authz::id(id("spiffe://cluster.local/ns/ops/sa/admin"));
    let (via, _seen) =
        echo_acceptor(HboneServerBuilder::new(m.server_material.clone()).policy(deny)).await;
    let (ok, out) = go_status(&peer, &go_client, via, "127.0.0.1:8080", &[]).await;
    assert!(ok && out.trim() == "status 401", "{out}");
}

#[tokio::test]
async fn meshtls_client_reaches_istio_go_server() {
    let Some(peer) = go_peer() else { return };
    let m = mesh();
    let files = Files::new("server");
    let server = GoServer::start(&peer, files.identity("server", &m.server, &m.ca.root_pem));
    let echo = tcp_echo().await;
    let client = HboneClient::default();
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    for _ in 0..3 {
        let s = client
            .connect(server.1, echo, &m.client_material, &id(SERVER_ID))
            .await
            .unwrap();
        assert_eq!(roundtrip(s, &message).await, message);
    }
    assert_eq!(
        client.connection_count(),
        1,
        "streams to Go's server share a connection"
    );

    // Wrong server identity.
    let err = client
        .connect(
            server.1,
            echo,
            &m.client_material,
            &id("spiffe://cluster.local/ns/shop/sa/other"),
        )
        .await
        .unwrap_err();
    assert!(matches!(hbone_err(err), HboneError::PeerIdentity { .. }));

    // A client from another trust domain, whose root Go's server does not trust.
    let other_ca = TestCa::new("other.example");
    let stranger = other_ca.issue("spiffe://other.example/ns/gateway/sa/agc");
    let stranger = TlsMaterial::new(&stranger.svid, bundles(&[&m.ca, &other_ca])).unwrap();
    let err = client
        .connect(server.1, echo, &stranger, &id(SERVER_ID))
        .await
        .unwrap_err();
    let e = hbone_err(err);
    assert!(matches!(e, HboneError::Tls { .. }), "{e:?}");
}

// ---- Istio's echo server and client (pkg/test/echo, the ones Istio's own tests use) ----

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> u16 {
    closed_port().port()
}

/// Waits until something accepts TCP on `addr`.
fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr}");
}

/// Istio's echo server with an HTTP port and an HBONE port over TLS (the server's SVID),
/// killed on drop: (process, http address, hbone address).
struct EchoServer(Child, SocketAddr, SocketAddr);

impl EchoServer {
    fn start(bin: &Path, files: &Files, m: &Mesh) -> Self {
        let (http, hbone) = (free_port(), free_port());
        let child = Command::new(bin)
            .args(["--port", &http.to_string(), "--hbone", &hbone.to_string()])
            .args(["--tls", &hbone.to_string()])
            .args([
                "--grpc",
                &free_port().to_string(),
                "--tcp",
                &free_port().to_string(),
            ])
            .args(["--crt", &files.write("echo-crt.pem", &m.server.chain_pem)])
            .args(["--key", &files.write("echo-key.pem", &m.server.key_pem)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
        let hbone: SocketAddr = format!("127.0.0.1:{hbone}").parse().unwrap();
        wait_listening(http);
        wait_listening(hbone);
        EchoServer(child, http, hbone)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn meshtls_client_reaches_istio_echo_server_hbone_port() {
    let Some(bin) = cached_peer("istio-echo-server", None) else {
        return;
    };
    let m = mesh();
    let files = Files::new("echo-server");
    let echo = EchoServer::start(&bin, &files, &m);
    let client = HboneClient::default();
    let mut tunnel = client
        .connect(echo.2, echo.1, &m.client_material, &id(SERVER_ID))
        .await
        .unwrap();
    tunnel
        .write_all(b"GET /meshtls HTTP/1.1\r\nhost: echo\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tunnel.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains(&format!("ServicePort={}", echo.1.port())),
        "{text}"
    );
    assert!(text.contains("URL=/meshtls"), "{text}");
}

#[tokio::test]
async fn istio_echo_client_reaches_the_meshtls_acceptor() {
    let (Some(server_bin), Some(client_bin)) = (
        cached_peer("istio-echo-server", None),
        cached_peer("istio-echo-client", None),
    ) else {
        return;
    };
    let m = mesh();
    let files = Files::new("echo-client");
    let echo = EchoServer::start(&server_bin, &files, &m);
    let (via, mut seen) = {
        let listener = HboneServerBuilder::new(m.server_material.clone())
            .build()
            .unwrap()
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let via = listener.local_addr();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut listener = listener;
        tokio::spawn(async move {
            while let Some(request) = listener.accept().await {
                let _ = tx.send((request.peer().spiffe_id().to_string(), request.target()));
                tokio::spawn(request.forward(Upstream::TargetPortOn("127.0.0.1".parse().unwrap())));
            }
        });
        (via, rx)
    };
    let args: Vec<String> = vec![
        format!("http://{}/through-meshtls", echo.1),
        "--hbone".into(),
        via.to_string(),
        "--hbone-client-cert".into(),
        files.write("client.pem", &m.client.chain_pem),
        "--hbone-client-key".into(),
        files.write("client-key.pem", &m.client.key_pem),
        "--hbone-ca".into(),
        files.write("root.pem", &m.ca.root_pem),
        // The echo client checks the server by an IP SAN, which SVIDs do not carry; the
        // acceptor's identity is checked by Istio's dialer in the pkg/hbone tests instead.
        "--hbone-insecure-skip-verify".into(),
    ];
    let client_bin2 = client_bin.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(client_bin2).args(&args).output().unwrap()
    })
    .await
    .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("URL=/through-meshtls"), "{all}");
    assert!(all.contains("All 1 requests succeeded"), "{all}");
    let (peer, target) = seen.recv().await.unwrap();
    assert_eq!(peer, CLIENT_ID);
    assert_eq!(target, echo.1);
    // Without the client certificate, the acceptor refuses the handshake.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(client_bin)
            .args([
                format!("http://{}/x", echo.1),
                "--hbone".into(),
                via.to_string(),
            ])
            .args(["--hbone-insecure-skip-verify"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
}
