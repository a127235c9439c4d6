/// Why a call of Istio's CA protocol failed, on the client or the server side.
///
/// Messages name what failed (the address, the server name, the token's claim, the rule the
/// returned chain broke). The server's own messages to callers are opaque; these are for the
/// side that holds the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaProtocolError {
    /// A configuration value (address, token source, JWKS, listen address) was invalid.
    #[error("invalid {what} {value:?}: {rule}")]
    Config {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// The server could not be reached (DNS, TCP, or the connection dropped).
    #[error("ca server {address} unreachable: {reason}")]
    Unreachable {
        /// The address dialled.
        address: String,
        /// What the network said.
        reason: String,
    },
    /// The TLS handshake failed: the server's certificate did not verify against the mesh root
    /// or did not carry the expected server name.
    #[error("tls handshake with {address} (server name {server_name}) failed: {reason}")]
    Tls {
        /// The address dialled.
        address: String,
        /// The name checked on the server's certificate.
        server_name: String,
        /// Why.
        reason: String,
    },
    /// The server refused to authenticate the caller (gRPC `UNAUTHENTICATED`).
    #[error("ca server refused authentication: {message}")]
    Unauthenticated {
        /// The server's message.
        message: String,
    },
    /// The server answered with another gRPC error status.
    #[error("ca server answered {code}: {message}")]
    Status {
        /// The gRPC code's name (`INVALID_ARGUMENT`, `UNAVAILABLE`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server's answer was not an acceptable certificate chain.
    #[error("ca server returned a bad certificate chain: {reason}")]
    BadChain {
        /// The rule it broke.
        reason: String,
    },
    /// A bearer token was refused by the server's JWT authenticator.
    #[error("token rejected: {reason}")]
    Token {
        /// The claim or rule that failed.
        reason: String,
    },
    /// A protobuf message could not be decoded.
    #[error("malformed {what}: {reason}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
}
