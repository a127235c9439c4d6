//! The PeerAuthentication wire model and how policy sets read manifests.

use meshtls::policy::{
    ApiVersion, Level, MtlsMode, MutualTls, ObjectMeta, PeerAuthentication, PeerAuthenticationSpec,
    PolicyError, PolicySet, Rule, WorkloadSelector, check_manifests, validate_value,
};
use serde_json::{Value, json};

const FULL: &str = r#"
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  annotations:
    owner: platform-team
  creationTimestamp: "2024-03-01T12:00:00Z"
  generation: 3
  labels: {team: payments}
  name: payments
  namespace: shop
  resourceVersion: "4711"
  uid: 0b1c2d3e-0000-0000-0000-000000000000
spec:
  selector:
    matchLabels:
      app: payments
      version: v2
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: PERMISSIVE
    9090: {}
status:
  validationMessages: []
"#;

fn policy_error(e: meshtls::Error) -> PolicyError {
    match e {
        meshtls::Error::Policy(p) => p,
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn reads_every_field() {
    let pa = PeerAuthentication::from_yaml(FULL).unwrap();
    assert_eq!(pa.api_version, ApiVersion::V1beta1);
    assert_eq!(pa.object_ref(), "shop/payments");
    assert_eq!(
        pa.metadata.creation_timestamp.as_deref(),
        Some("2024-03-01T12:00:00Z")
    );
    let labels = pa.spec.selector_labels().unwrap();
    assert_eq!(labels.get("version").map(String::as_str), Some("v2"));
    assert!(!pa.spec.is_namespace_wide());
    assert_eq!(pa.spec.mode(), MtlsMode::Strict);
    let ports = pa.spec.port_level_mtls.as_ref().unwrap();
    assert_eq!(ports[&8080], MutualTls::new(MtlsMode::Permissive));
    assert_eq!(ports[&9090], MutualTls { mode: None });
}

#[test]
fn round_trips_through_yaml_and_json_unchanged() {
    let original = meshtls::manifest::parse_value(FULL, "test").unwrap();
    let pa = PeerAuthentication::from_yaml(FULL).unwrap();

    // YAML out: port keys are YAML integers, everything else as it came in.
    let yaml = pa.to_yaml().unwrap();
    assert!(yaml.contains("8080:"), "{yaml}");
    let back = PeerAuthentication::from_yaml(&yaml).unwrap();
    assert_eq!(back, pa);
    assert_eq!(
        meshtls::manifest::parse_value(&yaml, "test").unwrap(),
        original
    );

    // JSON out: port keys are strings, as JSON requires, and read back the same.
    let json_text = pa.to_json().unwrap();
    let value: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(value, original);
    assert!(value["spec"]["portLevelMtls"].get("8080").is_some());
    assert_eq!(
        serde_json::from_str::<PeerAuthentication>(&json_text).unwrap(),
        pa
    );
    assert_eq!(PeerAuthentication::from_yaml(&json_text).unwrap(), pa);

    // Both versions and an absent spec survive too.
    let bare = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a, namespace: b}\n";
    let pa = PeerAuthentication::from_yaml(bare).unwrap();
    let v = serde_json::to_value(&pa).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "a", "namespace": "b"}})
    );
    let empty_spec = format!("{bare}spec: {{}}\n");
    let v = serde_json::to_value(PeerAuthentication::from_yaml(&empty_spec).unwrap()).unwrap();
    assert_eq!(v["spec"], json!({}));
}

#[test]
fn builds_objects_in_code() {
    let mut spec = PeerAuthenticationSpec {
        selector: Some(WorkloadSelector {
            match_labels: Some([("app".to_owned(), "api".to_owned())].into()),
        }),
        mtls: Some(MutualTls::new(MtlsMode::Strict)),
        port_level_mtls: None,
    };
    spec.port_level_mtls = Some([(8443, MutualTls::new(MtlsMode::Disable))].into());
    let pa = PeerAuthentication::new(ObjectMeta::new("shop", "api"), spec);
    let report = validate_value(&serde_json::to_value(&pa).unwrap());
    assert!(report.is_valid(), "{report:?}");
    let set = PolicySet::new([&pa], "istio-system").unwrap();
    let d = set.resolve("shop", &[("app", "api")], Some(8443));
    assert_eq!((d.mode(), d.level()), (MtlsMode::Disable, Level::Port));
}

#[test]
fn strict_reading_names_object_and_field() {
    let base = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: shop}\n";
    let cases = [
        (
            "spec: {mtls: {mode: strict}}",
            "spec.mtls.mode",
            "Unsupported value: \"strict\"",
        ),
        (
            "spec: {mTLS: {mode: STRICT}}",
            "",
            "unknown field \"spec.mTLS\"",
        ),
        (
            "spec: {mtls: {mod: STRICT}}",
            "",
            "unknown field \"spec.mtls.mod\"",
        ),
        (
            "specs: {mtls: {mode: STRICT}}",
            "",
            "unknown field \"specs\"",
        ),
        (
            "spec: {selector: {matchLabels: {app: x}}, portLevelMtls: {http: {mode: STRICT}}}",
            "spec.portLevelMtls[\"http\"]",
            "type conversion error",
        ),
        (
            "spec: {selector: {matchLabels: {version: 1}}}",
            "spec.selector.matchLabels[\"version\"]",
            "must be of type string",
        ),
        (
            "spec: {selector: [app]}",
            "spec.selector",
            "must be of type object",
        ),
    ];
    for (spec, path, reason) in cases {
        let text = format!("{base}{spec}\n");
        for err in [
            policy_error(PeerAuthentication::from_yaml(&text).unwrap_err()),
            policy_error(PolicySet::from_yaml(&text, "istio-system").unwrap_err()),
        ] {
            let PolicyError::Invalid { object, violations } = &err else {
                panic!("{spec}: {err:?}");
            };
            assert_eq!(object, "shop/p");
            assert_eq!(violations[0].path, path, "{spec}");
            assert!(violations[0].message.contains(reason), "{spec}: {err}");
            assert!(err.to_string().contains("shop/p"));
        }
    }
    let v1alpha = base.replace("security.istio.io/v1", "security.istio.io/v1alpha1");
    let err = policy_error(PolicySet::from_yaml(&v1alpha, "istio-system").unwrap_err());
    assert!(matches!(err, PolicyError::ApiVersion { .. }), "{err}");
}

#[test]
fn policy_sets_read_lists_streams_json_and_skip_other_kinds() {
    let list = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: istio, namespace: istio-system}
  data: {mesh: "trustDomain: cluster.local"}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default, namespace: istio-system, creationTimestamp: "2024-01-01T00:00:00Z"}
  spec: {mtls: {mode: STRICT}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 2, template: {spec: {containers: [{name: web, image: nginx}]}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthenticationList
items:
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
  spec: {mtls: {mode: DISABLE}}
"#;
    let set = PolicySet::from_yaml(list, "istio-system").unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.skipped_documents(), 2);
    assert_eq!(
        set.resolve("shop", &[("app", "web")], None).mode(),
        MtlsMode::Disable
    );
    assert_eq!(
        set.resolve("other", &[("app", "web")], None).mode(),
        MtlsMode::Strict
    );

    // JSON text (what `kubectl get -o json` prints) and parsed values read the same.
    let values = meshtls::manifest::parse_documents(list, "t").unwrap();
    let as_json = serde_json::to_string(&values[0]).unwrap();
    let from_json = PolicySet::from_yaml(&as_json, "istio-system").unwrap();
    assert_eq!(from_json.len(), 1);
    assert_eq!(from_json.skipped_documents(), 1);
    let from_values = PolicySet::from_json_values(values, "istio-system").unwrap();
    assert_eq!(from_values.len(), 2);
    assert_eq!(from_values.skipped_documents(), 2);

    // A document without a kind is not silently skipped.
    let err = PolicySet::from_yaml("foo: bar\n", "istio-system").unwrap_err();
    assert!(
        err.to_string().contains("document 1 has no kind") || err.to_string().contains("no kind"),
        "{err}"
    );
}

/// One file, one verdict: a `List` inside a `List` (kubectl expands nested lists) and other
/// kinds inside it read alike in every PeerAuthentication and AuthorizationPolicy reader.
#[test]
fn every_reader_expands_a_list_inside_a_list_and_skips_other_kinds() {
    let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items:
  - apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: default, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
    spec: {mtls: {mode: DISABLE}}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: other, namespace: shop}
  - apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny, namespace: shop}
    spec: {action: DENY, rules: [{}]}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default, namespace: istio-system, creationTimestamp: "2024-01-01T00:00:00Z"}
  spec: {mtls: {mode: STRICT}}
"#;
    let values = meshtls::manifest::parse_documents(text, "t").unwrap();
    let from_yaml = PolicySet::from_yaml(text, "istio-system").unwrap();
    let from_values = PolicySet::from_json_values(values.clone(), "istio-system").unwrap();
    let mut builder = meshtls::policy::PolicySetBuilder::default();
    for v in &values {
        builder.push_document(v).unwrap();
    }
    let built = builder.build("istio-system").unwrap();
    let json = serde_json::to_string(&values[0]).unwrap();
    let from_json_text = PolicySet::from_yaml(&json, "istio-system").unwrap();
    for set in [&from_yaml, &from_values, &built, &from_json_text] {
        assert_eq!((set.len(), set.skipped_documents()), (2, 2));
        assert_eq!(
            set.resolve("shop", &[("app", "a")], None).mode(),
            MtlsMode::Disable
        );
    }
    let summary = check_manifests(text).unwrap();
    assert_eq!((summary.reports.len(), summary.skipped), (2, 2));
    assert_eq!(
        meshtls::policy::validate_peer_authentication(text).unwrap(),
        Vec::<String>::new()
    );

    let mesh = meshtls::mesh::MeshConfig::default();
    let authz =
        meshtls::policy::authorization::AuthorizationPolicySet::from_yaml(text, &mesh).unwrap();
    assert_eq!((authz.len(), authz.skipped_documents()), (1, 3));
    let authz_check = meshtls::policy::authorization::check_manifests(text).unwrap();
    assert_eq!((authz_check.reports.len(), authz_check.skipped), (1, 3));

    // An error inside the nested list names the item by its path.
    let bad = text.replace(
        "kind: ConfigMap\n    metadata: {name: other, namespace: shop}",
        "metadata: {name: other}",
    );
    assert_ne!(bad, text);
    for err in [
        PolicySet::from_yaml(&bad, "istio-system").unwrap_err(),
        check_manifests(&bad).unwrap_err(),
    ] {
        assert!(
            matches!(&err, meshtls::Error::Policy(PolicyError::Document { index, .. }) if index == "1.1.2"),
            "{err:?}"
        );
    }
}

#[test]
fn policy_set_refusals() {
    let pa = |ns: &str, name: &str, ts: Option<&str>| {
        let mut meta = ObjectMeta::new(ns, name);
        meta.creation_timestamp = ts.map(str::to_owned);
        if ns.is_empty() {
            meta.namespace = None;
        }
        PeerAuthentication::new(meta, PeerAuthenticationSpec::default())
    };
    let err = PolicySet::new([pa("", "x", None)], "istio-system").unwrap_err();
    assert!(
        matches!(err, PolicyError::MissingNamespace { ref name } if name == "x"),
        "{err}"
    );
    let err = PolicySet::new([pa("a", "x", None), pa("a", "x", None)], "istio-system").unwrap_err();
    assert!(
        matches!(err, PolicyError::Duplicate { ref object } if object == "a/x"),
        "{err}"
    );
    let err = PolicySet::new([pa("a", "x", Some("yesterday"))], "istio-system").unwrap_err();
    assert_eq!(err.violations()[0].path, "metadata.creationTimestamp");
    assert!(err.to_string().contains("\"yesterday\""));
    for bad in ["", "Istio-System", "istio system", "-x"] {
        let err = PolicySet::new(Vec::<PeerAuthentication>::new(), bad).unwrap_err();
        assert!(matches!(err, PolicyError::RootNamespace(_)), "{bad:?}");
    }
    // Fractional seconds and offsets are RFC 3339 too, and order by the instant.
    let set = PolicySet::new(
        [
            pa("a", "z", Some("2024-01-01T01:00:00.5+01:00")),
            pa("a", "y", Some("2024-01-01T00:00:01Z")),
        ],
        "istio-system",
    )
    .unwrap();
    let names: Vec<&str> = set.policy_names().map(|n| n.as_str()).collect();
    assert_eq!(names, ["a/z", "a/y"]);
}

#[test]
fn policies_without_timestamp_are_newest_then_by_name() {
    let text = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a-unapplied, namespace: shop}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: z-applied, namespace: shop, creationTimestamp: "2030-01-01T00:00:00Z"}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b-unapplied, namespace: shop, creationTimestamp: null}
spec: {selector: {matchLabels: {app: x}}, mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a-unapplied, namespace: alpha}
spec: {selector: {matchLabels: {app: x}}, mtls: {mode: DISABLE}}
"#;
    let set = PolicySet::from_yaml(text, "istio-system").unwrap();
    let names: Vec<&str> = set.policy_names().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "shop/z-applied",
            "alpha/a-unapplied",
            "shop/a-unapplied",
            "shop/b-unapplied"
        ]
    );
    let d = set.explain("shop", &[("app", "y")], None);
    assert_eq!(d.policy().unwrap().as_str(), "shop/z-applied");
    assert!(
        d.explanation()
            .iter()
            .any(|l| l.contains("shop/a-unapplied ignored")
                && l.contains("has no creationTimestamp")),
        "{:#?}",
        d.explanation()
    );
}

#[test]
fn check_manifests_reports_each_object() {
    let text = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ok, namespace: a}
spec: {selector: {}}
---
apiVersion: v1
kind: Service
metadata: {name: s}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: Bad_Name, namespace: a, labels: {x: 1}}
spec: {portLevelMtls: {"80": {mode: STRICT}}}
"#;
    let summary = check_manifests(text).unwrap();
    assert_eq!(summary.skipped, 1);
    assert_eq!(summary.reports.len(), 2);
    assert!(!summary.all_valid());
    let ok = &summary.reports[0];
    assert!(ok.is_valid());
    assert_eq!(ok.warnings.len(), 1);
    let bad = &summary.reports[1];
    assert_eq!(bad.object, "a/Bad_Name");
    let rules: Vec<(Rule, &str)> = bad
        .errors
        .iter()
        .map(|v| (v.rule, v.path.as_str()))
        .collect();
    assert!(
        rules.contains(&(Rule::ObjectMeta, "metadata.name")),
        "{rules:?}"
    );
    assert!(
        rules.contains(&(Rule::CrdSchema, "metadata.labels[\"x\"]")),
        "{rules:?}"
    );
    assert!(rules.contains(&(Rule::CrdCel, "spec")), "{rules:?}");
    assert!(
        rules.contains(&(Rule::IstiodWebhook, "spec.portLevelMtls")),
        "{rules:?}"
    );
    // apiserver findings come before istiod's, as a cluster reports them.
    let first_istiod = bad.errors.iter().position(|v| v.rule.is_istiod()).unwrap();
    assert!(
        bad.errors[..first_istiod]
            .iter()
            .all(|v| !v.rule.is_istiod())
    );
}

#[test]
fn validation_limits_and_unknown_fields() {
    let mut labels = serde_json::Map::new();
    for i in 0..4097 {
        labels.insert(format!("k{i}"), json!("v"));
    }
    let obj = json!({
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "many", "namespace": "a", "uid": "x", "colour": "red"},
        "spec": {"selector": {"matchLabels": labels}, "mtls": {"mode": "STRICT", "extra": true}},
    });
    let report = validate_value(&obj);
    let msgs: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("Too many: 4097: must have at most 4096 items")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("unknown field \"metadata.colour\"")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("unknown field \"spec.mtls.extra\"")),
        "{msgs:?}"
    );
    assert_eq!(report.errors.len(), 3, "{msgs:?}");

    // 63 characters (not bytes) is the limit; 4096 labels is fine.
    let ok = json!({
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "fine", "namespace": "a", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"selector": {"matchLabels": {"app": "é".repeat(63)}}},
    });
    assert!(validate_value(&ok).is_valid(), "{:?}", validate_value(&ok));
}

#[test]
fn builder_reads_one_document_at_a_time_like_from_json_values() {
    let pa = |name: &str, spec: Value| {
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
               "metadata": {"name": name, "namespace": "shop", "uid": "u", "labels": {"a": "b"}},
               "spec": spec})
    };
    let docs = vec![
        pa("wide", json!({"mtls": {"mode": "PERMISSIVE"}})),
        json!({"apiVersion": "v1", "kind": "List", "items": [
            pa("ten", json!({"selector": {"matchLabels":
                (0..10).map(|i| (format!("k{i}"), json!(format!("v{i}")))).collect::<serde_json::Map<_, _>>()},
                "mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}})),
            {"apiVersion": "v1", "kind": "ConfigMap"},
        ]}),
        pa(
            "web",
            json!({"selector": {"matchLabels": {"app": "web", "tier": ""}}, "mtls": {"mode": "DISABLE"}}),
        ),
    ];
    let whole = PolicySet::from_json_values(docs.clone(), "istio-system").unwrap();
    let mut builder = meshtls::policy::PolicySetBuilder::with_capacity(1);
    for d in docs {
        builder.push_json(d).unwrap();
    }
    let built = builder.build("istio-system").unwrap();
    assert_eq!(
        built.policy_names().collect::<Vec<_>>(),
        whole.policy_names().collect::<Vec<_>>()
    );
    assert_eq!((built.len(), built.skipped_documents()), (3, 1));
    let ten: Vec<(String, String)> = (0..10)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let mut nine = ten.clone();
    nine.pop();
    for set in [&whole, &built] {
        // Every selector pair is checked (keys and values back to back in one buffer).
        assert_eq!(
            set.resolve("shop", &ten, Some(8080)).mode(),
            MtlsMode::Disable
        );
        assert_eq!(set.resolve("shop", &ten, Some(80)).mode(), MtlsMode::Strict);
        assert_eq!(
            set.resolve("shop", &nine, None).mode(),
            MtlsMode::Permissive
        );
        assert_eq!(
            set.resolve("shop", &[("app", "web"), ("tier", "")], None)
                .mode(),
            MtlsMode::Disable
        );
        assert_eq!(
            set.resolve("shop", &[("app", "web"), ("tier", "x")], None)
                .mode(),
            MtlsMode::Permissive
        );
        assert_eq!(
            set.resolve("shop", &[("appweb", ""), ("tier", "")], None)
                .mode(),
            MtlsMode::Permissive
        );
        let why = set.explain("shop", &ten, Some(8080));
        assert!(
            why.explanation().iter().any(|l| l.contains("k0=v0,k1=v1")),
            "{:?}",
            why.explanation()
        );
    }
    // Errors name the document (an item of a list as document.item), as from_json_values does.
    let mut b = meshtls::policy::PolicySetBuilder::default();
    b.push_json(pa("ok", json!({}))).unwrap();
    let err = b
        .push_json(json!({"kind": "List", "items": [{"kind": "ConfigMap"}, {"apiVersion": "v1"}]}))
        .unwrap_err();
    assert!(err.to_string().contains("2.2"), "{err}");
    let err = PolicySet::from_json_values(
        vec![
            pa("ok", json!({})),
            json!({"kind": "List", "items": [{"kind": "ConfigMap"}, {"apiVersion": "v1"}]}),
        ],
        "istio-system",
    )
    .unwrap_err();
    assert!(err.to_string().contains("2.2"), "{err}");
    let err = PolicySet::from_json_values(
        vec![pa("x", json!({"mtls": {"mode": "strict"}}))],
        "istio-system",
    )
    .unwrap_err();
    assert_eq!(err.violations()[0].path, "spec.mtls.mode", "{err}");
    let err = PolicySet::from_json_values(
        vec![pa("x", json!({"portLevelMtls": {"80": {"mode": "x"}}}))],
        "istio-system",
    )
    .unwrap_err();
    assert_eq!(
        err.violations()[0].path,
        "spec.portLevelMtls[\"80\"].mode",
        "{err}"
    );
    let err = PolicySet::from_json_values(
        vec![pa("x", json!({"selector": {"matchLabels": {"app": 1}}}))],
        "istio-system",
    )
    .unwrap_err();
    assert_eq!(
        err.violations()[0].path,
        "spec.selector.matchLabels[\"app\"]",
        "{err}"
    );
}
