#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Workload API server against rust-spiffe's client (crate `spiffe`, an independent
//! implementation of the standard): X.509 and JWT fetches, a stream across rotations, the
//! bundles, validation through the server, and the refusals.

use std::time::Duration;

use futures_util::StreamExt;
use meshtls::jwt::{JwtBundleSet, JwtPolicy, validate};
use meshtls::workload_api::testing::{InjectedStatus, TestWorkloadApi};
use meshtls::workload_api::{Entry, ListenAddress, Registration, WorkloadApiServer};
use meshtls::{BundleSet, SpiffeId, TrustBundle, TrustDomain, verify_svid};
use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe::WorkloadApiClient;

const TD: &str = "example.org";
const APP: &str = "spiffe://example.org/app";
const ADMIN: &str = "spiffe://example.org/admin";

async fn client(api: &TestWorkloadApi) -> WorkloadApiClient {
    match WorkloadApiClient::connect_to(api.endpoint()).await {
        Ok(c) => c,
        Err(e) => panic!("rust-spiffe cannot connect to {}: {e}", api.endpoint()),
    }
}

fn bundles(api: &TestWorkloadApi) -> BundleSet {
    let td = TrustDomain::new(TD).unwrap();
    BundleSet::new()
        .with_bundle(TrustBundle::new(td, api.ca().root_certs_der().to_vec()).unwrap())
        .unwrap()
}

fn serial_of(chain: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(chain).unwrap();
    cert.raw_serial().to_vec()
}

#[tokio::test]
async fn rust_spiffe_fetches_x509_svids_that_verify_against_the_ca() {
    let api = TestWorkloadApi::builder(TD)
        .unwrap()
        .identity(APP, "app")
        .unwrap()
        .identity(ADMIN, "admin")
        .unwrap()
        .start()
        .await
        .unwrap();
    let c = client(&api).await;
    let svid = c.fetch_x509_svid().await.unwrap();
    assert_eq!(
        svid.spiffe_id().to_string(),
        APP,
        "the first entry is the default"
    );
    assert_eq!(svid.hint(), Some("app"));
    let chain: Vec<CertificateDer<'static>> = svid
        .cert_chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_ref().to_vec()))
        .collect();
    let id = verify_svid(&chain, &bundles(&api), UnixTime::now()).unwrap();
    assert_eq!(id.spiffe_id().as_str(), APP);

    let all = c.fetch_all_x509_svids().await.unwrap();
    let ids: Vec<String> = all.iter().map(|s| s.spiffe_id().to_string()).collect();
    assert_eq!(ids, [APP, ADMIN]);

    let set = c.fetch_x509_bundles().await.unwrap();
    let td = spiffe::TrustDomain::new(TD).unwrap();
    let b = set.get(&td).expect("own trust domain's bundle");
    assert_eq!(
        b.authorities()[0].as_ref(),
        api.ca().root_certs_der()[0].as_ref()
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_rotation_reaches_an_open_rust_spiffe_stream() {
    let api = TestWorkloadApi::builder(TD)
        .unwrap()
        .identity(APP, "")
        .unwrap()
        .start()
        .await
        .unwrap();
    let c = client(&api).await;
    let mut stream = c.stream_x509_contexts().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first message comes at once")
        .unwrap()
        .unwrap();
    let s1 = serial_of(first.default_svid().unwrap().cert_chain()[0].as_ref());
    for _ in 0..2 {
        api.rotate().await;
    }
    let mut seen = vec![s1];
    while seen.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the rotation is pushed")
            .unwrap()
            .unwrap();
        let s = serial_of(next.default_svid().unwrap().cert_chain()[0].as_ref());
        assert_ne!(
            seen.last(),
            Some(&s),
            "a message is sent only when something changed"
        );
        seen.push(s);
    }
    // Withdrawing the identity ends the stream with PermissionDenied.
    api.set_identities(&[]).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends");
    match end {
        Some(Err(spiffe::WorkloadApiError::NoIdentityIssued)) => {}
        other => panic!("expected no identity issued, got {other:?}"),
    }
    api.shutdown().await;
}

#[tokio::test]
async fn jwt_svids_interoperate_with_rust_spiffe() {
    let api = TestWorkloadApi::builder(TD)
        .unwrap()
        .identity(APP, "app")
        .unwrap()
        .start()
        .await
        .unwrap();
    let c = client(&api).await;
    let id = spiffe::SpiffeId::new(APP).unwrap();
    let jwt = c.fetch_jwt_svid(["billing"], Some(&id)).await.unwrap();
    assert_eq!(jwt.spiffe_id().to_string(), APP);
    // meshtls validates the token with the signer's bundle ...
    let set = JwtBundleSet::new().with(api.jwt_signer().bundle());
    let ok = validate(jwt.token(), &set, &JwtPolicy::new(["billing"]).unwrap()).unwrap();
    assert_eq!(ok.spiffe_id().as_str(), APP);
    // ... rust-spiffe validates it with the JWT bundles the server streams (no `use`) ...
    let bundles = c.fetch_jwt_bundles().await.unwrap();
    let parsed = spiffe::JwtSvid::parse_and_validate(jwt.token(), &bundles, &["billing"]).unwrap();
    assert_eq!(parsed.spiffe_id().to_string(), APP);
    // ... and the server validates it for rust-spiffe, refusing another audience.
    let v = c.validate_jwt_token("billing", jwt.token()).await.unwrap();
    assert_eq!(v.spiffe_id().to_string(), APP);
    let err = c
        .validate_jwt_token("payments", jwt.token())
        .await
        .unwrap_err();
    assert!(err.is_invalid_argument(), "{err:?}");
    // A SPIFFE ID the caller is not registered for.
    let other = spiffe::SpiffeId::new(ADMIN).unwrap();
    let err = c
        .fetch_jwt_svid(["billing"], Some(&other))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            spiffe::WorkloadApiError::PermissionDenied(_)
                | spiffe::WorkloadApiError::NoIdentityIssued
        ),
        "{err:?}"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn injected_failures_reach_the_client() {
    let api = TestWorkloadApi::builder(TD)
        .unwrap()
        .identity(APP, "")
        .unwrap()
        .start()
        .await
        .unwrap();
    let c = client(&api).await;
    api.fail_next(InjectedStatus::Unavailable, 1);
    let err = c.fetch_x509_svid().await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("unavailable"),
        "{err}"
    );
    assert!(c.fetch_x509_svid().await.is_ok(), "only one call fails");
    api.fail_all(InjectedStatus::PermissionDenied);
    for _ in 0..2 {
        let err = c.fetch_x509_svid().await.unwrap_err();
        assert!(
            matches!(err, spiffe::WorkloadApiError::NoIdentityIssued),
            "{err:?}"
        );
    }
    api.clear_failures();
    let mut stream = c.stream_x509_contexts().await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    api.interrupt_streams(InjectedStatus::Unavailable).await;
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream is interrupted");
    assert!(matches!(end, Some(Err(_))), "{end:?}");
    api.shutdown().await;
}

fn own_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_unregistered_uid_is_denied_and_tcp_on_loopback_attests_the_uid() {
    let mut params = meshtls::ca::CaParams::new(TrustDomain::new(TD).unwrap());
    params.key = meshtls::ca::KeyKind::EcP256;
    let ca = meshtls::MeshCa::create(&params).unwrap();
    let other = format!("unix:uid:{}", own_uid() + 1);
    let registration = Registration::new(vec![
        Entry::new(SpiffeId::new(APP).unwrap(), [other]).unwrap(),
    ])
    .unwrap();
    let server = WorkloadApiServer::builder(ca)
        .registration(registration)
        .serve(&ListenAddress::parse("tcp://127.0.0.1:0").unwrap())
        .await
        .unwrap();
    let c = WorkloadApiClient::connect_to(server.endpoint())
        .await
        .unwrap();
    let err = c.fetch_x509_svid().await.unwrap_err();
    assert!(
        matches!(err, spiffe::WorkloadApiError::NoIdentityIssued),
        "{err:?}"
    );
    let err = c.fetch_jwt_bundles().await.unwrap_err();
    assert!(
        matches!(err, spiffe::WorkloadApiError::NoIdentityIssued),
        "{err:?}"
    );

    // Registered by uid, the same tcp caller gets its SVID (its uid read from /proc/net/tcp).
    let mine = format!("unix:uid:{}", own_uid());
    server
        .set_registration(
            Registration::new(vec![
                Entry::new(SpiffeId::new(APP).unwrap(), [mine]).unwrap(),
            ])
            .unwrap(),
        )
        .await;
    let svid = c.fetch_x509_svid().await.unwrap();
    assert_eq!(svid.spiffe_id().to_string(), APP);
    server.shutdown().await;
}

#[test]
fn addresses_and_registrations_are_checked() {
    for bad in [
        "unix://relative/path",
        "unix:///",
        "tcp://10.0.0.1:80",
        "tcp://localhost:80",
        "tcp://127.0.0.1:80/path",
        "http://127.0.0.1:80",
        "unix:///tmp/x?y",
    ] {
        let err = ListenAddress::parse(bad).unwrap_err();
        assert!(
            err.to_string().contains(bad.split('?').next().unwrap()),
            "{err}"
        );
    }
    assert_eq!(
        ListenAddress::parse("unix:///run/spire.sock")
            .unwrap()
            .to_string(),
        "unix:///run/spire.sock"
    );
    for (text, needle) in [
        (
            "entries:\n  - spiffe_id: spiffe://example.org/a\n    selectors: []\n",
            "at least one selector",
        ),
        (
            "entries:\n  - spiffe_id: spiffe://example.org/a\n    selectors: [\"k8s:ns:x\"]\n",
            "only unix selectors",
        ),
        (
            "entries:\n  - spiffe_id: spiffe://example.org/a\n    selectors: [\"unix:uid:x\"]\n",
            "decimal",
        ),
        (
            "entries:\n  - spiffe_id: spiffe://example.org/a\n    selectors: [\"unix:path:bin\"]\n",
            "absolute",
        ),
        (
            "entries:\n  - spiffe_id: not-an-id\n    selectors: [\"unix:uid:1\"]\n",
            "not-an-id",
        ),
        (
            "entries:\n  - spiffe_id: spiffe://example.org/a\n    selectorz: []\n",
            "selectorz",
        ),
    ] {
        let err = Registration::from_text(text).unwrap_err();
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    let long = "h".repeat(1025);
    let err = Entry::new(SpiffeId::new(APP).unwrap(), ["unix:uid:1"])
        .unwrap()
        .with_hint(long)
        .unwrap_err();
    assert!(err.to_string().contains("1024"), "{err}");
}
