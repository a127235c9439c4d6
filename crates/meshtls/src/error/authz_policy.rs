use super::policy::Violation;

/// Why an AuthorizationPolicy, a set of them, a request or a path check was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationPolicyError {
    /// The object breaks one or more of the cluster's rules (apiserver first, then istiod).
    #[error("invalid AuthorizationPolicy {object}: {}", join(.violations))]
    Invalid {
        /// `namespace/name`, or `name` when the manifest has no namespace.
        object: String,
        /// Every broken rule, at least one.
        violations: Vec<Violation>,
    },
    /// A document of a stream is not a Kubernetes object meshtls can classify, or a field of
    /// an object it reads has the wrong shape.
    #[error("document {index}: {reason}")]
    Document {
        /// 1-based position in the stream (list items count as `N.M`).
        index: String,
        /// What is wrong.
        reason: String,
    },
    /// An apiVersion Istio does not serve for the kind.
    #[error(
        "{kind} {object}: apiVersion {api_version:?} is not served; use {group}/v1 or {group}/v1beta1"
    )]
    ApiVersion {
        /// The kind (`AuthorizationPolicy`, `DestinationRule`).
        kind: &'static str,
        /// The API group the kind belongs to.
        group: &'static str,
        /// `namespace/name` or `name`.
        object: String,
        /// The apiVersion found.
        api_version: String,
    },
    /// A set needs every object's namespace to place it.
    #[error(
        "{kind} {name:?} has no metadata.namespace: evaluation needs it (kubectl would use the context's namespace; set it in the manifest)"
    )]
    MissingNamespace {
        /// The kind.
        kind: &'static str,
        /// `metadata.name`.
        name: String,
    },
    /// Two objects with the same kind, namespace and name.
    #[error("{kind} {object} appears twice; a cluster holds one object per namespace/name")]
    Duplicate {
        /// The kind.
        kind: &'static str,
        /// `namespace/name`.
        object: String,
    },
    /// A policy is beyond one of meshtls's limits (e.g. its principals times the trust
    /// domains exceed the alias-expansion cap).
    #[error("AuthorizationPolicy {object}: {reason}")]
    Limit {
        /// `namespace/name`.
        object: String,
        /// Which limit.
        reason: String,
    },
    /// A request or destination in a query is unusable.
    #[error("invalid request: {0}")]
    Request(String),
    /// Nothing to validate.
    #[error("no AuthorizationPolicy found in the input")]
    Empty,
}

fn join(violations: &[Violation]) -> String {
    let mut out = String::new();
    for (i, v) in violations.iter().enumerate() {
        if i > 0 {
            out.push_str("; also ");
        }
        out.push_str(&v.to_string());
    }
    out
}

impl AuthorizationPolicyError {
    /// The violations of an [`AuthorizationPolicyError::Invalid`] error (empty otherwise).
    pub fn violations(&self) -> &[Violation] {
        match self {
            AuthorizationPolicyError::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }
}
