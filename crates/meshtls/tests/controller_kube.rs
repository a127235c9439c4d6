#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The controller embedded in Rust (`meshtls::controller::Controller`, feature `kube`) against
//! a real kube-apiserver and etcd built from their published Go modules by
//! scripts/kube-apiserver.sh (.ci/run builds them; without them this test says "skipped", and
//! fails under CI=true).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use meshtls::ca::{CaParams, KeyKind, MeshCa};
use meshtls::controller::{
    ANNOTATION_IDENTITY, CertSource, Controller, ControllerConfig, LeaseConfig, SecretSpec,
};
use meshtls::{Svid, TrustDomain};

mod kube_support;
use kube_support::{ApiServer, kube_config, start};

async fn client(server: &ApiServer) -> kube::Client {
    kube::Client::try_from(kube_config(server).await).unwrap()
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_controller_reconciles_leads_and_releases_its_lease() {
    let Some(server) = start("kube") else { return };
    let client = client(&server).await;
    for ns in ["rust-mesh", "rust-gw"] {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let body: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        namespaces
            .create(&PostParams::default(), &body)
            .await
            .unwrap();
    }
    // The mesh: Istio's plug-in CA Secret as meshtls renders it, and the istio ConfigMap.
    let mut params = CaParams::new(TrustDomain::new("cluster.local").unwrap());
    params.key = KeyKind::EcP256;
    let ca = MeshCa::create(&params).unwrap();
    let cacerts: Secret = serde_json::from_str(
        &ca.to_cacerts_secret("rust-mesh")
            .unwrap()
            .to_json()
            .unwrap(),
    )
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "rust-mesh")
        .create(&PostParams::default(), &cacerts)
        .await
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "istio"},
        "data": {"mesh": "trustDomain: cluster.local\n"},
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "rust-mesh")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();

    let source = CertSource::Cacerts {
        namespace: "rust-mesh".into(),
        name: "cacerts".into(),
    };
    let spec = SecretSpec::new(
        "gw-cert",
        "rust-gw",
        "rust-gw",
        "alb-gateway",
        &source.name(),
    )
    .unwrap();
    let mut config = ControllerConfig::new(spec, source);
    config.mesh_namespace = "rust-mesh".into();
    config.lease = Some(LeaseConfig {
        namespace: "rust-gw".into(),
        name: "meshtls-controller".into(),
        identity: "rust-a".into(),
        duration: Duration::from_secs(2),
    });
    let controller = Controller::new(client.clone(), config.clone());

    // One reconcile writes; the next finds nothing to do.
    let first = controller.reconcile_once().await.unwrap();
    assert_eq!(
        (first.result, first.reason, first.wrote),
        ("write", Some("missing"), true)
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "rust-gw");
    let s = secrets.get("gw-cert").await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = s.data.unwrap();
    let svid = Svid::from_pem(
        std::str::from_utf8(&data["tls.crt"].0).unwrap(),
        std::str::from_utf8(&data["tls.key"].0).unwrap(),
    )
    .unwrap();
    assert_eq!(
        svid.spiffe_id().as_str(),
        "spiffe://cluster.local/ns/rust-gw/sa/alb-gateway"
    );
    assert_eq!(
        s.metadata.annotations.unwrap()[ANNOTATION_IDENTITY],
        "spiffe://cluster.local/ns/rust-gw/sa/alb-gateway"
    );
    assert_eq!(
        std::str::from_utf8(&data["ca.crt"].0).unwrap(),
        ca.root_cert_pem()
    );
    let second = controller.reconcile_once().await.unwrap();
    assert_eq!((second.result, second.wrote), ("nothing", false));

    // Running: takes the Lease, restores a deleted Secret, releases the Lease on shutdown.
    let status = controller.status();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller.run(async move {
        let _ = stop_rx.await;
    }));
    let leases: Api<Lease> = Api::namespaced(client.clone(), "rust-gw");
    let holder = || {
        let leases = leases.clone();
        async move {
            leases
                .get_opt("meshtls-controller")
                .await
                .unwrap()
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity)
        }
    };
    wait_for("the lease", Duration::from_secs(10), || async {
        holder().await.as_deref() == Some("rust-a")
    })
    .await;
    assert!(status.is_leader());
    secrets
        .delete("gw-cert", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the secret restored", Duration::from_secs(10), || async {
        secrets.get_opt("gw-cert").await.unwrap().is_some()
    })
    .await;
    wait_for("ready", Duration::from_secs(5), || async {
        status.is_ready()
    })
    .await;
    assert!(status.writes() >= 1);
    assert!(
        status
            .metrics_text()
            .contains("meshtls_controller_leader 1\n")
    );
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(holder().await, None, "the lease was not released");
    drop(server);
}
