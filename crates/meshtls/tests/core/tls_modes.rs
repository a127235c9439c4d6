//! STRICT, PERMISSIVE and DISABLE end to end over loopback TCP, blocking and async.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::tls_common::{TestCa, material};
use meshtls::SpiffeId;
use meshtls::policy::MtlsMode;
use meshtls::tls::{
    ClientConfigBuilder, Inbound, InboundAcceptor, MtlsClientConfig, Route, ServerConfigBuilder,
    params,
};

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

/// What the server saw for one connection.
#[derive(Debug, PartialEq)]
enum Seen {
    Mtls(String),
    Plain { passthrough_tls: bool },
    Refused(String),
}

/// Serves `n` connections with the acceptor; each answers one line saying how it arrived.
fn serve(acceptor: InboundAcceptor, n: usize) -> (u16, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for _ in 0..n {
            let (sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let seen = match acceptor.accept(sock) {
                Ok(Inbound::Mtls(mut m)) => {
                    let mut buf = [0u8; 4];
                    m.stream.read_exact(&mut buf).unwrap();
                    m.stream
                        .write_all(format!("mtls {}\n", m.peer.spiffe_id()).as_bytes())
                        .unwrap();
                    m.stream.flush().unwrap();
                    m.stream.conn.send_close_notify();
                    let _ = m.stream.flush();
                    Seen::Mtls(m.peer.spiffe_id().to_string())
                }
                Ok(Inbound::Plaintext { mut stream, tls }) => {
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).unwrap();
                    stream.write_all(b"plain\n").unwrap();
                    Seen::Plain {
                        passthrough_tls: tls.is_some(),
                    }
                }
                Err(e) => Seen::Refused(e.to_string()),
            };
            tx.send(seen).unwrap();
        }
    });
    (port, rx)
}

fn plaintext_request(port: u16) -> String {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = sock.read_to_string(&mut out);
    out
}

fn mtls_request(client: &MtlsClientConfig, port: u16) -> Result<String, String> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut conn = client.connect(None).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"ping").map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn setup(mode: MtlsMode) -> (InboundAcceptor, MtlsClientConfig, MtlsClientConfig, TestCa) {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .alpn_protocols([params::ALPN_HTTP11])
        .build()
        .unwrap();
    let istio = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([SpiffeId::new(SIDECAR).unwrap()])
        .alpn_protocols([params::ALPN_ISTIO_HTTP11])
        .build()
        .unwrap();
    let plain_alpn = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([SpiffeId::new(SIDECAR).unwrap()])
        .alpn_protocols([params::ALPN_HTTP11])
        .build()
        .unwrap();
    (InboundAcceptor::new(server, mode), istio, plain_alpn, ca)
}

#[test]
fn strict_accepts_mtls_and_refuses_plaintext() {
    let (acceptor, istio, plain_alpn, _ca) = setup(MtlsMode::Strict);
    let (port, seen) = serve(acceptor, 3);
    assert_eq!(
        mtls_request(&istio, port).unwrap(),
        format!("mtls {GATEWAY}\n")
    );
    assert_eq!(seen.recv().unwrap(), Seen::Mtls(GATEWAY.to_owned()));
    // STRICT terminates any TLS, Istio ALPN or not.
    assert_eq!(
        mtls_request(&plain_alpn, port).unwrap(),
        format!("mtls {GATEWAY}\n")
    );
    assert_eq!(seen.recv().unwrap(), Seen::Mtls(GATEWAY.to_owned()));
    assert_eq!(plaintext_request(port), "");
    match seen.recv().unwrap() {
        Seen::Refused(reason) => {
            assert!(
                reason.contains("STRICT") && reason.contains("plaintext"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn permissive_routes_by_istio_alpn_like_envoy() {
    let (acceptor, istio, plain_alpn, _ca) = setup(MtlsMode::Permissive);
    let (port, seen) = serve(acceptor, 3);
    assert_eq!(
        mtls_request(&istio, port).unwrap(),
        format!("mtls {GATEWAY}\n")
    );
    assert_eq!(seen.recv().unwrap(), Seen::Mtls(GATEWAY.to_owned()));
    assert_eq!(plaintext_request(port), "plain\n");
    assert_eq!(
        seen.recv().unwrap(),
        Seen::Plain {
            passthrough_tls: false
        }
    );
    // TLS without an Istio ALPN goes to the passthrough chain: the (plaintext) app gets raw
    // TLS and the client's handshake fails, which is the 503 a gateway without Istio ALPN sees.
    assert!(mtls_request(&plain_alpn, port).is_err());
    assert_eq!(
        seen.recv().unwrap(),
        Seen::Plain {
            passthrough_tls: true
        }
    );
}

#[test]
fn disable_passes_everything_through() {
    let (acceptor, istio, _, _ca) = setup(MtlsMode::Disable);
    assert_eq!(acceptor.route(b""), Some(Route::Plaintext { tls: None }));
    let (port, seen) = serve(acceptor, 2);
    assert_eq!(plaintext_request(port), "plain\n");
    assert_eq!(
        seen.recv().unwrap(),
        Seen::Plain {
            passthrough_tls: false
        }
    );
    assert!(mtls_request(&istio, port).is_err());
    assert_eq!(
        seen.recv().unwrap(),
        Seen::Plain {
            passthrough_tls: false
        }
    );
}

#[test]
fn refused_handshakes_and_malformed_hellos_are_explained() {
    let (acceptor, _, _, _ca) = setup(MtlsMode::Strict);
    let foreign = TestCa::new("foreign.example");
    let intruder = ClientConfigBuilder::new(material(
        &foreign,
        "spiffe://foreign.example/ns/x/sa/y",
        &[&foreign],
    ))
    .authorizer(meshtls::authz::any())
    .build()
    .unwrap();
    let (port, seen) = serve(acceptor.clone(), 2);
    assert!(mtls_request(&intruder, port).is_err());
    match seen.recv().unwrap() {
        Seen::Refused(reason) => assert!(reason.contains("handshake failed"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0])
        .unwrap();
    match seen.recv().unwrap() {
        Seen::Refused(reason) => assert!(reason.contains("malformed TLS ClientHello"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A half-sent hello is "need more" for the pure router.
    assert_eq!(acceptor.route(&[0x16, 0x03, 0x01]), None);
}

#[test]
fn async_acceptor_applies_the_same_modes() {
    use meshtls::tls::AsyncInbound;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (acceptor, istio, _, _ca) = setup(MtlsMode::Permissive);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    rt.spawn(async move {
        for _ in 0..2 {
            let (sock, _) = listener.accept().await.unwrap();
            let seen = match acceptor.accept_async(sock).await {
                Ok(AsyncInbound::Mtls { mut stream, peer }) => {
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).await.unwrap();
                    stream
                        .write_all(format!("mtls {}\n", peer.spiffe_id()).as_bytes())
                        .await
                        .unwrap();
                    stream.shutdown().await.unwrap();
                    Seen::Mtls(peer.spiffe_id().to_string())
                }
                Ok(AsyncInbound::Plaintext { mut stream, tls }) => {
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).await.unwrap();
                    stream.write_all(b"plain\n").await.unwrap();
                    stream.shutdown().await.unwrap();
                    Seen::Plain {
                        passthrough_tls: tls.is_some(),
                    }
                }
                Err(e) => Seen::Refused(e.to_string()),
            };
            tx.send(seen).unwrap();
        }
    });
    assert_eq!(
        mtls_request(&istio, port).unwrap(),
        format!("mtls {GATEWAY}\n")
    );
    assert_eq!(rx.recv().unwrap(), Seen::Mtls(GATEWAY.to_owned()));
    assert_eq!(plaintext_request(port), "plain\n");
    assert_eq!(
        rx.recv().unwrap(),
        Seen::Plain {
            passthrough_tls: false
        }
    );
}

#[test]
fn the_acceptor_applies_a_resolved_peer_authentication() {
    use meshtls::policy::PolicySet;
    let policies = PolicySet::from_yaml(
        "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9090: {mode: PERMISSIVE}
",
        "istio-system",
    )
    .unwrap();
    let (acceptor, _, _, _ca) = setup(MtlsMode::Strict);
    let server = acceptor.server().clone();
    let labels = [("app", "api")];
    let strict = InboundAcceptor::for_decision(
        server.clone(),
        &policies.resolve("demo", &labels, Some(8080)),
    );
    let permissive = InboundAcceptor::for_decision(
        server.clone(),
        &policies.resolve("demo", &labels, Some(9090)),
    );
    let default = InboundAcceptor::for_decision(
        server.clone(),
        &policies.resolve("other", &labels, Some(8080)),
    );
    assert_eq!(strict.mode(), MtlsMode::Strict);
    assert_eq!(permissive.mode(), MtlsMode::Permissive);
    assert_eq!(default.mode(), MtlsMode::Permissive);
    assert!(matches!(
        strict.route(b"GET / HTTP/1.1\r\n"),
        Some(Route::Refuse(_))
    ));
    assert_eq!(
        permissive.route(b"GET / HTTP/1.1\r\n"),
        Some(Route::Plaintext { tls: None })
    );
    // UNSET is never a resolution result; an acceptor given it behaves as PERMISSIVE.
    assert_eq!(
        InboundAcceptor::new(server, MtlsMode::Unset).mode(),
        MtlsMode::Permissive
    );
}
