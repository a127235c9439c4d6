//! The AuthorizationPolicy vectors: one or more per rule of spec/istio-authz.md
//! (tests/data/authz-eval.json), Istio's documented examples (authz-istio-examples.json),
//! the webhook's refusals (authz-validation.json) and the upstream cases of
//! authz-upstream.json (Istio's alias-expansion tests, the sidecar and ztunnel evaluation
//! rules, the path check to ambient pods), each with its source.

use crate::authz_support::{data, labels, mesh, request};
use meshtls::MeshConfig;
use meshtls::identity::{TrustDomain, expand_principals};
use meshtls::path::{Caller, Destination, Mesh};
use meshtls::policy::authorization::{
    AuthorizationPolicySet, DataPlane, Step, Verdict, check_manifests, validate_value,
};
use serde_json::Value;

fn set(policies: &Value, mesh: &MeshConfig) -> AuthorizationPolicySet {
    AuthorizationPolicySet::from_json_values(policies.as_array().unwrap().clone(), mesh).unwrap()
}

/// The verdict against a vector's `expected` (allowed, step, policy, rule); the explanation
/// when they differ.
fn mismatch(name: &str, fast: &Verdict, slow: &Verdict, e: &Value) -> Option<String> {
    let got = (
        fast.allowed(),
        fast.step().kind(),
        fast.step().policy().map(|p| p.to_string()),
        fast.step().rule(),
    );
    let want = (
        e["allowed"].as_bool().unwrap(),
        e["step"].as_str().unwrap(),
        e["policy"].as_str().map(str::to_owned),
        e["rule"].as_u64().map(|r| r as usize),
    );
    (got != want).then(|| {
        format!(
            "{name}: got {got:?}, want {want:?}\n  {}",
            slow.explanation().join("\n  ")
        )
    })
}

#[test]
fn evaluation_vectors() {
    let doc = data("authz-eval.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() > 80);
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let m = mesh(&c["mesh"]);
        let s = set(&c["policies"], &m);
        let ns = c["workload"]["namespace"].as_str().unwrap();
        let l = labels(&c["workload"]["labels"]);
        let r = request(&c["request"]);
        let fast = s.check(ns, &l, &r);
        let slow = s.explain(ns, &l, &r);
        assert_eq!(fast, slow, "{name}: check and explain disagree");
        assert!(fast.explanation().is_empty());
        assert!(slow.explanation().last().unwrap().starts_with("decision: "));
        failures.extend(mismatch(name, &fast, &slow, &c["expected"]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn istio_documented_examples() {
    let doc = data("authz-istio-examples.json");
    let mut n = 0;
    for ex in doc["examples"].as_array().unwrap() {
        let name = ex["name"].as_str().unwrap();
        // The documented policies pass validation too (warnings aside).
        for p in ex["policies"].as_array().unwrap() {
            let r = validate_value(p);
            assert!(r.is_valid(), "{name}: {:?}", r.errors);
        }
        let s = set(&ex["policies"], &mesh(&ex["mesh"]));
        for c in ex["checks"].as_array().unwrap() {
            n += 1;
            let v = s.explain(
                c["workload"]["namespace"].as_str().unwrap(),
                &labels(&c["workload"]["labels"]),
                &request(&c["request"]),
            );
            let why = c["why"].as_str().unwrap();
            match c["allowed"].as_bool() {
                Some(want) => assert_eq!(
                    v.allowed(),
                    want,
                    "{name}: {why}\n{}",
                    v.explanation().join("\n")
                ),
                None => assert!(
                    matches!(v.step(), Step::External { provider, .. } if provider == "sample-ext-authz-grpc"),
                    "{name}: {why}: {:?}",
                    v.step()
                ),
            }
        }
    }
    assert!(n >= 40, "{n} documented checks");
}

#[test]
fn webhook_refusals_and_warnings() {
    let doc = data("authz-validation.json");
    let mut failures = Vec::new();
    for c in doc["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let r = validate_value(&c["object"]);
        if r.is_valid() != c["valid"].as_bool().unwrap() {
            failures.push(format!(
                "{name}: valid={} errors={:?}",
                r.is_valid(),
                r.errors
            ));
            continue;
        }
        if let Some(want) = c["error"].as_str() {
            let hit = r.errors.iter().find(|v| v.message.contains(want));
            match hit {
                None => failures.push(format!(
                    "{name}: no error containing {want:?} in {:?}",
                    r.errors
                )),
                Some(v) => {
                    if let Some(p) = c["path"].as_str() {
                        if v.path != p {
                            failures.push(format!("{name}: path {:?}, want {p:?}", v.path));
                        }
                    }
                    if let Some(rule) = c["rule"].as_str() {
                        if v.rule.as_str() != rule {
                            failures.push(format!("{name}: rule {}, want {rule}", v.rule));
                        }
                    }
                }
            }
            assert_eq!(
                r.object,
                "foo/p".replace(
                    "/p",
                    &format!("/{}", c["object"]["metadata"]["name"].as_str().unwrap())
                )
            );
        }
        match c["warning"].as_str() {
            Some(w) => {
                if !r.warnings.iter().any(|v| v.message.contains(w)) {
                    failures.push(format!("{name}: no warning {w:?} in {:?}", r.warnings));
                }
            }
            None => {
                if !r.warnings.is_empty() && c["valid"].as_bool().unwrap() {
                    failures.push(format!("{name}: unexpected warnings {:?}", r.warnings));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn streams_lists_and_other_kinds() {
    let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1beta1
  kind: AuthorizationPolicy
  metadata: {name: a, namespace: foo}
  spec: {}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default, namespace: foo}
  spec: {mtls: {mode: STRICT}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: x, namespace: foo}
data: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: b, namespace: bar}
spec: {action: DENY, rules: [{}]}
"#;
    let s = AuthorizationPolicySet::from_yaml(text, &MeshConfig::default()).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.skipped_documents(), 2);
    let names: Vec<String> = s.policy_names().map(|p| p.to_string()).collect();
    assert_eq!(names, ["bar/b", "foo/a"]);
    let summary = check_manifests(text).unwrap();
    assert_eq!(summary.reports.len(), 2);
    assert_eq!(summary.skipped, 2);
    assert!(summary.all_valid());

    // Typos are errors naming the object, not silently ignored fields.
    let bad = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: t, namespace: foo}\nspec: {rule: [{}]}\n";
    let err = AuthorizationPolicySet::from_yaml(bad, &MeshConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("foo/t") && err.to_string().contains("rule"),
        "{err}"
    );
    let bad = bad.replace("spec: {rule: [{}]}", "spec: {action: REJECT}");
    let err = AuthorizationPolicySet::from_yaml(&bad, &MeshConfig::default()).unwrap_err();
    assert!(err.to_string().contains("REJECT"), "{err}");
    let no_ns = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: t}\nspec: {}\n";
    let err = AuthorizationPolicySet::from_yaml(no_ns, &MeshConfig::default()).unwrap_err();
    assert!(err.to_string().contains("no metadata.namespace"), "{err}");
    let twice = format!(
        "{text}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: b, namespace: bar}}\nspec: {{}}\n"
    );
    let err = AuthorizationPolicySet::from_yaml(&twice, &MeshConfig::default()).unwrap_err();
    assert!(err.to_string().contains("bar/b appears twice"), "{err}");
    let v2 = text.replace("security.istio.io/v1beta1", "security.istio.io/v2");
    let err = AuthorizationPolicySet::from_yaml(&v2, &MeshConfig::default()).unwrap_err();
    assert!(err.to_string().contains("not served"), "{err}");
}

#[test]
fn explanations_name_every_candidate() {
    let text = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-dev, namespace: demo}
spec: {action: DENY, rules: [{from: [{source: {namespaces: [dev]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}], to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-app, namespace: demo}
spec: {selector: {matchLabels: {app: db}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-audit, namespace: istio-system}
spec: {action: AUDIT, rules: [{}]}
"#;
    let s = AuthorizationPolicySet::from_yaml(text, &MeshConfig::default()).unwrap();
    let gw = meshtls::SpiffeId::new("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")
        .unwrap();
    let r = meshtls::policy::authorization::Request::tcp(8080)
        .with_peer(&gw)
        .with_http("GET", "/");
    let v = s.explain("demo", &[("app", "api")], &r);
    assert_eq!(v.step(), &Step::NoAllowMatched);
    let text = v.explanation().join("\n");
    for want in [
        "DENY demo/deny-dev (in the workload's namespace): applies to every workload; rule 0 does not match: no from entry matches: from[0]: namespaces: peer principal \"cluster.local/ns/azure-alb-system/sa/alb-controller\" matches none of [\"dev\"]",
        "ALLOW demo/allow-web (in the workload's namespace): applies (selector app=api); rule 0 does not match: no from entry matches: from[0]: principals:",
        "ALLOW demo/other-app (in the workload's namespace): does not apply: selector app=db does not match",
        "AUDIT istio-system/mesh-audit (mesh-wide from root namespace istio-system)",
        "the request would be audited",
        "3. ALLOW policies apply; 4. none matches; 5. denied",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(
        v.reason(),
        "denied: ALLOW policies apply to the workload and none matched"
    );
}

fn plane(v: &Value) -> DataPlane {
    match v.as_str() {
        Some("ambient") => DataPlane::Ambient,
        Some("sidecar") | None => DataPlane::Sidecar,
        Some(other) => panic!("data_plane {other:?}"),
    }
}

#[test]
fn upstream_alias_expansion() {
    let doc = data("authz-upstream.json");
    let cases = doc["expand"].as_array().unwrap();
    assert!(cases.len() >= 17);
    for c in cases {
        let tds: Vec<TrustDomain> = c["trust_domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| TrustDomain::new(t.as_str().unwrap()).unwrap())
            .collect();
        let principals: Vec<&str> = c["principals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let want: Vec<&str> = c["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            expand_principals(&principals, &tds).unwrap(),
            want,
            "{} ({})",
            c["name"],
            c["source"]
        );
    }
}

#[test]
fn upstream_evaluation() {
    let doc = data("authz-upstream.json");
    let cases = doc["eval"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let s = set(&c["policies"], &mesh(&c["mesh"]));
        let ns = c["workload"]["namespace"].as_str().unwrap();
        let l = labels(&c["workload"]["labels"]);
        let r = request(&c["request"]);
        let p = plane(&c["data_plane"]);
        let fast = s.check_in(p, ns, &l, &r);
        let slow = s.explain_in(p, ns, &l, &r);
        assert_eq!(fast, slow, "{name}: check and explain disagree");
        failures.extend(mismatch(
            &format!("{name} ({})", c["source"]),
            &fast,
            &slow,
            &c["expected"],
        ));
        if p == DataPlane::Ambient {
            assert!(
                slow.explanation().iter().any(|l| l.contains("ztunnel")),
                "{name}: the explanation names ztunnel"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A path case's caller and destination.
pub fn path_call(c: &Value) -> (Caller, Destination) {
    let id = c["caller"]["id"].as_str();
    let caller = match c["caller"]["kind"].as_str().unwrap() {
        "external" => Caller::external(id.unwrap()).unwrap(),
        "hbone" => Caller::hbone(id.unwrap()).unwrap(),
        "workload" => Caller::workload(id.unwrap()).unwrap(),
        "plaintext" => Caller::Plaintext,
        other => panic!("caller kind {other:?}"),
    };
    let d = &c["destination"];
    let port = d["port"].as_u64().unwrap() as u16;
    let mut req = request(d);
    if let Some(m) = d["method"].as_str() {
        req = req.with_http(m, d["path"].as_str().unwrap_or("/"));
    }
    let to = Destination::new(d["namespace"].as_str().unwrap(), labels(&d["labels"]), port)
        .with_request(req);
    (caller, to)
}

#[test]
fn upstream_path_checks() {
    let doc = data("authz-upstream.json");
    let cases = doc["path"].as_array().unwrap();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let dump = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": c["dump"]});
        let m = Mesh::from_dump_with(&dump.to_string(), Some(mesh(&c["mesh"]))).unwrap();
        let (caller, to) = path_call(c);
        let r = m.check(&caller, &to);
        let e = &c["expected"];
        let got = (
            r.allowed(),
            r.step().kind(),
            r.data_plane().as_str(),
            r.transport().as_str(),
        );
        let want = (
            e["allowed"].as_bool().unwrap(),
            e["step"].as_str().unwrap(),
            e["data_plane"].as_str().unwrap(),
            e["transport"].as_str().unwrap(),
        );
        if got != want {
            failures.push(format!(
                "{name} ({}): got {got:?}, want {want:?}\n  {}",
                c["source"],
                r.explanation().join("\n  ")
            ));
        }
        assert!(
            r.explanation()
                .get(1)
                .is_some_and(|l| l.starts_with("data plane: ")),
            "{name}: the explanation names the data plane: {:?}",
            r.explanation()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
