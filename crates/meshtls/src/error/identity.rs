use std::fmt;

/// Which rule of the SPIFFE ID grammar (SPIFFE-ID.md §2) an input broke.
///
/// The wording of each rule's message is go-spiffe's, so that a message seen in a Go service's
/// log and in meshtls's say the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpiffeIdErrorKind {
    /// The input was empty.
    Empty,
    /// The input did not start with exactly `spiffe://`.
    WrongScheme,
    /// Nothing stood between `spiffe://` and the path.
    MissingTrustDomain,
    /// A trust-domain byte was outside `[a-z0-9._-]`.
    BadTrustDomainChar,
    /// A path byte was outside `[a-zA-Z0-9._-]`.
    BadPathSegmentChar,
    /// The path had an empty segment (`//`).
    EmptySegment,
    /// The path had a `.` or `..` segment.
    DotSegment,
    /// The path ended with `/`.
    TrailingSlash,
    /// The trust domain was longer than 255 bytes (SPIFFE-ID.md §2.3).
    TrustDomainTooLong,
    /// A segment given to a builder contained `/` or was otherwise not one segment.
    BadSegment,
    /// The lenient parser met a byte that is not ASCII (case folding is ASCII only, so that
    /// e.g. U+212A KELVIN SIGN can never become `k`).
    NonAscii,
}

impl SpiffeIdErrorKind {
    /// The rule, in go-spiffe's words.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Empty => "cannot be empty",
            Self::WrongScheme => "scheme is missing or invalid",
            Self::MissingTrustDomain => "trust domain is missing",
            Self::BadTrustDomainChar => {
                "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
            }
            Self::BadPathSegmentChar => {
                "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
            }
            Self::EmptySegment => "path cannot contain empty segments",
            Self::DotSegment => "path cannot contain dot segments",
            Self::TrailingSlash => "path cannot have a trailing slash",
            Self::TrustDomainTooLong => "trust domain exceeds maximum length (255 bytes)",
            Self::BadSegment => "a path segment must be non-empty and cannot contain '/'",
            Self::NonAscii => "only ASCII input can be case-folded",
        }
    }
}

impl fmt::Display for SpiffeIdErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rule())
    }
}

/// A SPIFFE ID or trust domain that does not follow the strict grammar.
///
/// Carries the input (its first 256 characters when longer), the rule and the byte
/// offset at which the parser stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {kind}{}", position.map(|p| format!(" (at byte {p})")).unwrap_or_default())]
pub struct SpiffeIdError {
    what: &'static str,
    input: String,
    kind: SpiffeIdErrorKind,
    position: Option<usize>,
}

impl SpiffeIdError {
    pub(crate) fn new(
        what: &'static str,
        input: &str,
        kind: SpiffeIdErrorKind,
        position: Option<usize>,
    ) -> Self {
        let input = super::quote(input);
        SpiffeIdError {
            what,
            input,
            kind,
            position,
        }
    }

    /// Which rule failed.
    pub fn kind(&self) -> SpiffeIdErrorKind {
        self.kind
    }

    /// The byte offset in the input where the rule failed, when there is one.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// The input (possibly truncated for display).
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// A valid SPIFFE ID that does not have the shape an operation needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The ID is not `spiffe://<td>/ns/<ns>/sa/<sa>` (Istio's `ParseIdentity`: exactly five
    /// segments, `ns` and `sa` in places 1 and 3).
    #[error(
        "{id:?} is not an istio identity: expected spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
    )]
    NotIstioIdentity {
        /// The offending ID or principal (its first 256 characters when longer).
        id: String,
    },
    /// The principal is not `<td>/ns/<ns>/sa/<sa>`.
    #[error(
        "{principal:?} is not an istio principal: expected <trust domain>/ns/<namespace>/sa/<service account>"
    )]
    NotIstioPrincipal {
        /// The offending principal (its first 256 characters when longer).
        principal: String,
    },
    /// A trust-domain alias expansion would produce more than
    /// [`crate::identity::MAX_EXPANSION`] entries.
    #[error(
        "expanding {items} {what} with {trust_domains} trust domains could give more than {limit} entries; refused"
    )]
    TooLarge {
        /// What was expanded (`principals`, `SPIFFE IDs`).
        what: &'static str,
        /// How many were given.
        items: usize,
        /// How many distinct trust domains (or aliases).
        trust_domains: usize,
        /// The limit.
        limit: usize,
    },
    /// A principal pattern used `*` somewhere other than alone, at the start or at the end.
    #[error("invalid principal pattern {pattern:?}: '*' may only stand alone, first or last")]
    BadPattern {
        /// The offending pattern (its first 256 characters when longer).
        pattern: String,
    },
}
