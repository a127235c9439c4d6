//! Authorizers: once a peer's SVID has verified ([`crate::svid::verify_svid`]), decide whether
//! that peer may talk to you.
//!
//! An [`Authorizer`] is an object-safe, `Send + Sync` trait, so a TLS verifier can hold an
//! `Arc<dyn Authorizer>`. The constructors here cover go-spiffe's matchers (any, one ID, one of
//! several, member of a trust domain) and Istio's (namespaces, service accounts, principal
//! patterns with trust-domain alias expansion), plus combinators and closures. A refusal is an
//! [`AuthzError::Denied`] that says what was expected and what was presented.
//!
//! ```
//! use meshtls::authz::{self, Authorizer};
//! use meshtls::{SpiffeId, TrustDomain};
//!
//! let mesh = [TrustDomain::new("cluster.local")?, TrustDomain::new("old.example")?];
//! let policy = authz::any_of(vec![
//!     authz::principals(&["cluster.local/ns/shop/sa/*"], &mesh)?,
//!     authz::id(SpiffeId::new("spiffe://cluster.local/ns/ops/sa/admin")?),
//! ]);
//! policy.authorize(&SpiffeId::new("spiffe://old.example/ns/shop/sa/web")?)?;
//! let refused = policy
//!     .authorize(&SpiffeId::new("spiffe://cluster.local/ns/bank/sa/web")?)
//!     .unwrap_err();
//! assert!(refused.to_string().starts_with(
//!     "peer spiffe://cluster.local/ns/bank/sa/web is not authorized: expected any of ["
//! ));
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::{AuthzError, Error};
use crate::identity::{IstioIdentity, PrincipalPattern, expand_principals};
use crate::mesh::TrustDomains;
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
}

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
}

fn check(ok: bool, me: &dyn Authorizer, peer: &SpiffeId) -> Result<(), AuthzError> {
    if ok {
        Ok(())
    } else {
        Err(denied(me.describe(), peer))
    }
}

fn denied(expected: String, peer: &SpiffeId) -> AuthzError {
    AuthzError::Denied {
        presented: peer.to_string(),
        expected,
    }
}

fn member_of_any(peer: &SpiffeId, trust_domains: &[TrustDomain]) -> bool {
    trust_domains.iter().any(|t| peer.is_member_of(t))
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
}

impl OneOf {
    /// Accepts these IDs (compared exactly, as strings).
    pub fn new<I: IntoIterator<Item = SpiffeId>>(ids: I) -> Self {
        OneOf {
            ids: ids.into_iter().collect(),
        }
    }
}

impl Authorizer for OneOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.ids.contains(peer), self, peer)
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
    trust_domains: Vec<TrustDomain>,
}

impl MemberOf {
    /// Accepts members of these trust domains.
    pub fn new<I: IntoIterator<Item = TrustDomain>>(trust_domains: I) -> Self {
        MemberOf {
            trust_domains: trust_domains.into_iter().collect(),
        }
    }
}

impl Authorizer for MemberOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        let ok = member_of_any(peer, &self.trust_domains);
        check(ok, self, peer)
    }

    fn describe(&self) -> String {
        format!("a member of {}", td_list(&self.trust_domains))
    }
}

/// Accepts Istio identities (`spiffe://<td>/ns/<ns>/sa/<sa>`) of the listed trust domains
/// whose namespace matches one of Istio's namespace patterns (exact, `*`, `prefix*`,
/// `*suffix`), as an AuthorizationPolicy's `source.namespaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    trust_domains: Vec<TrustDomain>,
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
            trust_domains: trust_domains.into_iter().collect(),
            patterns,
        })
    }
}

impl Authorizer for Namespace {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        let ok = member_of_any(peer, &self.trust_domains)
            && IstioIdentity::from_spiffe_id(peer).is_ok_and(|i| {
                self.patterns
                    .iter()
                    .any(|p| p.matches_principal(i.namespace()))
            });
        check(ok, self, peer)
    }

    fn describe(&self) -> String {
        format!(
            "an Istio identity (spiffe://<trust domain>/ns/<namespace>/sa/<service account>) of {} in a namespace matching {}",
            td_list(&self.trust_domains),
            comma_list(&self.patterns)
        )
    }
}

/// Accepts one Istio service account (`ns/<ns>/sa/<sa>`) in any of the listed trust domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    trust_domains: Vec<TrustDomain>,
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
        let trust_domains: Vec<TrustDomain> = trust_domains.into_iter().collect();
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
        let ok = member_of_any(peer, &self.trust_domains)
            && IstioIdentity::from_spiffe_id(peer).is_ok_and(|i| {
                i.namespace() == self.namespace && i.service_account() == self.service_account
            });
        check(ok, self, peer)
    }

    fn describe(&self) -> String {
        format!(
            "service account {} in namespace {} of {}",
            self.service_account,
            self.namespace,
            td_list(&self.trust_domains)
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
        let expanded = expand_principals(principals, trust_domains);
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
        check(self.patterns.iter().any(|p| p.matches(peer)), self, peer)
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
pub struct AllOf(Vec<Arc<dyn Authorizer>>);

impl Authorizer for AllOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        self.0.iter().try_for_each(|a| a.authorize(peer))
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        self.0.iter().try_for_each(|a| a.authorize_verified(peer))
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
pub struct AnyOf(Vec<Arc<dyn Authorizer>>);

impl Authorizer for AnyOf {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        let ok = self.0.iter().any(|a| a.authorize(peer).is_ok());
        check(ok, self, peer)
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        let ok = self.0.iter().any(|a| a.authorize_verified(peer).is_ok());
        check(ok, self, peer.spiffe_id())
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
pub struct Not(Arc<dyn Authorizer>);

impl Authorizer for Not {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        check(self.0.authorize(peer).is_err(), self, peer)
    }

    fn authorize_verified(&self, peer: &VerifiedSvid) -> Result<(), AuthzError> {
        check(
            self.0.authorize_verified(peer).is_err(),
            self,
            peer.spiffe_id(),
        )
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

/// [`AllOf`].
pub fn all_of(authorizers: Vec<Arc<dyn Authorizer>>) -> Arc<dyn Authorizer> {
    Arc::new(AllOf(authorizers))
}

/// [`AnyOf`].
pub fn any_of(authorizers: Vec<Arc<dyn Authorizer>>) -> Arc<dyn Authorizer> {
    Arc::new(AnyOf(authorizers))
}

/// [`Not`].
pub fn not(authorizer: Arc<dyn Authorizer>) -> Arc<dyn Authorizer> {
    Arc::new(Not(authorizer))
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
