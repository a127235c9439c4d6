//! YAML and JSON in and out: the only module that knows the YAML crate.
//!
//! Every read goes through resource limits (input size, nesting depth, alias expansion,
//! event count) so that hostile input ends in a [`ManifestError`] in bounded time and memory.

use serde::de::DeserializeOwned;

use crate::error::ManifestError;

/// The largest input meshtls parses (16 MiB): larger than any Kubernetes object (etcd caps
/// objects at 1.5 MiB) with room for `kubectl get -o yaml` lists.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 4_000_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 64;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

fn check_size(text: &str, what: &'static str) -> Result<(), ManifestError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ManifestError::TooLarge {
            what,
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}

fn syntax(what: &'static str, err: impl std::fmt::Display) -> ManifestError {
    ManifestError::Syntax {
        what,
        reason: err.to_string(),
    }
}

/// Parses one YAML (or JSON) document into a generic value.
pub fn parse_value(text: &str, what: &'static str) -> Result<serde_json::Value, ManifestError> {
    parse(text, what)
}

/// Parses one YAML (or JSON) document into `T`.
pub fn parse<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T, ManifestError> {
    check_size(text, what)?;
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| syntax(what, e))
}

/// Parses a multi-document YAML stream (documents separated by `---`) into generic values.
/// Empty documents are dropped. A JSON text is one document.
pub fn parse_documents(
    text: &str,
    what: &'static str,
) -> Result<Vec<serde_json::Value>, ManifestError> {
    check_size(text, what)?;
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| syntax(what, e))?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .collect())
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
