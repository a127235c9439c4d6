//! The size-proportional event budget (issue 13: 1 MB inputs in bounded time) and the JSON
//! reader's agreement with the YAML reader: the same values, the same errors, the same limits.

use meshtls::error::ManifestError;
use meshtls::manifest::{self, MAX_VALUE_NODES, event_budget};
use meshtls::{AuthorizationPolicySet, MeshConfig, PolicySet};
use serde_json::Value;

const MB: usize = 1 << 20;

fn pa_with_status(status: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: x, namespace: a}}\nstatus: {status}\n"
    )
}

fn events_refused(err: &meshtls::Error, size: usize) {
    match err {
        meshtls::Error::Manifest(ManifestError::Budget {
            counted: "events",
            limit,
            size: s,
            ..
        }) => {
            assert_eq!(*limit, event_budget(size));
            assert_eq!(*s, size);
            assert!(err.to_string().contains("budget breached"), "{err}");
        }
        other => panic!("expected the event budget, got {other:?}"),
    }
}

#[test]
fn the_budget_grows_with_the_input() {
    assert_eq!(event_budget(0), manifest::MIN_EVENTS);
    assert_eq!(
        event_budget(MB),
        manifest::MIN_EVENTS + MB / manifest::BYTES_PER_EVENT
    );
}

#[test]
fn dense_megabytes_are_refused_by_every_reader() {
    // One event per 1-2 bytes: `a: b` pairs, nesting to the limit, empty maps.
    let cases = [
        ("pairs", format!("[{}a: b]", "a: b,".repeat(MB / 5 - 40))),
        (
            "nesting",
            format!(
                "[{}[]]",
                format!("{}{},", "[".repeat(62), "]".repeat(62)).repeat(MB / 125 - 1)
            ),
        ),
        ("empty maps", format!("[{}{{}}]", "{},".repeat(MB / 3 - 40))),
    ];
    let mesh = MeshConfig::default();
    for (i, (what, status)) in cases.into_iter().enumerate() {
        let text = pa_with_status(&status);
        assert!(text.len() <= MB, "{what}: {}", text.len());
        let n = text.len();
        events_refused(&PolicySet::from_yaml(&text, "istio-system").unwrap_err(), n);
        // Every reader on the first; one generic-value reader on the others (debug builds
        // parse slowly).
        match i {
            0 => {
                events_refused(
                    &meshtls::policy::validate_peer_authentication(&text).unwrap_err(),
                    n,
                );
                events_refused(
                    &AuthorizationPolicySet::from_yaml(&text, &mesh).unwrap_err(),
                    n,
                );
                events_refused(
                    &meshtls::policy::authorization::check_manifests(&text).unwrap_err(),
                    n,
                );
                events_refused(&meshtls::path::Mesh::from_dump(&text, None).unwrap_err(), n);
            }
            _ => events_refused(
                &meshtls::policy::validate_peer_authentication(&text).unwrap_err(),
                n,
            ),
        }
    }
    // Empty documents: two events in four bytes.
    let text = "---\n".repeat(MB / 4);
    events_refused(
        &PolicySet::from_yaml(&text, "istio-system").unwrap_err(),
        MB,
    );
}

#[test]
fn real_megabyte_streams_stay_within_the_budget() {
    // 4,900 PeerAuthentications (about one event per 4.5 bytes) and 1 MB of aliases.
    let mut stream = String::new();
    let mut i = 0;
    while stream.len() < MB - 300 {
        stream.push_str(&format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: p{i}, namespace: ns{}}}\nspec: {{selector: {{matchLabels: {{app: a{i}}}}}, mtls: {{mode: STRICT}}, portLevelMtls: {{\"8080\": {{mode: DISABLE}}}}}}\n---\n",
            i % 100
        ));
        i += 1;
    }
    assert!(meshtls::policy::validate_peer_authentication(&stream).is_ok());
    let set = PolicySet::from_yaml(&stream, "istio-system").unwrap();
    assert_eq!(set.len(), i);
    // kubectl's JSON of the same, indented.
    let docs = manifest::parse_documents(&stream, "t").unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
    let json = serde_json::to_string_pretty(&list).unwrap();
    assert_eq!(
        PolicySet::from_yaml(&json, "istio-system").unwrap().len(),
        i
    );
}

/// The same JSON text through the YAML reader: a leading comment keeps it off the JSON path.
fn via_yaml(text: &str) -> Result<Vec<Value>, ManifestError> {
    manifest::parse_documents(&format!("# yaml\n{text}"), "t").map_err(without_comment)
}

/// A budget error of the text with the 7-byte `# yaml\n` comment, as the text alone gives it.
fn without_comment(e: ManifestError) -> ManifestError {
    match e {
        ManifestError::Budget {
            what,
            counted,
            limit,
            size,
        } => ManifestError::Budget {
            what,
            counted,
            limit: if counted == "events" {
                event_budget(size - 7)
            } else {
                limit
            },
            size: size - 7,
        },
        other => other,
    }
}

fn same_answer(text: &str) {
    let json = manifest::parse_documents(text, "t");
    let yaml = via_yaml(text);
    match (&json, &yaml) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", &text[..text.len().min(200)]),
        (Err(ManifestError::Budget { .. }), Err(ManifestError::Budget { .. })) => {
            assert_eq!(json, yaml)
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "JSON and YAML readers disagree on {}: {json:?} vs {yaml:?}",
            &text[..text.len().min(200)]
        ),
    }
}

#[test]
fn json_and_yaml_readers_agree_on_the_vectors() {
    let mut texts: Vec<String> = Vec::new();
    let pa: Value = serde_json::from_str(include_str!(
        "../../../../tests/data/peerauth-validation.json"
    ))
    .unwrap();
    for case in pa.as_array().unwrap() {
        if let Some(m) = case.get("manifest").and_then(Value::as_str) {
            if let Ok(docs) = manifest::parse_documents(m, "t") {
                for d in docs {
                    texts.push(serde_json::to_string(&d).unwrap());
                    texts.push(serde_json::to_string_pretty(&d).unwrap());
                }
            }
        }
    }
    let az: Value =
        serde_json::from_str(include_str!("../../../../tests/data/authz-validation.json")).unwrap();
    for case in az["cases"].as_array().unwrap() {
        texts.push(serde_json::to_string(&case["object"]).unwrap());
    }
    let ex: Value = serde_json::from_str(include_str!(
        "../../../../tests/data/authz-istio-examples.json"
    ))
    .unwrap();
    for e in ex["examples"].as_array().unwrap() {
        for p in e["policies"].as_array().unwrap() {
            texts.push(serde_json::to_string_pretty(p).unwrap());
        }
    }
    assert!(texts.len() > 60, "{}", texts.len());
    for t in &texts {
        same_answer(t);
        assert!(manifest::parse_documents(t, "t").is_ok(), "{t}");
    }
}

#[test]
fn json_and_yaml_readers_agree_on_edge_cases() {
    let deep = |n: usize| format!("{{\"a\": {}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
    let cases = [
        // A key twice: refused by both (the JSON reader alone kept the last one).
        r#"{"kind": "PeerAuthentication", "kind": "ConfigMap"}"#.to_owned(),
        r#"{"a": {"b": 1, "b": 2}}"#.to_owned(),
        r#"{"ab": 1, "a\u0062": 2}"#.to_owned(),
        // Nesting at and past the depth limit.
        deep(manifest::MAX_DEPTH),
        deep(manifest::MAX_DEPTH + 1),
        // Numbers.
        r#"{"a": [0, -1, 9223372036854775807, 18446744073709551615, 18446744073709551616]}"#
            .to_owned(),
        r#"{"a": [-0, 0.5, 1e3, 1E400, -2.5e-3, 3.141592653589793238462643383279]}"#.to_owned(),
        // Strings and escapes.
        r#"{"a": "\u00e9\n\t\"\\\/ x", "b": "\ud83d\ude00", "c": "\ud800"}"#.to_owned(),
        "{\"a\": \"\u{85}\u{2028}\u{feff}\u{7f}\"}".to_owned(),
        "{\"a\":\t1}".to_owned(),
        // A merge key spelled as a JSON string, and null and empty documents.
        r#"{"b": {"x": 1}, "c": {"<<": {"x": 2}}}"#.to_owned(),
        "{}".to_owned(),
        r#"{"a": null, "b": [], "c": {}, "d": true, "e": false}"#.to_owned(),
        // A top-level array is one document.
        "[1, 2, 3]".to_owned(),
    ];
    for t in &cases {
        same_answer(t);
    }
    // The duplicate key and the depth past the limit are errors (the JSON reader alone
    // accepted them).
    assert!(manifest::parse_documents(&cases[0], "t").is_err());
    assert!(manifest::parse_documents(&cases[2], "t").is_err());
    assert!(manifest::parse_documents(&cases[3], "t").is_ok());
    assert!(manifest::parse_documents(&cases[4], "t").is_err());
}

#[test]
fn json_and_yaml_readers_share_the_budgets() {
    // Around the event budget of a JSON text of zeros; and a JSON text past the node budget.
    for n in [100_000, 200_000, 400_000] {
        same_answer(&format!("{{\"a\": [{}0]}}", "0,".repeat(n)));
    }
    let text = format!("{{\"a\": [{}0]}}", "0,".repeat(MB / 2));
    let err = manifest::parse_documents(&text, "t").unwrap_err();
    assert_eq!(
        err,
        ManifestError::Budget {
            what: "t",
            counted: "events",
            limit: event_budget(text.len()),
            size: text.len()
        }
    );
    let text = format!("{{\"a\": [{}0]}}", "0, ".repeat(MAX_VALUE_NODES + 10));
    let err = manifest::parse_documents(&text, "t").unwrap_err();
    assert_eq!(err, via_yaml(&text).unwrap_err());
    assert!(
        matches!(err, ManifestError::Budget { counted: "nodes", limit, .. } if limit == MAX_VALUE_NODES),
        "{err}"
    );
}

/// [`via_yaml`] for the one-document reader.
fn one_via_yaml(text: &str) -> Result<Value, ManifestError> {
    manifest::parse_value(&format!("# yaml\n{text}"), "t").map_err(without_comment)
}

fn same_one_answer(text: &str) {
    let json = manifest::parse_value(text, "t");
    let yaml = one_via_yaml(text);
    match (&json, &yaml) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", &text[..text.len().min(200)]),
        (Err(ManifestError::Budget { .. }), _) | (_, Err(ManifestError::Budget { .. })) => {
            assert_eq!(json, yaml)
        }
        (Err(a), Err(b)) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "{a} vs {b}"
        ),
        _ => panic!(
            "JSON and YAML readers disagree on {}: {json:?} vs {yaml:?}",
            &text[..text.len().min(200)]
        ),
    }
}

#[test]
fn one_document_readers_read_json_as_yaml_does() {
    let long = "k".repeat(1100);
    let escaped = "\\u00e9".repeat(200);
    let cases = [
        r#"{"kind": "PeerAuthentication", "kind": "ConfigMap"}"#.to_owned(),
        r#"{"a": [0, -1, 18446744073709551616, 0.5, -0]}"#.to_owned(),
        r#"{"a": "\u00e9\n", "b": "\ud83d\ude00"}"#.to_owned(),
        r#"{"b": {"x": 1}, "c": {"<<": {"x": 2}}}"#.to_owned(),
        r#"{"trustDomain": "a.example", "trustDomainAliases": ["b", "c"]}"#.to_owned(),
        "[1, 2, 3]".to_owned(),
        "{}".to_owned(),
        // YAML refuses an implicit key past 1,024 characters: so does a one-document reader
        // (the stream readers read JSON keys of any length).
        format!("{{\"{long}\": 1}}"),
        format!("{{\"{escaped}\": 1}}"),
        // YAML refuses a second value after the first; a trailing comment is YAML.
        r#"{"a": 1}{"b": 2}"#.to_owned(),
        "{\"a\": 1}\n[2]".to_owned(),
        r#"{"a": 1} # x"#.to_owned(),
    ];
    for t in &cases {
        same_one_answer(t);
    }
    assert!(manifest::parse_value(&cases[7], "t").is_err());
    assert!(manifest::parse_documents(&cases[7], "t").is_ok());
    assert!(manifest::parse_value(&cases[9], "t").is_err());
    assert!(manifest::parse_value(&cases[10], "t").is_err());
    for n in [100_000, 400_000] {
        same_one_answer(&format!("{{\"a\": [{}0]}}", "0,".repeat(n)));
    }
}

#[test]
fn a_json_mesh_config_is_refused_at_the_node_budget_as_yaml() {
    let text = format!(
        "{{\"trustDomainAliases\": [{}0]}}",
        "0,".repeat(MB / 2 - 20)
    );
    let refused = |r: Result<MeshConfig, meshtls::Error>| match r {
        Err(meshtls::Error::Manifest(ManifestError::Budget {
            counted: "nodes",
            limit,
            ..
        })) => assert_eq!(limit, manifest::MAX_MESH_CONFIG_NODES),
        other => panic!("expected the node budget, got {other:?}"),
    };
    refused(MeshConfig::from_yaml(&text));
    refused(MeshConfig::from_yaml(&format!("# yaml\n{text}")));
    // Within the budget, JSON and YAML read the same config.
    let ok = r#"{"trustDomain": "a.example", "trustDomainAliases": ["b.example"]}"#;
    let a = MeshConfig::from_yaml(ok).unwrap();
    let b = MeshConfig::from_yaml(&format!("# yaml\n{ok}")).unwrap();
    assert_eq!(
        a.trust_domains_for_validation(),
        b.trust_domains_for_validation()
    );
}
