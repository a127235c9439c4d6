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
    /// A field had the wrong type or an unusable value.
    #[error("invalid {what}: {reason}")]
    Shape {
        /// What was being read.
        what: &'static str,
        /// Which field and why.
        reason: String,
    },
}
