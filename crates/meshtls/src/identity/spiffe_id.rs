use std::fmt;
use std::str::FromStr;

use super::TrustDomain;
use super::grammar;
use crate::error::{SpiffeIdError, SpiffeIdErrorKind};

/// A SPIFFE ID, validated by the strict grammar of SPIFFE-ID.md §2 (go-spiffe's verdict plus
/// the 255-byte trust-domain cap).
///
/// Stored as its canonical text plus the offset where the path starts, so [`SpiffeId::as_str`],
/// [`SpiffeId::trust_domain_name`] and [`SpiffeId::path`] are free.
///
/// ```
/// use meshtls::identity::SpiffeId;
/// let id = SpiffeId::new("spiffe://cluster.local/ns/default/sa/web")?;
/// assert_eq!(id.trust_domain_name(), "cluster.local");
/// assert_eq!(id.path(), "/ns/default/sa/web");
/// assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/web");
/// assert!(SpiffeId::new("spiffe://cluster.local/ns/default/sa/web/").is_err());
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    text: String,
    path_start: usize,
}

impl SpiffeId {
    /// Parses a SPIFFE ID strictly: scheme exactly `spiffe://`, lower-case trust domain,
    /// no query, fragment, port, userinfo, percent-encoding, empty or dot segment or trailing `/`.
    pub fn new(text: &str) -> Result<Self, SpiffeIdError> {
        let td_len = grammar::parse_id(text, "spiffe id")?;
        Ok(SpiffeId {
            text: text.to_owned(),
            path_start: grammar::SCHEME.len() + td_len,
        })
    }

    /// Parses like rust-spiffe and py-spiffe: the scheme and the trust domain are compared
    /// and stored case-insensitively (ASCII only), the path is kept as it is. The result is
    /// canonical (lower-case scheme and trust domain), so it round-trips through
    /// [`SpiffeId::new`]. Never used implicitly by the strict parser.
    pub fn parse_lenient(text: &str) -> Result<Self, SpiffeIdError> {
        let what = "spiffe id";
        if let Some(pos) = text.bytes().position(|b| !b.is_ascii()) {
            return Err(SpiffeIdError::new(
                what,
                text,
                SpiffeIdErrorKind::NonAscii,
                Some(pos),
            ));
        }
        let scheme_len = grammar::SCHEME.len();
        if text.len() < scheme_len || !text[..scheme_len].eq_ignore_ascii_case(grammar::SCHEME) {
            if text.is_empty() {
                return Err(SpiffeIdError::new(
                    what,
                    text,
                    SpiffeIdErrorKind::Empty,
                    None,
                ));
            }
            return Err(SpiffeIdError::new(
                what,
                text,
                SpiffeIdErrorKind::WrongScheme,
                Some(0),
            ));
        }
        let rest = &text[scheme_len..];
        let td_end = rest.find('/').unwrap_or(rest.len());
        let mut canonical = String::with_capacity(text.len());
        canonical.push_str(grammar::SCHEME);
        canonical.push_str(&rest[..td_end].to_ascii_lowercase());
        canonical.push_str(&rest[td_end..]);
        SpiffeId::new(&canonical)
            .map_err(|e| SpiffeIdError::new(what, text, e.kind(), e.position()))
    }

    /// Builds `spiffe://<td><path>`, checking `path` (empty, or `/seg/seg...`).
    pub fn from_trust_domain_and_path(td: &TrustDomain, path: &str) -> Result<Self, SpiffeIdError> {
        let mut text =
            String::with_capacity(grammar::SCHEME.len() + td.as_str().len() + path.len());
        text.push_str(grammar::SCHEME);
        text.push_str(td.as_str());
        let path_start = text.len();
        text.push_str(path);
        if !path.is_empty() && !path.starts_with('/') {
            return Err(SpiffeIdError::new(
                "spiffe id path",
                path,
                SpiffeIdErrorKind::BadSegment,
                Some(0),
            ));
        }
        grammar::check_path(&text, path_start, "spiffe id")?;
        Ok(SpiffeId { text, path_start })
    }

    /// Builds `spiffe://<td>/<seg>/<seg>...`; each segment is checked on its own (a segment
    /// containing `/` is an error, not two segments).
    pub fn from_segments(td: &TrustDomain, segments: &[&str]) -> Result<Self, SpiffeIdError> {
        let mut text = String::with_capacity(
            grammar::SCHEME.len()
                + td.as_str().len()
                + segments.iter().map(|s| s.len() + 1).sum::<usize>(),
        );
        text.push_str(grammar::SCHEME);
        text.push_str(td.as_str());
        let path_start = text.len();
        for seg in segments {
            grammar::check_single_segment(seg, "spiffe id path segment")?;
            text.push('/');
            text.push_str(seg);
        }
        Ok(SpiffeId { text, path_start })
    }

    pub(crate) fn from_parts_unchecked(text: String, td_len: usize) -> Self {
        SpiffeId {
            path_start: grammar::SCHEME.len() + td_len,
            text,
        }
    }

    /// The canonical text, `spiffe://<td><path>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The trust-domain name, without allocating.
    pub fn trust_domain_name(&self) -> &str {
        &self.text[grammar::SCHEME.len()..self.path_start]
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain::from_validated(self.trust_domain_name().to_owned())
    }

    /// The path, `""` for a trust-domain-only ID, otherwise starting with `/`.
    pub fn path(&self) -> &str {
        &self.text[self.path_start..]
    }

    /// The path's segments (none for a trust-domain-only ID).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        let path = self.path();
        path.split('/').skip(1).filter(move |_| !path.is_empty())
    }

    /// True when the ID has no path, i.e. names the trust domain itself.
    pub fn is_trust_domain_id(&self) -> bool {
        self.path_start == self.text.len()
    }

    /// True when the ID belongs to `td`.
    pub fn is_member_of(&self, td: &TrustDomain) -> bool {
        self.trust_domain_name() == td.as_str()
    }

    /// The same path in another trust domain (used for trust-domain alias expansion).
    pub fn with_trust_domain(&self, td: &TrustDomain) -> SpiffeId {
        let mut text =
            String::with_capacity(grammar::SCHEME.len() + td.as_str().len() + self.path().len());
        text.push_str(grammar::SCHEME);
        text.push_str(td.as_str());
        text.push_str(self.path());
        SpiffeId::from_parts_unchecked(text, td.as_str().len())
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpiffeId({:?})", self.text)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::new(s)
    }
}

impl TryFrom<&str> for SpiffeId {
    type Error = SpiffeIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        SpiffeId::new(s)
    }
}

impl AsRef<str> for SpiffeId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for SpiffeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for SpiffeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SpiffeId::new(&s).map_err(serde::de::Error::custom)
    }
}
