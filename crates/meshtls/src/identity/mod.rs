//! SPIFFE and Istio identities.
//!
//! - [`TrustDomain`] and [`SpiffeId`] are validated newtypes with private fields: holding one
//!   means the text passed the strict SPIFFE grammar (SPIFFE-ID.md §2, go-spiffe's verdict plus
//!   the 255-byte trust-domain cap). Their `parse_lenient` constructors fold ASCII case the way
//!   rust-spiffe and py-spiffe do; the strict constructors never do.
//! - [`IstioIdentity`] is the `spiffe://<td>/ns/<ns>/sa/<sa>` form Istio issues.
//! - [`TrustDomains`] is a mesh's trust domain and its aliases (what
//!   [`MeshConfig`](crate::MeshConfig) reads from `trustDomain` and `trustDomainAliases`).
//! - [`PrincipalPattern`], [`expand_principals`] and [`expand_spiffe_ids`] follow Istio's
//!   AuthorizationPolicy matching and trust-domain alias rules.
//!
//! Limits on hostile input: an alias expansion ([`expand_principals`], [`expand_spiffe_ids`])
//! that would produce more than [`MAX_EXPANSION`] entries is refused before any work with
//! [`IdentityError::TooLarge`](crate::error::IdentityError::TooLarge); sets of trust domains,
//! principals and IDs are deduplicated and looked up by hash.

mod grammar;
mod istio;
mod principal;
mod spiffe_id;
mod trust_domain;
mod trust_domains;

pub use istio::IstioIdentity;
pub use principal::{
    CLUSTER_LOCAL, MAX_EXPANSION, PrincipalPattern, expand_principals, expand_spiffe_ids,
};
pub use spiffe_id::SpiffeId;
pub use trust_domain::TrustDomain;
pub use trust_domains::TrustDomains;
pub(crate) use trust_domains::dedup_in_order;

pub(crate) use istio::split_ns_sa;
