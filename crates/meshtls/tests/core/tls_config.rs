//! Sidecar-side and gateway-side configs, handshaking in memory.

use std::sync::Arc;

use crate::tls_common::{TestCa, bundles, exchange, handshake, material};
use meshtls::authz::one_of;
use meshtls::tls::{
    ClientConfigBuilder, MtlsParams, ServerConfigBuilder, TlsVersion, params, peer_spiffe_id,
};
use meshtls::{Error, MeshConfig, SpiffeId, TrustDomain};

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

struct Pair {
    client: rustls::ClientConnection,
    server: rustls::ServerConnection,
}

fn connect(
    client: &meshtls::tls::MtlsClientConfig,
    server: &meshtls::tls::MtlsServerConfig,
) -> (Pair, Result<(), rustls::Error>) {
    let mut pair = Pair {
        client: client.connect(None).unwrap(),
        server: server.new_connection().unwrap(),
    };
    let result = handshake(&mut pair.client, &mut pair.server);
    (pair, result)
}

#[test]
fn gateway_and_sidecar_agree_over_tls12_and_tls13() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let client = crate::tls_common::client_at(&ca, GATEWAY, SIDECAR, version);
        let (mut pair, result) = connect(&client, &server);
        result.unwrap();
        assert_eq!(
            exchange(&mut pair.client, &mut pair.server, b"ping"),
            b"ping"
        );
        let from_server = server.check_connection(&pair.server).unwrap();
        let from_client = client.check_connection(&pair.client).unwrap();
        assert_eq!(from_server.spiffe_id(), &id(GATEWAY));
        assert_eq!(from_client.spiffe_id(), &id(SIDECAR));
        assert_eq!(from_server.protocol_version(), Some(version));
        assert_eq!(peer_spiffe_id(&pair.client).unwrap(), id(SIDECAR));
        assert!(!from_server.resumed());
        let suite = from_client.cipher_suite().unwrap().to_owned();
        match version {
            // rcgen's default key is ECDSA P-256, so Istio's first ECDSA suite wins.
            TlsVersion::Tls12 => assert_eq!(suite, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
            TlsVersion::Tls13 => assert!(suite.starts_with("TLS13_"), "{suite}"),
        }
    }
}

#[test]
fn server_name_is_never_used_for_verification() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    // The sidecar's certificate has no DNS SAN at all; a DNS-verifying client would fail.
    let mut c = client.connect(Some("api.demo.svc.cluster.local")).unwrap();
    let mut s = server.new_connection().unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(s.server_name(), Some("api.demo.svc.cluster.local"));
    // Istio's cluster-name SNI is not a DNS name: a typed error, not a panic.
    let err = client
        .connect(Some("outbound|8080||api.demo.svc.cluster.local"))
        .unwrap_err();
    assert!(err.to_string().contains("outbound|8080||"), "{err}");
}

#[test]
fn wrong_server_id_is_refused_by_the_gateway() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(
        &ca,
        "spiffe://cluster.local/ns/demo/sa/other",
        &[&ca],
    ))
    .build()
    .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    let (_, result) = connect(&client, &server);
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{text}"
    );
}

#[test]
fn expected_ids_are_expanded_with_trust_domain_aliases() {
    // The sidecar lives in the alias trust domain; the gateway expects the primary form.
    let old = TestCa::new("old.example");
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(
        &old,
        "spiffe://old.example/ns/demo/sa/api",
        &[&ca, &old],
    ))
    .trust_domains([ca.trust_domain.clone(), old.trust_domain.clone()])
    .build()
    .unwrap();
    let without = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca, &old]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    assert!(connect(&without, &server).1.is_err());
    let with = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca, &old]))
        .expect_server_ids([id(SIDECAR)])
        .trust_domain_aliases([TrustDomain::new("old.example").unwrap()])
        .build()
        .unwrap();
    assert_eq!(
        with.expected_server_ids(),
        &[id(SIDECAR), id("spiffe://old.example/ns/demo/sa/api")]
    );
    connect(&with, &server).1.unwrap();
}

#[test]
fn a_client_config_needs_an_identity_to_check() {
    let ca = TestCa::new("cluster.local");
    let err = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls(meshtls::error::TlsError::NoServerIdentity)),
        "{err}"
    );
}

#[test]
fn sidecar_refuses_clients_without_a_certificate() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    // A plain rustls client that trusts the mesh root but has no client certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.root.clone()).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        params::istio_provider(),
    )
    .build()
    .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(params::istio_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
        .with_no_client_auth();
    let mut c =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut s = server.new_connection().unwrap();
    let err = handshake(&mut c, &mut s).unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::NoCertificatesPresented | rustls::Error::AlertReceived(_)
        ),
        "{err}"
    );
}

/// Accepts any server name (the mesh certificates have none) but verifies the chain.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        _ee: &rustls_pki_types::CertificateDer<'_>,
        _im: &[rustls_pki_types::CertificateDer<'_>],
        _name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[test]
fn sidecar_refuses_a_foreign_trust_domain_even_with_its_bundle() {
    let ca = TestCa::new("cluster.local");
    let foreign = TestCa::new("foreign.example");
    // The sidecar holds the foreign bundle (say, for federation) but the mesh does not accept
    // that trust domain on inbound mTLS.
    let mesh = MeshConfig::default();
    let server = ServerConfigBuilder::from_mesh(material(&ca, SIDECAR, &[&ca, &foreign]), &mesh)
        .unwrap()
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(
        &foreign,
        "spiffe://foreign.example/ns/demo/sa/intruder",
        &[&ca, &foreign],
    ))
    .expect_server_ids([id(SIDECAR)])
    .build()
    .unwrap();
    // The server verifies the client certificate before its own handshake ends.
    let err = connect(&client, &server).1.unwrap_err().to_string();
    assert!(
        err.contains("foreign.example") && err.contains("member of trust domain cluster.local"),
        "{err}"
    );

    // A foreign trust domain listed in caCertificates is accepted.
    let mesh =
        MeshConfig::from_yaml("caCertificates:\n- pem: x\n  trustDomains: [foreign.example]\n")
            .unwrap();
    let server = ServerConfigBuilder::from_mesh(material(&ca, SIDECAR, &[&ca, &foreign]), &mesh)
        .unwrap()
        .build()
        .unwrap();
    let (mut pair, result) = connect(&client, &server);
    result.unwrap();
    assert_eq!(exchange(&mut pair.client, &mut pair.server, b"ok"), b"ok");
    assert_eq!(
        server.check_connection(&pair.server).unwrap().spiffe_id(),
        &id("spiffe://foreign.example/ns/demo/sa/intruder")
    );
}

#[test]
fn a_chain_from_an_untrusted_ca_is_refused() {
    let ca = TestCa::new("cluster.local");
    let impostor = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&impostor, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .versions(TlsVersion::Tls12, TlsVersion::Tls12)
        .unwrap()
        .build()
        .unwrap();
    // TLS 1.2: the server verifies the client before its Finished, so the handshake fails.
    let (_, result) = connect(&client, &server);
    let err = result.unwrap_err();
    assert!(
        matches!(
            crate::tls_common::meshtls_error(&err),
            Some(meshtls::Error::Svid(
                meshtls::error::SvidError::Untrusted { .. }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn mesh_tlsv1_3_makes_the_sidecar_refuse_tls12() {
    let ca = TestCa::new("cluster.local");
    let mesh = MeshConfig::from_yaml("meshMTLS:\n  minProtocolVersion: TLSV1_3\n").unwrap();
    let params = MtlsParams::from_mesh(&mesh).unwrap();
    assert_eq!(params.min_version(), TlsVersion::Tls13);
    let server = ServerConfigBuilder::from_mesh(material(&ca, SIDECAR, &[&ca]), &mesh)
        .unwrap()
        .build()
        .unwrap();
    let tls12 = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .versions(TlsVersion::Tls12, TlsVersion::Tls12)
        .unwrap()
        .build()
        .unwrap();
    let err = connect(&tls12, &server).1.unwrap_err();
    assert!(matches!(err, rustls::Error::PeerIncompatible(_)), "{err:?}");
    let tls13 = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    let (pair, result) = connect(&tls13, &server);
    result.unwrap();
    assert_eq!(
        pair.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[test]
fn istio_cipher_list_maps_onto_rustls() {
    let params = MtlsParams::istio_default();
    let names: Vec<String> = params
        .tls12_suites()
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect();
    assert_eq!(
        names,
        [
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ]
    );
    assert_eq!(
        params.not_offered(),
        ["AES256-GCM-SHA384", "AES128-GCM-SHA256"]
    );
    let provider = params.provider();
    assert_eq!(provider.cipher_suites.len(), 3 + 4);

    // meshMTLS.cipherSuites replaces the list; unknown names are errors naming them.
    let mesh = MeshConfig::from_yaml(
        "meshMTLS:\n  cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, AES128-SHA]\n",
    )
    .unwrap();
    let params = MtlsParams::from_mesh(&mesh).unwrap();
    assert_eq!(params.tls12_suites().len(), 1);
    assert_eq!(params.not_offered(), ["AES128-SHA"]);
    let err = MtlsParams::with_tls12_ciphers(&["ECDHE-RSA-AES128-GCM-SHA999"]).unwrap_err();
    assert!(
        err.to_string().contains("ECDHE-RSA-AES128-GCM-SHA999"),
        "{err}"
    );
    let err = MtlsParams::with_tls12_ciphers(&["AES128-GCM-SHA256"]).unwrap_err();
    assert!(err.to_string().contains("AES128-GCM-SHA256"), "{err}");
    // ...unless TLS 1.2 is not allowed at all.
    let mesh = MeshConfig::from_yaml(
        "meshMTLS:\n  minProtocolVersion: TLSV1_3\n  cipherSuites: [AES128-GCM-SHA256]\n",
    )
    .unwrap();
    assert!(MtlsParams::from_mesh(&mesh).is_ok());
}

#[test]
fn tls12_cipher_restriction_is_enforced_on_the_wire() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .params(MtlsParams::with_tls12_ciphers(&["ECDHE-ECDSA-AES128-GCM-SHA256"]).unwrap())
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .versions(TlsVersion::Tls12, TlsVersion::Tls12)
        .unwrap()
        .build()
        .unwrap();
    let (pair, result) = connect(&client, &server);
    result.unwrap();
    let suite = format!(
        "{:?}",
        pair.client.negotiated_cipher_suite().unwrap().suite()
    );
    assert_eq!(suite, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
}

#[test]
fn alpn_istio_values_and_envoy_leniency() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .alpn_protocols(params::SIDECAR_HTTP_ALPN)
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .alpn_protocols([params::ALPN_ISTIO_HTTP11, params::ALPN_HTTP11])
        .build()
        .unwrap();
    let (pair, result) = connect(&client, &server);
    result.unwrap();
    assert_eq!(pair.client.alpn_protocol(), Some(params::ALPN_HTTP11));

    // Only an Istio ALPN: plain rustls aborts (no overlap) ...
    let istio_only = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .alpn_protocols([params::ALPN_ISTIO_HTTP11])
        .build()
        .unwrap();
    assert!(matches!(
        connect(&istio_only, &server).1,
        Err(rustls::Error::NoApplicationProtocol | rustls::Error::AlertReceived(_))
    ));
    // ... while the config meshtls picks for that ClientHello continues without ALPN, as Envoy.
    let mut c = istio_only.connect(None).unwrap();
    let mut first = Vec::new();
    c.write_tls(&mut first).unwrap();
    let hello = match meshtls::tls::sniff::sniff(&first) {
        meshtls::tls::sniff::Sniffed::ClientHello(h) => h,
        other => panic!("{other:?}"),
    };
    let mut s = rustls::ServerConnection::new(server.config_for(&hello)).unwrap();
    let mut rd = &first[..];
    s.read_tls(&mut rd).unwrap();
    s.process_new_packets().unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.alpn_protocol(), None);

    let err = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .alpn_protocols([b"".as_slice()])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ALPN"), "{err}");
}

#[test]
fn authorizer_decides_after_verification() {
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .authorizer(one_of(vec![id("spiffe://cluster.local/ns/x/sa/y")]))
        // TLS 1.2 only, so that the server's verdict ends the handshake.
        .max_version(TlsVersion::Tls12)
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id(SIDECAR)])
        .build()
        .unwrap();
    assert!(connect(&client, &server).1.is_err());
    server.set_authorizer(one_of(vec![id(GATEWAY)]));
    connect(&client, &server).1.unwrap();
}

#[test]
fn own_material_is_validated() {
    let ca = TestCa::new("cluster.local");
    let a = ca.issue(SIDECAR);
    let b = ca.issue(GATEWAY);
    let err = meshtls::tls::TlsMaterial::from_der(a.chain.clone(), &b.key_pkcs8, bundles(&[&ca]))
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err =
        meshtls::tls::TlsMaterial::from_der(vec![], &a.key_pkcs8, bundles(&[&ca])).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err =
        meshtls::tls::TlsMaterial::from_der(vec![ca.root.clone()], &a.key_pkcs8, bundles(&[&ca]))
            .unwrap_err();
    // istiod-style roots carry no URI SAN, so a root is not an SVID.
    assert!(err.to_string().contains("no URI SAN"), "{err}");
    let m = meshtls::tls::TlsMaterial::from_pem(&a.chain_pem, &a.key_pem, bundles(&[&ca])).unwrap();
    assert_eq!(m.spiffe_id(), id(SIDECAR));
    assert_eq!(m.cert_chain(), a.chain);
    // From an Svid, and renewed in place.
    let m = meshtls::tls::TlsMaterial::new(&a.svid, bundles(&[&ca])).unwrap();
    assert_eq!(m.spiffe_id(), id(SIDECAR));
    m.set_svid(&b.svid).unwrap();
    assert_eq!(m.spiffe_id(), id(GATEWAY));
    assert_eq!(m.cert_chain(), b.chain);
    let err = meshtls::tls::TlsMaterial::from_pem(&a.chain_pem, "not a key", bundles(&[&ca]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("holds no unencrypted pem private key"),
        "{err}"
    );
    // A chain file is certificates only: a key block in it is refused, not skipped.
    let mixed = format!("{}{}", a.chain_pem, a.key_pem);
    let err = meshtls::tls::TlsMaterial::from_pem(&mixed, &a.key_pem, bundles(&[&ca])).unwrap_err();
    assert!(err.to_string().contains("only CERTIFICATE blocks"), "{err}");
    assert!(!format!("{m:?}").contains("PRIVATE"));
}

#[test]
fn a_refused_server_reads_as_the_authorization_message() {
    // The gateway's `--expect-peer` refusal: rustls renders a verifier's own error as a Debug
    // dump (`Other(OtherError(Authz(Denied { .. })))`); handshake_error_message recovers the
    // readable reason, whether given the rustls error or the io::Error tokio-rustls returns.
    let ca = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(material(&ca, SIDECAR, &[&ca]))
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(material(&ca, GATEWAY, &[&ca]))
        .expect_server_ids([id("spiffe://cluster.local/ns/demo/sa/other")])
        .build()
        .unwrap();
    let (_, result) = connect(&client, &server);
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("OtherError"),
        "rustls's own rendering: {err}"
    );
    let expected = format!(
        "peer {SIDECAR} is not authorized: expected spiffe://cluster.local/ns/demo/sa/other"
    );
    assert_eq!(meshtls::tls::handshake_error_message(&err), expected);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
    assert_eq!(meshtls::tls::handshake_error_message(&io), expected);
    let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    assert_eq!(
        meshtls::tls::handshake_error_message(&plain),
        "reset by peer"
    );
}
