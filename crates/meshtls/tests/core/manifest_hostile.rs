//! Hostile YAML ends in a typed error, never a panic, a stack overflow or unbounded memory:
//! the parser's budgets (size, depth, nodes, aliases, replayed events, scalar bytes) stop it.

use meshtls::error::ManifestError;
use meshtls::policy::{PolicySet, validate_peer_authentication};

/// Runs `text` through every entry point that reads manifests and returns the errors of the
/// ones that build generic values. The typed `PolicySet` reader skips what it does not need
/// without storing it, so it may instead stop at the first document that is not an object
/// (a typed manifest or policy error).
fn all_refuse(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    match PolicySet::from_yaml(text, "istio-system") {
        Err(e @ (meshtls::Error::Manifest(_) | meshtls::Error::Policy(_))) => {
            assert!(e.to_string().len() < 1024)
        }
        other => panic!("expected a manifest or policy error from PolicySet, got {other:?}"),
    }
    let errors = [
        meshtls::manifest::parse_value(text, "t")
            .map(|_| ())
            .map_err(meshtls::Error::from),
        meshtls::manifest::parse_documents(text, "t")
            .map(|_| ())
            .map_err(meshtls::Error::from),
        validate_peer_authentication(text).map(|_| ()),
        meshtls::MeshConfig::from_yaml(text).map(|_| ()),
        meshtls::policy::PeerAuthentication::from_yaml(text).map(|_| ()),
    ];
    for e in errors {
        match e {
            Err(meshtls::Error::Manifest(m)) => {
                let msg = m.to_string();
                assert!(
                    msg.len() < 1024,
                    "error messages stay small: {} bytes",
                    msg.len()
                );
                assert!(!msg.contains('\n'), "one-line errors: {msg}");
                out.push(msg);
            }
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }
    out
}

#[test]
fn billion_laughs() {
    let bomb = billion_laughs_text();
    for msg in all_refuse(&bomb) {
        assert!(
            msg.contains("budget") || msg.contains("alias") || msg.contains("limit"),
            "{msg}"
        );
    }
    // The same bomb inside a PeerAuthentication's labels.
    let pa = format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: x\n  namespace: y\n  annotations:\n    {}\n",
        bomb.replace('\n', "\n    ")
    );
    all_refuse(&pa);
}

#[test]
fn one_long_string_aliased_many_times() {
    // Each alias would copy 1 MB: capped by the scalar-byte budget at the input size cap.
    let big = "x".repeat(1_000_000);
    let mut text = format!("a: &a \"{big}\"\nb: [");
    text.push_str(&"*a,".repeat(999));
    text.push_str("*a]\n");
    for msg in all_refuse(&text) {
        assert!(msg.contains("budget"), "{msg}");
    }
}

#[test]
fn ten_thousand_deep_nesting() {
    let cases = [
        (
            "flow sequences",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ),
        (
            "flow mappings",
            format!("{}1{}", "{a: ".repeat(10_000), "}".repeat(10_000)),
        ),
        (
            "JSON objects",
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
        ),
        ("block sequences", format!("{}x\n", "- ".repeat(10_000))),
        (
            "inside a policy",
            format!(
                "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: x, namespace: y}}\nspec: {{selector: {}{}}}\n",
                "{a: ".repeat(10_000),
                "}".repeat(10_000)
            ),
        ),
    ];
    for (what, text) in cases {
        for msg in all_refuse(&text) {
            assert!(
                msg.contains("depth")
                    || msg.contains("Depth")
                    || msg.contains("recursion")
                    || msg.contains("nesting"),
                "{what}: {msg}"
            );
        }
    }
}

#[test]
fn twenty_megabyte_document() {
    let text = format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: x, namespace: y}}\nspec: {{}}\n# {}\n",
        "x".repeat(20 * 1024 * 1024)
    );
    let err = meshtls::manifest::parse_documents(&text, "t").unwrap_err();
    assert!(
        matches!(err, ManifestError::TooLarge { limit, .. } if limit == meshtls::manifest::MAX_INPUT_BYTES)
    );
    for msg in all_refuse(&text) {
        assert!(msg.contains("exceeds the limit"), "{msg}");
    }
}

#[test]
fn many_nodes_under_the_size_cap() {
    // 12 MB holding six million tiny nodes: within the size cap, refused by the node budget of
    // the generic reader, which every policy reader goes through.
    let text = format!("k: [{}1]\n", "1,".repeat(6_000_000));
    assert!(text.len() < meshtls::manifest::MAX_INPUT_BYTES);
    let err = meshtls::manifest::parse_value(&text, "t").unwrap_err();
    assert!(
        matches!(err, ManifestError::Budget { counted: "nodes", limit, .. } if limit == meshtls::manifest::MAX_VALUE_NODES),
        "{err}"
    );
    assert!(err.to_string().contains("budget breached"), "{err}");
    let err = PolicySet::from_yaml(&text, "istio-system").unwrap_err();
    assert!(
        matches!(&err, meshtls::Error::Manifest(ManifestError::Budget { counted: "nodes", limit, .. }) if *limit == meshtls::manifest::MAX_VALUE_NODES),
        "{err}"
    );
}

#[test]
fn ordinary_anchors_still_work() {
    let text = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  selector: {matchLabels: &labels {app: api}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b, namespace: web, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  selector: {matchLabels: *labels}
  mtls: {mode: DISABLE}
"#;
    // Anchors do not cross documents in YAML, so the second document is an error.
    assert!(PolicySet::from_yaml(text, "istio-system").is_err());
    let one = text.split("---").next().unwrap().to_owned()
        + "  portLevelMtls: {8080: &m {mode: DISABLE}, 9090: *m}\n";
    let set = PolicySet::from_yaml(&one, "istio-system").unwrap();
    let d = set.resolve("shop", &[("app", "api")], Some(9090));
    assert_eq!(d.mode(), meshtls::MtlsMode::Disable);
}

/// Nine levels of nine aliases each: "billion laughs", 9^9 strings if expanded.
pub(crate) fn billion_laughs_text() -> String {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, next) = (w[0], w[1]);
        bomb.push_str(&format!(
            "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    bomb
}
