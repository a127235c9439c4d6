/// Why an HBONE tunnel (Istio ambient's HTTP/2 CONNECT over mTLS) could not be opened, or why
/// a tunnel or an acceptor failed.
///
/// One variant per refusal a caller may want to branch on: the TLS handshake, the server's
/// identity, the CONNECT answer (401 denied by policy, 503 nothing listening, 400 bad request,
/// any other status), a reset stream, a closed connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HboneError {
    /// A target, address or setting is unusable.
    #[error("invalid hbone {what} {value:?}: {rule}")]
    Invalid {
        /// Which value (`target`, `address`, `setting`, ...).
        what: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// The TCP connection to the HBONE endpoint could not be made.
    #[error("cannot reach hbone endpoint {via}: {reason}")]
    Unreachable {
        /// The address dialled (`<pod ip>:15008`).
        via: String,
        /// What the network said.
        reason: String,
    },
    /// The TLS handshake failed for another reason than the server's identity (no TLS 1.3,
    /// no ALPN `h2`, a chain that does not verify, the server refused our certificate).
    #[error("tls handshake with hbone endpoint {via} failed: {reason}")]
    Tls {
        /// The address dialled.
        via: String,
        /// Why.
        reason: String,
    },
    /// The server's certificate verified but does not carry the expected SPIFFE ID.
    #[error("hbone endpoint {via} is not {expected}: {reason}")]
    PeerIdentity {
        /// The address dialled.
        via: String,
        /// The identity the caller required.
        expected: String,
        /// What it presented instead.
        reason: String,
    },
    /// The server answered 401: an authorization policy denied the tunnel.
    #[error("hbone CONNECT to {target} via {via} denied by policy (401)")]
    Denied {
        /// The CONNECT authority.
        target: String,
        /// The address dialled.
        via: String,
    },
    /// The server answered 503: nothing listens on the target (or the port is not served).
    #[error("hbone CONNECT to {target} via {via}: no upstream (503)")]
    NoUpstream {
        /// The CONNECT authority.
        target: String,
        /// The address dialled.
        via: String,
    },
    /// The server answered 400: a malformed request, or an authority whose IP is not the
    /// address dialled.
    #[error(
        "hbone CONNECT to {target} via {via} refused as a bad request (400): the authority's ip must be the address dialled"
    )]
    BadRequest {
        /// The CONNECT authority.
        target: String,
        /// The address dialled.
        via: String,
    },
    /// The server answered another status than 200.
    #[error("hbone CONNECT to {target} via {via} answered status {status}")]
    Status {
        /// The CONNECT authority.
        target: String,
        /// The address dialled.
        via: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The peer reset the stream (HTTP/2 RST_STREAM).
    #[error("hbone stream to {target} reset by the peer: {reason}")]
    Reset {
        /// The CONNECT authority.
        target: String,
        /// The HTTP/2 reason.
        reason: String,
    },
    /// The HTTP/2 connection closed or failed (GOAWAY, I/O error, timeout).
    #[error("hbone connection to {via} closed: {reason}")]
    Closed {
        /// The address dialled (or the peer's address, on the acceptor's side).
        via: String,
        /// Why.
        reason: String,
    },
    /// The acceptor's listener failed.
    #[error("hbone acceptor on {address} failed: {reason}")]
    Listener {
        /// The listening address.
        address: String,
        /// What the operating system said.
        reason: String,
    },
}
