//! Session resumption never skips authorization.

use crate::tls_common::{TestCa, bundles, exchange, handshake, material};
use meshtls::SpiffeId;
use meshtls::authz::one_of;
use meshtls::tls::{
    ClientConfigBuilder, MtlsClientConfig, MtlsServerConfig, ServerConfigBuilder, TlsVersion,
};
use rustls::HandshakeKind;

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

fn configs(
    ca: &TestCa,
    version: TlsVersion,
    resumption: bool,
) -> (MtlsClientConfig, MtlsServerConfig) {
    let server = ServerConfigBuilder::new(material(ca, SIDECAR, &[ca]))
        .session_resumption(resumption)
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(ca, GATEWAY, &[ca]))
        .expect_server_ids([id(SIDECAR)])
        .versions(version, version)
        .unwrap()
        .session_resumption(resumption)
        .build()
        .unwrap();
    (client, server)
}

/// One connection with a little traffic, so that TLS 1.3 tickets reach the client.
fn connect(
    client: &MtlsClientConfig,
    server: &MtlsServerConfig,
) -> (rustls::ClientConnection, rustls::ServerConnection) {
    let mut c = client.connect(None).unwrap();
    let mut s = server.new_connection().unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(exchange(&mut c, &mut s, b"hello"), b"hello");
    (c, s)
}

#[test]
fn resumption_is_off_by_default() {
    let ca = TestCa::new("cluster.local");
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
            .build()
            .unwrap();
        let client = crate::tls_common::client_at(&ca, GATEWAY, SIDECAR, version);
        assert!(!server.session_resumption());
        for _ in 0..3 {
            let (c, s) = connect(&client, &server);
            assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full), "{version}");
            assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full), "{version}");
        }
    }
}

#[test]
fn server_reauthorizes_resumed_sessions() {
    let ca = TestCa::new("cluster.local");
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let (client, server) = configs(&ca, version, true);
        let (_, s) = connect(&client, &server);
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(
            server.check_connection(&s).unwrap().spiffe_id(),
            &id(GATEWAY)
        );

        let (_, s) = connect(&client, &server);
        assert_eq!(
            s.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version}"
        );
        let peer = server.check_connection(&s).unwrap();
        assert!(peer.resumed());
        assert_eq!(peer.spiffe_id(), &id(GATEWAY));

        // The authorizer changes: rustls still resumes the session (it runs no verifier) ...
        server.set_authorizer(one_of(vec![id("spiffe://cluster.local/ns/x/sa/y")]));
        let mut c = client.connect(None).unwrap();
        let mut s = server.new_connection().unwrap();
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(
            s.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version}"
        );
        // ... and meshtls refuses the resumed identity.
        let err = server.check_connection(&s).unwrap_err().to_string();
        assert!(err.contains(GATEWAY), "{err}");

        // Back to an authorizer that admits the gateway: resumed again, accepted again.
        server.set_authorizer(one_of(vec![id(GATEWAY)]));
        let (_, s) = connect(&client, &server);
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
        server.check_connection(&s).unwrap();
    }
}

#[test]
fn server_reverifies_resumed_sessions_against_current_bundles() {
    let ca = TestCa::new("cluster.local");
    let other = TestCa::new("cluster.local");
    let (client, server) = configs(&ca, TlsVersion::Tls13, true);
    connect(&client, &server);
    // The mesh root rotates away from the CA that issued the gateway's certificate.
    server.material().set_bundles(bundles(&[&other]));
    let mut c = client.connect(None).unwrap();
    let mut s = server.new_connection().unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(server.check_connection(&s).is_err());
}

#[test]
fn client_reauthorizes_resumed_sessions() {
    let ca = TestCa::new("cluster.local");
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let (client, server) = configs(&ca, version, true);
        connect(&client, &server);
        let (c, _) = connect(&client, &server);
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version}"
        );
        assert_eq!(
            client.check_connection(&c).unwrap().spiffe_id(),
            &id(SIDECAR)
        );

        client.set_authorizer(one_of(vec![]));
        let mut c = client.connect(None).unwrap();
        let mut s = server.new_connection().unwrap();
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version}"
        );
        let err = client.check_connection(&c).unwrap_err().to_string();
        assert!(err.contains(SIDECAR), "{err}");
    }
}
