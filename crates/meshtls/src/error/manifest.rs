/// A YAML or JSON document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The text is not well-formed YAML/JSON, or breaks a resource limit.
    #[error("cannot parse {what}: {reason}")]
    Syntax {
        /// What was being read (e.g. `mesh config`, `manifest`).
        what: &'static str,
        /// The parser's explanation, with line and column where known.
        reason: String,
    },
    /// The input is larger than meshtls reads.
    #[error("cannot parse {what}: input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// The input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document holds more YAML nodes, or more parser events (nodes, the ends of
    /// sequences and mappings, document markers), than meshtls reads: at most
    /// [`MAX_VALUE_NODES`](crate::manifest::MAX_VALUE_NODES) nodes (less for a mesh config), and
    /// [`event_budget`](crate::manifest::event_budget) events for an input of `size` bytes.
    /// Real manifests stay far below both; the budget stops a dense hostile input (a megabyte
    /// of `[a,a,a,…]`) early. The JSON and the YAML reader count alike and give this same error.
    #[error("cannot parse {what}: budget breached: more than {limit} {counted} in {size} bytes")]
    Budget {
        /// What was being read.
        what: &'static str,
        /// `"nodes"` or `"events"`.
        counted: &'static str,
        /// The limit that was passed.
        limit: usize,
        /// The input size in bytes.
        size: usize,
    },
    /// A field had the wrong type or an unusable value.
    #[error("invalid {what}: {reason}")]
    Shape {
        /// What was being read.
        what: &'static str,
        /// Which field and why.
        reason: String,
    },
}
