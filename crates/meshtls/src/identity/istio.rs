use std::fmt;

use super::grammar;
use super::{SpiffeId, TrustDomain};
use crate::error::{Error, IdentityError};

/// An Istio workload identity: trust domain, namespace and service account, i.e.
/// `spiffe://<td>/ns/<namespace>/sa/<service account>`.
///
/// ```
/// use meshtls::identity::{IstioIdentity, SpiffeId, TrustDomain};
/// let id = IstioIdentity::new(TrustDomain::new("cluster.local")?, "shop", "checkout")?;
/// assert_eq!(id.spiffe_id().as_str(), "spiffe://cluster.local/ns/shop/sa/checkout");
/// assert_eq!(id.principal(), "cluster.local/ns/shop/sa/checkout");
/// let back = IstioIdentity::from_spiffe_id(&id.spiffe_id())?;
/// assert_eq!(back, id);
/// // Extra segments make it "not a spiffe format" for Istio.
/// let other = SpiffeId::new("spiffe://cluster.local/ns/shop/sa/checkout/v2")?;
/// assert!(IstioIdentity::from_spiffe_id(&other).is_err());
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IstioIdentity {
    trust_domain: TrustDomain,
    namespace: String,
    service_account: String,
}

impl IstioIdentity {
    /// Builds an identity; `namespace` and `service_account` must each be one valid SPIFFE path
    /// segment.
    pub fn new(
        trust_domain: TrustDomain,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, Error> {
        grammar::check_single_segment(namespace, "namespace")?;
        grammar::check_single_segment(service_account, "service account")?;
        Ok(IstioIdentity {
            trust_domain,
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        })
    }

    /// Parses `spiffe://<td>/ns/<ns>/sa/<sa>` exactly as Istio's `ParseIdentity` does: five
    /// segments after the scheme, `ns` first and `sa` third.
    pub fn from_spiffe_id(id: &SpiffeId) -> Result<Self, IdentityError> {
        let not = || IdentityError::NotIstioIdentity {
            id: crate::error::quote(id.as_str()),
        };
        let (ns, sa) = split_ns_sa(id.path()).ok_or_else(not)?;
        Ok(IstioIdentity {
            trust_domain: id.trust_domain(),
            namespace: ns.to_owned(),
            service_account: sa.to_owned(),
        })
    }

    /// Parses an AuthorizationPolicy principal, `<td>/ns/<ns>/sa/<sa>` (no scheme).
    pub fn from_principal(principal: &str) -> Result<Self, Error> {
        let not = || IdentityError::NotIstioPrincipal {
            principal: crate::error::quote(principal),
        };
        let slash = principal.find('/').ok_or_else(not)?;
        let td = TrustDomain::new(&principal[..slash]).map_err(|_| not())?;
        let id =
            SpiffeId::from_trust_domain_and_path(&td, &principal[slash..]).map_err(|_| not())?;
        Ok(IstioIdentity::from_spiffe_id(&id).map_err(|_| not())?)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The Kubernetes namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Kubernetes service account.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// `spiffe://<td>/ns/<ns>/sa/<sa>`.
    pub fn spiffe_id(&self) -> SpiffeId {
        let td = self.trust_domain.as_str();
        let text = format!(
            "{}{td}/ns/{}/sa/{}",
            grammar::SCHEME,
            self.namespace,
            self.service_account
        );
        SpiffeId::from_parts_unchecked(text, td.len())
    }

    /// The AuthorizationPolicy principal, `<td>/ns/<ns>/sa/<sa>`.
    pub fn principal(&self) -> String {
        format!(
            "{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }

    /// The same namespace and service account in another trust domain.
    pub fn with_trust_domain(&self, td: &TrustDomain) -> IstioIdentity {
        IstioIdentity {
            trust_domain: td.clone(),
            ..self.clone()
        }
    }
}

/// `/ns/<ns>/sa/<sa>` → `(ns, sa)`; anything else → `None`.
pub(crate) fn split_ns_sa(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.split('/');
    let (Some(""), Some("ns"), Some(ns), Some("sa"), Some(sa), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if ns.is_empty() || sa.is_empty() {
        return None;
    }
    Some((ns, sa))
}

impl fmt::Display for IstioIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}/ns/{}/sa/{}",
            grammar::SCHEME,
            self.trust_domain,
            self.namespace,
            self.service_account
        )
    }
}

impl fmt::Debug for IstioIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IstioIdentity({self})")
    }
}
