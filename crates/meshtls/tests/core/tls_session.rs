//! The sans-I/O sessions and sniffer (what the Python binding drives), handshaking in memory.

use crate::tls_common::{TestCa, material};
use meshtls::policy::MtlsMode;
use meshtls::tls::{
    ClientConfigBuilder, InboundAcceptor, MtlsSession, Plaintext, ServerConfigBuilder, Started,
    TlsVersion, params,
};
use meshtls::{Error, SpiffeId};

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";
const OTHER: &str = "spiffe://cluster.local/ns/demo/sa/other";

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

/// Moves bytes both ways until neither side has anything to send; returns the first error and
/// which side raised it (true: the client), with the bytes each side sent.
fn pump(c: &mut MtlsSession, s: &mut MtlsSession) -> Result<(), (bool, Error)> {
    for _ in 0..10 {
        let mut wire = Vec::new();
        c.take_outgoing(&mut wire);
        let to_server = !wire.is_empty();
        s.receive(&wire).map_err(|e| (false, e))?;
        wire.clear();
        s.take_outgoing(&mut wire);
        let to_client = !wire.is_empty();
        c.receive(&wire).map_err(|e| (true, e))?;
        if !to_server && !to_client {
            return Ok(());
        }
    }
    panic!("sessions did not settle");
}

fn read_all(s: &mut MtlsSession) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    while let Plaintext::Data(n) = s.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn sessions_handshake_and_exchange_over_tls12_and_tls13() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .alpn_protocols([params::ALPN_HTTP11])
        .build()
        .unwrap();
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
            .expect_server_ids([id(SIDECAR)])
            .versions(version, version)
            .unwrap()
            .alpn_protocols(params::GATEWAY_HTTP11_ALPN)
            .build()
            .unwrap();
        let mut c = client.session(None).unwrap();
        let mut s = server.session().unwrap();
        assert!(c.is_client() && !s.is_client());
        // nothing is sent before the peer is verified and authorized
        let early = c.write(b"too early").unwrap_err().to_string();
        assert!(early.contains("no application data is sent"), "{early}");
        pump(&mut c, &mut s).unwrap();
        assert!(!c.is_handshaking() && !s.is_handshaking());
        let peer = c.peer().unwrap();
        assert_eq!(peer.spiffe_id(), &id(SIDECAR));
        assert_eq!(peer.protocol_version(), Some(version));
        assert_eq!(peer.alpn(), Some(params::ALPN_HTTP11));
        assert_eq!(s.peer().unwrap().spiffe_id(), &id(GATEWAY));

        let big = vec![b'x'; 100_000]; // several records, beyond rustls's default buffer limit
        c.write(&big).unwrap();
        pump(&mut c, &mut s).unwrap();
        assert_eq!(s.buffered(), big.len());
        assert_eq!(read_all(&mut s), big);
        assert_eq!(s.read(&mut [0u8; 4]), Plaintext::NeedMoreBytes);

        s.close();
        pump(&mut c, &mut s).unwrap();
        assert_eq!(c.read(&mut [0u8; 4]), Plaintext::Closed { clean: true });
    }
}

#[test]
fn a_wrong_server_id_is_the_authorizers_typed_error_and_an_alert() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(OTHER)])
        .build()
        .unwrap();
    let mut c = client.session(None).unwrap();
    let mut s = server.session().unwrap();
    let (client_side, err) = pump(&mut c, &mut s).unwrap_err();
    assert!(client_side);
    assert!(matches!(err, Error::Authz(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("peer {SIDECAR} is not authorized: expected {OTHER}")
    );
    assert!(c.peer().is_none());
    assert!(c.write(b"x").is_err());
    // the alert tells the server, whose handshake then fails too
    let mut alert = Vec::new();
    c.take_outgoing(&mut alert);
    assert!(!alert.is_empty());
    let server_err = s.receive(&alert).unwrap_err().to_string();
    assert!(server_err.contains("alert"), "{server_err}");
    assert!(s.peer().is_none());
}

#[test]
fn an_unknown_ca_is_the_svid_error() {
    let ca = TestCa::new("cluster.local");
    let rogue = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&rogue, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    let mut c = client.session(None).unwrap();
    let mut s = server.session().unwrap();
    let (client_side, err) = pump(&mut c, &mut s).unwrap_err();
    assert!(!client_side, "the server refuses the client's chain");
    assert!(matches!(err, Error::Svid(_)), "{err:?}");
}

#[test]
fn eof_during_the_handshake_is_an_error() {
    let ca = TestCa::new("cluster.local");
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    let mut c = client.session(None).unwrap();
    let err = c.receive_eof().unwrap_err().to_string();
    assert!(err.contains("during the handshake"), "{err}");
}

#[test]
fn the_sniffer_applies_the_mode() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .alpn_protocols([params::ALPN_HTTP11])
        .build()
        .unwrap();
    let gateway = |alpn: &[&[u8]]| {
        ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
            .expect_server_ids([id(SIDECAR)])
            .alpn_protocols(alpn.iter().copied())
            .build()
            .unwrap()
    };
    let hello = |alpn: &[&[u8]]| {
        let mut c = gateway(alpn).session(None).unwrap();
        let mut out = Vec::new();
        c.take_outgoing(&mut out);
        (c, out)
    };

    // STRICT: plaintext refused, after one byte
    let strict = InboundAcceptor::new(server.clone(), MtlsMode::Strict);
    let mut sniffer = strict.sniffer();
    assert!(sniffer.verdict().unwrap().is_none());
    let err = sniffer.receive(b"G").unwrap_err().to_string();
    assert!(
        err.starts_with("connection refused under STRICT: plaintext"),
        "{err}"
    );

    // STRICT: a hello split over two reads, then a full handshake in the returned session
    let (mut c, bytes) = hello(params::GATEWAY_HTTP11_ALPN);
    let mut sniffer = strict.sniffer();
    assert!(sniffer.receive(&bytes[..10]).unwrap().is_none());
    let Some(Started::Mtls {
        mut session,
        first_bytes,
    }) = sniffer.receive(&bytes[10..]).unwrap()
    else {
        panic!("expected mTLS");
    };
    assert_eq!(first_bytes, bytes);
    session.receive(&first_bytes).unwrap();
    pump(&mut c, &mut session).unwrap();
    assert_eq!(session.peer().unwrap().spiffe_id(), &id(GATEWAY));

    // PERMISSIVE: TLS without an Istio ALPN is passed through with its hello
    let permissive = InboundAcceptor::new(server.clone(), MtlsMode::Unset);
    assert_eq!(permissive.mode(), MtlsMode::Permissive);
    let (_, bytes) = hello(&[params::ALPN_HTTP11]);
    match permissive.sniffer().receive(&bytes).unwrap() {
        Some(Started::Plaintext {
            first_bytes,
            tls: Some(h),
        }) => {
            assert_eq!(first_bytes, bytes);
            assert_eq!(h.alpn, vec![params::ALPN_HTTP11.to_vec()]);
        }
        other => panic!("expected passthrough, got {other:?}"),
    }
    // ... and a closed connection before a decision is an error
    let mut sniffer = permissive.sniffer();
    sniffer.receive(&[0x16]).unwrap();
    assert!(sniffer.receive(b"").is_err());

    // DISABLE decides before any byte
    let disable = InboundAcceptor::new(server, MtlsMode::Disable);
    assert!(matches!(
        disable.sniffer().verdict().unwrap(),
        Some(Started::Plaintext { tls: None, .. })
    ));
}
