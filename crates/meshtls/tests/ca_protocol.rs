#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Istio's CA protocol, meshtls client against meshtls server over real TLS + HTTP/2 on
//! loopback: issuance by token, renewal by client certificate, every refusal with its gRPC
//! code, the server name rule, the token file re-read per request, impersonation, istio-csr's
//! strict mode, rotation into a TlsMaterial, and 1,000 concurrent requests. (Independent peers:
//! python/tests/test_ca_protocol.py, grpcio and PyJWT.)

#[path = "ca_protocol_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::ca::KeyKind;
use meshtls::ca_protocol::{IstioCaClient, NodeAccount, RefreshParams, TokenSource};
use meshtls::error::CaProtocolError;
use meshtls::tls::TlsMaterial;
use meshtls::{Error, SpiffeId};
use support::*;

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

const GW: &str = "spiffe://cluster.local/ns/gateway/sa/agc";
const DAY: Duration = Duration::from_secs(24 * 3600);

fn protocol_err(e: Error) -> CaProtocolError {
    match e {
        Error::CaProtocol(e) => e,
        other => panic!("expected a ca protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn token_issuance_then_renewal_by_client_certificate() {
    let issuer = Issuer::new();
    let ca = ca();
    let server = start(&ca, server_config(&issuer));
    let client = IstioCaClient::new(client_config(
        &ca,
        &server,
        Some(issuer.token("gateway", "agc")),
    ))
    .unwrap();
    assert_eq!(client.server_name(), "istiod.istio-system.svc");
    for key in [KeyKind::EcP256, KeyKind::Rsa2048] {
        let svid = client
            .fetch_svid(&id(GW), Duration::from_secs(3600), key)
            .await
            .unwrap();
        assert_eq!(svid.spiffe_id(), &id(GW));
        assert_eq!(svid.cert_chain_der().len(), 2);
        let lifetime = svid.not_after().duration_since(svid.not_before()).unwrap();
        assert_eq!(
            lifetime,
            Duration::from_secs(3600 + 120),
            "ttl plus istio's 2-minute backdating"
        );
    }
    // Renewal: no token at all, the SVID is the credential.
    let svid = client
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
    let tokenless = IstioCaClient::new(client_config(&ca, &server, None)).unwrap();
    let renewed = tokenless.renew(&svid, DAY, KeyKind::EcP384).await.unwrap();
    assert_eq!(renewed.spiffe_id(), &id(GW));
    assert_ne!(renewed.leaf_der(), svid.leaf_der());
    // Without either, the server refuses with istiod's opaque message.
    let err = protocol_err(
        tokenless
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err,
        CaProtocolError::Unauthenticated {
            message: "request authenticate failure".into()
        }
    );
}

#[tokio::test]
async fn the_kept_connection_is_dialled_again_after_a_server_restart() {
    let issuer = Issuer::new();
    let ca = ca();
    let mut server = start(&ca, server_config(&issuer));
    let addr = server.local_addr();
    let client = IstioCaClient::new(client_config(
        &ca,
        &server,
        Some(issuer.token("gateway", "agc")),
    ))
    .unwrap();
    client
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
    // The server stops (its connections get GOAWAY) and another starts on the same port: the
    // client's kept channel dials again for the next call, which succeeds at once.
    server.stop();
    let _again = meshtls::ca_protocol::IstioCaServer::new(ca.clone(), server_config(&issuer))
        .unwrap()
        .start(addr)
        .unwrap();
    client
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_token_decides_the_identity_and_a_mismatch_is_a_bad_chain() {
    let issuer = Issuer::new();
    let ca = ca();
    let server = start(&ca, server_config(&issuer));
    // The token says ns/other/sa/x; istiod signs that, whatever the CSR asks: the client refuses.
    let client = IstioCaClient::new(client_config(
        &ca,
        &server,
        Some(issuer.token("other", "x")),
    ))
    .unwrap();
    let err = protocol_err(
        client
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(&err, CaProtocolError::BadChain { reason } if reason.contains("spiffe://cluster.local/ns/other/sa/x")),
        "{err}"
    );
}

#[tokio::test]
async fn refusals_carry_their_grpc_codes() {
    let issuer = Issuer::new();
    let ca = ca();
    let server = start(&ca, server_config(&issuer));
    let token = issuer.token("gateway", "agc");
    let client = IstioCaClient::new(client_config(&ca, &server, Some(token.clone()))).unwrap();
    // Over the maximum TTL: an error, not a clamp.
    let err = protocol_err(
        client
            .fetch_svid(
                &id(GW),
                Duration::from_secs(91 * 24 * 3600),
                KeyKind::EcP256,
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err,
        CaProtocolError::Status {
            code: "INVALID_ARGUMENT".into(),
            message: "invalid certificate request".into()
        }
    );
    // A foreign cluster id.
    let mut c = client_config(&ca, &server, Some(token.clone()));
    c.cluster_id = Some("cluster-2".into());
    let err = protocol_err(
        IstioCaClient::new(c)
            .unwrap()
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, CaProtocolError::Unauthenticated { .. }),
        "{err}"
    );
    // The own cluster id and extra headers are fine.
    let mut c = client_config(&ca, &server, Some(token.clone()));
    c.cluster_id = Some("Kubernetes".into());
    c.headers = vec![("x-extra".into(), "1".into())];
    IstioCaClient::new(c)
        .unwrap()
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
    // A token signed by another key.
    let other = Issuer::new();
    let c = client_config(&ca, &server, Some(other.token("gateway", "agc")));
    let err = protocol_err(
        IstioCaClient::new(c)
            .unwrap()
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, CaProtocolError::Unauthenticated { .. }),
        "{err}"
    );
    // The server is still serving.
    client
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
}

#[tokio::test]
async fn server_name_and_reachability_errors_are_typed() {
    let issuer = Issuer::new();
    let ca = ca();
    let server = start(&ca, server_config(&issuer));
    let mut c = client_config(&ca, &server, Some(issuer.token("gateway", "agc")));
    c.server_name = Some("istiod.other-ns.svc".into());
    let err = protocol_err(
        IstioCaClient::new(c)
            .unwrap()
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(&err, CaProtocolError::Tls { server_name, .. } if server_name == "istiod.other-ns.svc"),
        "{err}"
    );
    // 127.0.0.1 is not among the serving certificate's names.
    let mut c = client_config(&ca, &server, None);
    c.address = format!("127.0.0.1:{}", server.local_addr().port());
    let err = protocol_err(
        IstioCaClient::new(c)
            .unwrap()
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, CaProtocolError::Tls { .. }), "{err}");
    // Another mesh's root.
    let other_ca = support::ca();
    let mut c = client_config(&other_ca, &server, None);
    c.address = format!("localhost:{}", server.local_addr().port());
    let err = protocol_err(
        IstioCaClient::new(c)
            .unwrap()
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, CaProtocolError::Tls { .. }), "{err}");
    // Nobody listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut c = client_config(&ca, &server, None);
    c.address = format!("localhost:{port}");
    let err = protocol_err(
        IstioCaClient::new(c)
            .unwrap()
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, CaProtocolError::Unreachable { .. }), "{err}");
    // Bad configuration.
    let mut c = client_config(&ca, &server, None);
    c.address = "no-port".into();
    assert!(
        IstioCaClient::new(c)
            .unwrap_err()
            .to_string()
            .contains("\"no-port\"")
    );
}

#[tokio::test]
async fn the_token_file_is_read_for_every_request() {
    let issuer = Issuer::new();
    let ca = ca();
    let server = start(&ca, server_config(&issuer));
    let dir = std::env::temp_dir().join(format!("meshtls-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("istio-token");
    std::fs::write(&path, issuer.token("gateway", "agc")).unwrap();
    let mut c = client_config(&ca, &server, None);
    c.token = TokenSource::File(path.clone());
    let client = IstioCaClient::new(c).unwrap();
    client
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
    std::fs::write(&path, Issuer::new().token("gateway", "agc")).unwrap();
    let err = protocol_err(
        client
            .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, CaProtocolError::Unauthenticated { .. }),
        "{err}"
    );
    std::fs::write(&path, issuer.token("gateway", "agc")).unwrap();
    client
        .fetch_svid(&id(GW), DAY, KeyKind::EcP256)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn impersonation_only_for_trusted_node_accounts() {
    use meshtls::ca_protocol::{CallContext, IstioCaServer, IstioCertificateRequest};
    let issuer = Issuer::new();
    let ca = ca();
    let mut config = server_config(&issuer);
    config.trusted_node_accounts = vec![NodeAccount::new(
        id("spiffe://cluster.local/ns/istio-system/sa/ztunnel"),
        vec![id("spiffe://cluster.local/ns/shop/sa/web")],
    )];
    let server = IstioCaServer::new(ca.clone(), config).unwrap();
    let csr = meshtls::Csr::new(
        &id("spiffe://cluster.local/ns/shop/sa/web"),
        &Default::default(),
    )
    .unwrap();
    let mut req = IstioCertificateRequest {
        csr: csr.pem(),
        validity_duration: 3600,
        metadata: None,
    };
    req.set_metadata_string(
        "ImpersonatedIdentity",
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    let ztunnel = format!("Bearer {}", issuer.token("istio-system", "ztunnel"));
    let ctx = CallContext {
        authorization: Some(&ztunnel),
        ..Default::default()
    };
    let resp = server.create_certificate(&ctx, &req).unwrap();
    assert!(
        resp.cert_chain
            .iter()
            .all(|c| c.ends_with("-----END CERTIFICATE-----\n"))
    );
    assert_eq!(resp.cert_chain.len(), 2);
    let svid = csr
        .into_svid(
            resp.cert_chain
                .iter()
                .flat_map(|c| meshtls::svid::parse_pem_chain(c).unwrap())
                .collect(),
        )
        .unwrap();
    assert_eq!(
        svid.spiffe_id().as_str(),
        "spiffe://cluster.local/ns/shop/sa/web"
    );
    // Not allowed for that identity.
    req.set_metadata_string(
        "ImpersonatedIdentity",
        "spiffe://cluster.local/ns/shop/sa/db",
    );
    let refusal = server.create_certificate(&ctx, &req).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.message),
        (
            "UNAUTHENTICATED",
            "request impersonation authentication failure"
        )
    );
    assert!(
        refusal.reason.contains(
            "trusted node account spiffe://cluster.local/ns/istio-system/sa/ztunnel may not impersonate spiffe://cluster.local/ns/shop/sa/db"
        ),
        "{}",
        refusal.reason
    );
    // Not a node account.
    let web = format!("Bearer {}", issuer.token("shop", "web"));
    req.set_metadata_string(
        "ImpersonatedIdentity",
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    let refusal = server
        .create_certificate(
            &CallContext {
                authorization: Some(&web),
                ..Default::default()
            },
            &req,
        )
        .unwrap_err();
    assert_eq!(
        (refusal.code, refusal.message),
        (
            "UNAUTHENTICATED",
            "request impersonation authentication failure"
        )
    );
    assert!(
        refusal
            .reason
            .contains("spiffe://cluster.local/ns/shop/sa/web is not a trusted node account"),
        "{}",
        refusal.reason
    );
    // A bad identity asked for.
    req.set_metadata_string("ImpersonatedIdentity", "not-a-spiffe-id");
    let refusal = server.create_certificate(&ctx, &req).unwrap_err();
    assert_eq!(
        refusal.message,
        "request impersonation authentication failure"
    );
    assert!(
        refusal.reason.contains("\"not-a-spiffe-id\""),
        "{}",
        refusal.reason
    );
    // No trusted node accounts at all: istiod's "not configured" case.
    let plain = IstioCaServer::new(ca.clone(), server_config(&issuer)).unwrap();
    req.set_metadata_string(
        "ImpersonatedIdentity",
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    let refusal = plain.create_certificate(&ctx, &req).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.message),
        (
            "UNAUTHENTICATED",
            "request impersonation authentication failure"
        )
    );
    assert!(
        refusal
            .reason
            .contains("no trusted node accounts are configured"),
        "{}",
        refusal.reason
    );
}

/// A server without the TTL floor, for the tests that want renewals due at once.
fn short_ttl_config(issuer: &Issuer) -> meshtls::ca_protocol::ServerConfig {
    let mut config = server_config(issuer);
    config.min_ttl = Duration::ZERO;
    config
}

fn impersonating(
    csr: &meshtls::Csr,
    wanted: &str,
    ttl: i64,
) -> meshtls::ca_protocol::IstioCertificateRequest {
    let mut req = meshtls::ca_protocol::IstioCertificateRequest {
        csr: csr.pem(),
        validity_duration: ttl,
        metadata: None,
    };
    req.set_metadata_string("ImpersonatedIdentity", wanted);
    req
}

#[tokio::test]
async fn a_node_account_for_any_identity_stays_in_its_trust_domain() {
    use meshtls::ca_protocol::{CallContext, IstioCaServer, ServerSettings};
    let issuer = Issuer::new();
    let ca = ca();
    let mut config = server_config(&issuer);
    // As `meshtls ca serve --config` reads it: no mayImpersonate = any identity.
    ServerSettings::parse("trustedNodeAccounts:\n  - account: istio-system/ztunnel\n")
        .unwrap()
        .apply(&mut config, &"cluster.local".parse().unwrap())
        .unwrap();
    let server = IstioCaServer::new(ca.clone(), config).unwrap();
    let ztunnel = format!("Bearer {}", issuer.token("istio-system", "ztunnel"));
    let ctx = CallContext {
        authorization: Some(&ztunnel),
        ..Default::default()
    };
    for wanted in [
        "spiffe://cluster.local/ns/shop/sa/web",
        "spiffe://cluster.local/ns/bank/sa/db",
    ] {
        let csr = meshtls::Csr::new(&id(wanted), &Default::default()).unwrap();
        let resp = server
            .create_certificate(&ctx, &impersonating(&csr, wanted, 3600))
            .unwrap();
        let chain = resp
            .cert_chain
            .iter()
            .flat_map(|c| meshtls::svid::parse_pem_chain(c).unwrap())
            .collect();
        assert_eq!(csr.into_svid(chain).unwrap().spiffe_id().as_str(), wanted);
    }
    let other = "spiffe://example.org/ns/shop/sa/web";
    let csr = meshtls::Csr::new(&id(other), &Default::default()).unwrap();
    let refusal = server
        .create_certificate(&ctx, &impersonating(&csr, other, 3600))
        .unwrap_err();
    assert_eq!(
        refusal.message,
        "request impersonation authentication failure"
    );
    assert!(
        refusal.reason.contains("may not impersonate"),
        "{}",
        refusal.reason
    );
}

#[tokio::test]
async fn the_ttl_floor_refuses_renewal_loops() {
    use meshtls::ca_protocol::{CallContext, DEFAULT_MIN_TTL, IstioCaServer};
    let issuer = Issuer::new();
    let ca = ca();
    let server = IstioCaServer::new(ca.clone(), server_config(&issuer)).unwrap();
    let auth = format!("Bearer {}", issuer.token("gateway", "agc"));
    let ctx = CallContext {
        authorization: Some(&auth),
        ..Default::default()
    };
    let csr = meshtls::Csr::new(&id(GW), &Default::default()).unwrap();
    let pem = csr.pem();
    let ask = |ttl: u64| meshtls::ca_protocol::IstioCertificateRequest {
        csr: pem.clone(),
        validity_duration: ttl as i64,
        metadata: None,
    };
    assert_eq!(DEFAULT_MIN_TTL, Duration::from_secs(240));
    let refusal = server.create_certificate(&ctx, &ask(60)).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.message),
        ("INVALID_ARGUMENT", "invalid certificate request")
    );
    assert!(
        refusal
            .reason
            .contains("requested ttl 60s is less than the min allowed ttl 240s"),
        "{}",
        refusal.reason
    );
    assert!(
        refusal.reason.contains("renew in a loop"),
        "{}",
        refusal.reason
    );
    server.create_certificate(&ctx, &ask(239)).unwrap_err();
    // At the floor, the first renewal (NotBefore + half the lifetime) is a minute away.
    let resp = server.create_certificate(&ctx, &ask(240)).unwrap();
    let chain: Vec<_> = resp
        .cert_chain
        .iter()
        .flat_map(|c| meshtls::svid::parse_pem_chain(c).unwrap())
        .collect();
    let svid = csr.into_svid(chain).unwrap();
    let half =
        svid.not_before() + (svid.not_after().duration_since(svid.not_before()).unwrap() / 2);
    let ahead = half.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(55) && ahead <= Duration::from_secs(60),
        "{ahead:?}"
    );
    // A configurable floor; a default below it is a configuration error naming the values.
    let mut config = server_config(&issuer);
    config.min_ttl = Duration::from_secs(3600);
    let server = IstioCaServer::new(ca.clone(), config.clone()).unwrap();
    let refusal = server.create_certificate(&ctx, &ask(1800)).unwrap_err();
    assert!(
        refusal.reason.contains("min allowed ttl 3600s"),
        "{}",
        refusal.reason
    );
    server.create_certificate(&ctx, &ask(3600)).unwrap();
    config.min_ttl = Duration::from_secs(2 * 86400);
    let err = IstioCaServer::new(ca.clone(), config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("min 172800s, default 86400s") && err.contains("min <= default <= max"),
        "{err}"
    );
}

#[test]
fn server_settings_are_checked() {
    use meshtls::ca_protocol::{ServerConfig, ServerSettings};
    let td = "cluster.local".parse().unwrap();
    let mut config = ServerConfig::default();
    ServerSettings::parse(
        "clusterId: east\nextraDnsNames: [localhost, istiod.istio-system.svc]\nminTtl: 10m\n\
         trustedNodeAccounts:\n  - account: istio-system/agent\n    mayImpersonate: [shop/web]\n",
    )
    .unwrap()
    .apply(&mut config, &td)
    .unwrap();
    assert_eq!(config.cluster_id, "east");
    assert_eq!(
        config.dns_names,
        [
            "istiod.istio-system.svc",
            "istiod-remote.istio-system.svc",
            "istio-pilot.istio-system.svc",
            "localhost"
        ]
    );
    assert_eq!(config.min_ttl, Duration::from_secs(600));
    assert_eq!(
        config.trusted_node_accounts,
        [NodeAccount::new(
            id("spiffe://cluster.local/ns/istio-system/sa/agent"),
            vec![id("spiffe://cluster.local/ns/shop/sa/web")]
        )]
    );
    for (text, needle) in [
        ("minTtl: 5x\n", "\"5x\""),
        ("clusterID: east\n", "clusterID"),
        (
            "trustedNodeAccounts:\n  - account: ztunnel\n",
            "\"ztunnel\"",
        ),
    ] {
        let err = ServerSettings::parse(text)
            .and_then(|s| s.apply(&mut ServerConfig::default(), &td))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[tokio::test]
async fn strict_mode_refuses_csrs_with_other_names() {
    use meshtls::ca_protocol::{CallContext, IstioCaServer, IstioCertificateRequest};
    let issuer = Issuer::new();
    let ca = ca();
    let mut config = server_config(&issuer);
    config.strict_csr = true;
    let server = IstioCaServer::new(ca.clone(), config.clone()).unwrap();
    let auth = format!("Bearer {}", issuer.token("gateway", "agc"));
    let ctx = CallContext {
        authorization: Some(&auth),
        ..Default::default()
    };
    let good = meshtls::Csr::new(&id(GW), &Default::default()).unwrap();
    let req = |csr: &meshtls::Csr| IstioCertificateRequest {
        csr: csr.pem(),
        validity_duration: 0,
        metadata: None,
    };
    server.create_certificate(&ctx, &req(&good)).unwrap();
    let dns = meshtls::Csr::new(
        &id(GW),
        &meshtls::CsrParams {
            key: KeyKind::EcP256,
            dns_names: vec!["gw.example".into()],
        },
    )
    .unwrap();
    let r = server.create_certificate(&ctx, &req(&dns)).unwrap_err();
    assert_eq!(r.code, "INVALID_ARGUMENT");
    assert!(r.reason.contains("gw.example"), "{}", r.reason);
    let other =
        meshtls::Csr::new(&id("spiffe://cluster.local/ns/x/sa/y"), &Default::default()).unwrap();
    let r = server.create_certificate(&ctx, &req(&other)).unwrap_err();
    assert!(r.reason.contains("not exactly"), "{}", r.reason);
    // Istio's default mode signs the same CSR for the caller's identity.
    config.strict_csr = false;
    let lenient = IstioCaServer::new(ca.clone(), config).unwrap();
    lenient.create_certificate(&ctx, &req(&dns)).unwrap();
    lenient.create_certificate(&ctx, &req(&other)).unwrap();
    // Garbage CSRs: INVALID_ARGUMENT, never a panic.
    for junk in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ] {
        let r = lenient
            .create_certificate(
                &ctx,
                &IstioCertificateRequest {
                    csr: junk.into(),
                    validity_duration: 0,
                    metadata: None,
                },
            )
            .unwrap_err();
        assert_eq!(r.code, "INVALID_ARGUMENT", "{junk:?}: {}", r.reason);
    }
}

/// The material a refresh test rotates (presenting `first`, trusting `ca`'s roots), its leaf
/// before any renewal, and refresh parameters asking for hour-long certificates.
fn refresh_setup(
    first: &meshtls::Svid,
    ca: &meshtls::ca::MeshCa,
) -> (
    TlsMaterial,
    rustls_pki_types::CertificateDer<'static>,
    RefreshParams,
) {
    let bundles = BundleSet::from_bundles([TrustBundle::new(
        first.spiffe_id().trust_domain(),
        ca.root_certs_der().to_vec(),
    )
    .unwrap()])
    .unwrap();
    let material = TlsMaterial::new(first, bundles).unwrap();
    let before = material.cert_chain()[0].clone();
    let mut params = RefreshParams::default();
    params.ttl = Duration::from_secs(3600);
    (material, before, params)
}

#[tokio::test]
async fn keep_fresh_rotates_into_the_tls_material_and_backs_off() {
    let issuer = Issuer::new();
    let ca = ca();
    let mut server = start(&ca, short_ttl_config(&issuer));
    let client = IstioCaClient::new(client_config(
        &ca,
        &server,
        Some(issuer.token("gateway", "agc")),
    ))
    .unwrap();
    // 60 s asked, 180 s lifetime with the backdating: half of it is already gone.
    let first = client
        .fetch_svid(&id(GW), Duration::from_secs(60), KeyKind::EcP256)
        .await
        .unwrap();
    let (material, before, params) = refresh_setup(&first, &ca);
    let refreshed = tokio::time::timeout(
        Duration::from_secs(2),
        client.keep_fresh(&material, first, &params),
    )
    .await;
    assert!(refreshed.is_err(), "keep_fresh returns only on errors");
    assert_ne!(
        material.cert_chain()[0],
        before,
        "the material got the renewed certificate"
    );
    // The server goes away: UNAVAILABLE/unreachable is retried with backoff, then given up.
    server.stop();
    let short = client
        .fetch_svid(&id(GW), Duration::from_secs(60), KeyKind::EcP256)
        .await;
    assert!(short.is_err());
    let mut params = RefreshParams::default();
    params.initial_backoff = Duration::from_millis(10);
    params.max_failures = Some(3);
    let svid_again = {
        let s2 = start(&ca, short_ttl_config(&issuer));
        let c2 = IstioCaClient::new(client_config(
            &ca,
            &s2,
            Some(issuer.token("gateway", "agc")),
        ))
        .unwrap();
        let s = c2
            .fetch_svid(&id(GW), Duration::from_secs(60), KeyKind::EcP256)
            .await
            .unwrap();
        drop(s2);
        s
    };
    let started = std::time::Instant::now();
    let err = client
        .keep_fresh(&material, svid_again, &params)
        .await
        .unwrap_err();
    assert!(matches!(
        protocol_err(err),
        CaProtocolError::Unreachable { .. }
    ));
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "waited 10 + 20 ms between the tries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_are_served() {
    let issuer = Issuer::new();
    let ca = ca();
    let server = start(&ca, server_config(&issuer));
    let token = issuer.token("gateway", "agc");
    // 10 connections, 100 concurrent streams each.
    let clients: Vec<Arc<IstioCaClient>> = (0..10)
        .map(|_| {
            Arc::new(IstioCaClient::new(client_config(&ca, &server, Some(token.clone()))).unwrap())
        })
        .collect();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let client = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            client.fetch_svid(&id(GW), DAY, KeyKind::EcP256).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1000);
    assert!(server.is_running());
}

/// The seed demo's `--ca-protocol` mode: the gateway's certificate comes from a CA server over
/// this protocol, and every step of the demo still behaves.
#[test]
fn the_demo_runs_with_the_gateway_certificate_over_the_ca_protocol() {
    // target/<profile>/deps/ca_protocol-<hash> → target/<profile>/examples/gateway_to_sidecar,
    // built by `cargo test` with this test's features (grpc).
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("gateway_to_sidecar");
    assert!(
        bin.exists(),
        "examples/gateway_to_sidecar is not built: run `cargo test -p meshtls --features grpc`"
    );
    let out = std::process::Command::new(bin)
        .arg("--ca-protocol")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "CA server (Istio's CA protocol",
        "got spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller",
        "URI=spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller",
        "every step behaved as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
}

#[test]
fn keep_fresh_in_background_renews_reports_and_stops() {
    let issuer = Issuer::new();
    let ca = ca();
    let mut server = start(&ca, short_ttl_config(&issuer));
    let client = Arc::new(
        IstioCaClient::new(client_config(
            &ca,
            &server,
            Some(issuer.token("gateway", "agc")),
        ))
        .unwrap(),
    );
    // 60 s asked, 180 s lifetime with the backdating: renewal is due at once.
    let first = client
        .fetch_svid_blocking(&id(GW), Duration::from_secs(60), KeyKind::EcP256)
        .unwrap();
    let (material, before, params) = refresh_setup(&first, &ca);
    let mut handle = client
        .keep_fresh_in_background(material.clone(), first, params)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while handle.renewals() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        handle.renewals(),
        1,
        "renewed once (the next is due in 30 min)"
    );
    assert_ne!(material.cert_chain()[0], before);
    assert_eq!(
        handle.current().unwrap().cert_chain_der()[0],
        material.cert_chain()[0]
    );
    assert!(handle.is_running());
    handle.stop();
    assert!(!handle.is_running());
    assert!(handle.take_error().is_none(), "a clean stop is no error");

    // The server goes away before a due renewal: the loop ends and keeps the error.
    let short = client
        .fetch_svid_blocking(&id(GW), Duration::from_secs(60), KeyKind::EcP256)
        .unwrap();
    server.stop();
    let mut params = RefreshParams::default();
    params.initial_backoff = Duration::from_millis(10);
    params.max_failures = Some(2);
    let handle = client
        .keep_fresh_in_background(material.clone(), short, params)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while handle.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!handle.is_running());
    assert!(matches!(
        protocol_err(handle.take_error().unwrap()),
        CaProtocolError::Unreachable { .. }
    ));
    assert!(handle.take_error().is_none(), "taken once");
}

#[test]
fn the_documented_config_file_reads() {
    use meshtls::ca_protocol::{ServerConfig, ServerSettings};
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ca-protocol.md"),
    )
    .unwrap();
    let yaml = page
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ca-protocol.md has a yaml block");
    let mut config = ServerConfig::default();
    ServerSettings::parse(yaml)
        .unwrap()
        .apply(&mut config, &"cluster.local".parse().unwrap())
        .unwrap();
    assert_eq!(config.cluster_id, "east");
    assert_eq!(config.min_ttl, Duration::from_secs(600));
    assert!(config.dns_names.iter().any(|n| n == "localhost"));
    assert_eq!(config.trusted_node_accounts.len(), 2);
    assert!(config.trusted_node_accounts[0].any_identity);
    assert_eq!(
        config.trusted_node_accounts[1].may_impersonate,
        [
            id("spiffe://cluster.local/ns/shop/sa/web"),
            id("spiffe://cluster.local/ns/shop/sa/db")
        ]
    );
}
