/// Why the mesh CA refused an operation or could not use its material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// Placeholder until the CA module lands; never constructed.
    #[error("the mesh CA is not available: {0}")]
    Unavailable(String),
}
