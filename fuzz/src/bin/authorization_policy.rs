//! AuthorizationPolicy YAML/JSON: validation, and AuthorizationPolicySet with a TCP and an HTTP
//! check and an explanation (issue 11's parser; seeds from its examples and vectors).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::policy::authorization::{Request, validate_authorization_policy};
use meshtls::{AuthorizationPolicySet, MeshConfig, SpiffeId};
use std::sync::OnceLock;

fn mesh() -> &'static MeshConfig {
    static MESH: OnceLock<MeshConfig> = OnceLock::new();
    MESH.get_or_init(|| {
        MeshConfig::from_yaml("trustDomain: cluster.local\ntrustDomainAliases: [old.example]\n")
            .unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    if let Err(e) = validate_authorization_policy(s) {
        assert!(e.to_string().len() < 8192, "unbounded message");
    }
    match AuthorizationPolicySet::from_yaml(s, mesh()) {
        Ok(set) => {
            let labels = [("app", "api"), ("version", "v1")];
            let Ok(peer) =
                SpiffeId::new("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")
            else {
                return;
            };
            let tcp = Request::tcp(8080).with_peer(&peer);
            let http = Request::tcp(8080)
                .with_peer(&peer)
                .with_http("GET", "/api/v1/items")
                .with_host("api.demo.svc.cluster.local");
            for ns in ["istio-system", "demo", "shop"] {
                let _ = set.check(ns, &labels, &tcp);
                let _ = set.check(ns, &labels, &http);
                let _ = set.explain(ns, &labels, &http);
            }
        }
        Err(e) => assert!(e.to_string().len() < 8192, "unbounded message"),
    }
});
