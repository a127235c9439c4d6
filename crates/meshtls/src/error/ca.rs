/// Why the mesh CA refused an operation, could not use its material, or why an SVID (your own
/// certificate chain and key) could not be built.
///
/// Messages name the offending value (the file, the identity, the key) and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A key kind name was not one of the supported five.
    #[error(
        "unknown key kind {name:?}: expected one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096"
    )]
    UnknownKeyKind {
        /// The name given.
        name: String,
    },
    /// A requested lifetime broke a rule (zero, or longer than Istio's maximum).
    #[error("invalid ttl of {ttl_secs} seconds: {rule}")]
    InvalidTtl {
        /// The requested lifetime in seconds.
        ttl_secs: u64,
        /// The rule it broke.
        rule: &'static str,
    },
    /// An identity outside the CA's trust domain (and its aliases) was to be issued or signed.
    #[error(
        "cannot issue for {id}: its trust domain {trust_domain} is not this ca's trust domain {ca_trust_domain}{}",
        if aliases.is_empty() { String::new() } else { format!(" nor one of its aliases ({aliases})") }
    )]
    ForeignTrustDomain {
        /// The identity.
        id: String,
        /// Its trust domain.
        trust_domain: String,
        /// The CA's trust domain.
        ca_trust_domain: String,
        /// The CA's aliases, comma-separated (empty when none).
        aliases: String,
    },
    /// A CA was loaded without a trust domain, and its signing certificate names none.
    #[error(
        "{what} has no spiffe://<trust domain> uri san: say which trust domain the ca serves (istio's default is cluster.local)"
    )]
    NoTrustDomain {
        /// The signing certificate's file or role.
        what: String,
    },
    /// The trust domain a CA was loaded for differs from the one its certificate names.
    #[error(
        "{what} names trust domain {in_certificate} in its uri san, but the ca was loaded for {given}"
    )]
    TrustDomainConflict {
        /// The signing certificate's file or role.
        what: String,
        /// The trust domain of its `spiffe://<td>` URI SAN.
        in_certificate: String,
        /// The trust domain given.
        given: String,
    },
    /// A workload identity was the bare trust-domain ID (`spiffe://td`).
    #[error("cannot issue an svid for {id}: a workload spiffe id must have a non-root path")]
    IdentityWithoutPath {
        /// The identity.
        id: String,
    },
    /// An extra DNS name for a leaf was not a valid host name.
    #[error("invalid dns name {name:?}: {rule}")]
    InvalidDnsName {
        /// The name given.
        name: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// A CA parameter was invalid.
    #[error("invalid {param} {value:?}: {rule}")]
    InvalidParam {
        /// Which parameter.
        param: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// A certificate of the signing chain has expired: Istio refuses to sign with it.
    #[error("{what} expired at {not_after} (unix time); nothing can be signed with it")]
    Expired {
        /// Which certificate (file or role).
        what: String,
        /// Its NotAfter, in seconds since the Unix epoch.
        not_after: i64,
    },
    /// A certificate of the CA material is not valid yet.
    #[error("{what} is not valid before {not_before} (unix time)")]
    NotYetValid {
        /// Which certificate (file or role).
        what: String,
        /// Its NotBefore, in seconds since the Unix epoch.
        not_before: i64,
    },
    /// Some files of a CA directory layout are missing (istiod refuses a partial bundle).
    #[error("incomplete ca directory {dir}: missing {missing}")]
    MissingFiles {
        /// The directory.
        dir: String,
        /// The missing file names, comma-separated.
        missing: String,
    },
    /// A PEM file, certificate or key of the CA material could not be read.
    #[error("{what}: {reason}")]
    Material {
        /// Which file or role (`/etc/cacerts/ca-cert.pem`, `signing certificate`).
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The signing certificate is not a CA certificate.
    #[error("{what} is not a ca certificate: {reason}")]
    NotCa {
        /// Which file or role.
        what: String,
        /// What was missing (basicConstraints cA, keyCertSign).
        reason: String,
    },
    /// The private key does not belong to the certificate.
    #[error("{key} does not match the public key of {cert}")]
    KeyMismatch {
        /// Which key file or role.
        key: String,
        /// Which certificate file or role.
        cert: String,
    },
    /// The signing certificate does not chain to the root through the chain file.
    #[error("{what} does not chain to the root: {reason}")]
    BrokenChain {
        /// Which file or role.
        what: String,
        /// Where the chain broke.
        reason: String,
    },
    /// A certificate signing request was malformed or its signature did not verify.
    #[error("certificate signing request rejected: {reason}")]
    Csr {
        /// What was wrong.
        reason: String,
    },
    /// A public or private key was of a kind or size that is refused.
    #[error("{what}: {reason}")]
    UnsupportedKey {
        /// Whose key (`csr public key`, `ca-key.pem`).
        what: String,
        /// The rule (RSA below 2048 bits, a curve other than P-256/P-384, ...).
        reason: String,
    },
    /// Certificate chain and key do not form a valid X.509-SVID.
    #[error("invalid svid: {reason}")]
    InvalidSvid {
        /// The rule that failed.
        reason: String,
    },
    /// A Kubernetes object name or namespace was invalid.
    #[error("invalid kubernetes {field} {value:?}: {rule}")]
    InvalidObjectName {
        /// `name` or `namespace`.
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// Only a self-signed root can be rotated in place.
    #[error("cannot rotate {what}: {reason}")]
    Rotation {
        /// Which certificate.
        what: String,
        /// Why not.
        reason: String,
    },
    /// The cryptographic backend failed (key generation, signing).
    #[error("crypto backend failed while {action}")]
    Crypto {
        /// What was being done.
        action: &'static str,
    },
}
