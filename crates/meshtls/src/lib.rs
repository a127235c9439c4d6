//! # meshtls
//!
//! Speak a service mesh's mTLS from outside the mesh.
//!
//! A gateway in front of Kubernetes that must reach pods whose Istio sidecars enforce STRICT
//! mTLS needs a client certificate issued for the mesh's trust domain, must check the sidecar
//! by its SPIFFE identity (`spiffe://cluster.local/ns/<ns>/sa/<sa>`) rather than a DNS name, and
//! must offer what a sidecar expects on the application's own port. meshtls provides those
//! pieces without a running Istio: identities, the mesh config, PeerAuthentication and
//! AuthorizationPolicy (and the offline answer to "will this caller get through to that pod,
//! and if not, why?"), a mesh CA, SVID verification and rustls configs.
//!
//! ## Getting started: a gateway reaching a STRICT sidecar
//!
//! A mesh CA issues the gateway's and the sidecar's X.509-SVIDs; the sidecar side requires a
//! client certificate (what STRICT means), the gateway side accepts only the sidecar's SPIFFE
//! ID. The handshake runs in memory here ([`tls::MtlsSession`]); over a socket, hand
//! [`tls::MtlsClientConfig::rustls_config`] to rustls or tokio-rustls (see [`guide::tls`]).
//!
//! ```
//! use meshtls::ca::{CaParams, IssueParams, KeyKind};
//! use meshtls::tls::{ClientConfigBuilder, MtlsSession, ServerConfigBuilder, TlsMaterial, params};
//! use meshtls::{BundleSet, MeshCa, SpiffeId, TrustBundle, TrustDomain};
//!
//! // The mesh CA. In a cluster: `MeshCa::load` of istiod's `cacerts`, or a certificate from
//! // istiod over Istio's CA protocol (`ca_protocol`, cargo feature `grpc`).
//! let td = TrustDomain::new("cluster.local")?;
//! let ca = MeshCa::create(&CaParams { key: KeyKind::EcP256, ..CaParams::new(td.clone()) })?;
//! let bundles = BundleSet::from_bundles([TrustBundle::new(td, ca.root_certs_der().to_vec())?])?;
//! let sidecar_id = SpiffeId::new("spiffe://cluster.local/ns/demo/sa/api")?;
//! let gateway_id = SpiffeId::new("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")?;
//!
//! // The sidecar: client certificate required, checked by the X509-SVID rules.
//! let sidecar = ServerConfigBuilder::new(TlsMaterial::new(
//!     &ca.issue(&sidecar_id, &IssueParams::default())?,
//!     bundles.clone(),
//! )?)
//! .build()?;
//!
//! // The gateway: presents its SVID, accepts only the sidecar's SPIFFE ID (never a DNS name),
//! // offers Istio's ALPN so that a PERMISSIVE sidecar would pick its mTLS filter chain too.
//! let gateway = ClientConfigBuilder::new(TlsMaterial::new(
//!     &ca.issue(&gateway_id, &IssueParams::default())?,
//!     bundles,
//! )?)
//! .expect_server_ids([sidecar_id.clone()])
//! .alpn_protocols([params::ALPN_ISTIO_HTTP11, params::ALPN_HTTP11])
//! .build()?;
//!
//! let (mut client, mut server) = (gateway.session(None)?, sidecar.session()?);
//! while client.is_handshaking() || server.is_handshaking() {
//!     let mut wire = Vec::new();
//!     client.take_outgoing(&mut wire);
//!     server.receive(&wire)?;
//!     wire.clear();
//!     server.take_outgoing(&mut wire);
//!     client.receive(&wire)?;
//! }
//! assert_eq!(client.peer().map(|p| p.spiffe_id()), Some(&sidecar_id));
//! assert_eq!(server.peer().map(|p| p.spiffe_id()), Some(&gateway_id));
//!
//! // The same gateway refuses any other workload in the handshake.
//! let other = ClientConfigBuilder::new(gateway.material().clone())
//!     .expect_server_ids([SpiffeId::new("spiffe://cluster.local/ns/demo/sa/other")?])
//!     .build()?;
//! let (mut client, mut server) = (other.session(None)?, sidecar.session()?);
//! let mut wire = Vec::new();
//! client.take_outgoing(&mut wire);
//! server.receive(&wire)?;
//! wire.clear();
//! server.take_outgoing(&mut wire);
//! let refused = client.receive(&wire).unwrap_err();
//! assert!(refused.to_string().contains("is not authorized"), "{refused}");
//! # Ok::<(), meshtls::Error>(())
//! ```
//!
//! `cargo run --example gateway_to_sidecar` plays the whole scenario over loopback sockets,
//! with an HTTP app behind the sidecar, PERMISSIVE and DISABLE ports and an AuthorizationPolicy.
//!
//! ## Where things are
//!
//! | task | module | guide |
//! |---|---|---|
//! | SPIFFE IDs, trust domains, Istio's `ns/<ns>/sa/<sa>` identities, principal patterns | [`identity`] | [`guide::identity`] |
//! | the `istio` ConfigMap and the trust domains a mesh accepts | [`mesh`] | [`guide::identity`] |
//! | verify a peer's X.509-SVID against per-trust-domain bundles; authorize it by SPIFFE ID | [`svid`], [`bundle`], [`authz`] | [`guide::identity`] |
//! | which mTLS mode a workload gets on a port (PeerAuthentication) | [`policy`] | [`guide::peer_authentication`] |
//! | is this request allowed (AuthorizationPolicy) | [`policy::authorization`] | [`guide::authorization_policy`] |
//! | will this caller get through to that pod, and why (the path check) | [`path`] | [`guide::authorization_policy`] |
//! | issue X.509-SVIDs with Istio's workload profile; CAs in Istio's plug-in layout | [`ca`] | [`guide::ca`] |
//! | Istio's CA protocol, client and server (cargo feature `grpc`) | `ca_protocol` | `guide::ca_protocol` |
//! | rustls configs for the gateway side and the sidecar side; port modes | [`tls`] | [`guide::tls`] |
//! | Secrets and ConfigMaps that carry all of this | [`k8s`] | [`guide::ca`] |
//! | reading YAML and JSON manifests, and the limits on hostile input | [`manifest`] | |
//! | reach ambient pods through ztunnel's HBONE tunnel, and accept HBONE (cargo feature `hbone`) | `hbone` | `guide::hbone` |
//! | what a gateway's certificate Secret must become, and (cargo feature `kube`) the controller that keeps it so | [`controller`] | `guide::controller` |
//!
//! Every fallible function returns [`Error`], a `#[non_exhaustive]` enum built from one small
//! typed enum per area; messages are lower-case and name the value and the rule.
//!
//! ## Security defaults
//!
//! <div class="warning">
//!
//! - **Peers are checked by SPIFFE ID, never by DNS name.** A sidecar's certificate carries only
//!   its SPIFFE URI; [`tls::ClientConfigBuilder::expect_server_ids`] names the IDs accepted, and
//!   no DNS name is checked on either side.
//! - **Each chain is verified against the bundle of the peer's own trust domain**, never a merged
//!   store, then checked against every MUST of the X509-SVID standard (stricter than go-spiffe;
//!   [`guide::identity`] lists the cases).
//! - **Session resumption is off.** When you turn it on, `check_connection` verifies and
//!   authorizes the stored peer chain again on every resumed connection, so resumption never
//!   skips authorization (go-spiffe and Envoy skip it).
//! - **No process-wide state**: every builder takes an explicit rustls `CryptoProvider`
//!   (default [`tls::params::istio_provider`]: aws-lc-rs with Istio's versions and suites);
//!   meshtls never installs one.
//! - **A CA issues only for its trust domain** (and its aliases), with Istio's workload profile
//!   and a TTL of at most 90 days.
//! - **Bad input gets a typed error, never a panic**, and every size input controls has a limit
//!   (see [`manifest`] for manifests, [`bundle`] and [`identity`] for the rest).
//!
//! Opt-in, never implicit: lenient SPIFFE ID parsing ([`SpiffeId::parse_lenient`]), session
//! resumption, stricter trust anchors ([`svid::VerifyOptions::strict`]), istio-csr's strict CSR
//! rules on the CA server. TLS 1.2 and 1.3 are both on, as in Istio; `minProtocolVersion:
//! TLSV1_3` in the mesh config makes the sidecar side TLS 1.3 only.
//!
//! </div>
//!
//! ## Cargo features
//!
//! - `tokio`: the async inbound acceptor (`tls::AsyncInbound`); the rest of the library is
//!   runtime-free.
//! - `grpc` (implies `tokio`): Istio's CA protocol (`ca_protocol`): `IstioCaClient` to get
//!   certificates from istiod, `IstioCaServer` to serve them; gRPC over h2, no protoc.
//! - `hbone` (implies `tokio`): Istio ambient's HBONE tunnel (`hbone`): a pooled client that
//!   reaches ambient pods through ztunnel, and an acceptor.
//! - `kube` (implies `grpc`): the gateway-certificate controller on kube-rs
//!   (`controller::Controller`): watches, server-side apply, Lease leader election, health and
//!   metrics. The decision itself ([`controller::decide`]) needs no feature.
//! - `workload-api` (implies `grpc`): the SPIFFE Workload API (`workload_api`) on tonic over
//!   unix sockets.
//!
//! No feature is on by default. The crypto backend is aws-lc-rs throughout (rustls, webpki,
//! rcgen). The minimum Rust version is 1.89.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authz;
pub mod bundle;
pub mod ca;
#[cfg(feature = "grpc")]
pub mod ca_protocol;
pub mod controller;
pub mod error;
pub mod guide;
#[cfg(feature = "hbone")]
pub mod hbone;
pub mod identity;
pub mod jwt;
pub mod k8s;
pub mod manifest;
pub mod mesh;
pub mod path;
pub mod policy;
pub mod svid;
pub mod tls;
#[cfg(feature = "workload-api")]
pub mod workload_api;
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

// The README's Rust examples run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
