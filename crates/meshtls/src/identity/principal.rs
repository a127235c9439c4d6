use std::collections::HashSet;

use super::{SpiffeId, TrustDomain};
use crate::error::IdentityError;

/// The trust domain that Istio treats as "this mesh, whatever its trust domain and aliases"
/// when it appears literally in a principal.
pub const CLUSTER_LOCAL: &str = "cluster.local";

/// A principal pattern as Istio's AuthorizationPolicy matches it against a peer's URI SAN
/// (with `spiffe://` put in front): exact, `*` (any peer with an identity), `prefix*` or
/// `*suffix`.
///
/// ```
/// use meshtls::identity::{PrincipalPattern, SpiffeId};
/// let p = PrincipalPattern::parse("cluster.local/ns/shop/*")?;
/// assert!(p.matches(&SpiffeId::new("spiffe://cluster.local/ns/shop/sa/web")?));
/// assert!(!p.matches(&SpiffeId::new("spiffe://cluster.local/ns/bank/sa/web")?));
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrincipalPattern {
    /// `*`: any authenticated peer.
    Any,
    /// The whole principal, e.g. `cluster.local/ns/a/sa/b`.
    Exact(String),
    /// `prefix*`.
    Prefix(String),
    /// `*suffix`.
    Suffix(String),
}

impl PrincipalPattern {
    /// Parses Istio's pattern syntax. A `*` anywhere but alone, first or last is an error
    /// (Istio's validation rejects it too).
    pub fn parse(pattern: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::BadPattern {
            pattern: crate::error::quote(pattern),
        };
        if pattern == "*" {
            return Ok(PrincipalPattern::Any);
        }
        if let Some(rest) = pattern.strip_prefix('*') {
            if rest.contains('*') {
                return Err(bad());
            }
            return Ok(PrincipalPattern::Suffix(rest.to_owned()));
        }
        if let Some(rest) = pattern.strip_suffix('*') {
            if rest.contains('*') {
                return Err(bad());
            }
            return Ok(PrincipalPattern::Prefix(rest.to_owned()));
        }
        if pattern.contains('*') || pattern.is_empty() {
            return Err(bad());
        }
        Ok(PrincipalPattern::Exact(pattern.to_owned()))
    }

    /// Matches a peer's SPIFFE ID the way Envoy's RBAC filter does for Istio: against the
    /// URI SAN without its `spiffe://` scheme.
    pub fn matches(&self, id: &SpiffeId) -> bool {
        self.matches_principal(&id.as_str()["spiffe://".len()..])
    }

    /// Matches a principal string (`<td>/ns/<ns>/sa/<sa>`, no scheme).
    pub fn matches_principal(&self, principal: &str) -> bool {
        match self {
            PrincipalPattern::Any => true,
            PrincipalPattern::Exact(p) => principal == p,
            PrincipalPattern::Prefix(p) => principal.starts_with(p.as_str()),
            PrincipalPattern::Suffix(s) => principal.ends_with(s.as_str()),
        }
    }
}

impl std::fmt::Display for PrincipalPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrincipalPattern::Any => f.write_str("*"),
            PrincipalPattern::Exact(p) => f.write_str(p),
            PrincipalPattern::Prefix(p) => write!(f, "{p}*"),
            PrincipalPattern::Suffix(s) => write!(f, "*{s}"),
        }
    }
}

/// Expands AuthorizationPolicy principals with the mesh's trust domains, as Istio's
/// `ReplaceTrustDomainAliases`: `trust_domains` is the mesh trust domain followed by its
/// aliases.
///
/// - a principal that does not split into exactly five `/`-parts, or whose trust domain is
///   `*`, is kept as it is;
/// - a principal whose trust domain is one of `trust_domains`, is literally
///   `cluster.local`, or is a pattern matching one of them (`*suffix` or `prefix*`, Istio's
///   `stringMatch`), becomes one principal per trust domain, in order and without
///   duplicates: the trust domain replaced, except that a `*suffix` pattern stays as written
///   for the trust domains it covers (so `*bar/ns/foo/sa/p1` with `[td1, foobar]` gives
///   `td1/ns/foo/sa/p1` and `*bar/ns/foo/sa/p1`, and a `td*/…` pattern becomes one exact
///   principal per trust domain);
/// - any other principal is kept as it is.
///
/// ```
/// use meshtls::identity::{expand_principals, TrustDomain};
/// let tds = [TrustDomain::new("prod.example")?, TrustDomain::new("old.example")?];
/// assert_eq!(
///     expand_principals(&["cluster.local/ns/a/sa/b"], &tds)?,
///     ["prod.example/ns/a/sa/b", "old.example/ns/a/sa/b"],
/// );
/// # Ok::<(), meshtls::Error>(())
/// ```
///
/// The expansion can be as large as `principals × trust domains`; past
/// [`MAX_EXPANSION`] entries it is refused with [`IdentityError::TooLarge`] before any work.
pub fn expand_principals<S: AsRef<str>>(
    principals: &[S],
    trust_domains: &[TrustDomain],
) -> Result<Vec<String>, IdentityError> {
    check_expansion("principals", principals.len(), trust_domains)?;
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut push = |p: String, out: &mut Vec<String>| {
        if !seen.contains(&p) {
            seen.insert(p.clone());
            out.push(p);
        }
    };
    let names: HashSet<&str> = trust_domains.iter().map(TrustDomain::as_str).collect();
    for principal in principals {
        let principal = principal.as_ref();
        let parts: Vec<&str> = principal.split('/').collect();
        if parts.len() != 5 || parts[0] == "*" {
            push(principal.to_owned(), &mut out);
            continue;
        }
        let td = parts[0];
        let in_bundle =
            names.contains(td) || trust_domains.iter().any(|t| pattern_covers(td, t.as_str()));
        if !(in_bundle || td == CLUSTER_LOCAL) {
            push(principal.to_owned(), &mut out);
            continue;
        }
        let rest = &principal[td.len()..];
        for t in trust_domains {
            // A principal whose trust domain is a `*suffix` pattern that already covers `t`
            // stays as written (Istio keeps the pattern instead of multiplying it).
            let candidate = match td.strip_prefix('*') {
                Some(suffix) if t.as_str().ends_with(suffix) => principal.to_owned(),
                _ => format!("{t}{rest}"),
            };
            push(candidate, &mut out);
        }
        if trust_domains.is_empty() {
            push(principal.to_owned(), &mut out);
        }
    }
    Ok(out)
}

/// Istio's `prefixMatch`/`suffixMatch` of a principal's trust domain against a trust domain:
/// `prefix*` or `*suffix` (trust domains themselves never hold `*`).
fn pattern_covers(pattern: &str, trust_domain: &str) -> bool {
    match (pattern.strip_suffix('*'), pattern.strip_prefix('*')) {
        (Some(prefix), _) if trust_domain.starts_with(prefix) => true,
        (_, Some(suffix)) => trust_domain.ends_with(suffix),
        _ => false,
    }
}

/// The most entries an alias expansion ([`expand_principals`], [`expand_spiffe_ids`]) may
/// produce: 100,000 (a few MB, expanded in well under a second) is far past any real mesh
/// (Istio meshes have a few aliases and policies a few principals).
pub const MAX_EXPANSION: usize = 100_000;

fn check_expansion(
    what: &'static str,
    items: usize,
    trust_domains: &[TrustDomain],
) -> Result<(), IdentityError> {
    let distinct: HashSet<&TrustDomain> = trust_domains.iter().collect();
    let bound = items.saturating_mul(distinct.len().saturating_add(1));
    if bound > MAX_EXPANSION {
        return Err(IdentityError::TooLarge {
            what,
            items,
            trust_domains: distinct.len(),
            limit: MAX_EXPANSION,
        });
    }
    Ok(())
}

/// Expands SPIFFE IDs with trust-domain aliases, as Istio's `ExpandWithTrustDomains`: the
/// input IDs first, then for each ID one copy per alias with the trust domain replaced;
/// duplicates are dropped. With no aliases the input is returned unchanged.
///
/// Past [`MAX_EXPANSION`] possible entries it is refused with [`IdentityError::TooLarge`].
pub fn expand_spiffe_ids(
    ids: &[SpiffeId],
    aliases: &[TrustDomain],
) -> Result<Vec<SpiffeId>, IdentityError> {
    check_expansion("SPIFFE IDs", ids.len(), aliases)?;
    let mut out: Vec<SpiffeId> = Vec::with_capacity(ids.len().saturating_mul(1 + aliases.len()));
    let mut seen: HashSet<SpiffeId> = HashSet::with_capacity(out.capacity());
    let mut push = |id: SpiffeId, out: &mut Vec<SpiffeId>| {
        if !seen.contains(&id) {
            seen.insert(id.clone());
            out.push(id);
        }
    };
    for id in ids {
        push(id.clone(), &mut out);
    }
    for id in ids {
        for alias in aliases {
            push(id.with_trust_domain(alias), &mut out);
        }
    }
    Ok(out)
}
