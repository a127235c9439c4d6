//! # meshtls
//!
//! Speak a service mesh's mTLS from outside the mesh.
//!
//! meshtls models what Istio and SPIFFE mean by identity and mutual TLS, for controllers and
//! gateways that are not themselves in the mesh:
//!
//! - [`identity`]: strict [`SpiffeId`] and [`TrustDomain`] types, Istio's
//!   `ns/<ns>/sa/<sa>` identities, principal patterns and trust-domain aliases;
//! - [`mesh`]: Istio's mesh config (the `istio` ConfigMap) and the trust domains it accepts;
//! - [`policy`]: PeerAuthentication ([`policy::peer`]) and AuthorizationPolicy
//!   ([`policy::authorization`]), validated, resolved and evaluated as istiod and Envoy do;
//! - [`path`]: will this caller get through to that pod (mTLS mode, trust domain,
//!   authorization), and if not, why;
//! - [`ca`]: a mesh CA that issues X.509-SVIDs with Istio's workload profile;
//! - [`svid`], [`bundle`], [`authz`]: SVID verification against per-trust-domain bundles and
//!   authorization by SPIFFE ID;
//! - [`tls`]: rustls configs for the gateway side and the sidecar side;
//! - [`k8s`]: the Kubernetes objects that carry all of this;
//! - `ca_protocol` (cargo feature `grpc`): Istio's CA protocol, a client of istiod and a
//!   server of its own;
//! - [`controller`]: what a gateway's certificate Secret must become (a pure decision), and
//!   (cargo feature `kube`) the controller that keeps it so in a cluster.
//!
//! Every fallible function returns [`Error`], a `#[non_exhaustive]` enum built from one small
//! typed enum per area.
//!
//! Modules depend on each other in one direction only: `identity` ← `mesh`, `policy`;
//! a crate-private `x509` layer (the one DER/PEM reader and writer, the strict certificate view,
//! keys, the time codec, atomic key files) ← [`bundle`] ← [`svid`] ← [`ca`]; [`svid`],
//! [`bundle`] ← [`authz`] ← [`tls`]. No module imports one that imports it back.
//!
//! ## Identities
//!
//! ```
//! use meshtls::{IstioIdentity, SpiffeId, TrustDomain};
//!
//! let id = SpiffeId::new("spiffe://cluster.local/ns/shop/sa/checkout")?;
//! let istio = IstioIdentity::from_spiffe_id(&id)?;
//! assert_eq!(istio.namespace(), "shop");
//! assert_eq!(istio.service_account(), "checkout");
//! assert_eq!(id.trust_domain(), TrustDomain::new("cluster.local")?);
//! # Ok::<(), meshtls::Error>(())
//! ```
//!
//! ## Mesh config
//!
//! ```
//! let mesh = meshtls::MeshConfig::from_yaml(r#"
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: istio, namespace: istio-system}
//! data:
//!   mesh: |-
//!     trustDomain: prod.example
//!     trustDomainAliases: [cluster.local, old.example]
//! "#)?;
//! let accepted: Vec<String> = mesh.trust_domains_for_validation().iter().map(|t| t.to_string()).collect();
//! assert_eq!(accepted, ["prod.example", "cluster.local", "old.example"]);
//! # Ok::<(), meshtls::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authz;
pub mod bundle;
pub mod ca;
#[cfg(feature = "grpc")]
pub mod ca_protocol;
pub mod controller;
pub mod error;
pub mod identity;
pub mod k8s;
pub mod manifest;
pub mod mesh;
pub mod path;
pub mod policy;
pub mod svid;
pub mod tls;
pub(crate) mod x509;

pub use authz::Authorizer;
pub use bundle::{BundleSet, TrustBundle};
pub use ca::MeshCa;
#[cfg(feature = "grpc")]
pub use ca_protocol::{IstioCaClient, IstioCaServer};
pub use error::{Error, Result};
pub use identity::{IstioIdentity, PrincipalPattern, SpiffeId, TrustDomain};
pub use mesh::{MeshConfig, TrustDomains};
pub use policy::authorization::{AuthorizationPolicy, AuthorizationPolicySet};
pub use policy::{Decision, MtlsMode, PolicySet};
pub use svid::request::{Csr, CsrParams};
pub use svid::{Svid, SvidVerifier, VerifiedSvid, verify_svid};
