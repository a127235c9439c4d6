//! The error types.
//!
//! Every fallible function in meshtls returns [`Error`] (or, where the failure can only come
//! from one area, that area's small enum, which converts into [`Error`] with `?`). Messages are
//! lower-case, name the offending value and the rule it broke, and never carry a dependency's
//! error type: those are rendered to text at the boundary so that upgrading a dependency never
//! changes meshtls's public API.

mod authz_policy;
mod ca;
mod ca_protocol;
mod controller;
mod hbone;
mod identity;
mod jwt;
mod manifest;
mod mesh;
mod policy;
mod svid;
mod tls;
#[cfg(feature = "workload-api")]
mod workload_api;
mod workload_client;

pub use authz_policy::AuthorizationPolicyError;
pub use ca::CaError;
pub use ca_protocol::CaProtocolError;
pub use controller::ControllerError;
pub use hbone::HboneError;
pub use identity::{IdentityError, SpiffeIdError, SpiffeIdErrorKind};
pub use jwt::JwtError;
pub use manifest::ManifestError;
pub use mesh::MeshConfigError;
pub use policy::{PolicyError, Rule, Violation};
pub use svid::{AuthzError, BundleError, LeafRule, SigningRule, SvidError};
pub use tls::TlsError;
#[cfg(feature = "workload-api")]
pub use workload_api::WorkloadApiError;
pub use workload_client::{EndpointRule, StatusCode, WorkloadClientError};

/// The one error type of meshtls.
///
/// It is `#[non_exhaustive]`: new areas may add variants in minor releases, so match on the
/// variants you handle and keep a wildcard arm. Like rustls's `Error` it is `Clone`,
/// `PartialEq` and `Eq`, so tests can `assert_eq!` a whole error and callers can keep one:
/// every variant carries owned data (I/O failures as their [`std::io::ErrorKind`] and
/// message), never a dependency's error value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A SPIFFE ID, trust domain or Istio identity was malformed.
    #[error(transparent)]
    SpiffeId(#[from] SpiffeIdError),
    /// A well-formed identity did not have the required shape (e.g. not `ns/<ns>/sa/<sa>`).
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A YAML or JSON document could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The Istio mesh config was invalid.
    #[error(transparent)]
    MeshConfig(#[from] MeshConfigError),
    /// A PeerAuthentication was invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// An AuthorizationPolicy (or a DestinationRule of a path check) was invalid, or a
    /// request to evaluate was unusable.
    #[error(transparent)]
    AuthorizationPolicy(#[from] AuthorizationPolicyError),
    /// The mesh CA refused an operation or its material was unusable.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// An X.509-SVID failed verification.
    #[error(transparent)]
    Svid(#[from] SvidError),
    /// A trust bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A verified peer was not authorized.
    #[error(transparent)]
    Authz(#[from] AuthzError),
    /// A TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Istio's CA protocol failed (client or server side).
    #[error(transparent)]
    CaProtocol(#[from] CaProtocolError),
    /// An HBONE tunnel (Istio ambient) failed or was refused.
    #[error(transparent)]
    Hbone(#[from] HboneError),
    /// The gateway-certificate controller could not decide or act.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// A JWT-SVID could not be minted or was rejected.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The SPIFFE Workload API server could not be configured or started.
    #[cfg(feature = "workload-api")]
    #[error(transparent)]
    WorkloadApi(#[from] WorkloadApiError),
    /// A Workload API client call failed or its address was invalid.
    #[error(transparent)]
    WorkloadClient(#[from] WorkloadClientError),
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {reason}")]
    Io {
        /// What was being done (`read`, `write`, `rename`, ...).
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What kind of failure the operating system reported (`NotFound`,
        /// `PermissionDenied`, ...), for callers that branch on it.
        kind: std::io::ErrorKind,
        /// The operating system's explanation.
        reason: String,
    },
}

impl Error {
    #[allow(dead_code)] // used by the ca and tls modules for file I/O
    pub(crate) fn io(action: &'static str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            kind: err.kind(),
            reason: err.to_string(),
        }
    }
}

/// The most characters of a bad value that an error message quotes.
pub(crate) const QUOTE_CHARS: usize = 256;

/// A bad value as error messages quote it: whole when short, otherwise its first
/// [`QUOTE_CHARS`] characters followed by `...`, so that a message never grows with the
/// input (a 1 MB principal gives a message of a few hundred bytes).
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

/// `Result` with meshtls's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_compare_and_clone_with_their_io_kind() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = Error::io(
            "read",
            std::path::Path::new("/nowhere/ca-key.pem"),
            &missing,
        );
        assert_eq!(err.clone(), err);
        match &err {
            Error::Io { kind, action, .. } => {
                assert_eq!(*kind, std::io::ErrorKind::NotFound);
                assert_eq!(*action, "read");
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let other = Error::io("read", std::path::Path::new("/nowhere/ca-key.pem"), &denied);
        assert_ne!(err, other);
        assert!(
            err.to_string()
                .starts_with("cannot read /nowhere/ca-key.pem: ")
        );
    }
}
