/// Why a PeerAuthentication is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Placeholder until the policy module lands; never constructed.
    #[error("invalid peer authentication: {0}")]
    Invalid(String),
}
