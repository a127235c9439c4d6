/// Why a TLS configuration could not be built, or a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A cipher name is neither Istio's nor OpenSSL's.
    #[error(
        "unknown cipher suite {name:?}: expected an OpenSSL-style name as in Istio's meshMTLS.cipherSuites (e.g. ECDHE-RSA-AES128-GCM-SHA256)"
    )]
    UnknownCipher {
        /// The name as given.
        name: String,
    },
    /// TLS 1.2 is allowed but none of the configured suites can be offered.
    #[error(
        "no TLS 1.2 cipher suite left to offer: rustls does not implement {not_offered:?} (static-RSA or CBC)"
    )]
    NoCipherSuites {
        /// The configured names rustls cannot offer.
        not_offered: Vec<String>,
    },
    /// The minimum protocol version is above the maximum.
    #[error("protocol version range {min}..{max} is empty")]
    VersionRange {
        /// The minimum.
        min: &'static str,
        /// The maximum.
        max: &'static str,
    },
    /// An ALPN protocol name is empty or longer than 255 bytes.
    #[error("invalid ALPN protocol {value:?}: {reason}")]
    InvalidAlpn {
        /// The value, lossily as text.
        value: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// rustls refused the configuration (e.g. a provider without suites for the versions).
    #[error("rustls refused the tls configuration: {reason}")]
    Config {
        /// rustls's explanation.
        reason: String,
    },
    /// A server name for SNI is not a DNS name or IP address.
    #[error("invalid server name {name:?} for SNI: {reason}")]
    InvalidServerName {
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// A client configuration has nothing to verify the server against.
    #[error(
        "no server identity to verify: give the expected SPIFFE IDs or an authorizer (meshtls never verifies a mesh peer by DNS name)"
    )]
    NoServerIdentity,
    /// The own certificate chain or private key is unusable.
    #[error("unusable own certificate or key: {reason}")]
    OwnCertificate {
        /// What is wrong.
        reason: String,
    },
    /// A handshake did not complete.
    #[error("tls handshake failed: {reason}")]
    Handshake {
        /// rustls's or meshtls's explanation.
        reason: String,
    },
    /// A certificate carries no usable SPIFFE ID (no URI SAN, several, or one that does not
    /// parse).
    #[error("no SPIFFE ID in the certificate: {reason}")]
    NoSpiffeId {
        /// What is wrong.
        reason: String,
    },
    /// The peer presented no certificate.
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// The connection was refused by the port's mTLS mode.
    #[error("connection refused under {mode}: {reason}")]
    Refused {
        /// The port's mode (`STRICT`, `PERMISSIVE`, `DISABLE`).
        mode: &'static str,
        /// Why.
        reason: String,
    },
    /// Reading from or writing to the connection failed.
    #[error("connection i/o failed while {during}: {reason}")]
    Io {
        /// What was being done.
        during: &'static str,
        /// The operating system's explanation.
        reason: String,
    },
}
