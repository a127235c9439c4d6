/// Why a Workload API server could not be configured or started.
///
/// Each variant names the value and the rule it broke. Refusals to a caller are gRPC statuses
/// on the wire (`InvalidArgument`, `PermissionDenied`, ...), not this type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadApiError {
    /// An option or address of the server is unusable.
    #[error("invalid workload api {what} {value:?}: {rule}")]
    Invalid {
        /// Which value (`address`, `setting`, ...).
        what: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// A registration entry is unusable.
    #[error("invalid registration entry {entry}: {field} {value:?}: {rule}")]
    Registration {
        /// Which entry (its index in the file, from 0, or its SPIFFE ID).
        entry: String,
        /// Which field (`spiffe_id`, `selectors`, `hint`, `ttl`, ...).
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// The socket could not be bound or served.
    #[error("cannot {action} workload api socket {address}: {reason}")]
    Socket {
        /// What was being done (`bind`, `remove stale`, `serve`, ...).
        action: &'static str,
        /// The address.
        address: String,
        /// The operating system's kind of error.
        kind: std::io::ErrorKind,
        /// Its explanation.
        reason: String,
    },
    /// An SVID could not be issued for a registered identity.
    #[error("cannot issue {kind} for {spiffe_id}: {reason}")]
    Issue {
        /// `x509-svid` or `jwt-svid`.
        kind: &'static str,
        /// The identity.
        spiffe_id: String,
        /// Why.
        reason: String,
    },
}
