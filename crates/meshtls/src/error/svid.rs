use std::fmt;

/// Why an X.509-SVID failed verification.
///
/// Each variant names one rule of the X509-SVID standard (or of RFC 5280 path validation) and
/// carries the values that broke it. Messages cite the section of `X509-SVID.md` they enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// No certificate was presented.
    #[error("empty certificate chain: an X509-SVID chain starts with the leaf certificate")]
    EmptyChain,
    /// More certificates than meshtls accepts (16, as rust-spiffe).
    #[error("certificate chain has {len} certificates: at most {max} are accepted")]
    ChainTooLong {
        /// Certificates presented.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The chain PEM could not be read.
    #[error("cannot read the certificate chain PEM: {reason}")]
    Pem {
        /// What was wrong.
        reason: String,
    },
    /// A certificate is not well-formed DER X.509 (v3).
    #[error("cannot parse certificate {index} of the chain (0 is the leaf): {reason}")]
    Malformed {
        /// Position in the chain, 0 for the leaf.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// The leaf has no URI SAN.
    #[error(
        "leaf certificate contains no URI SAN: an X509-SVID has exactly one, its SPIFFE ID (X509-SVID §2)"
    )]
    NoUriSan,
    /// The leaf has more than one URI SAN (of any scheme).
    #[error(
        "leaf certificate contains {count} URI SANs ({uris}): an X509-SVID has exactly one (X509-SVID §2, §5.2)"
    )]
    MultipleUriSans {
        /// How many.
        count: usize,
        /// The URIs, quoted and comma-separated.
        uris: String,
    },
    /// The URI SAN is longer than the 2048 bytes SPIFFE IDs may have.
    #[error(
        "leaf URI SAN is {len} bytes long: at most 2048 are accepted (SPIFFE-ID §2.3 maximum ID length)"
    )]
    UriSanTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The URI SAN is not a SPIFFE ID by the strict grammar.
    #[error("leaf URI SAN {uri:?} is not a valid SPIFFE ID: {rule}")]
    InvalidSpiffeId {
        /// The URI SAN (truncated to 256 characters).
        uri: String,
        /// The grammar rule it broke (go-spiffe's wording).
        rule: String,
    },
    /// The leaf's SPIFFE ID names a trust domain, not a workload.
    #[error(
        "leaf SPIFFE ID {id} has no path: a leaf SVID must have a non-root path (X509-SVID §3.1, §5.2)"
    )]
    LeafWithoutPath {
        /// The SPIFFE ID.
        id: String,
    },
    /// The leaf broke one of the leaf profile rules.
    #[error("leaf certificate {id}: {rule}")]
    Leaf {
        /// The leaf's SPIFFE ID.
        id: String,
        /// The rule.
        rule: LeafRule,
    },
    /// A certificate after the leaf broke one of the signing-certificate rules.
    #[error("certificate {index} of the chain (a signing certificate): {rule}")]
    Signing {
        /// Position in the chain (1 is the certificate after the leaf).
        index: usize,
        /// The rule.
        rule: SigningRule,
    },
    /// No bundle for the leaf's trust domain (bundles of other trust domains are never used).
    #[error(
        "no trust bundle for trust domain {trust_domain:?} (the leaf's): bundles of other trust domains are never used"
    )]
    NoBundle {
        /// The leaf's trust domain.
        trust_domain: String,
    },
    /// The bundle of the leaf's trust domain has no roots (all revoked).
    #[error(
        "the trust bundle of {trust_domain:?} has no root certificates, so every SVID of that trust domain is rejected"
    )]
    EmptyBundle {
        /// The bundle's trust domain.
        trust_domain: String,
    },
    /// RFC 5280 path validation against the bundle of the leaf's trust domain failed.
    #[error("chain of {id} does not verify against the roots of {trust_domain:?}: {reason}")]
    Untrusted {
        /// The leaf's SPIFFE ID.
        id: String,
        /// The trust domain whose roots were used.
        trust_domain: String,
        /// What failed.
        reason: String,
    },
    /// A private key does not belong to the leaf certificate.
    #[error("private key does not match the leaf certificate: {reason}")]
    KeyMismatch {
        /// What was compared.
        reason: String,
    },
}

/// A rule of the X509-SVID leaf profile (X509-SVID §3.1, §4, §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeafRule {
    /// No BasicConstraints extension (the standard says the leaf MUST set cA=false).
    BasicConstraintsMissing,
    /// BasicConstraints cA=true.
    IsCa,
    /// No KeyUsage extension.
    KeyUsageMissing,
    /// KeyUsage not marked critical.
    KeyUsageNotCritical,
    /// KeyUsage without digitalSignature.
    NoDigitalSignature,
    /// KeyUsage with keyCertSign.
    KeyCertSign,
    /// KeyUsage with cRLSign.
    CrlSign,
    /// ExtendedKeyUsage present without both serverAuth and clientAuth.
    ExtendedKeyUsage {
        /// The purposes the leaf has.
        present: String,
    },
    /// Empty subject with a non-critical SAN extension.
    SanNotCritical,
    /// Not valid yet at the verification time.
    NotYetValid {
        /// NotBefore, RFC 3339.
        not_before: String,
        /// The verification time, RFC 3339.
        now: String,
    },
    /// Expired at the verification time.
    Expired {
        /// NotAfter, RFC 3339.
        not_after: String,
        /// The verification time, RFC 3339.
        now: String,
    },
}

impl fmt::Display for LeafRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BasicConstraintsMissing => f.write_str(
                "no basic constraints extension: a leaf SVID must set cA=false (X509-SVID §4.1)",
            ),
            Self::IsCa => f.write_str(
                "basic constraints cA=true: a leaf SVID must set cA=false, signing certificates cannot authenticate (X509-SVID §4.1, §5.2)",
            ),
            Self::KeyUsageMissing => f.write_str(
                "no key usage extension: it must be present and critical on every SVID (X509-SVID §4.3)",
            ),
            Self::KeyUsageNotCritical => {
                f.write_str("key usage extension is not critical: it must be (X509-SVID §4.3)")
            }
            Self::NoDigitalSignature => {
                f.write_str("key usage lacks digitalSignature, which a leaf SVID must set (X509-SVID §4.3)")
            }
            Self::KeyCertSign => f.write_str(
                "key usage has keyCertSign, which a leaf SVID must not set (X509-SVID §4.3, §5.2)",
            ),
            Self::CrlSign => f.write_str(
                "key usage has cRLSign, which a leaf SVID must not set (X509-SVID §4.3, §5.2)",
            ),
            Self::ExtendedKeyUsage { present } => write!(
                f,
                "extended key usage [{present}] lacks serverAuth or clientAuth: when present it must contain both (X509-SVID §4.4)"
            ),
            Self::SanNotCritical => f.write_str(
                "empty subject but the subject alternative name extension is not critical (X509-SVID §3.1, RFC 5280 §4.1.2.6)",
            ),
            Self::NotYetValid { not_before, now } => {
                write!(f, "not valid before {not_before} (verification time {now})")
            }
            Self::Expired { not_after, now } => {
                write!(f, "expired at {not_after} (verification time {now})")
            }
        }
    }
}

/// A rule for signing (CA) certificates (X509-SVID §3.2, §4), and meshtls's decisions where the
/// standard leaves the behaviour to the implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningRule {
    /// No BasicConstraints extension.
    BasicConstraintsMissing,
    /// BasicConstraints cA=false.
    NotCa,
    /// KeyUsage without keyCertSign.
    NoKeyCertSign,
    /// A SPIFFE ID with a path.
    SpiffeIdWithPath {
        /// The ID.
        id: String,
    },
    /// A `spiffe:` URI SAN that is not a valid SPIFFE ID.
    InvalidSpiffeId {
        /// The URI (truncated to 256 characters).
        uri: String,
        /// The grammar rule.
        rule: String,
    },
    /// ExtendedKeyUsage present without both serverAuth and clientAuth (svid-cases A33: meshtls
    /// rejects, as rustls-webpki, OpenSSL and BoringSSL apply a CA's EKU to its leaves).
    ExtendedKeyUsage {
        /// The purposes the certificate has.
        present: String,
    },
    /// URI name constraints (svid-cases A34: meshtls rejects, as rustls-webpki does; X509-SVID
    /// §4.2 anticipates libraries that reject them).
    UriNameConstraints,
}

impl fmt::Display for SigningRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BasicConstraintsMissing => f.write_str(
                "no basic constraints extension: a signing certificate must set cA=true (X509-SVID §4.1)",
            ),
            Self::NotCa => f.write_str(
                "basic constraints cA=false: a signing certificate must set cA=true (X509-SVID §4.1)",
            ),
            Self::NoKeyCertSign => f.write_str(
                "key usage lacks keyCertSign, which a signing certificate must set (X509-SVID §4.3)",
            ),
            Self::SpiffeIdWithPath { id } => write!(
                f,
                "SPIFFE ID {id} has a path: a signing certificate's SPIFFE ID must not (X509-SVID §3.2)"
            ),
            Self::InvalidSpiffeId { uri, rule } => {
                write!(f, "URI SAN {uri:?} is not a valid SPIFFE ID: {rule}")
            }
            Self::ExtendedKeyUsage { present } => write!(
                f,
                "extended key usage [{present}] lacks serverAuth or clientAuth: meshtls applies a signing certificate's EKU to the leaves below it, as rustls-webpki and OpenSSL do (X509-SVID §4.4 leaves this to the implementation)"
            ),
            Self::UriNameConstraints => f.write_str(
                "carries URI name constraints, which meshtls does not support and rejects, as rustls-webpki does (X509-SVID §4.2 allows libraries to reject them)",
            ),
        }
    }
}

/// Why a trust bundle could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The PEM text of a trust domain's roots could not be read.
    #[error("cannot read the PEM roots of trust domain {trust_domain:?}: {reason}")]
    Pem {
        /// The trust domain.
        trust_domain: String,
        /// What was wrong.
        reason: String,
    },
    /// A root certificate is not well-formed DER X.509.
    #[error("root certificate {index} of trust domain {trust_domain:?} cannot be parsed: {reason}")]
    BadCertificate {
        /// The trust domain.
        trust_domain: String,
        /// Position among the bundle's roots.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// The text is not JSON, or a JSON object repeats a member.
    #[error("invalid bundle JSON: {reason}")]
    Json {
        /// What was wrong (with line and column).
        reason: String,
    },
    /// A member of a SPIFFE bundle or bundle map has the wrong type or value.
    #[error("invalid SPIFFE bundle member {member}: {reason}")]
    Member {
        /// Where, e.g. `keys[1].x5c[0]` or `trust_domains["example.org"].keys`.
        member: String,
        /// What was wrong.
        reason: String,
    },
    /// A SPIFFE bundle without `keys` (SPIFFE Trust Domain and Bundle §4.1: MUST be present).
    #[error(
        "SPIFFE bundle{} has no \"keys\" member, which is required (SPIFFE Trust Domain and Bundle §4.1)",
        at.as_ref().map(|a| format!(" {a}")).unwrap_or_default()
    )]
    MissingKeys {
        /// Where, for a bundle inside a map.
        at: Option<String>,
    },
    /// A trust-domain name in a bundle map or PEM map is invalid.
    #[error("invalid trust domain {name:?} in a bundle map: {reason}")]
    TrustDomain {
        /// The name (its first 256 characters and `...` when longer).
        name: String,
        /// The grammar rule.
        reason: String,
    },
    /// A trust-domain alias conflicts with a bundle or another alias.
    #[error("trust-domain alias {alias:?}: {reason}")]
    Alias {
        /// The alias.
        alias: String,
        /// The conflict.
        reason: String,
    },
    /// A SPIFFE bundle map names more trust domains than
    /// [`crate::bundle::MAX_BUNDLE_MAP_TRUST_DOMAINS`].
    #[error("SPIFFE bundle map names {count} trust domains, more than the {limit} meshtls reads")]
    TooManyTrustDomains {
        /// How many the map names.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A PEM or JSON bundle text is larger than [`crate::bundle::MAX_BUNDLE_BYTES`].
    #[error("{what} is {size} bytes, more than the {limit} bytes meshtls reads")]
    TooLarge {
        /// What was being read (`PEM bundle`, `SPIFFE bundle JSON`, ...).
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A root's public key cannot be represented as a JWK.
    #[error(
        "root certificate {index} of trust domain {trust_domain:?} has a key type JWK cannot express: {reason}"
    )]
    UnsupportedKey {
        /// The trust domain.
        trust_domain: String,
        /// Position among the bundle's roots.
        index: usize,
        /// What was found.
        reason: String,
    },
}

/// Why a verified peer was not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The peer's SPIFFE ID is not one the authorizer accepts.
    #[error("peer {presented} is not authorized: expected {expected}")]
    Denied {
        /// The peer's SPIFFE ID.
        presented: String,
        /// What the authorizer accepts (its first 1,024 characters when longer).
        expected: String,
    },
    /// A combinator tree (`all_of`, `any_of`, `not`) would be deeper than
    /// [`crate::authz::MAX_DEPTH`].
    #[error(
        "an authorizer nested {depth} levels deep is refused: at most {limit} levels (use one all_of/any_of over a list instead of a chain)"
    )]
    TooDeep {
        /// The depth the tree would have.
        depth: usize,
        /// The limit.
        limit: usize,
    },
}
