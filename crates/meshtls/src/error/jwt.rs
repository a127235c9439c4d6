/// Why a JWT-SVID could not be minted or was rejected, one variant per rule of
/// [`crate::jwt::JwtPolicy`] (in the order the rules are checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is longer than the policy's limit.
    #[error("jwt-svid of {len} bytes is longer than the limit of {max} bytes")]
    TooLong {
        /// The token's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a JWS in compact serialization with a JSON header and claims.
    #[error("malformed jwt-svid: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The header's `alg` is not on the policy's allow-list (checked before anything else).
    #[error("jwt-svid algorithm {alg:?} is not allowed (allowed: {allowed})")]
    Algorithm {
        /// The `alg` as written (`"none"`, `"HS256"`, ...).
        alg: String,
        /// The allow-list.
        allowed: String,
    },
    /// The header's `typ` is set to something other than `JWT` or `JOSE`.
    #[error("jwt-svid header typ {typ:?} is not allowed (JWT or JOSE)")]
    Type {
        /// The `typ` as written.
        typ: String,
    },
    /// The header lists `crit` extensions; meshtls understands none (RFC 7515 §4.1.11).
    #[error("jwt-svid header has critical extensions {names:?} that are not understood")]
    CriticalHeader {
        /// The `crit` value as written.
        names: String,
    },
    /// The header carries a parameter the JWT-SVID standard does not describe (§3: "MUST NOT
    /// be included"), and the policy does not allow extra headers.
    #[error("jwt-svid header parameter {name:?} is not allowed (only alg, kid, typ)")]
    UnknownHeader {
        /// The parameter's name.
        name: String,
    },
    /// The header has no `kid` and the policy requires one (the default).
    #[error("jwt-svid header has no kid, and the policy requires one")]
    MissingKid,
    /// `sub` is missing or not a SPIFFE ID.
    #[error("jwt-svid subject {sub:?} is not a spiffe id: {reason}")]
    Subject {
        /// The `sub` claim as written (empty when missing).
        sub: String,
        /// Why.
        reason: String,
    },
    /// No JWT bundle for the subject's trust domain (bundles are never pooled).
    #[error("no jwt bundle for trust domain {trust_domain} of subject {sub}")]
    NoBundle {
        /// The subject's trust domain.
        trust_domain: String,
        /// The subject.
        sub: String,
    },
    /// The subject's trust domain has no key with this `kid`, or none of the algorithm's type.
    #[error("jwt bundle of {trust_domain} has no key {kid:?} usable for {alg}")]
    UnknownKey {
        /// The trust domain whose bundle was searched.
        trust_domain: String,
        /// The `kid` (empty when the token has none).
        kid: String,
        /// The token's algorithm.
        alg: String,
    },
    /// The signature did not verify with the key.
    #[error("jwt-svid signature does not verify with key {kid:?} of {trust_domain}: {reason}")]
    Signature {
        /// The trust domain.
        trust_domain: String,
        /// The key's id.
        kid: String,
        /// What the verifier said.
        reason: String,
    },
    /// The token has no `aud`, or an empty one (JWT-SVID §3.2: at least one value).
    #[error("jwt-svid has no audience")]
    NoAudience,
    /// The token's audience does not match the expected one.
    #[error("jwt-svid audience {got:?} does not contain {rule} of {expected:?}")]
    Audience {
        /// The token's `aud` values.
        got: Vec<String>,
        /// The expected audiences.
        expected: Vec<String>,
        /// `"any"` or `"all"`.
        rule: &'static str,
    },
    /// The token has no `exp`, or it is not a number.
    #[error("jwt-svid has no numeric exp claim")]
    MissingExpiry,
    /// The token expired (beyond the leeway).
    #[error("jwt-svid expired at {exp} (now {now}, leeway {leeway_secs}s)")]
    Expired {
        /// `exp`, seconds since the epoch.
        exp: i64,
        /// The validation time, seconds since the epoch.
        now: i64,
        /// The leeway allowed, seconds.
        leeway_secs: u64,
    },
    /// The token's `nbf` is in the future (beyond the leeway).
    #[error("jwt-svid is not valid before {nbf} (now {now}, leeway {leeway_secs}s)")]
    NotYetValid {
        /// `nbf`, seconds since the epoch.
        nbf: i64,
        /// The validation time, seconds since the epoch.
        now: i64,
        /// The leeway allowed, seconds.
        leeway_secs: u64,
    },
    /// A policy was built with a value that breaks its rules (empty expected audience, ...).
    #[error("invalid jwt policy {what} {value:?}: {rule}")]
    Policy {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: String,
        /// The rule it broke.
        rule: String,
    },
    /// A JWK, JWKS or key could not be used.
    #[error("invalid jwt key {what}: {reason}")]
    Key {
        /// Which key or document.
        what: String,
        /// Why.
        reason: String,
    },
    /// Minting failed (bad audience, TTL, or the signer failed).
    #[error("cannot mint jwt-svid: {reason}")]
    Mint {
        /// Why.
        reason: String,
    },
}
