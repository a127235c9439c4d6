#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! istiod's node authorization of `ImpersonatedIdentity` (`NodeAuthorizer`, feature `kube`)
//! against a real kube-apiserver and etcd (scripts/kube-apiserver.sh; .ci/run builds them;
//! without them this test says "skipped", and fails under CI=true): pods created with
//! `nodeName` set, the node agent's token bound to its pod by the API server's TokenRequest,
//! the issuer keys from the API server's `/openid/v1/jwks`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use meshtls::ca::{CaParams, KeyKind, MeshCa};
use meshtls::ca_protocol::{
    CallContext, IMPERSONATION_FAILURE, IstioCaServer, IstioCertificateRequest, JwtVerifier,
    NodeAccount, NodeAuthorizer, PodWatch, Refusal, ServerConfig,
};
use meshtls::{SpiffeId, TrustDomain};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

mod kube_support;
use kube_support::{kube_config, start};

async fn create<K>(api: &Api<K>, body: serde_json::Value) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let obj: K = serde_json::from_value(body).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

async fn pod(client: &kube::Client, ns: &str, name: &str, sa: &str, node: &str) -> Pod {
    create(
        &Api::<Pod>::namespaced(client.clone(), ns),
        serde_json::json!({
            "metadata": {"name": name},
            "spec": {
                "serviceAccountName": sa,
                "nodeName": node,
                "automountServiceAccountToken": false,
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            },
        }),
    )
    .await
}

/// A token for `ns/sa` from the API server's TokenRequest, bound to `bound` (a pod) when given:
/// the API server then writes the pod's name and uid into the `kubernetes.io` claim.
async fn token(client: &kube::Client, ns: &str, sa: &str, bound: Option<&Pod>) -> String {
    let mut spec = serde_json::json!({"audiences": ["istio-ca"], "expirationSeconds": 600});
    if let Some(p) = bound {
        spec["boundObjectRef"] = serde_json::json!({
            "kind": "Pod", "apiVersion": "v1",
            "name": p.metadata.name, "uid": p.metadata.uid,
        });
    }
    let request = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec,
    });
    let answer: serde_json::Value = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_subresource("token", sa, &PostParams::default(), &request)
        .await
        .unwrap();
    answer["status"]["token"].as_str().unwrap().to_owned()
}

fn ask(server: &IstioCaServer, token: &str, wanted: &str) -> Result<SpiffeId, Refusal> {
    let id = SpiffeId::new(wanted).unwrap();
    let csr = meshtls::Csr::new(&id, &Default::default()).unwrap();
    let mut req = IstioCertificateRequest {
        csr: csr.pem(),
        validity_duration: 3600,
        metadata: None,
    };
    req.set_metadata_string("ImpersonatedIdentity", wanted);
    let bearer = format!("Bearer {token}");
    let ctx = CallContext {
        authorization: Some(&bearer),
        ..Default::default()
    };
    let resp = server.create_certificate(&ctx, &req)?;
    let chain = resp
        .cert_chain
        .iter()
        .flat_map(|c| meshtls::svid::parse_pem_chain(c).unwrap())
        .collect();
    let svid = csr.into_svid(chain).unwrap();
    Ok(svid.spiffe_id().clone())
}

fn refused(r: Result<SpiffeId, Refusal>, why: &str) {
    let refusal = r.expect_err("impersonation should be refused");
    assert_eq!(refusal.code, "UNAUTHENTICATED");
    assert_eq!(refusal.message, IMPERSONATION_FAILURE);
    assert!(
        refusal.reason.contains(why),
        "reason {:?} should contain {why:?}",
        refusal.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_agent_gets_the_identities_of_pods_on_its_own_node() {
    let Some(api_server) = start("nodeauth") else {
        return;
    };
    let config = kube_config(&api_server).await;
    let client = kube::Client::try_from(config.clone()).unwrap();
    for ns in ["na-system", "na-shop"] {
        create(
            &Api::<Namespace>::all(client.clone()),
            serde_json::json!({"metadata": {"name": ns}}),
        )
        .await;
    }
    for (ns, sa) in [
        ("na-system", "ztunnel"),
        ("na-system", "other"),
        ("na-shop", "web"),
        ("na-shop", "db"),
    ] {
        create(
            &Api::<ServiceAccount>::namespaced(client.clone(), ns),
            serde_json::json!({"metadata": {"name": sa}}),
        )
        .await;
    }
    let ztunnel_a = pod(&client, "na-system", "ztunnel-a", "ztunnel", "node-a").await;
    pod(&client, "na-shop", "web-1", "web", "node-a").await;
    pod(&client, "na-shop", "db-1", "db", "node-b").await;

    // The issuer keys as the API server publishes them.
    let jwks = client
        .request_text(
            http::Request::get("/openid/v1/jwks")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut params = CaParams::new(TrustDomain::new("cluster.local").unwrap());
    params.key = KeyKind::EcP256;
    let ca = Arc::new(MeshCa::create(&params).unwrap());
    let nodes = NodeAuthorizer::start(Some(config), PodWatch::default()).unwrap();
    assert!(
        nodes.wait_synced(Duration::from_secs(20)),
        "the pod watch never synced"
    );
    let mut server_config = ServerConfig::default();
    server_config.jwt = Some(JwtVerifier::new(&jwks, ISSUER, &["istio-ca"]).unwrap());
    let ztunnel_id = SpiffeId::new("spiffe://cluster.local/ns/na-system/sa/ztunnel").unwrap();
    server_config.trusted_node_accounts = vec![NodeAccount::any(ztunnel_id)];
    server_config.node_authorizer = Some(nodes.clone());
    let server = IstioCaServer::new(ca, server_config).unwrap();

    let web = "spiffe://cluster.local/ns/na-shop/sa/web";
    let db = "spiffe://cluster.local/ns/na-shop/sa/db";
    let bound = token(&client, "na-system", "ztunnel", Some(&ztunnel_a)).await;
    // A pod of the service account on the caller's node: granted, the certificate names it.
    assert_eq!(ask(&server, &bound, web).unwrap().as_str(), web);
    // Only on another node: refused with istiod's reason.
    refused(
        ask(&server, &bound, db),
        r#"no instances of "na-shop/db" found on node "node-a""#,
    );
    // A token not bound to a pod says nothing of the caller's node.
    let unbound = token(&client, "na-system", "ztunnel", None).await;
    refused(ask(&server, &unbound, web), "shows no pod claims");
    // An account that is not trusted is refused before any pod is looked at.
    let other = token(&client, "na-system", "other", None).await;
    refused(ask(&server, &other, web), "is not a trusted node account");

    // The workload moves in: db on node-a is granted once the watch has seen it.
    pod(&client, "na-shop", "db-2", "db", "node-a").await;
    wait_until("db-2 on node-a granted", || {
        ask(&server, &bound, db).is_ok()
    })
    .await;

    // The pod is deleted: refused once the watch sees it.
    Api::<Pod>::namespaced(client.clone(), "na-shop")
        .delete("web-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_until("web refused after web-1 is deleted", || {
        ask(&server, &bound, web).is_err_and(|r| r.reason.contains("no instances of"))
    })
    .await;

    // The caller's pod re-created under the same name: the old token's uid no longer matches.
    let pods = Api::<Pod>::namespaced(client.clone(), "na-system");
    pods.delete("ztunnel-a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_until("the deleted caller pod is unknown", || {
        ask(&server, &bound, db).is_err_and(|r| r.reason.contains("failed to lookup pod"))
    })
    .await;
    pod(&client, "na-system", "ztunnel-a", "ztunnel", "node-a").await;
    wait_until("the re-created caller pod has another uid", || {
        ask(&server, &bound, db).is_err_and(|r| r.reason.contains("UID does not match"))
    })
    .await;
    drop(server);
    drop(nodes);
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}
