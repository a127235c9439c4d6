use std::fmt;

/// Which of Istio's checks a [`Violation`] comes from.
///
/// A PeerAuthentication passes two layers before it is stored: the Kubernetes apiserver (the
/// CRD's OpenAPI schema, its CEL rules, strict field validation and object-metadata rules), then
/// istiod's validating webhook (`ValidatePeerAuthentication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The CRD's OpenAPI schema: types, `enum`, `maxLength`, `minProperties`, `maxProperties`.
    CrdSchema,
    /// One of the CRD's `x-kubernetes-validations` (CEL) rules.
    CrdCel,
    /// The apiserver's strict field validation (what `kubectl apply` uses): unknown fields.
    FieldValidation,
    /// The apiserver's checks of `apiVersion`, `kind` and `metadata` (names, timestamps).
    ObjectMeta,
    /// istiod's validating webhook, `ValidatePeerAuthentication`.
    IstiodWebhook,
}

impl Rule {
    /// A short label for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::CrdSchema => "CRD schema",
            Rule::CrdCel => "CRD CEL rule",
            Rule::FieldValidation => "apiserver field validation",
            Rule::ObjectMeta => "apiserver object metadata",
            Rule::IstiodWebhook => "istiod webhook",
        }
    }

    /// True for the checks istiod runs; false for the apiserver's.
    pub fn is_istiod(self) -> bool {
        matches!(self, Rule::IstiodWebhook)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule (or one warning): where, what, and which check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Violation {
    /// The field path, Kubernetes style: `spec.portLevelMtls["0"]`, `spec.selector.matchLabels["app"]`.
    pub path: String,
    /// The reason, in Istio's or the apiserver's words.
    pub message: String,
    /// The check that produced it.
    pub rule: Rule,
}

impl Violation {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>, rule: Rule) -> Self {
        Violation {
            path: path.into(),
            message: message.into(),
            rule,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} [{}]", self.message, self.rule)
        } else {
            write!(f, "{}: {} [{}]", self.path, self.message, self.rule)
        }
    }
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

/// Why a PeerAuthentication, a set of them, or a query about them was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The object breaks one or more of Istio's rules. The first violation is the one
    /// `kubectl apply` would report first (apiserver before istiod); all are listed.
    #[error("invalid PeerAuthentication {object}: {}", join(.violations))]
    Invalid {
        /// `namespace/name`, or just `name` when the manifest has no namespace.
        object: String,
        /// Every broken rule, at least one.
        violations: Vec<Violation>,
    },
    /// A document of a stream is not a Kubernetes object meshtls can classify.
    #[error("document {index}: {reason}")]
    Document {
        /// 1-based position in the stream (list items count as `N.M`).
        index: String,
        /// What is wrong.
        reason: String,
    },
    /// A `kind: PeerAuthentication` with an apiVersion Istio does not serve.
    #[error(
        "PeerAuthentication {object}: apiVersion {api_version:?} is not served; use security.istio.io/v1 or security.istio.io/v1beta1"
    )]
    ApiVersion {
        /// `namespace/name` or `name`.
        object: String,
        /// The apiVersion found.
        api_version: String,
    },
    /// A policy set needs every policy's namespace to place it.
    #[error(
        "PeerAuthentication {name:?} has no metadata.namespace: resolution needs it (kubectl would use the context's namespace; set it in the manifest)"
    )]
    MissingNamespace {
        /// `metadata.name`.
        name: String,
    },
    /// Two policies with the same namespace and name (Kubernetes cannot store both).
    #[error(
        "PeerAuthentication {object} appears twice; a cluster holds one object per namespace/name"
    )]
    Duplicate {
        /// `namespace/name`.
        object: String,
    },
    /// The root namespace is not a Kubernetes namespace name.
    #[error(
        "invalid root namespace {0:?}: must be a DNS-1123 label (lower-case letters, digits, '-', at most 63)"
    )]
    RootNamespace(String),
    /// A port in a query is not a TCP port.
    #[error("invalid port {0}: must be between 0 and 65535")]
    Port(i64),
    /// A query's labels are unusable.
    #[error("invalid workload labels: {0}")]
    Labels(String),
    /// A document that was asked to be a PeerAuthentication is something else.
    #[error("document {index} is a {kind}, not a PeerAuthentication")]
    NotPeerAuthentication {
        /// 1-based position in the stream.
        index: String,
        /// Its `kind`.
        kind: String,
    },
    /// Text that should name a mode does not.
    #[error("invalid mTLS mode {0:?}: must be one of UNSET, DISABLE, PERMISSIVE, STRICT")]
    Mode(String),
    /// Text that should name a policy (`namespace/name`) does not.
    #[error("invalid policy name {0:?}: must be <namespace>/<name>")]
    PolicyName(String),
    /// Text that should name a decision level does not.
    #[error("invalid level {0:?}: must be one of workload, port, namespace, mesh, default")]
    Level(String),
    /// Nothing to validate.
    #[error("no PeerAuthentication found in the input")]
    Empty,
}

impl PolicyError {
    pub(crate) fn invalid(object: &str, violation: Violation) -> Self {
        PolicyError::Invalid {
            object: object.to_owned(),
            violations: vec![violation],
        }
    }

    /// The violations of an [`PolicyError::Invalid`] error (empty for the other variants).
    pub fn violations(&self) -> &[Violation] {
        match self {
            PolicyError::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }
}
