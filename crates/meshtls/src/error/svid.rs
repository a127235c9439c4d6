/// Why an X.509-SVID failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// Placeholder until the svid module lands; never constructed.
    #[error("invalid svid: {0}")]
    Invalid(String),
}

/// Why a trust bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Placeholder until the bundle module lands; never constructed.
    #[error("invalid bundle: {0}")]
    Invalid(String),
}

/// Why a verified peer was not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// Placeholder until the authz module lands; never constructed.
    #[error("peer not authorized: {0}")]
    Denied(String),
}
