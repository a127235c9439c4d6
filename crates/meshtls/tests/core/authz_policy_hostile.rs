//! Hostile input to every AuthorizationPolicy and path-check reader ends in a typed error in
//! bounded time, never a panic; hostile-but-valid policies evaluate in bounded time.

use meshtls::MeshConfig;
use meshtls::path::{Caller, Destination, Mesh};
use meshtls::policy::authorization::{
    AuthorizationPolicy, AuthorizationPolicySet, Request, check_manifests,
    validate_authorization_policy,
};

fn refuse_everywhere(text: &str) {
    let mesh = MeshConfig::default();
    let results: Vec<Result<(), meshtls::Error>> = vec![
        AuthorizationPolicySet::from_yaml(text, &mesh).map(|_| ()),
        check_manifests(text).map(|_| ()),
        validate_authorization_policy(text).map(|_| ()),
        AuthorizationPolicy::from_yaml(text).map(|_| ()),
        Mesh::from_dump(text, None).map(|_| ()),
    ];
    for r in results {
        match r {
            Err(
                e @ (meshtls::Error::Manifest(_)
                | meshtls::Error::AuthorizationPolicy(_)
                | meshtls::Error::Policy(_)
                | meshtls::Error::MeshConfig(_)),
            ) => {
                let msg = e.to_string();
                assert!(msg.len() < 2048, "{} bytes", msg.len());
            }
            other => panic!("expected a typed refusal, got {other:?}"),
        }
    }
}

#[test]
fn billion_laughs() {
    let bomb = crate::manifest_hostile::billion_laughs_text();
    refuse_everywhere(&bomb);
}

#[test]
fn deep_nesting_and_size() {
    refuse_everywhere(&"[".repeat(100_000));
    refuse_everywhere(&format!("{}{}", "{\"a\":".repeat(10_000), "1"));
    let huge = format!(
        "kind: AuthorizationPolicy\nx: \"{}\"\n",
        "a".repeat(17 * 1024 * 1024)
    );
    refuse_everywhere(&huge);
}

#[test]
fn wrong_shapes_name_the_object() {
    for spec in [
        "rules: 5",
        "rules: [{from: {source: {}}}]",
        "rules: [{from: [{source: {principals: [1, 2]}}]}]",
        "action: [ALLOW]",
        "selector: {matchLabels: [a]}",
        "rules: [null]",
        "provider: 7",
    ] {
        let text = format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: h, namespace: foo}}\nspec: {{{spec}}}\n"
        );
        let err = AuthorizationPolicySet::from_yaml(&text, &MeshConfig::default()).unwrap_err();
        assert!(err.to_string().contains("foo/h"), "{spec}: {err}");
        let summary = check_manifests(&text).unwrap();
        assert!(!summary.reports[0].is_valid(), "{spec}");
    }
    // Not objects at all.
    for doc in [
        "- 1\n- 2\n",
        "just text\n",
        "kind: 7\n",
        "{\"items\": 3, \"kind\": \"List\"}",
    ] {
        refuse_everywhere(doc);
    }
}

#[test]
fn hostile_valid_policies_evaluate_quickly() {
    // Many {**} in a template, a long path, long principals, thousands of rules.
    let stars = "/{**}".repeat(200);
    let mut rules = String::new();
    for i in 0..3000 {
        rules.push_str(&format!(
            "  - from: [{{source: {{principals: [\"{}{i}\"], namespaces: [\"*a*a*a*a*a*\"]}}}}]\n",
            "x".repeat(200)
        ));
    }
    let text = format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: t, namespace: foo}}\nspec:\n  rules:\n  - to: [{{operation: {{paths: [\"{stars}/end\"]}}}}]\n{rules}"
    );
    let set = AuthorizationPolicySet::from_yaml(&text, &MeshConfig::default()).unwrap();
    let path = format!("{}/end", "/seg".repeat(2000));
    let req = Request::tcp(80)
        .with_principal(&format!("td/ns/{}/sa/x", "a".repeat(5000)))
        .with_http("GET", &path)
        .with_host(&"é".repeat(100));
    // The time it takes is measured by the bench's hardening rows, not asserted here.
    let v = set.explain("foo", &[("app", "x")], &req);
    assert!(v.allowed(), "{}", v.reason());
    let v = set.check("foo", &[("app", "x")], &req);
    assert!(v.allowed());
}

#[test]
fn non_ascii_hosts_and_headers_do_not_panic() {
    let text = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: t, namespace: foo}\nspec:\n  rules:\n  - to: [{operation: {hosts: [\"*é.example\", \"ÄB*\"]}}]\n";
    let set = AuthorizationPolicySet::from_yaml(text, &MeshConfig::default()).unwrap();
    for host in ["é", "ä.example", "äb.example", "x:99", "", ":", "ÄBC"] {
        let _ = set.explain("foo", &[("a", "b")], &Request::tcp(80).with_host(host));
    }
    assert!(
        set.check("foo", &[("a", "b")], &Request::tcp(80).with_host("ÄBc"))
            .allowed()
    );
}

#[test]
fn path_check_with_a_broken_destination_rule() {
    let dump = r#"{"kind": "List", "apiVersion": "v1", "items": [
      {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
       "metadata": {"name": "d", "namespace": "demo"},
       "spec": {"host": "api", "trafficPolicy": {"tls": {"mode": "SOMETIMES"}}}}]}"#;
    let err = Mesh::from_dump(dump, None).unwrap_err();
    assert!(
        err.to_string().contains("demo/d") && err.to_string().contains("SOMETIMES"),
        "{err}"
    );
    let ok = dump.replace("SOMETIMES", "DISABLE");
    let mesh = Mesh::from_dump(&ok, None).unwrap();
    let caller = Caller::workload("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    let r = mesh.check(
        &caller,
        &Destination::new("demo", [("app", "api")], 8080).with_service("api"),
    );
    assert!(
        r.allowed(),
        "PERMISSIVE takes the plaintext the DestinationRule asks for"
    );
    assert_eq!(r.transport().as_str(), "plaintext");
}

#[test]
fn principal_expansion_past_the_limit_is_a_typed_error() {
    // principals x (trust domains + 1) over identity::MAX_EXPANSION.
    let n = meshtls::identity::MAX_EXPANSION / 2 + 1;
    let principals: Vec<String> = (0..n)
        .map(|i| format!("cluster.local/ns/a/sa/s{i}"))
        .collect();
    let doc = serde_json::json!({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "big", "namespace": "foo"},
        "spec": {"rules": [{"from": [{"source": {"principals": principals}}]}]},
    });
    let err =
        AuthorizationPolicySet::from_yaml(&doc.to_string(), &MeshConfig::default()).unwrap_err();
    assert!(
        matches!(&err, meshtls::Error::AuthorizationPolicy(meshtls::error::AuthorizationPolicyError::Limit { object, .. }) if object == "foo/big"),
        "{err}"
    );
    // Half of them fit.
    let small: Vec<String> = (0..n / 2)
        .map(|i| format!("cluster.local/ns/a/sa/s{i}"))
        .collect();
    let doc = serde_json::json!({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "big", "namespace": "foo"},
        "spec": {"rules": [{"from": [{"source": {"principals": small}}]}]},
    });
    let set = AuthorizationPolicySet::from_yaml(&doc.to_string(), &MeshConfig::default()).unwrap();
    let ok = set.check(
        "foo",
        &[("a", "b")],
        &Request::tcp(80).with_principal("cluster.local/ns/a/sa/s7"),
    );
    assert!(ok.allowed());
}
