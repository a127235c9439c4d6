#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! meshtls's Workload API client against SPIRE's own agent and server (v1.13.3, built from the
//! published Go module by scripts/build-spiffe-peers.sh): X.509-SVIDs and bundles, JWT-SVIDs
//! minted by SPIRE and validated by meshtls's policy with SPIRE's JWT bundle, a rotation
//! reaching running rustls configs, an mTLS handshake between two configs fed by X509Source,
//! and the error paths (a wrong socket, a caller without an entry).

#[path = "spire_support/mod.rs"]
mod spire_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use meshtls::error::{StatusCode, WorkloadClientError};
use meshtls::jwt::JwtPolicy;
use meshtls::tls::{ClientConfigBuilder, ServerConfigBuilder};
use meshtls::workload_api::{
    Endpoint, JwtSource, SourceOptions, SvidSelector, WorkloadApiClient, X509Source,
};
use meshtls::{Error, SpiffeId, TrustBundle, TrustDomain};
use spire_support::{Spire, TRUST_DOMAIN};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client_err(e: Error) -> WorkloadClientError {
    match e {
        Error::WorkloadClient(e) => e,
        other => panic!("not a workload client error: {other:?}"),
    }
}

fn id(path: &str) -> SpiffeId {
    SpiffeId::new(&format!("spiffe://{TRUST_DOMAIN}{path}")).unwrap()
}

async fn client(spire: &Spire) -> WorkloadApiClient {
    WorkloadApiClient::connect(Endpoint::parse(&spire.agent_address()).unwrap())
        .await
        .unwrap()
}

#[test]
fn x509_svid_bundle_and_jwt_from_spire() {
    let Some(spire) = Spire::start("x509") else {
        return;
    };
    let web = id("/web");
    let db = id("/db");
    spire.entry_for_me(web.as_str(), &["-hint", "web-hint"]);
    spire.entry_for_me(db.as_str(), &["-hint", "db-hint", "-dns", "db.local"]);
    spire.wait_served(web.as_str());
    spire.wait_served(db.as_str());
    rt().block_on(async {
        let client = client(&spire).await;
        let ctx = client.fetch_x509_context().await.unwrap();
        let mut ids: Vec<String> = ctx
            .svids()
            .iter()
            .map(|s| s.spiffe_id().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, [db.to_string(), web.to_string()]);
        // The own trust domain's bundle is SPIRE's CA, as `spire-server bundle show` prints it.
        let td = TrustDomain::new(TRUST_DOMAIN).unwrap();
        let want = TrustBundle::from_pem(td.clone(), &spire.bundle_pem()).unwrap();
        assert_eq!(ctx.bundles().get(&td).unwrap().roots(), want.roots());
        // Selection by hint and by SPIFFE ID.
        let by_hint = ctx.select(&SvidSelector::Hint("db-hint".into())).unwrap();
        assert_eq!(by_hint.spiffe_id(), &db);
        assert_eq!(by_hint.hint(), "db-hint");
        let by_id = ctx.select(&SvidSelector::SpiffeId(web.clone())).unwrap();
        assert_eq!(by_id.hint(), "web-hint");
        let err = ctx.select(&SvidSelector::Hint("nope".into())).unwrap_err();
        assert!(err.to_string().contains("db-hint"), "{err}");
        // Every SVID verifies against the bundle by meshtls's own SVID rules.
        for s in ctx.svids() {
            let verified = meshtls::verify_svid(
                s.svid().cert_chain_der(),
                ctx.bundles(),
                rustls_pki_types::UnixTime::now(),
            )
            .unwrap();
            assert_eq!(verified.spiffe_id(), s.spiffe_id());
        }
        // FetchX509Bundles gives the same roots.
        let bundles = client.fetch_x509_bundles().await.unwrap();
        assert_eq!(bundles.get(&td).unwrap().roots(), want.roots());

        // JWT: SPIRE mints, meshtls validates with SPIRE's JWT bundle (FetchJWTBundles).
        let jwt_bundles = client.fetch_jwt_bundles().await.unwrap();
        assert!(!jwt_bundles.get(&td).unwrap().keys().is_empty());
        let token = client
            .fetch_jwt_svid(&["billing"], &SvidSelector::SpiffeId(db.clone()))
            .await
            .unwrap();
        assert_eq!(token.spiffe_id, db);
        let svid = meshtls::jwt::validate(
            &token.token,
            &jwt_bundles,
            &JwtPolicy::new(["billing"]).unwrap(),
        )
        .unwrap();
        assert_eq!(svid.spiffe_id(), &db);
        let err = meshtls::jwt::validate(
            &token.token,
            &jwt_bundles,
            &JwtPolicy::new(["payments"]).unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("audience"), "{err}");
        // Every SVID of the caller when no ID is asked for.
        let all = client.fetch_jwt_svids(&["billing"], None).await.unwrap();
        assert_eq!(all.len(), 2);
        // And SPIRE validates it too (ValidateJWTSVID), returning the claims.
        let validated = client
            .validate_jwt_svid(&token.token, "billing")
            .await
            .unwrap();
        assert_eq!(validated.spiffe_id, db);
        assert_eq!(validated.claims["sub"], db.as_str());
        let err = client_err(
            client
                .validate_jwt_svid(&token.token, "payments")
                .await
                .unwrap_err(),
        );
        assert_eq!(err.code(), Some(StatusCode::InvalidArgument), "{err}");

        // The JWT source: bundles kept current, local validation, fetch by selector.
        let source = JwtSource::start(
            client.clone(),
            SourceOptions {
                selector: SvidSelector::Hint("web-hint".into()),
                ..SourceOptions::default()
            },
        )
        .await
        .unwrap();
        let minted = source.fetch_svid(&["audit"]).await.unwrap();
        assert_eq!(minted.spiffe_id, web);
        let ok = source
            .validate(&minted.token, &JwtPolicy::new(["audit"]).unwrap())
            .unwrap();
        assert_eq!(ok.spiffe_id(), &web);
    });
}

/// A one-shot mTLS server on loopback: accepts one connection, reads a line, answers with the
/// client's SPIFFE ID.
fn serve_once(
    config: meshtls::tls::MtlsServerConfig,
) -> (u16, std::thread::JoinHandle<Result<String, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut conn = config.new_connection().map_err(|e| e.to_string())?;
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
        let peer = meshtls::tls::peer_spiffe_id(tls.conn).map_err(|e| e.to_string())?;
        tls.write_all(peer.as_str().as_bytes())
            .map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Ok(peer.to_string())
    });
    (port, handle)
}

/// Connects with `config` and returns the server's SPIFFE ID and what it answered.
fn call(config: &meshtls::tls::MtlsClientConfig, port: u16) -> Result<(String, String), String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut conn = config.connect(None).map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(b"hello").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    let server = meshtls::tls::peer_spiffe_id(tls.conn).map_err(|e| e.to_string())?;
    Ok((server.to_string(), answer))
}

#[test]
fn mtls_between_two_x509_sources_and_rotation() {
    let Some(spire) = Spire::start("mtls") else {
        return;
    };
    let server_id = id("/server");
    let client_id = id("/client");
    let server_entry = spire.entry_for_me(server_id.as_str(), &["-hint", "server"]);
    spire.entry_for_me(client_id.as_str(), &["-hint", "client"]);
    spire.wait_served(server_id.as_str());
    spire.wait_served(client_id.as_str());
    let rt = rt();
    let (server_src, client_src) = rt.block_on(async {
        let c = client(&spire).await;
        let pick = |hint: &str| SourceOptions {
            selector: SvidSelector::Hint(hint.into()),
            ..SourceOptions::default()
        };
        (
            X509Source::start(c.clone(), pick("server")).await.unwrap(),
            X509Source::start(c, pick("client")).await.unwrap(),
        )
    });
    assert_eq!(server_src.svid().unwrap().spiffe_id(), &server_id);
    let server_cfg = ServerConfigBuilder::new(server_src.tls_material())
        .build()
        .unwrap();
    let client_cfg = ClientConfigBuilder::new(client_src.tls_material())
        .expect_server_ids([server_id.clone()])
        .build()
        .unwrap();
    let (port, server) = serve_once(server_cfg.clone());
    let (seen_server, answer) = call(&client_cfg, port).unwrap();
    assert_eq!(seen_server, server_id.to_string());
    assert_eq!(answer, client_id.to_string());
    assert_eq!(server.join().unwrap().unwrap(), client_id.to_string());

    // Rotation: the entry changes (a DNS name added), SPIRE re-signs at the agent's next sync
    // and pushes the new SVID on the open stream; the running server config presents it.
    let before = server_src.svid().unwrap().svid().serial_hex();
    let generation = server_src.generation();
    spire.update_entry(
        &server_entry,
        server_id.as_str(),
        &["-hint", "server", "-dns", "rotated.local"],
    );
    rt.block_on(async {
        server_src
            .wait_for_update(generation, Duration::from_secs(60))
            .await
            .unwrap();
    });
    let after = server_src.svid().unwrap().svid().serial_hex();
    assert_ne!(before, after, "the SVID was not re-issued");
    let (port, server) = serve_once(server_cfg);
    call(&client_cfg, port).unwrap();
    server.join().unwrap().unwrap();
    // The handshake presented the new certificate: the material's current leaf is the new one.
    let leaf = server_src.tls_material().spiffe_id();
    assert_eq!(leaf, server_id);
    let current_leaf = server_src.svid().unwrap().svid().leaf_der().clone();
    assert!(
        x509_has_dns(current_leaf.as_ref(), "rotated.local"),
        "the rotated SVID carries the new DNS name"
    );
    let _ = Arc::new(client_src);
}

fn x509_has_dns(der: &[u8], name: &str) -> bool {
    der.windows(name.len()).any(|w| w == name.as_bytes())
}

#[test]
fn errors_are_typed() {
    let Some(spire) = Spire::start("errors") else {
        return;
    };
    rt().block_on(async {
        // A wrong socket: a typed connect error naming the address.
        let missing = spire.dir().join("nope.sock");
        let err = client_err(
            WorkloadApiClient::connect(Endpoint::unix(&missing).unwrap())
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(err, WorkloadClientError::Connect { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("nope.sock"), "{err}");

        // No entry for this process: SPIRE answers PermissionDenied; a source retries it with
        // backoff, then reports it.
        let c = client(&spire).await;
        let err = client_err(c.fetch_x509_context().await.unwrap_err());
        assert_eq!(err.code(), Some(StatusCode::PermissionDenied), "{err}");
        assert!(err.is_retryable());
        let started = std::time::Instant::now();
        let err = client_err(
            X509Source::start(
                c.clone(),
                SourceOptions {
                    initial_timeout: Duration::from_secs(2),
                    backoff_initial: Duration::from_millis(50),
                    ..SourceOptions::default()
                },
            )
            .await
            .unwrap_err(),
        );
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(err.code(), Some(StatusCode::PermissionDenied), "{err}");
        // While a source retries, the entry appears: the source gets the SVID without restart.
        let late = id("/late");
        let pending = tokio::spawn({
            let c = c.clone();
            async move {
                X509Source::start(
                    c,
                    SourceOptions {
                        initial_timeout: Duration::from_secs(60),
                        backoff_initial: Duration::from_millis(100),
                        backoff_max: Duration::from_secs(1),
                        ..SourceOptions::default()
                    },
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        spire.entry_for_me(late.as_str(), &[]);
        let source = pending.await.unwrap().unwrap();
        assert_eq!(source.svid().unwrap().spiffe_id(), &late);
        assert!(source.status().updates >= 1);
    });
}
