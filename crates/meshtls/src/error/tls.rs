/// Why a TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Placeholder until the tls module lands; never constructed.
    #[error("tls configuration error: {0}")]
    Config(String),
}
