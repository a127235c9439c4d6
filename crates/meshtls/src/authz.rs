//! Authorizers: once a peer's SVID has verified ([`crate::svid::verify_svid`]), decide whether
//! that peer may talk to you.
//!
//! An [`Authorizer`] is an object-safe, `Send + Sync` trait, so a TLS verifier can hold an
//! `Arc<dyn Authorizer>`. The constructors here cover go-spiffe's matchers (any, one ID, one of
//! several, member of a trust domain) and Istio's (namespaces, service accounts, principal
//! patterns with trust-domain alias expansion), plus combinators and closures. A refusal is an
//! [`AuthzError::Denied`] that says what was expected and what was presented.
//!
//! Lookups are hashed (an authorizer of 100,000 IDs or trust domains costs one lookup per
//! peer), combinator trees are at most [`MAX_DEPTH`] deep (deeper ones are refused with
//! [`AuthzError::TooDeep`] when built, so that neither evaluation nor dropping a tree can
//! exhaust the stack), and refusals quote at most [`MAX_DESCRIPTION_CHARS`] characters of what
//! was expected.
//!
//! ```
//! use meshtls::authz::{self, Authorizer};
//! use meshtls::{SpiffeId, TrustDomain};
//!
//! let mesh = [TrustDomain::new("cluster.local")?, TrustDomain::new("old.example")?];
//! let policy = authz::any_of(vec![
//!     authz::principals(&["cluster.local/ns/shop/sa/*"], &mesh)?,
//!     authz::id(SpiffeId::new("spiffe://cluster.local/ns/ops/sa/admin")?),
//! ])?;
//! policy.authorize(&SpiffeId::new("spiffe://old.example/ns/shop/sa/web")?)?;
//! let refused = policy
//!     .authorize(&SpiffeId::new("spiffe://cluster.local/ns/bank/sa/web")?)
//!     .unwrap_err();
//! assert!(refused.to_string().starts_with(
//!     "peer spiffe://cluster.local/ns/bank/sa/web is not authorized: expected any of ["
//! ));
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::error::{AuthzError, Error};
use crate::identity::TrustDomains;
use crate::identity::{IstioIdentity, PrincipalPattern, expand_principals};
use crate::svid::VerifiedSvid;
use crate::{SpiffeId, TrustDomain};

/// Decides whether a verified peer is allowed.
pub trait Authorizer: Send + Sync + fmt::Debug {
    /// Accepts or refuses the peer with this (verified) SPIFFE ID.
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError>;

    /// What this authorizer accepts, in words; refusals quote it.
    fn describe(&self) -> String;

    /// Accepts or refuses a verified peer given its whole verified path. By default only the
    /// SPIFFE ID is looked at; override to inspect the chain.
    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        self.authorize(peer.spiffe_id())
    }

    /// True when [`Authorizer::authorize`] would accept the peer. Combinators call this on
    /// their members so that a refusal's description is built once, at the top, not at every
    /// level; override it when the verdict is cheaper than the error.
    fn allows(&self, peer: &SpiffeId) -> bool {
        self.authorize(peer).is_ok()
    }

    /// True when [`Authorizer::authorize_verified`] would accept the peer.
    fn allows_verified(&self, peer: &VerifiedSvid) -> bool {
        self.authorize_verified(peer).is_ok()
    }

    /// How deep this authorizer's tree is: 1 for a leaf, one more than the deepest member
    /// for a combinator. [`all_of`], [`any_of`] and [`not`] refuse to build a tree deeper
    /// than [`MAX_DEPTH`]; an authorizer that wraps others should report their depth plus one.
    fn depth(&self) -> usize {
        1
    }
}

/// The deepest combinator tree ([`all_of`], [`any_of`], [`not`]) that can be built. Evaluating,
/// describing and dropping a tree recurse once per level; 128 levels stay far from any
/// thread's stack limit (a hand-written policy nests a few levels; a long `a & b & c ...`
/// chain is better written as one [`all_of`] of a list).
pub const MAX_DEPTH: usize = 128;

/// The most characters of an authorizer's description that a refusal quotes.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

impl<A: Authorizer + ?Sized> Authorizer for Arc<A> {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        (**self).authorize(peer)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        (**self).authorize_verified(peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        (**self).allows(peer)
    }

    fn allows_verified(&self, peer: &VerifiedSvid) -> bool {
        (**self).allows_verified(peer)
    }

    fn depth(&self) -> usize {
        (**self).depth()
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Box<A> {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        (**self).authorize(peer)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        (**self).authorize_verified(peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        (**self).allows(peer)
    }

    fn allows_verified(&self, peer: &VerifiedSvid) -> bool {
        (**self).allows_verified(peer)
    }

    fn depth(&self) -> usize {
        (**self).depth()
    }
}

fn check(ok: bool, me: &dyn Authorizer, peer: &SpiffeId) -> Result<(), AuthzError> {
    if ok {
        Ok(())
    } else {
        Err(denied(me.describe(), peer))
    }
}

fn denied(expected: String, peer: &SpiffeId) -> AuthzError {
    let expected = match expected.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        None => expected,
        Some((cut, _)) => format!(
            "{}... ({} more bytes)",
            &expected[..cut],
            expected.len() - cut
        ),
    };
    AuthzError::Denied {
        presented: crate::error::quote(peer.as_str()),
        expected,
    }
}

/// Trust domains in order (for descriptions) and hashed by name (for lookups).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrustDomainSet {
    list: Vec<TrustDomain>,
    names: HashSet<String>,
}

impl TrustDomainSet {
    fn new<I: IntoIterator<Item = TrustDomain>>(trust_domains: I) -> Self {
        let mut names = HashSet::new();
        let list = trust_domains
            .into_iter()
            .filter(|t| names.insert(t.as_str().to_owned()))
            .collect();
        TrustDomainSet { list, names }
    }

    fn has_member(&self, peer: &SpiffeId) -> bool {
        self.names.contains(peer.trust_domain_name())
    }
}

fn comma_list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn td_list(tds: &[TrustDomain]) -> String {
    match tds {
        [] => "no trust domain".to_owned(),
        [one] => format!("trust domain {one}"),
        many => format!("one of the trust domains {}", comma_list(many)),
    }
}

/// Accepts any peer whose SVID verified (go-spiffe's `AuthorizeAny`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnyPeer;

impl Authorizer for AnyPeer {
    fn authorize(&self, _peer: &SpiffeId) -> Result<(), AuthzError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "any peer with a verified SVID".to_owned()
    }
}

/// Accepts exactly the listed SPIFFE IDs (go-spiffe's `AuthorizeID` / `AuthorizeOneOf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOf {
    ids: Vec<SpiffeId>,
    set: HashSet<SpiffeId>,
}

impl OneOf {
    /// Accepts these IDs (compared exactly, as strings; duplicates are dropped).
    pub fn new<I: IntoIterator<Item = SpiffeId>>(ids: I) -> Self {
        let mut set = HashSet::new();
        let ids = ids.into_iter().filter(|i| set.insert(i.clone())).collect();
        OneOf { ids, set }
    }
}

impl Authorizer for OneOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.set.contains(peer)
    }

    fn describe(&self) -> String {
        match self.ids.as_slice() {
            [] => "no peer (an empty list of IDs)".to_owned(),
            [one] => one.to_string(),
            many => format!("one of {}", comma_list(many)),
        }
    }
}

/// Accepts peers of the listed trust domains (go-spiffe's `AuthorizeMemberOf`, several at
/// once, e.g. a mesh's trust domain and its aliases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOf {
    trust_domains: TrustDomainSet,
}

impl MemberOf {
    /// Accepts members of these trust domains.
    pub fn new<I: IntoIterator<Item = TrustDomain>>(trust_domains: I) -> Self {
        MemberOf {
            trust_domains: TrustDomainSet::new(trust_domains),
        }
    }
}

impl Authorizer for MemberOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.trust_domains.has_member(peer)
    }

    fn describe(&self) -> String {
        format!("a member of {}", td_list(&self.trust_domains.list))
    }
}

/// Accepts Istio identities (`spiffe://<td>/ns/<ns>/sa/<sa>`) of the listed trust domains
/// whose namespace matches one of Istio's namespace patterns (exact, `*`, `prefix*`,
/// `*suffix`), as an AuthorizationPolicy's `source.namespaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    trust_domains: TrustDomainSet,
    patterns: Vec<PrincipalPattern>,
}

impl Namespace {
    /// Accepts namespaces matching `patterns` within `trust_domains`.
    pub fn new<I, S>(trust_domains: I, patterns: &[S]) -> Result<Self, Error>
    where
        I: IntoIterator<Item = TrustDomain>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .iter()
            .map(|p| PrincipalPattern::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Namespace {
            trust_domains: TrustDomainSet::new(trust_domains),
            patterns,
        })
    }
}

impl Authorizer for Namespace {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.trust_domains.has_member(peer)
            && IstioIdentity::from_spiffe_id(peer).is_ok_and(|i| {
                self.patterns
                    .iter()
                    .any(|p| p.matches_principal(i.namespace()))
            })
    }

    fn describe(&self) -> String {
        format!(
            "an Istio identity (spiffe://<trust domain>/ns/<namespace>/sa/<service account>) of {} in a namespace matching {}",
            td_list(&self.trust_domains.list),
            comma_list(&self.patterns)
        )
    }
}

/// Accepts one Istio service account (`ns/<ns>/sa/<sa>`) in any of the listed trust domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    trust_domains: TrustDomainSet,
    namespace: String,
    service_account: String,
}

impl ServiceAccount {
    /// Accepts `ns/<namespace>/sa/<service_account>` in `trust_domains`; each name must be one
    /// valid SPIFFE path segment.
    pub fn new<I>(trust_domains: I, namespace: &str, service_account: &str) -> Result<Self, Error>
    where
        I: IntoIterator<Item = TrustDomain>,
    {
        let trust_domains = TrustDomainSet::new(trust_domains);
        // The names must be SPIFFE path segments; IstioIdentity checks that, whatever the
        // trust domain it is given.
        let probe = TrustDomain::new("example.org")?;
        IstioIdentity::new(probe, namespace, service_account)?;
        Ok(ServiceAccount {
            trust_domains,
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        })
    }
}

impl Authorizer for ServiceAccount {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.trust_domains.has_member(peer)
            && IstioIdentity::from_spiffe_id(peer).is_ok_and(|i| {
                i.namespace() == self.namespace && i.service_account() == self.service_account
            })
    }

    fn describe(&self) -> String {
        format!(
            "service account {} in namespace {} of {}",
            self.service_account,
            self.namespace,
            td_list(&self.trust_domains.list)
        )
    }
}

/// Accepts peers matching Istio AuthorizationPolicy principals (`<td>/ns/<ns>/sa/<sa>`, `*`,
/// `prefix*`, `*suffix`), after Istio's trust-domain alias expansion
/// ([`expand_principals`]): a principal in the mesh's trust domain, one of its aliases, or
/// literally `cluster.local` is accepted in every one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    written: Vec<String>,
    patterns: Vec<PrincipalPattern>,
}

impl Principals {
    /// `principals` as written in a policy; `trust_domains` is the mesh's trust domain followed
    /// by its aliases (empty: no expansion).
    pub fn new<S: AsRef<str>>(
        principals: &[S],
        trust_domains: &[TrustDomain],
    ) -> Result<Self, Error> {
        let expanded = expand_principals(principals, trust_domains)?;
        let patterns = expanded
            .iter()
            .map(|p| PrincipalPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Principals {
            written: principals.iter().map(|p| p.as_ref().to_owned()).collect(),
            patterns,
        })
    }
}

impl Authorizer for Principals {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.patterns.iter().any(|p| p.matches(peer))
    }

    fn describe(&self) -> String {
        let expanded: Vec<String> = self.patterns.iter().map(ToString::to_string).collect();
        if expanded == self.written {
            format!("a principal matching {}", expanded.join(", "))
        } else {
            format!(
                "a principal matching {} (written as {})",
                expanded.join(", "),
                self.written.join(", ")
            )
        }
    }
}

/// Accepts a peer only if every authorizer does; the first refusal is returned as it is.
#[derive(Debug, Clone)]
pub struct AllOf(Vec<Arc<dyn Authorizer>>, usize);

impl Authorizer for AllOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        match self.0.iter().find(|a| !a.allows(peer)) {
            None => Ok(()),
            Some(refused) => refused.authorize(peer),
        }
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        match self.0.iter().find(|a| !a.allows_verified(peer)) {
            None => Ok(()),
            Some(refused) => refused.authorize_verified(peer),
        }
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.0.iter().all(|a| a.allows(peer))
    }

    fn allows_verified(&self, peer: &VerifiedSvid) -> bool {
        self.0.iter().all(|a| a.allows_verified(peer))
    }

    fn depth(&self) -> usize {
        self.1
    }

    fn describe(&self) -> String {
        format!(
            "all of [{}]",
            self.0
                .iter()
                .map(|a| a.describe())
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// Accepts a peer if at least one authorizer does (none: refuses everyone).
#[derive(Debug, Clone)]
pub struct AnyOf(Vec<Arc<dyn Authorizer>>, usize);

impl Authorizer for AnyOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        check(self.allows_verified(peer), self, peer.spiffe_id())
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        self.0.iter().any(|a| a.allows(peer))
    }

    fn allows_verified(&self, peer: &VerifiedSvid) -> bool {
        self.0.iter().any(|a| a.allows_verified(peer))
    }

    fn depth(&self) -> usize {
        self.1
    }

    fn describe(&self) -> String {
        format!(
            "any of [{}]",
            self.0
                .iter()
                .map(|a| a.describe())
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// Accepts exactly the peers the inner authorizer refuses.
#[derive(Debug, Clone)]
pub struct Not(Arc<dyn Authorizer>, usize);

impl Authorizer for Not {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.allows(peer), self, peer)
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        check(self.allows_verified(peer), self, peer.spiffe_id())
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        !self.0.allows(peer)
    }

    fn allows_verified(&self, peer: &VerifiedSvid) -> bool {
        !self.0.allows_verified(peer)
    }

    fn depth(&self) -> usize {
        self.1
    }

    fn describe(&self) -> String {
        format!("not ({})", self.0.describe())
    }
}

/// A closure with a description of what it accepts.
pub struct FnAuthorizer<F> {
    description: String,
    f: F,
}

impl<F> fmt::Debug for FnAuthorizer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnAuthorizer")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl<F> Authorizer for FnAuthorizer<F>
where
    F: Fn(&SpiffeId) -> bool + Send + Sync,
{
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check((self.f)(peer), self, peer)
    }

    fn allows(&self, peer: &SpiffeId) -> bool {
        (self.f)(peer)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// [`AnyPeer`].
pub fn any() -> Arc<dyn Authorizer> {
    Arc::new(AnyPeer)
}

/// Exactly `id`.
pub fn id(id: SpiffeId) -> Arc<dyn Authorizer> {
    Arc::new(OneOf::new([id]))
}

/// [`OneOf`].
pub fn one_of<I: IntoIterator<Item = SpiffeId>>(ids: I) -> Arc<dyn Authorizer> {
    Arc::new(OneOf::new(ids))
}

/// [`MemberOf`].
pub fn member_of<I: IntoIterator<Item = TrustDomain>>(trust_domains: I) -> Arc<dyn Authorizer> {
    Arc::new(MemberOf::new(trust_domains))
}

/// [`MemberOf`] the mesh's trust domain or any of its aliases.
pub fn member_of_mesh(trust_domains: &TrustDomains) -> Arc<dyn Authorizer> {
    Arc::new(MemberOf::new(trust_domains.all().iter().cloned()))
}

/// [`Namespace`].
pub fn namespace<I, S>(trust_domains: I, patterns: &[S]) -> Result<Arc<dyn Authorizer>, Error>
where
    I: IntoIterator<Item = TrustDomain>,
    S: AsRef<str>,
{
    Ok(Arc::new(Namespace::new(trust_domains, patterns)?))
}

/// [`ServiceAccount`].
pub fn service_account<I>(
    trust_domains: I,
    namespace: &str,
    service_account: &str,
) -> Result<Arc<dyn Authorizer>, Error>
where
    I: IntoIterator<Item = TrustDomain>,
{
    Ok(Arc::new(ServiceAccount::new(
        trust_domains,
        namespace,
        service_account,
    )?))
}

/// [`Principals`].
pub fn principals<S: AsRef<str>>(
    principals: &[S],
    trust_domains: &[TrustDomain],
) -> Result<Arc<dyn Authorizer>, Error> {
    Ok(Arc::new(Principals::new(principals, trust_domains)?))
}

/// The depth of a combinator over `members`, or [`AuthzError::TooDeep`] past [`MAX_DEPTH`].
fn combined_depth<'a>(
    members: impl Iterator<Item = &'a Arc<dyn Authorizer>>,
) -> Result<usize, AuthzError> {
    let depth = members
        .map(|a| a.depth())
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    if depth > MAX_DEPTH {
        return Err(AuthzError::TooDeep {
            depth,
            limit: MAX_DEPTH,
        });
    }
    Ok(depth)
}

/// [`AllOf`]; refused with [`AuthzError::TooDeep`] when the tree would be deeper than
/// [`MAX_DEPTH`].
pub fn all_of(authorizers: Vec<Arc<dyn Authorizer>>) -> Result<Arc<dyn Authorizer>, Error> {
    let depth = combined_depth(authorizers.iter())?;
    Ok(Arc::new(AllOf(authorizers, depth)))
}

/// `first` and then `second`, as [`all_of`], for a config that adds its own check in front of
/// the caller's authorizer: one level over [`MAX_DEPTH`] at most, which is still safe.
pub(crate) fn both(first: Arc<dyn Authorizer>, second: Arc<dyn Authorizer>) -> Arc<dyn Authorizer> {
    let depth = first.depth().max(second.depth()).saturating_add(1);
    Arc::new(AllOf(vec![first, second], depth))
}

/// [`AnyOf`]; refused with [`AuthzError::TooDeep`] when the tree would be deeper than
/// [`MAX_DEPTH`].
pub fn any_of(authorizers: Vec<Arc<dyn Authorizer>>) -> Result<Arc<dyn Authorizer>, Error> {
    let depth = combined_depth(authorizers.iter())?;
    Ok(Arc::new(AnyOf(authorizers, depth)))
}

/// [`Not`]; refused with [`AuthzError::TooDeep`] when the tree would be deeper than
/// [`MAX_DEPTH`].
pub fn not(authorizer: Arc<dyn Authorizer>) -> Result<Arc<dyn Authorizer>, Error> {
    let depth = combined_depth(std::iter::once(&authorizer))?;
    Ok(Arc::new(Not(authorizer, depth)))
}

/// A closure that returns `true` for peers it accepts; `description` says what it accepts
/// (refusals quote it).
pub fn from_fn<F>(description: impl Into<String>, f: F) -> Arc<dyn Authorizer>
where
    F: Fn(&SpiffeId) -> bool + Send + Sync + 'static,
{
    Arc::new(FnAuthorizer {
        description: description.into(),
        f,
    })
}
