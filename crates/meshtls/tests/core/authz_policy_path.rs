//! The path check on a cluster dump: the seed case (the AGC gateway to a STRICT namespace),
//! plaintext clients, mesh workloads with DestinationRules and auto mTLS, trust domains.

use meshtls::path::{Caller, Destination, Mesh, PathStep, Transport};
use meshtls::policy::MtlsMode;

const GW: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

fn dump(extra: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "List", "items": [
  {{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
   "metadata": {{"name": "default", "namespace": "demo", "creationTimestamp": "2024-01-01T00:00:00Z"}},
   "spec": {{"mtls": {{"mode": "STRICT"}}}}}},
  {{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
   "metadata": {{"name": "default", "namespace": "legacy"}},
   "spec": {{"mtls": {{"mode": "DISABLE"}}}}}},
  {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "istio", "namespace": "istio-system"}},
   "data": {{"mesh": "trustDomain: cluster.local\ntrustDomainAliases: [old.example]\n"}}}}
  {extra}
]}}"#
    )
}

const ALLOW_GW: &str = r#",{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
   "metadata": {"name": "allow-gateway", "namespace": "demo"},
   "spec": {"selector": {"matchLabels": {"app": "api"}},
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/azure-alb-system/sa/alb-controller"]}}]}]}}"#;
const ALLOW_WEB: &str = r#",{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
   "metadata": {"name": "allow-web", "namespace": "demo"},
   "spec": {"selector": {"matchLabels": {"app": "api"}},
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]}]}}"#;

fn api() -> Destination {
    Destination::new("demo", [("app", "api")], 8080)
}

#[test]
fn seed_gateway_to_strict_namespace() {
    let gw = Caller::external(GW).unwrap();
    // No AuthorizationPolicy: STRICT takes the gateway's mTLS and nothing refuses it.
    let r = Mesh::from_dump(&dump(""), None).unwrap().check(&gw, &api());
    assert!(r.allowed(), "{}", r.explanation().join("\n"));
    assert_eq!(r.mode().mode(), MtlsMode::Strict);
    assert_eq!(r.transport(), Transport::Mtls);
    assert_eq!(r.step().kind(), "no-allow-policy");
    // An ALLOW policy naming it.
    let r = Mesh::from_dump(&dump(ALLOW_GW), None)
        .unwrap()
        .check(&gw, &api());
    assert!(r.allowed());
    assert_eq!(r.step().kind(), "allowed");
    assert!(
        r.reason().contains("demo/allow-gateway rule 0"),
        "{}",
        r.reason()
    );
    // An ALLOW policy that names someone else.
    let r = Mesh::from_dump(&dump(ALLOW_WEB), None)
        .unwrap()
        .check(&gw, &api());
    assert!(!r.allowed());
    assert_eq!(r.step().kind(), "no-allow-matched");
    let text = r.explanation().join("\n");
    assert!(text.contains("2. mTLS mode of port 8080: STRICT"), "{text}");
    assert!(
        text.contains("3. trust domain cluster.local: accepted"),
        "{text}"
    );
    assert!(text.contains("ALLOW demo/allow-web"), "{text}");
    assert!(text.contains("result: refused"), "{text}");
}

#[test]
fn plaintext_refused_by_strict_accepted_by_permissive() {
    let mesh = Mesh::from_dump(&dump(""), None).unwrap();
    let r = mesh.check(&Caller::Plaintext, &api());
    assert!(!r.allowed());
    assert!(
        matches!(r.step(), PathStep::Mode { mode: MtlsMode::Strict, policy: Some(p), .. } if p.as_str() == "demo/default")
    );
    assert!(r.authorization().is_none());
    let r = mesh.check(
        &Caller::Plaintext,
        &Destination::new("shop", [("app", "web")], 8080),
    );
    assert!(r.allowed(), "no policy in shop: PERMISSIVE");
    // ...but an ALLOW policy naming principals refuses a plaintext caller.
    let r = Mesh::from_dump(&dump(ALLOW_GW), None).unwrap().check(
        &Caller::Plaintext,
        &Destination::new("demo", [("app", "api")], 8080),
    );
    assert_eq!(r.step().kind(), "mode");
}

#[test]
fn trust_domains() {
    let mesh = Mesh::from_dump(&dump(ALLOW_GW), None).unwrap();
    let foreign =
        Caller::external("spiffe://foreign.example/ns/azure-alb-system/sa/alb-controller").unwrap();
    let r = mesh.check(&foreign, &api());
    assert!(
        matches!(r.step(), PathStep::TrustDomain { trust_domain } if trust_domain == "foreign.example")
    );
    // An alias is accepted and matches the cluster.local principal (alias expansion).
    let alias =
        Caller::external("spiffe://old.example/ns/azure-alb-system/sa/alb-controller").unwrap();
    let r = mesh.check(&alias, &api());
    assert!(r.allowed(), "{}", r.explanation().join("\n"));
}

#[test]
fn mtls_to_a_disable_port() {
    let mesh = Mesh::from_dump(&dump(""), None).unwrap();
    let r = mesh.check(
        &Caller::external(GW).unwrap(),
        &Destination::new("legacy", [("app", "old")], 8080),
    );
    assert!(
        matches!(
            r.step(),
            PathStep::Mode {
                mode: MtlsMode::Disable,
                ..
            }
        ),
        "{:?}",
        r.step()
    );
    // A mesh workload's auto mTLS sends plaintext to a DISABLE namespace: fine.
    let web = Caller::workload("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    let r = mesh.check(&web, &Destination::new("legacy", [("app", "old")], 8080));
    assert!(r.allowed());
    assert_eq!(r.transport(), Transport::Plaintext);
}

#[test]
fn destination_rules_decide_what_a_workload_sends() {
    let dr = |ns: &str, host: &str, mode: &str| {
        format!(
            r#",{{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
   "metadata": {{"name": "dr-{ns}", "namespace": "{ns}"}},
   "spec": {{"host": "{host}", "trafficPolicy": {{"tls": {{"mode": "{mode}"}},
     "portLevelSettings": [{{"port": {{"number": 9090}}, "tls": {{"mode": "ISTIO_MUTUAL"}}}}]}}}}}}"#
        )
    };
    let web = Caller::workload("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    let to = api().with_service("api");
    // Auto mTLS: mesh mTLS, accepted by STRICT.
    let r = Mesh::from_dump(&dump(""), None).unwrap().check(&web, &to);
    assert!(r.allowed());
    assert_eq!(r.transport(), Transport::Mtls);
    // A DestinationRule in the caller's namespace with DISABLE: plaintext, refused by STRICT.
    let r = Mesh::from_dump(
        &dump(&dr("shop", "api.demo.svc.cluster.local", "DISABLE")),
        None,
    )
    .unwrap()
    .check(&web, &to);
    assert!(
        matches!(
            r.step(),
            PathStep::Mode {
                mode: MtlsMode::Strict,
                transport: Transport::Plaintext,
                ..
            }
        ),
        "{:?}",
        r.step()
    );
    assert!(
        r.explanation()
            .iter()
            .any(|l| l.contains("DestinationRule shop/dr-shop"))
    );
    // Its port-level ISTIO_MUTUAL on 9090 wins there.
    let mesh = Mesh::from_dump(
        &dump(&dr("shop", "api.demo.svc.cluster.local", "DISABLE")),
        None,
    )
    .unwrap();
    let r = mesh.check(
        &web,
        &Destination::new("demo", [("app", "api")], 9090).with_service("api"),
    );
    assert_eq!(r.transport(), Transport::Mtls);
    // A short host is relative to the DestinationRule's namespace; SIMPLE is TLS of its own.
    let r = Mesh::from_dump(&dump(&dr("demo", "api", "SIMPLE")), None)
        .unwrap()
        .check(&web, &to);
    assert!(
        matches!(r.step(), PathStep::ClientTls { .. }),
        "{:?}",
        r.step()
    );
    // A wildcard in the root namespace.
    let r = Mesh::from_dump(
        &dump(&dr("istio-system", "*.demo.svc.cluster.local", "DISABLE")),
        None,
    )
    .unwrap()
    .check(&web, &to);
    assert_eq!(r.transport(), Transport::Plaintext);
    // The caller's own namespace wins over the root namespace.
    let both = format!(
        "{}{}",
        dr("istio-system", "*.demo.svc.cluster.local", "DISABLE"),
        dr("shop", "api.demo.svc.cluster.local", "ISTIO_MUTUAL")
    );
    let r = Mesh::from_dump(&dump(&both), None)
        .unwrap()
        .check(&web, &to);
    assert_eq!(r.transport(), Transport::Mtls);
    // A pod without a sidecar gets plaintext from auto mTLS.
    let r = Mesh::from_dump(&dump(""), None).unwrap().check(
        &web,
        &Destination::new(
            "shop",
            [("app", "x"), ("security.istio.io/tlsMode", "disabled")],
            80,
        ),
    );
    assert_eq!(r.transport(), Transport::Plaintext);
}

#[test]
fn mesh_config_argument_overrides_the_dump() {
    let m = Mesh::from_dump(&dump(ALLOW_GW), Some("trustDomain: prod.example\n")).unwrap();
    assert_eq!(m.config().trust_domain().as_str(), "prod.example");
    let r = m.check(&Caller::external(GW).unwrap(), &api());
    assert!(matches!(r.step(), PathStep::TrustDomain { .. }));
    let names = |m: &Mesh| -> Vec<String> {
        m.accepted_trust_domains()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    };
    assert_eq!(names(&m), ["prod.example"]);
    let m = Mesh::from_dump(&dump(""), None).unwrap();
    assert_eq!(m.config().trust_domain_aliases().len(), 1);
    // Computed once from the mesh config, in Istio's order (trust domain, then aliases).
    assert_eq!(names(&m), ["cluster.local", "old.example"]);
    assert_eq!(
        m.accepted_trust_domains(),
        m.config().trust_domains_for_validation().as_slice()
    );
    assert_eq!(m.skipped_documents(), 1, "the ConfigMap");
}

#[test]
fn http_requests_reach_http_rules() {
    let extra = r#",{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
   "metadata": {"name": "deny-admin", "namespace": "demo"},
   "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"], "ports": ["8080"]}}]}]}}"#;
    let mesh = Mesh::from_dump(&dump(extra), None).unwrap();
    let gw = Caller::external(GW).unwrap();
    assert!(mesh.check(&gw, &api().with_http("GET", "/api")).allowed());
    let r = mesh.check(&gw, &api().with_http("GET", "/admin/users"));
    assert!(
        matches!(r.step(), PathStep::Authorization(meshtls::policy::authorization::Step::Denied { policy, rule: 0 }) if policy.as_str() == "demo/deny-admin")
    );
    // TCP: the path is ignored in a DENY rule, so the port alone decides.
    assert!(!mesh.check(&gw, &api()).allowed());
}

/// Which DestinationRule a mesh caller's sidecar uses, as istiod picks it: `exportTo`,
/// `tls` without `mode` (the proto default DISABLE), the most specific wildcard host, and
/// rules bound to other workloads by `workloadSelector`.
#[test]
fn destination_rule_visibility_and_defaults() {
    let dr = |ns: &str, name: &str, host: &str, extra: &str| {
        format!(
            r#",{{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
   "metadata": {{"name": "{name}", "namespace": "{ns}"}},
   "spec": {{"host": "{host}"{extra}}}}}"#
        )
    };
    let disable = r#", "trafficPolicy": {"tls": {"mode": "DISABLE"}}"#;
    let web = Caller::workload("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    let to = api().with_service("api");
    let transport = |objects: &str| {
        let r = Mesh::from_dump(&dump(objects), None)
            .unwrap()
            .check(&web, &to);
        (r.transport(), r.explanation().join("\n"))
    };
    // In the service's namespace, exported only to itself: the shop caller does not see it.
    let (t, why) = transport(&dr(
        "demo",
        "private",
        "api",
        &format!(r#"{disable}, "exportTo": ["."]"#),
    ));
    assert_eq!(t, Transport::Mtls, "{why}");
    // Exported to the caller's namespace by name: used.
    let (t, why) = transport(&dr(
        "demo",
        "to-shop",
        "api",
        &format!(r#"{disable}, "exportTo": ["shop"]"#),
    ));
    assert_eq!(t, Transport::Plaintext, "{why}");
    // `~`: exported nowhere.
    let (t, _) = transport(&dr(
        "demo",
        "hidden",
        "api",
        &format!(r#"{disable}, "exportTo": ["~"]"#),
    ));
    assert_eq!(t, Transport::Mtls);
    // `tls` without `mode` is DISABLE, not auto mTLS.
    let (t, why) = transport(&dr(
        "shop",
        "sni-only",
        "api.demo.svc.cluster.local",
        r#", "trafficPolicy": {"tls": {"sni": "api.example"}}"#,
    ));
    assert_eq!(t, Transport::Plaintext, "{why}");
    // Two wildcards in the root namespace: the longer suffix wins, whatever the order.
    let both = format!(
        "{}{}",
        dr(
            "istio-system",
            "a-narrow",
            "*.demo.svc.cluster.local",
            disable
        ),
        dr(
            "istio-system",
            "b-broad",
            "*.svc.cluster.local",
            r#", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}"#
        )
    );
    let (t, why) = transport(&both);
    assert_eq!(t, Transport::Plaintext, "{why}");
    assert!(why.contains("istio-system/a-narrow"), "{why}");
    // A rule for other client workloads (workloadSelector) is not used for this caller.
    let (t, why) = transport(&dr(
        "shop",
        "for-batch",
        "api.demo.svc.cluster.local",
        &format!(r#"{disable}, "workloadSelector": {{"matchLabels": {{"app": "batch"}}}}"#),
    ));
    assert_eq!(t, Transport::Mtls, "{why}");
}
