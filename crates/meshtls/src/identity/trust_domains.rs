//! [`TrustDomains`]: a mesh's trust domain and its aliases, the set every identity check of the
//! mesh (bundles, authorizers, the CA, AuthorizationPolicy principals) is made against.

use std::collections::HashSet;

use super::TrustDomain;

/// The mesh's trust domain followed by its aliases.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomains {
    all: Vec<TrustDomain>,
}

impl TrustDomains {
    /// The primary trust domain and its aliases (duplicates of earlier entries are dropped).
    pub fn new(primary: TrustDomain, aliases: impl IntoIterator<Item = TrustDomain>) -> Self {
        TrustDomains {
            all: dedup_in_order(std::iter::once(primary).chain(aliases)),
        }
    }

    /// The mesh's own trust domain.
    pub fn primary(&self) -> &TrustDomain {
        &self.all[0]
    }

    /// The aliases, in order.
    pub fn aliases(&self) -> &[TrustDomain] {
        &self.all[1..]
    }

    /// Primary first, then aliases.
    pub fn all(&self) -> &[TrustDomain] {
        &self.all
    }

    /// True when `td` is the primary or an alias (a linear scan: for many lookups against
    /// many aliases use [`crate::authz::member_of_mesh`], which hashes).
    pub fn contains(&self, td: &TrustDomain) -> bool {
        self.all.contains(td)
    }

    /// Istio's `ReplaceTrustDomainAliases` over these trust domains; see
    /// [`crate::identity::expand_principals`].
    pub fn expand_principals<S: AsRef<str>>(
        &self,
        principals: &[S],
    ) -> Result<Vec<String>, crate::error::IdentityError> {
        super::expand_principals(principals, &self.all)
    }

    /// Istio's `ExpandWithTrustDomains` with the aliases; see
    /// [`crate::identity::expand_spiffe_ids`].
    pub fn expand_spiffe_ids(
        &self,
        ids: &[crate::SpiffeId],
    ) -> Result<Vec<crate::SpiffeId>, crate::error::IdentityError> {
        super::expand_spiffe_ids(ids, self.aliases())
    }
}

/// Keeps the first occurrence of each trust domain, in order, in one pass (a hash set: a mesh
/// config with 100,000 aliases must not cost 100,000² comparisons).
pub(crate) fn dedup_in_order(items: impl IntoIterator<Item = TrustDomain>) -> Vec<TrustDomain> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for td in items {
        if seen.insert(td.clone()) {
            out.push(td);
        }
    }
    out
}
