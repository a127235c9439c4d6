//! The gateway-certificate controller: keeps a gateway's mesh client certificate in a
//! `kubernetes.io/tls` Secret, as the Istio extension of Application Gateway for Containers
//! does for `alb/alb-gateway-client-certificate-istio`.
//!
//! The rules live in one pure function, [`decide`]: from the mesh config (the `istio`
//! ConfigMap: trust domain, aliases, `caCertificates`), the desired Secret ([`SecretSpec`]),
//! the Secret as it is ([`ObservedSecret`], or `None`) and the clock, it returns an
//! [`Action`]:
//!
//! - [`Action::Issue`]: a new certificate is needed (the Secret is missing, unreadable, for
//!   another identity because the trust domain changed, expired, not signed by the mesh roots,
//!   or past Istio's rotation point: half its lifetime, 1 % jitter). Get it from the source
//!   and hand it to [`complete`], which checks it and returns the [`Action::Write`];
//! - [`Action::Write`]: the Secret content ([`DesiredSecret`]: `tls.crt` chain, `tls.key`,
//!   `ca.crt` = the source's roots plus every `caCertificates[].pem`, and annotations that
//!   record identity, trust domain, aliases, not-after and source);
//! - [`Action::Nothing`]: all is as it must be; look again at the rotation point.
//!
//! When the source or the API server fails, [`after_failure`] says when to retry (capped
//! backoff) and never asks to write: a valid certificate is never replaced by nothing.
//!
//! ```
//! use std::time::SystemTime;
//! use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
//! use meshtls::controller::{self, Action, Inputs, ObservedSecret, SecretSpec};
//! use meshtls::{MeshConfig, TrustDomain};
//!
//! let mesh = MeshConfig::from_yaml("trustDomain: cluster.local\n")?;
//! let mut params = CaParams::new(TrustDomain::new("cluster.local")?);
//! params.key = KeyKind::EcP256;
//! let ca = MeshCa::create(&params)?;
//! let spec = SecretSpec::new("gw-cert", "alb", "alb", "alb-gateway", "cacerts:istio-system/cacerts")?;
//! let roots = ca.root_certs_der().to_vec();
//! let now = SystemTime::now();
//! let inputs = Inputs { mesh: &mesh, spec: &spec, source_roots: &roots, current: None, now };
//!
//! // No Secret yet: issue.
//! let Action::Issue { identity, reason, .. } = controller::decide(&inputs)? else { panic!() };
//! assert_eq!(identity.as_str(), "spiffe://cluster.local/ns/alb/sa/alb-gateway");
//! let svid = ca.issue(&identity, &IssueParams::default())?;
//! let Action::Write { secret, .. } = controller::complete(&inputs, reason, &svid)? else { panic!() };
//!
//! // Once written, there is nothing to do until the rotation point.
//! let written = ObservedSecret {
//!     secret_type: secret.secret_type().to_owned(),
//!     data: secret.data().iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect(),
//!     annotations: secret.annotations().clone(),
//! };
//! let again = Inputs { current: Some(&written), ..inputs };
//! assert_eq!(controller::decide(&again)?.kind(), "nothing");
//! # Ok::<(), meshtls::Error>(())
//! ```

mod decide;

pub use decide::{
    ANNOTATION_IDENTITY, ANNOTATION_NOT_AFTER, ANNOTATION_SOURCE, ANNOTATION_TRUST_DOMAIN,
    ANNOTATION_TRUST_DOMAIN_ALIASES, ANNOTATIONS, Action, DEFAULT_TTL, DesiredSecret, Inputs,
    LABEL_MANAGED_BY, MANAGED_BY, MAX_TTL, ObservedSecret, Reason, SecretSpec, after_failure,
    backoff, complete, decide, holds_valid_certificate, rotation_point,
};

#[cfg(feature = "kube")]
mod run;

#[cfg(feature = "kube")]
pub use run::{
    CaToken, CertSource, Controller, ControllerConfig, FIELD_MANAGER, LeaseConfig, Outcome, Status,
    is_transient, owned_labels,
};
