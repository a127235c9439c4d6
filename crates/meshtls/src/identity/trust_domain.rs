use std::fmt;
use std::str::FromStr;

use super::SpiffeId;
use super::grammar;
use crate::error::{SpiffeIdError, SpiffeIdErrorKind};

/// A SPIFFE trust domain, validated by the strict grammar: `[a-z0-9._-]`, 1 to 255 bytes.
///
/// ```
/// use meshtls::identity::TrustDomain;
/// let td = TrustDomain::new("cluster.local")?;
/// assert_eq!(td.as_str(), "cluster.local");
/// // A full SPIFFE ID is accepted too, as long as the whole ID is valid.
/// assert_eq!(TrustDomain::new("spiffe://cluster.local/ns/a/sa/b")?, td);
/// assert!(TrustDomain::new("Cluster.Local").is_err());
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain {
    name: String,
}

impl TrustDomain {
    /// Parses a trust-domain name, or a SPIFFE ID whose trust domain is taken.
    ///
    /// An input containing `:/` is parsed as a whole SPIFFE ID (go-spiffe's
    /// `TrustDomainFromString`), so `spiffe://td/bad/` is an error, not `td`.
    pub fn new(name_or_id: &str) -> Result<Self, SpiffeIdError> {
        if name_or_id.contains(":/") {
            let td_len = grammar::parse_id(name_or_id, "trust domain")?;
            let start = grammar::SCHEME.len();
            return Ok(TrustDomain {
                name: name_or_id[start..start + td_len].to_owned(),
            });
        }
        grammar::check_trust_domain_name(name_or_id, "trust domain")?;
        Ok(TrustDomain {
            name: name_or_id.to_owned(),
        })
    }

    /// Parses like rust-spiffe and py-spiffe do: ASCII case is folded and, for an ID-shaped
    /// input, only the authority is looked at (`spiffe://Example.org/anything` → `example.org`).
    ///
    /// Never called by [`TrustDomain::new`]; use it only where interop with lenient peers is
    /// wanted, and store the canonical result.
    pub fn parse_lenient(name_or_id: &str) -> Result<Self, SpiffeIdError> {
        let what = "trust domain";
        if let Some(pos) = name_or_id.bytes().position(|b| !b.is_ascii()) {
            return Err(SpiffeIdError::new(
                what,
                name_or_id,
                SpiffeIdErrorKind::NonAscii,
                Some(pos),
            ));
        }
        let name = if let Some(idx) = name_or_id.find("://") {
            if !name_or_id[..idx].eq_ignore_ascii_case("spiffe") {
                return Err(SpiffeIdError::new(
                    what,
                    name_or_id,
                    SpiffeIdErrorKind::WrongScheme,
                    Some(0),
                ));
            }
            let authority = &name_or_id[idx + 3..];
            authority.split('/').next().unwrap_or_default()
        } else if name_or_id.contains(":/") {
            return Err(SpiffeIdError::new(
                what,
                name_or_id,
                SpiffeIdErrorKind::WrongScheme,
                Some(0),
            ));
        } else {
            name_or_id
        };
        let lowered = name.to_ascii_lowercase();
        grammar::check_trust_domain_name(&lowered, what)?;
        Ok(TrustDomain { name: lowered })
    }

    /// The name, e.g. `cluster.local`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The trust domain's own SPIFFE ID, `spiffe://<name>` (the ID a signing certificate may
    /// carry).
    pub fn id(&self) -> SpiffeId {
        SpiffeId::from_parts_unchecked(format!("{}{}", grammar::SCHEME, self.name), self.name.len())
    }

    /// Builds `spiffe://<self><path>`; `path` must be empty or a valid SPIFFE path.
    pub fn id_with_path(&self, path: &str) -> Result<SpiffeId, SpiffeIdError> {
        SpiffeId::from_trust_domain_and_path(self, path)
    }

    pub(crate) fn from_validated(name: String) -> Self {
        TrustDomain { name }
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustDomain({:?})", self.name)
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::new(s)
    }
}

impl TryFrom<&str> for TrustDomain {
    type Error = SpiffeIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        TrustDomain::new(s)
    }
}

impl AsRef<str> for TrustDomain {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl serde::Serialize for TrustDomain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for TrustDomain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TrustDomain::new(&s).map_err(serde::de::Error::custom)
    }
}
