//! Topic guides: the pages of the repository's `docs/` directory, included here so that their
//! Rust examples run as doctests (`cargo test --doc`) and the guides stay true.
//!
//! | guide | what it covers |
//! |---|---|
//! | [`identity`] | SPIFFE IDs, trust domains, Istio identities, the mesh config; verifying a peer's SVID |
//! | [`peer_authentication`] | PeerAuthentication: which mTLS mode a workload gets on a port, and why |
//! | [`authorization_policy`] | AuthorizationPolicy and the path check: will this caller get through |
//! | [`ca`] | the mesh CA: issuing gateway certificates, CAs of your own, istiod's layout |
//! | `ca_protocol` | Istio's CA protocol, client and server (cargo feature `grpc`) |
//! | [`jwt_svid`] | JWT-SVIDs: a CA's JWT key, minting, the validation policy, both JWKS shapes |
//! | [`tls`] | mesh mTLS with rustls: a gateway reaching a STRICT sidecar, the sidecar side |
//! | `hbone` | Istio ambient's HBONE: reaching ambient pods through ztunnel, accepting HBONE (cargo feature `hbone`) |
//! | [`controller`] | the gateway-certificate controller: keeping a gateway's mesh certificate in a Secret |
//! | `workload_api` | the SPIFFE Workload API served from a meshtls CA; its test mode (cargo feature `workload-api`) |
//! | `workload_api_client` | consuming the SPIFFE Workload API (SPIRE's agent or any other): sources that feed rustls configs (cargo feature `workload-api`) |
//! | [`python`] | the Python module: install, mTLS from Python, how the binding behaves (its examples run under pytest) |
//!
//! These modules hold no items.

#[doc = include_str!("../../../docs/identity.md")]
pub mod identity {}

#[doc = include_str!("../../../docs/peer-authentication.md")]
pub mod peer_authentication {}

#[doc = include_str!("../../../docs/authorization-policy.md")]
pub mod authorization_policy {}

#[doc = include_str!("../../../docs/ca.md")]
pub mod ca {}

#[cfg(feature = "grpc")]
#[doc = include_str!("../../../docs/ca-protocol.md")]
pub mod ca_protocol {}

#[doc = include_str!("../../../docs/jwt-svid.md")]
pub mod jwt_svid {}

#[doc = include_str!("../../../docs/tls.md")]
pub mod tls {}

#[cfg(feature = "hbone")]
#[doc = include_str!("../../../docs/hbone.md")]
pub mod hbone {}

#[doc = include_str!("../../../docs/controller.md")]
pub mod controller {}

#[cfg(feature = "workload-api")]
#[doc = include_str!("../../../docs/workload-api.md")]
pub mod workload_api {}

#[cfg(feature = "workload-api")]
#[doc = include_str!("../../../docs/workload-api-client.md")]
pub mod workload_api_client {}

#[doc = include_str!("../../../docs/python.md")]
pub mod python {}
