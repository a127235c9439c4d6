//! YAML and JSON in and out: the only module that knows the YAML crate.
//!
//! Every read goes through resource limits (input size, nesting depth, alias expansion,
//! node count, and an event count proportional to the input's size) so that hostile input ends
//! in a [`ManifestError`] in bounded time and memory:
//!
//! | limit | value | error |
//! |---|---|---|
//! | input size | [`MAX_INPUT_BYTES`] (16 MiB), checked before any copy | [`ManifestError::TooLarge`] |
//! | nesting | [`MAX_DEPTH`] (64) levels | [`ManifestError::Syntax`] |
//! | nodes | [`MAX_VALUE_NODES`] (1,000,000; [`MAX_TYPED_NODES`] typed, [`MAX_MESH_CONFIG_NODES`] for a mesh config) | [`ManifestError::Budget`] |
//! | parser events | [`event_budget`]: [`MIN_EVENTS`] + one per [`BYTES_PER_EVENT`] bytes | [`ManifestError::Budget`] |
//! | aliases, anchors | [`MAX_ALIASES`] each; 100,000 replayed events | [`ManifestError::Syntax`] |
//!
//! The YAML reader's cost is per event, so the event budget is what keeps any 1 MB input
//! within a fraction of a second: text denser than one event per three bytes (`[a,a,a,…]`,
//! `[[],[],…]`, `{a: b}` pairs, empty documents) is refused once it passes the budget, while
//! manifests as Kubernetes, kubectl and Helm write them (one event per 4–10 bytes) are read
//! whole.
//!
//! YAML is read by serde-saphyr with these budgets, into generic values ([`parse_value`],
//! [`parse_documents`]) or typed targets ([`parse`], [`parse_documents_as`]). A hand-written
//! reader over the parser's events was measured against it on real manifests (the project's
//! Istio vectors as a `kubectl`-style stream, a 1 MB stream of PeerAuthentications) and was not
//! 2× faster (see the hostile-input section of `crates/meshtls-bench/README.md`), so it is gone:
//! one YAML reader, kept by its authors and fuzzed there.
//!
//! JSON text (an object or array, as `kubectl get -o json` prints) is read by the JSON parser
//! when the YAML reader would read it to the same values: one checking pass counts nodes and
//! events as the YAML reader does and gives the same [`ManifestError::Budget`], and JSON with a
//! key twice, nesting past [`MAX_DEPTH`], a float, a `<<` key, a tab or a character YAML reads
//! differently (C1 controls, U+2028/U+2029, a byte-order mark, `\u` surrogate escapes) goes to
//! the YAML reader, which answers or refuses as for any YAML. The one-document readers
//! ([`parse_value`]: a mesh config, one policy) take the same path for one JSON value alone
//! in the text with keys of at most [`JSON_SINGLE_KEY_BYTES`] bytes, and give the YAML
//! reader's answer on every input. One rule differs on purpose in the stream readers
//! ([`parse_documents`], [`parse_documents_as`]): YAML's 1,024-character limit on implicit
//! keys does not apply to keys read as JSON, and several JSON values in a row are several
//! documents.
//!
//! The typed readers walk a parsed document through [`Node`], a small trait over the JSON data
//! model (implemented here for `&serde_json::Value`, and by the Python binding for documents read
//! from Python objects), so that each rule and message of a reader exists once whatever the
//! document was read from.

use serde::de::DeserializeOwned;

use crate::error::ManifestError;

/// The largest input meshtls parses (16 MiB): larger than any Kubernetes object (etcd caps
/// objects at 1.5 MiB) with room for `kubectl get -o yaml` lists.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The deepest nesting meshtls reads. Kubernetes objects nest about a dozen levels (with
/// `managedFields`); the cap keeps recursion far from the stack's limit.
pub const MAX_DEPTH: usize = 64;

/// The most YAML nodes (scalars, sequences, mappings) read into a generic value: a
/// `kubectl get -o yaml` list of 10,000 objects with `managedFields` has about 650,000.
/// Generic values cost roughly 100 bytes a node, so this also bounds memory (about 100 MiB).
pub const MAX_VALUE_NODES: usize = 1_000_000;

/// The most YAML nodes in a mesh config (the `istio` ConfigMap's `mesh` document): Istio's own
/// has a few hundred; 200,000 leaves room for a mesh with tens of thousands of trust-domain
/// aliases while a worst-case 1 MB document (500,000 one-character scalars) is refused early.
pub const MAX_MESH_CONFIG_NODES: usize = 200_000;

/// The most YAML nodes read into a typed target, which skips the fields it does not need
/// without storing them (memory stays proportional to what is kept).
pub const MAX_TYPED_NODES: usize = 1_500_000;

/// The event budget's allowance for any input, however small.
pub const MIN_EVENTS: usize = 16_384;

/// The event budget's rate: one parser event (a scalar, the start or the end of a sequence or
/// mapping, a document marker) per this many bytes of input.
pub const BYTES_PER_EVENT: usize = 3;

/// The most parser events a reader processes for an input of `size` bytes:
/// [`MIN_EVENTS`] + `size` / [`BYTES_PER_EVENT`] (about 366,000 for 1 MiB), never more than
/// twice the node budget. Manifests as Kubernetes, kubectl and Helm write them have one
/// event per 4–10 bytes (a 1 MiB stream of 4,900 PeerAuthentications: about 230,000
/// events), indented JSON fewer; denser text (`[a,a,a,…]`, `[[],[],…]`, `{a: b}` pairs, empty
/// documents: one event per 1–2 bytes) is refused with [`ManifestError::Budget`] once past the
/// budget, so that no 1 MB input costs the YAML parser more than a dense real one. The YAML
/// reader's time is per event (1.5–2 µs each, measured on a loaded 2-core machine), not per
/// byte.
pub const fn event_budget(size: usize) -> usize {
    MIN_EVENTS + size / BYTES_PER_EVENT
}

/// The most alias events (`*name`) in one input, and the most events an alias may replay in
/// total. Kubernetes never writes aliases; hand-written manifests use a few. The replay cap
/// is what stops a "billion laughs" expansion early.
pub const MAX_ALIASES: usize = 1_000;
const MAX_REPLAYED_EVENTS: usize = 100_000;

/// The most documents in one stream: a stream of 16 MiB cannot hold more than this many
/// objects.
pub const MAX_DOCUMENTS: usize = 1_000_000;

fn max_events(max_nodes: usize, size: usize) -> usize {
    max_nodes.saturating_mul(2).min(event_budget(size))
}

fn options(max_nodes: usize, size: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = max_events(max_nodes, size);
    budget.max_nodes = max_nodes;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_depth = MAX_DEPTH;
    // Scalars replayed through aliases count here too, so text can never grow past the input
    // cap by aliasing one long string many times.
    budget.max_total_scalar_bytes = MAX_INPUT_BYTES;
    budget.max_recorded_anchor_bytes = MAX_INPUT_BYTES;
    budget.max_recorded_anchor_events = MAX_REPLAYED_EVENTS;
    budget.max_documents = MAX_DOCUMENTS;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    // One-line errors: a hostile input must not produce a hostile error message.
    options.with_snippet = false;
    options
}

fn check_size(text: &str, what: &'static str) -> Result<(), ManifestError> {
    check_input_size(text.len(), what)
}

/// The readers' size rule on its own, for a caller that knows an input's size before it has
/// the text (the Python binding checks a `str`'s length before copying it out of Python).
/// `size` may be a lower bound of the byte length (e.g. a count of characters).
pub fn check_input_size(size: usize, what: &'static str) -> Result<(), ManifestError> {
    if size > MAX_INPUT_BYTES {
        return Err(ManifestError::TooLarge {
            what,
            size,
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}

/// The YAML reader's error as a [`ManifestError`]: the node and event budgets as
/// [`ManifestError::Budget`] (the same error the JSON reader gives), the rest as
/// [`ManifestError::Syntax`] with a bounded message.
fn yaml_error(
    what: &'static str,
    err: serde_saphyr::Error,
    max_nodes: usize,
    size: usize,
) -> ManifestError {
    use serde_saphyr::budget::BudgetBreach;
    match &err {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Events { .. },
            ..
        } => ManifestError::Budget {
            what,
            counted: "events",
            limit: max_events(max_nodes, size),
            size,
        },
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Nodes { .. },
            ..
        } => ManifestError::Budget {
            what,
            counted: "nodes",
            limit: max_nodes,
            size,
        },
        _ => syntax(what, err),
    }
}

fn syntax(what: &'static str, err: impl std::fmt::Display) -> ManifestError {
    let mut reason = err.to_string();
    // The parser's text can quote the input; keep messages about hostile input small.
    if reason.len() > 512 {
        let mut cut = 512;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push_str("...");
    }
    ManifestError::Syntax { what, reason }
}

/// Parses one YAML (or JSON) document into a generic value. A JSON object or array is read
/// by the JSON reader when the YAML reader would read it to the same value (see
/// [`parse_documents`]; here keys of more than [`JSON_SINGLE_KEY_BYTES`] bytes and a second
/// JSON value after the first go to the YAML reader too, so that the answer is the YAML
/// reader's on every input).
pub fn parse_value(text: &str, what: &'static str) -> Result<serde_json::Value, ManifestError> {
    parse_value_within(text, what, MAX_VALUE_NODES)
}

/// [`parse_value`] with a smaller node budget (e.g. [`MAX_MESH_CONFIG_NODES`]).
pub(crate) fn parse_value_within(
    text: &str,
    what: &'static str,
    max_nodes: usize,
) -> Result<serde_json::Value, ManifestError> {
    check_size(text, what)?;
    let max_nodes = max_nodes.min(MAX_VALUE_NODES);
    if let Some(value) = json_value(text, what, max_nodes)? {
        return Ok(value);
    }
    saphyr_value(text, what, max_nodes)
}

/// serde-saphyr's reading of one document.
fn saphyr_value(
    text: &str,
    what: &'static str,
    max_nodes: usize,
) -> Result<serde_json::Value, ManifestError> {
    serde_saphyr::from_str_with_options(text, options(max_nodes, text.len()))
        .map_err(|e| yaml_error(what, e, max_nodes, text.len()))
}

/// Parses one YAML (or JSON) document into `T`.
pub fn parse<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, ManifestError> {
    check_size(text, what)?;
    serde_saphyr::from_str_with_options(text, options(MAX_VALUE_NODES, text.len()))
        .map_err(|e| yaml_error(what, e, MAX_VALUE_NODES, text.len()))
}

/// Parses a multi-document YAML stream (documents separated by `---`) into generic values.
/// Empty documents are dropped. A JSON text is one document (or several objects in a row),
/// read by the JSON reader exactly as [`parse_documents_as`] reads it, so that the two agree
/// on every input (YAML's 1,024-character limit on implicit keys does not apply to JSON).
pub fn parse_documents(
    text: &str,
    what: &'static str,
) -> Result<Vec<serde_json::Value>, ManifestError> {
    check_size(text, what)?;
    if let Some(docs) = json_documents::<serde_json::Value>(text, what, MAX_VALUE_NODES)? {
        return Ok(docs.into_iter().filter(|v| !v.is_null()).collect());
    }
    saphyr_documents(text, what)
}

/// serde-saphyr's reading of a stream, empty and null documents dropped.
fn saphyr_documents(
    text: &str,
    what: &'static str,
) -> Result<Vec<serde_json::Value>, ManifestError> {
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple_with_options(text, options(MAX_VALUE_NODES, text.len()))
            .map_err(|e| yaml_error(what, e, MAX_VALUE_NODES, text.len()))?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .collect())
}

/// Parses a multi-document YAML stream into typed documents. Fields `T` does not declare are
/// skipped without being stored, so large streams (a cluster's worth of objects) stay cheap.
/// Empty documents are dropped. A JSON text is one document.
pub fn parse_documents_as<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<Vec<T>, ManifestError> {
    check_size(text, what)?;
    if let Some(docs) = json_documents(text, what, MAX_TYPED_NODES)? {
        return Ok(docs);
    }
    let docs: Vec<Option<T>> =
        serde_saphyr::from_multiple_with_options(text, options(MAX_TYPED_NODES, text.len()))
            .map_err(|e| yaml_error(what, e, MAX_TYPED_NODES, text.len()))?;
    Ok(docs.into_iter().flatten().collect())
}

/// JSON objects (what `kubectl get -o json` prints, possibly several in a row) read with the
/// JSON parser, which is far faster than the YAML one on large lists. Only a text the YAML
/// reader would read to the same values within the same limits is read this way (checked by
/// [`json_verdict`] in one pass without building anything); anything else (flow-style YAML
/// also starts with `{`, and JSON with a duplicate key, nesting past [`MAX_DEPTH`], more nodes
/// than the budget or a number YAML reads differently) goes to the YAML reader, which gives
/// its answer or its error.
fn json_documents<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
    max_nodes: usize,
) -> Result<Option<Vec<T>>, ManifestError> {
    let start = text.trim_start();
    if !start.starts_with('{') && !start.starts_with('[') {
        return Ok(None);
    }
    match json_verdict(text, max_nodes, Documents::Stream) {
        JsonVerdict::Unsure => return Ok(None),
        JsonVerdict::Over { counted, limit } => {
            return Err(ManifestError::Budget {
                what,
                counted,
                limit,
                size: text.len(),
            });
        }
        JsonVerdict::Agrees => {}
    }
    Ok(serde_json::Deserializer::from_str(text)
        .into_iter::<T>()
        .collect::<Result<Vec<T>, _>>()
        .ok())
}

/// [`json_documents`] for a reader of one document: one JSON value alone in the text (the
/// YAML reader refuses a second one), and only keys short enough that YAML's 1,024-character
/// limit on implicit keys cannot apply.
fn json_value(
    text: &str,
    what: &'static str,
    max_nodes: usize,
) -> Result<Option<serde_json::Value>, ManifestError> {
    let start = text.trim_start();
    if !start.starts_with('{') && !start.starts_with('[') {
        return Ok(None);
    }
    match json_verdict(text, max_nodes, Documents::One) {
        JsonVerdict::Unsure => Ok(None),
        JsonVerdict::Over { counted, limit } => Err(ManifestError::Budget {
            what,
            counted,
            limit,
            size: text.len(),
        }),
        JsonVerdict::Agrees => Ok(serde_json::from_str(text).ok()),
    }
}

/// The longest object key (in bytes, decoded) that a one-document reader reads as JSON. YAML
/// refuses an implicit key past 1,024 characters of its text, and a JSON key's text can be six
/// times its decoded length (`\u00e9`): keys over this go to the YAML reader.
pub const JSON_SINGLE_KEY_BYTES: usize = 128;

/// Which texts [`json_verdict`] reads as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Documents {
    /// Any number of JSON values in a row, keys of any length (the stream readers).
    Stream,
    /// One JSON value, keys of at most [`JSON_SINGLE_KEY_BYTES`] (the one-document readers).
    One,
}

/// What [`json_verdict`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonVerdict {
    /// The YAML reader reads the text to the same values, within its budgets.
    Agrees,
    /// The YAML reader would refuse the text with this budget (counted alike, with a margin
    /// for document markers).
    Over { counted: &'static str, limit: usize },
    /// Not JSON, or JSON that YAML may read differently: the YAML reader decides.
    Unsure,
}

/// Counts near a budget's limit are left to the YAML reader (which counts the stream and
/// document markers its own way).
const JSON_MARGIN: usize = 16;

/// Whether the YAML reader reads the JSON `text` exactly as the JSON reader does: no key
/// twice in one object, no nesting deeper than [`MAX_DEPTH`], within the node and event
/// budgets (counted as the YAML reader counts them), no `<<` key (a YAML merge key), no
/// number the two read differently (`-0`, integers past 64 bits, floats), and only
/// characters that YAML reads as JSON does (no tabs, no line separators other than `\n` and
/// `\r`, no C1 controls, no `\u` escapes of surrogates).
/// `documents` says which texts the reader takes as JSON at all.
pub(crate) fn json_verdict(text: &str, max_nodes: usize, documents: Documents) -> JsonVerdict {
    if !json_chars_read_alike(text.as_bytes()) {
        return JsonVerdict::Unsure;
    }
    let walk = JsonWalk {
        nodes: std::cell::Cell::new(0),
        // The stream's start and end.
        events: std::cell::Cell::new(2),
        max_nodes,
        max_events: max_events(max_nodes, text.len()),
        max_key_bytes: match documents {
            Documents::Stream => usize::MAX,
            Documents::One => JSON_SINGLE_KEY_BYTES,
        },
        verdict: std::cell::Cell::new(JsonVerdict::Unsure),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let mut read = 0usize;
    loop {
        // `end` skips whitespace and fails when more text follows: the next document.
        if de.end().is_ok() {
            break;
        }
        read += 1;
        if documents == Documents::One && read > 1 {
            return JsonVerdict::Unsure;
        }
        // The document's start and end.
        if walk.count::<serde_json::Error>(0, 2).is_err()
            || serde::de::DeserializeSeed::deserialize(
                JsonNode {
                    walk: &walk,
                    depth: 0,
                },
                &mut de,
            )
            .is_err()
        {
            return walk.verdict.get();
        }
    }
    let (nodes, events) = (walk.nodes.get(), walk.events.get());
    if nodes + JSON_MARGIN > max_nodes || events + JSON_MARGIN > walk.max_events {
        return JsonVerdict::Unsure;
    }
    JsonVerdict::Agrees
}

/// Bytes whose reading differs between YAML and JSON, or that YAML refuses (see
/// [`json_verdict`]); everything else in a valid JSON text is read alike.
fn json_chars_read_alike(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            // A tab outside a string is JSON whitespace that YAML refuses in places; DEL is
            // not printable in YAML (control characters are invalid JSON anyway).
            if b == b'\t' || b == 0x7f {
                return false;
            }
            if b == b'\\' && bytes.get(i + 1) == Some(&b'u') {
                // \uD800-\uDFFF: surrogates, combined by JSON, not by every YAML reader.
                if matches!(bytes.get(i + 2), Some(b'd' | b'D'))
                    && matches!(
                        bytes.get(i + 3),
                        Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                    )
                {
                    return false;
                }
                i += 2;
                continue;
            }
            if b == b'\\' {
                // Skip the escaped character (so `\\u` is not read as an escape of `u`).
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        let third = bytes.get(i + 2).copied().unwrap_or(0);
        let differs = match b {
            // U+0080-U+009F: C1 controls, NEL (a YAML 1.1 line break) among them.
            0xc2 => (0x80..=0x9f).contains(&next),
            // U+2028, U+2029: line and paragraph separators.
            0xe2 => next == 0x80 && (third == 0xa8 || third == 0xa9),
            // U+FEFF (a byte-order mark), U+FFFE, U+FFFF.
            0xef => (next == 0xbb && third == 0xbf) || (next == 0xbf && third >= 0xbe),
            _ => false,
        };
        if differs {
            return false;
        }
        i += 1;
    }
    true
}

struct JsonWalk {
    nodes: std::cell::Cell<usize>,
    events: std::cell::Cell<usize>,
    max_nodes: usize,
    max_events: usize,
    /// Longer keys end the walk (the YAML reader decides).
    max_key_bytes: usize,
    /// Why the walk stopped early.
    verdict: std::cell::Cell<JsonVerdict>,
}

impl JsonWalk {
    /// Counts `nodes` nodes and `events` events, stopping clearly past a budget.
    fn count<E: serde::de::Error>(&self, nodes: usize, events: usize) -> Result<(), E> {
        let n = self.nodes.get() + nodes;
        let e = self.events.get() + events;
        self.nodes.set(n);
        self.events.set(e);
        let over = if n > self.max_nodes + JSON_MARGIN {
            Some(("nodes", self.max_nodes))
        } else if e > self.max_events + JSON_MARGIN {
            Some(("events", self.max_events))
        } else {
            None
        };
        match over {
            Some((counted, limit)) => {
                self.verdict.set(JsonVerdict::Over { counted, limit });
                Err(E::custom("budget"))
            }
            None => Ok(()),
        }
    }

    fn node<E: serde::de::Error>(&self) -> Result<(), E> {
        self.count(1, 1)
    }

    fn container<E: serde::de::Error>(&self) -> Result<(), E> {
        self.count(1, 2)
    }
}

/// One JSON value at `depth` (containers around it), checked and dropped.
struct JsonNode<'w> {
    walk: &'w JsonWalk,
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for JsonNode<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonNode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.walk.node()
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.walk.node()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.walk.node()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.walk.node()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        // `-0` is the integer 0 in YAML, an integer past 64 bits a float in JSON, and the
        // two may round a long fraction differently: floats (rare in manifests) go to YAML.
        Err(E::custom("a float"))
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.walk.node()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.walk.container()?;
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(serde::de::Error::custom("depth"));
        }
        while seq
            .next_element_seed(JsonNode {
                walk: self.walk,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.walk.container()?;
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(serde::de::Error::custom("depth"));
        }
        let mut keys: std::collections::HashSet<std::borrow::Cow<'de, str>> =
            std::collections::HashSet::new();
        while let Some(key) = map.next_key_seed(JsonKey)? {
            self.walk.node()?;
            if key.len() > self.walk.max_key_bytes {
                return Err(serde::de::Error::custom("long key"));
            }
            if key == "<<" || !keys.insert(key) {
                return Err(serde::de::Error::custom("duplicate or merge key"));
            }
            map.next_value_seed(JsonNode {
                walk: self.walk,
                depth,
            })?;
        }
        Ok(())
    }
}

/// A JSON object key, borrowed from the text when it has no escapes.
struct JsonKey;

impl<'de> serde::de::DeserializeSeed<'de> for JsonKey {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonKey {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }
}

/// Renders a value as YAML.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, ManifestError> {
    serde_saphyr::to_string(value).map_err(|e| ManifestError::Shape {
        what: "yaml output",
        reason: e.to_string(),
    })
}

/// Renders a value as pretty JSON.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ManifestError> {
    serde_json::to_string_pretty(value).map_err(|e| ManifestError::Shape {
        what: "json output",
        reason: e.to_string(),
    })
}

/// The type of a [`Node`], named as Kubernetes' schema errors name it (`"integer"`,
/// `"object"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A whole number.
    Integer,
    /// A number with a fraction or an exponent (a float).
    Number,
    /// Text.
    String,
    /// A sequence.
    Array,
    /// A mapping with text keys.
    Object,
}

impl NodeKind {
    /// The schema's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Null => "null",
            NodeKind::Boolean => "boolean",
            NodeKind::Integer => "integer",
            NodeKind::Number => "number",
            NodeKind::String => "string",
            NodeKind::Array => "array",
            NodeKind::Object => "object",
        }
    }
}

/// A node of a parsed document as meshtls' typed readers walk it: what the JSON data model
/// holds (null, boolean, numbers, text, sequences, and mappings with text keys), without
/// saying how it is stored.
///
/// The readers of typed objects (e.g.
/// [`PolicySetBuilder::push_document`](crate::policy::PolicySetBuilder::push_document)) take any
/// `Node`, so that one reader, with its rules and error messages, serves every source:
/// [`serde_json::Value`] (`&Value` is a `Node`) and, in the Python binding, Python objects walked
/// once into flat buffers reused from one document to the next (no value tree, no allocation
/// per node). A reader looks at the parts it needs only;
/// checking that the rest of a document is data (and within the size limits) is the source's
/// job, done before the tree is handed over.
///
/// An implementation presents a mapping as `serde_json::Map` holds one: members in key order,
/// each key once.
pub trait Node: Sized {
    /// The node's type.
    fn kind(&self) -> NodeKind;

    /// The text of a string node; `None` for any other.
    fn as_str(&self) -> Option<std::borrow::Cow<'_, str>>;

    /// The member `key` of a mapping; `None` when there is none or the node is no mapping.
    fn get(&self, key: &str) -> Option<Self>;

    /// Calls `f` with each member of a mapping in key order (each key once), stopping at the
    /// first error; does nothing for any other node.
    fn try_for_each_entry<E>(&self, f: impl FnMut(&str, Self) -> Result<(), E>) -> Result<(), E>;

    /// Calls `f` with each item of a sequence in order, stopping at the first error; does
    /// nothing for any other node.
    fn try_for_each_item<E>(&self, f: impl FnMut(Self) -> Result<(), E>) -> Result<(), E>;

    /// True for a `null` node.
    fn is_null(&self) -> bool {
        self.kind() == NodeKind::Null
    }
}

impl Node for &serde_json::Value {
    fn kind(&self) -> NodeKind {
        use serde_json::Value;
        match self {
            Value::Null => NodeKind::Null,
            Value::Bool(_) => NodeKind::Boolean,
            Value::Number(n) if n.is_f64() => NodeKind::Number,
            Value::Number(_) => NodeKind::Integer,
            Value::String(_) => NodeKind::String,
            Value::Array(_) => NodeKind::Array,
            Value::Object(_) => NodeKind::Object,
        }
    }

    fn as_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        serde_json::Value::as_str(self).map(std::borrow::Cow::Borrowed)
    }

    fn get(&self, key: &str) -> Option<Self> {
        self.as_object().and_then(|o| o.get(key))
    }

    fn try_for_each_entry<E>(
        &self,
        mut f: impl FnMut(&str, Self) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(o) = self.as_object() {
            for (k, v) in o {
                f(k, v)?;
            }
        }
        Ok(())
    }

    fn try_for_each_item<E>(&self, mut f: impl FnMut(Self) -> Result<(), E>) -> Result<(), E> {
        if let Some(a) = self.as_array() {
            for v in a {
                f(v)?;
            }
        }
        Ok(())
    }
}
