/// The gateway-certificate controller could not decide or act: bad settings, a certificate
/// from the source that does not fit, or (feature `kube`) the API server or the certificate
/// source failing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// A controller setting was invalid.
    #[error("invalid controller setting {setting} {value:?}: {rule}")]
    InvalidSetting {
        /// The setting (`secret name`, `service account`, `ttl`, ...).
        setting: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// A certificate handed to the controller for the Secret was not the one it asked for.
    #[error("certificate for {got} does not fit secret {secret}: {reason}")]
    UnfitCertificate {
        /// The Secret, `namespace/name`.
        secret: String,
        /// The certificate's SPIFFE ID.
        got: String,
        /// Why it was refused.
        reason: String,
    },
    /// A Kubernetes object the controller read was malformed.
    #[error("cannot read {object}: {reason}")]
    BadObject {
        /// The object, `kind namespace/name`.
        object: String,
        /// What was wrong.
        reason: String,
    },
    /// The Kubernetes API server refused or failed a request.
    #[error("kubernetes api {verb} {object} failed: {reason}")]
    Api {
        /// What was done (`get`, `apply`, `watch`, ...).
        verb: &'static str,
        /// The object, `kind namespace/name`.
        object: String,
        /// The API server's answer or the transport error, as text.
        reason: String,
        /// Whether retrying may help (false for authorization and validation failures).
        transient: bool,
    },
    /// The certificate source (istiod, a `cacerts` Secret, `meshtls ca serve`) failed.
    #[error("certificate source {source_name} failed: {reason}")]
    Source {
        /// The source, as the `meshtls.io/source` annotation names it.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
}
