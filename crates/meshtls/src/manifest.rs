//! YAML and JSON in and out: the only module that knows the YAML crate.
//!
//! Every read goes through resource limits (input size, nesting depth, alias expansion,
//! event count) so that hostile input ends in a [`ManifestError`] in bounded time and memory.

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

/// The most alias events (`*name`) in one input, and the most events an alias may replay in
/// total. Kubernetes never writes aliases; hand-written manifests use a few. The replay cap
/// is what stops a "billion laughs" expansion early.
pub const MAX_ALIASES: usize = 1_000;
const MAX_REPLAYED_EVENTS: usize = 100_000;

fn options(max_nodes: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = max_nodes.saturating_mul(2);
    budget.max_nodes = max_nodes;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_depth = MAX_DEPTH;
    // Scalars replayed through aliases count here too, so text can never grow past the input
    // cap by aliasing one long string many times.
    budget.max_total_scalar_bytes = MAX_INPUT_BYTES;
    budget.max_recorded_anchor_bytes = MAX_INPUT_BYTES;
    budget.max_recorded_anchor_events = MAX_REPLAYED_EVENTS;
    // One document per object: a stream of 16 MiB cannot hold more than this many objects.
    budget.max_documents = 1_000_000;
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

/// Parses one YAML (or JSON) document into a generic value.
pub fn parse_value(text: &str, what: &'static str) -> Result<serde_json::Value, ManifestError> {
    parse(text, what)
}

/// [`parse_value`] with a smaller node budget (e.g. [`MAX_MESH_CONFIG_NODES`]).
pub(crate) fn parse_value_within(
    text: &str,
    what: &'static str,
    max_nodes: usize,
) -> Result<serde_json::Value, ManifestError> {
    check_size(text, what)?;
    serde_saphyr::from_str_with_options(text, options(max_nodes.min(MAX_VALUE_NODES)))
        .map_err(|e| syntax(what, e))
}

/// Parses one YAML (or JSON) document into `T`.
pub fn parse<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, ManifestError> {
    check_size(text, what)?;
    serde_saphyr::from_str_with_options(text, options(MAX_VALUE_NODES)).map_err(|e| syntax(what, e))
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
    if let Some(docs) = json_documents::<serde_json::Value>(text) {
        return Ok(docs.into_iter().filter(|v| !v.is_null()).collect());
    }
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple_with_options(text, options(MAX_VALUE_NODES))
            .map_err(|e| syntax(what, e))?;
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
    if let Some(docs) = json_documents(text) {
        return Ok(docs);
    }
    let docs: Vec<Option<T>> =
        serde_saphyr::from_multiple_with_options(text, options(MAX_TYPED_NODES))
            .map_err(|e| syntax(what, e))?;
    Ok(docs.into_iter().flatten().collect())
}

/// JSON objects (what `kubectl get -o json` prints, possibly several in a row) read with the
/// JSON parser, which is far faster than the YAML one on large lists. Anything it cannot
/// read (flow-style YAML also starts with `{`) goes to the YAML parser, which reports errors.
fn json_documents<T: DeserializeOwned>(text: &str) -> Option<Vec<T>> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    // serde_json stops at 128 levels of nesting with an error, never a stack overflow.
    serde_json::Deserializer::from_str(text)
        .into_iter::<T>()
        .collect::<Result<Vec<T>, _>>()
        .ok()
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
