use std::fmt;

/// Why a Workload API client call failed or a source stopped, with the endpoint and the
/// server's own status where there was one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadClientError {
    /// A `SPIFFE_ENDPOINT_SOCKET` value (or an explicit address) broke a rule of the SPIFFE
    /// Workload Endpoint standard §4.
    #[error("workload api address {value:?} is invalid: {rule}")]
    Endpoint {
        /// The address as given (quoted, cut at 256 characters).
        value: String,
        /// The rule it broke.
        rule: EndpointRule,
    },
    /// No address was given and `SPIFFE_ENDPOINT_SOCKET` is not set.
    #[error("no workload api address: none was given and SPIFFE_ENDPOINT_SOCKET is not set")]
    NoEndpoint,
    /// The endpoint could not be reached (no socket, connection refused, ...).
    #[error("cannot connect to the workload api at {endpoint}: {reason}")]
    Connect {
        /// The endpoint address.
        endpoint: String,
        /// The operating system's or the transport's explanation.
        reason: String,
    },
    /// The server answered a call with a gRPC status other than OK.
    #[error("workload api {method} at {endpoint} failed: {code}: {message}")]
    Status {
        /// The RPC (`FetchX509SVID`, ...).
        method: &'static str,
        /// The endpoint address.
        endpoint: String,
        /// The gRPC status code.
        code: StatusCode,
        /// The server's message.
        message: String,
    },
    /// A response broke the Workload API's rules (a mandatory field empty, bad DER, a key that
    /// does not match its certificate, ...); the message is discarded (standard §4.5).
    #[error("workload api {method} at {endpoint} sent an unusable response: {reason}")]
    Response {
        /// The RPC.
        method: &'static str,
        /// The endpoint address.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
    /// The server sent no SVID matching the selection.
    #[error("the workload api sent no svid {wanted} (it sent: {available})")]
    NoMatch {
        /// The selection (`with hint "db"`, `for spiffe://td/x`).
        wanted: String,
        /// What it sent (SPIFFE IDs and hints), or `nothing`.
        available: String,
    },
    /// A call or a source's first update took longer than its deadline.
    #[error("workload api {what} at {endpoint}: no answer within {millis} ms")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The endpoint address.
        endpoint: String,
        /// The deadline.
        millis: u64,
    },
    /// An option was out of range.
    #[error("workload api client option {name} = {value}: {rule}")]
    Option {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// The rule.
        rule: &'static str,
    },
    /// The source was closed; it gives no more updates.
    #[error("the workload api source was closed")]
    Closed,
}

impl WorkloadClientError {
    /// The gRPC status code, when the server answered with one.
    pub fn code(&self) -> Option<StatusCode> {
        match self {
            WorkloadClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether a source retries after this error (with backoff): the standard's `Unavailable`
    /// and `PermissionDenied`, an unreachable endpoint, and anything but `InvalidArgument`,
    /// `Unimplemented` (report, do not retry) or a bad address.
    pub fn is_retryable(&self) -> bool {
        match self {
            WorkloadClientError::Status { code, .. } => !matches!(
                code,
                StatusCode::InvalidArgument | StatusCode::Unimplemented | StatusCode::Cancelled
            ),
            WorkloadClientError::Connect { .. }
            | WorkloadClientError::Response { .. }
            | WorkloadClientError::NoMatch { .. }
            | WorkloadClientError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// The rule of SPIFFE Workload Endpoint §4 (and RFC 3986) that an address broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointRule {
    /// The address is empty.
    Empty,
    /// Not an RFC 3986 URI with a scheme.
    NotUri,
    /// The scheme is neither `unix` nor `tcp`.
    Scheme,
    /// A query (`?`) or a fragment (`#`) is set.
    QueryOrFragment,
    /// `unix`: an authority (host, user) is set.
    UnixAuthority,
    /// `unix`: the path is missing or not absolute.
    UnixPath,
    /// `tcp`: no `//` authority.
    TcpAuthority,
    /// `tcp`: user information (`user@`) is set.
    TcpUserinfo,
    /// `tcp`: the host is not an IP address.
    TcpHost,
    /// `tcp`: the port is missing, not a number, or 0.
    TcpPort,
    /// `tcp`: a path is set.
    TcpPath,
    /// A percent escape is malformed, or decodes to a NUL byte or to text that is not UTF-8.
    Escape,
}

impl fmt::Display for EndpointRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointRule::Empty => "the address is empty",
            EndpointRule::NotUri => "not a uri with a scheme (unix:///path or tcp://ip:port)",
            EndpointRule::Scheme => "the scheme must be unix or tcp",
            EndpointRule::QueryOrFragment => "no query or fragment may be set",
            EndpointRule::UnixAuthority => {
                "a unix address must not set an authority (unix:///path, three slashes)"
            }
            EndpointRule::UnixPath => "a unix address must have an absolute socket path",
            EndpointRule::TcpAuthority => "a tcp address must be tcp://ip:port",
            EndpointRule::TcpUserinfo => "a tcp address must not set user information",
            EndpointRule::TcpHost => "the host of a tcp address must be an ip address",
            EndpointRule::TcpPort => "a tcp address must set a port from 1 to 65535",
            EndpointRule::TcpPath => "a tcp address must not set a path",
            EndpointRule::Escape => "a percent escape is malformed or decodes to nul or non-utf-8",
        })
    }
}

/// A gRPC status code (meshtls's own, so that the error type does not expose the gRPC crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // the gRPC code names
pub enum StatusCode {
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl StatusCode {
    /// The code's number on the wire.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The code of a wire number (unknown numbers are `Unknown`, as gRPC says).
    pub fn from_number(n: i32) -> StatusCode {
        use StatusCode::*;
        const ALL: [StatusCode; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        usize::try_from(n)
            .ok()
            .and_then(|i| ALL.get(i).copied())
            .unwrap_or(Unknown)
    }

    /// The code's name as gRPC writes it (`PermissionDenied`).
    pub fn name(self) -> &'static str {
        use StatusCode::*;
        match self {
            Ok => "OK",
            Cancelled => "Canceled",
            Unknown => "Unknown",
            InvalidArgument => "InvalidArgument",
            DeadlineExceeded => "DeadlineExceeded",
            NotFound => "NotFound",
            AlreadyExists => "AlreadyExists",
            PermissionDenied => "PermissionDenied",
            ResourceExhausted => "ResourceExhausted",
            FailedPrecondition => "FailedPrecondition",
            Aborted => "Aborted",
            OutOfRange => "OutOfRange",
            Unimplemented => "Unimplemented",
            Internal => "Internal",
            Unavailable => "Unavailable",
            DataLoss => "DataLoss",
            Unauthenticated => "Unauthenticated",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
