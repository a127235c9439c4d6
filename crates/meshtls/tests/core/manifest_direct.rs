//! The direct YAML reader (`manifest`'s walk over granit-parser's events) against
//! serde-saphyr: wherever the direct reader answers, with values or a budget error,
//! serde-saphyr must give exactly the same (`manifest::check_direct_reader` runs both, as a
//! stream and as one document). Inputs: every manifest in the test data, the fuzz corpora
//! and the examples; generated documents over the scalar spellings where YAML readers
//! differ (numbers, booleans, nulls, tags, anchors, merge keys, duplicate keys); and texts at
//! the event budget's edge.

use std::path::{Path, PathBuf};

use meshtls::manifest::{self, check_direct_reader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn strings_in(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.contains(':') || s.contains('\n') => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

fn check(text: &str) -> bool {
    match check_direct_reader(text) {
        Ok(answered) => answered,
        Err(diff) => panic!("the direct reader and serde-saphyr differ on {text:?}: {diff}"),
    }
}

#[test]
fn agrees_with_serde_saphyr_on_every_manifest_of_the_test_data() {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/data")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            strings_in(&value, &mut texts);
        }
    }
    for dir in [
        "fuzz/corpus/authorization_policy",
        "fuzz/corpus/peer_authentication",
        "fuzz/corpus/mesh_config",
        "fuzz/corpus/yaml_direct",
        "examples/manifests",
        "examples/authz",
    ] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(text) = String::from_utf8(bytes) {
                texts.push(text);
            }
        }
    }
    assert!(texts.len() > 300, "only {} texts found", texts.len());
    let answered = texts.iter().filter(|t| check(t)).count();
    println!(
        "{answered} of {} texts read by the direct reader",
        texts.len()
    );
    // Most real manifests are read directly; the rest (anchors, errors...) by serde-saphyr.
    assert!(
        answered * 2 > texts.len(),
        "the direct reader answered for only {answered} of {} texts",
        texts.len()
    );
}

#[test]
fn reads_real_manifests_directly() {
    for file in [
        "examples/manifests/pa.yaml",
        "examples/manifests/istio-configmap.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(check(&text), "{file} was left to serde-saphyr");
    }
}

/// Spellings where YAML readers differ: every one as a key and as a value, in block and
/// flow collections, next to each other (duplicates) and under tags and anchors.
const SCALARS: &[&str] = &[
    "a",
    "b",
    "8080",
    "0",
    "-0",
    "+0",
    "00",
    "007",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "+1",
    "-1",
    "-01",
    "1e3",
    "1E3",
    "1.5",
    ".5",
    "1.",
    "-1.5e-3",
    ".inf",
    "-.inf",
    "+.inf",
    ".Inf",
    ".nan",
    "-.nan",
    "+.NaN",
    "0x1f",
    "0X1F",
    "0o17",
    "0O17",
    "0b101",
    "0B1",
    "~",
    "null",
    "Null",
    "NULL",
    "nUll",
    "",
    "y",
    "Y",
    "n",
    "yes",
    "Yes",
    "NO",
    "on",
    "Off",
    "true",
    "True",
    "FALSE",
    "inf",
    "+inf",
    "-infinity",
    "nan",
    "1e400",
    "-1e400",
    "99999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345",
    "1234567890123456",
    "'q'",
    "\"d\"",
    "\"8080\"",
    "'0'",
    "\"\"",
    "''",
    "'~'",
    "\"true\"",
    "!a a",
    "!a 5",
    "!a ~",
    "!a",
    "!int 5",
    "!a-b_c x",
    "!!str a",
    "!!int 5",
    "! a",
    "!include x",
    "!includes x",
    "!<tag:yaml.org,2002:str> a",
    "!merge a",
    "&x a",
    "*x",
    "<<",
    "=",
    "10s",
    "1.2.3",
    "-a",
    ".a",
    "+a",
    "a b",
    "é",
    "\"\\u00e9\"",
    "\"a\\tb\"",
    "1:2",
    "2001:db8::1",
    "\"<<\"",
    "'<<'",
    "!a <<",
    "[a]",
    "{a: b}",
    "[]",
    "{}",
];

struct Rng(u64, Vec<&'static str>);
impl Rng {
    fn next(&mut self) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize
    }
    fn scalar(&mut self) -> &'static str {
        let i = self.next() % self.1.len();
        self.1[i]
    }
}

/// The spellings the direct reader decides as values (the rest always go to serde-saphyr), so
/// that generated documents made of them are compared value by value.
fn decided() -> Vec<&'static str> {
    const LEFT: [&str; 14] = [
        "&", "*", "!!", "!<", "! ", "!int", "!include", "!merge", "0x", "0o", "0b", ".inf",
        "1e400", "<<",
    ];
    SCALARS
        .iter()
        .copied()
        .filter(|s| !LEFT.iter().any(|l| s.contains(l)) && !s.starts_with(".nan"))
        .collect()
}

fn flow(rng: &mut Rng, depth: usize, out: &mut String) {
    match rng.next() % if depth > 3 { 1 } else { 4 } {
        0 => out.push_str(rng.scalar()),
        1 => {
            out.push('[');
            for i in 0..rng.next() % 4 {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(rng, depth + 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.next() % 4 {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(rng.scalar());
                out.push_str(": ");
                flow(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

fn block(rng: &mut Rng, indent: usize, depth: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let entries = 1 + rng.next() % 4;
    let seq = rng.next().is_multiple_of(3);
    for _ in 0..entries {
        out.push_str(&pad);
        if seq {
            out.push_str("- ");
        } else {
            out.push_str(rng.scalar());
            out.push(':');
        }
        match rng.next() % if depth > 2 { 2 } else { 3 } {
            0 => {
                out.push(' ');
                out.push_str(rng.scalar());
                out.push('\n');
            }
            1 => {
                out.push(' ');
                flow(rng, depth + 1, out);
                out.push('\n');
            }
            _ => {
                out.push('\n');
                block(rng, indent + 2, depth + 1, out);
            }
        }
    }
}

#[test]
fn agrees_with_serde_saphyr_on_generated_documents() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15, SCALARS.to_vec());
    let (mut answered, mut total) = (0, 0);
    for i in 0..8_000 {
        // Every other pair of documents over the spellings the direct reader decides.
        rng.1 = if i % 4 < 2 {
            SCALARS.to_vec()
        } else {
            decided()
        };
        let mut text = String::new();
        let documents = 1 + rng.next() % 3;
        for d in 0..documents {
            if d > 0 || rng.next().is_multiple_of(4) {
                text.push_str("---\n");
            }
            if i % 2 == 0 {
                block(&mut rng, 0, 0, &mut text);
            } else {
                flow(&mut rng, 0, &mut text);
                text.push('\n');
            }
        }
        total += 1;
        if check(&text) {
            answered += 1;
        }
    }
    println!("{answered} of {total} generated texts read by the direct reader");
    // The generator is built to hit the cases left to serde-saphyr; enough must remain
    // that the direct reader decides for the comparison to mean something.
    assert!(answered * 10 > total, "answered {answered} of {total}");
}

#[test]
fn agrees_on_the_event_budget_at_its_edge() {
    // `[a,a,...,a]`: n scalars and 6 other events (stream, document, sequence: starts and
    // ends); the budget is MIN_EVENTS + size / BYTES_PER_EVENT.
    let size = |n: usize| 2 * n + 2;
    let events = |n: usize| n + 6;
    let mut n = 1;
    while events(n) <= manifest::event_budget(size(n)) {
        n += 1;
    }
    let mut over = 0;
    for n in n - 3..n + 3 {
        let text = format!("[{}a]\n", "a,".repeat(n - 1));
        assert!(check(&text), "left to serde-saphyr: {n} scalars");
        if manifest::parse_documents(&text, "edge").is_err() {
            over += 1;
        }
    }
    assert!(
        over > 0 && over < 6,
        "the edge was not crossed ({over} of 6 refused)"
    );
}

#[test]
fn agrees_on_the_node_budget_at_its_edge() {
    // A mesh config is read with a node budget (MAX_MESH_CONFIG_NODES) that `[aa,aa,...]`
    // reaches before the event budget; `check` compares the one-document readings with
    // that budget, so a node miscounted on either side fails here.
    let max = manifest::MAX_MESH_CONFIG_NODES;
    for n in max - 1..max + 2 {
        // The sequence and n - 1 scalars.
        let text = format!("[{}aa]\n", "aa,".repeat(n - 2));
        assert!(n + 6 < manifest::event_budget(text.len()));
        assert!(check(&text));
    }
}

#[test]
fn agrees_past_the_document_budget() {
    // A million and one documents of one scalar, 10 bytes each: serde-saphyr refuses the
    // stream at its document budget, before the node and event budgets, and the direct reader
    // leaves it to serde-saphyr.
    let text = "--- aaaaa\n".repeat(1_000_001);
    assert!(3 * 1_000_001 + 2 < manifest::event_budget(text.len()));
    check(&text);
}
