//! The SPIFFE Workload API (feature `workload-api`): a server that hands X.509- and JWT-SVIDs
//! to any SPIFFE workload (go-spiffe, py-spiffe, rust-spiffe) over a unix socket, a client
//! that consumes any Workload API (SPIRE's agent, meshtls's server), and the wire messages
//! both speak.
//!
//! - [`proto`]: the messages and method paths of `workloadapi.proto`, written by hand.
//!
//! Server side:
//!
//! - [`WorkloadApiServer`] ([`server`]): all five RPCs, callers attested by their socket's
//!   peer credentials ([`attest`]), identities from [`Registration`] entries, X.509-SVIDs
//!   minted by a [`MeshCa`](crate::MeshCa) and renewed at Istio's rule, JWT-SVIDs from a
//!   [`JwtSigner`](crate::jwt::JwtSigner), federated bundles from files.
//! - [`testing`]: an in-process server on a temporary socket for users' own tests, with
//!   scripted rotations and injected failures.
//!
//! ```no_run
//! # async fn run() -> Result<(), meshtls::Error> {
//! use meshtls::ca::CaParams;
//! use meshtls::workload_api::{ListenAddress, Registration, WorkloadApiServer};
//! use meshtls::{MeshCa, TrustDomain};
//!
//! let ca = MeshCa::create(&CaParams::new(TrustDomain::new("example.org")?))?;
//! let registration = Registration::from_text(
//!     "entries:\n  - spiffe_id: spiffe://example.org/web\n    selectors: [\"unix:uid:1000\"]\n",
//! )?;
//! let server = WorkloadApiServer::builder(ca)
//!     .registration(registration)
//!     .serve(&ListenAddress::parse("unix:///tmp/workload.sock")?)
//!     .await?;
//! println!("SPIFFE_ENDPOINT_SOCKET={}", server.endpoint());
//! # server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Client side:
//!
//! - [`Endpoint`]: `SPIFFE_ENDPOINT_SOCKET` parsed exactly as SPIFFE Workload Endpoint §4
//!   says (`unix:///path`, `tcp://ip:port`; every refusal a typed
//!   [`WorkloadClientError::Endpoint`](crate::error::WorkloadClientError::Endpoint) naming the
//!   value and the [`EndpointRule`](crate::error::EndpointRule)).
//! - [`WorkloadApiClient`]: the five RPCs (fetch and watch X.509-SVIDs and bundles, JWT-SVIDs,
//!   JWT bundles, `ValidateJWTSVID`) over tonic, each call carrying `workload.spiffe.io: true`;
//!   responses checked by the standard's mandatory-field rule (§4.5) and parsed into meshtls
//!   types ([`Svid`](crate::Svid), [`BundleSet`](crate::BundleSet),
//!   [`JwtBundleSet`](crate::jwt::JwtBundleSet)).
//! - [`X509Source`] and [`JwtSource`]: a background task keeps the stream open and reconnects
//!   with exponential backoff (`Unavailable`, `PermissionDenied`, an unreachable endpoint) or
//!   stops (`InvalidArgument`, `Unimplemented`), as Workload Endpoint §6 says;
//!   [`X509Source::tls_material`] is a [`TlsMaterial`](crate::tls::TlsMaterial) that follows
//!   every rotation, so rustls configs built from it present the new SVID at their next
//!   handshake without being rebuilt. [`SvidSelector`] picks the SVID by hint or SPIFFE ID.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshtls::Error> {
//! use meshtls::tls::ServerConfigBuilder;
//! use meshtls::workload_api::{SourceOptions, SvidSelector, WorkloadApiClient, X509Source};
//!
//! let client = WorkloadApiClient::from_env().await?; // SPIFFE_ENDPOINT_SOCKET
//! let source = X509Source::start(
//!     client,
//!     SourceOptions { selector: SvidSelector::Hint("internal".into()), ..Default::default() },
//! )
//! .await?;
//! let server = ServerConfigBuilder::new(source.tls_material()).build()?;
//! // server.rustls_config() now follows SPIRE's rotations.
//! # let _ = server; Ok(()) }
//! ```
//!
//! Tested against SPIRE's own agent and server (v1.13.3, built from its Go module) in
//! `crates/meshtls/tests/workload_api_spire.rs`.

pub mod attest;
mod authority;
mod client;
mod endpoint;
pub mod proto;
pub mod registration;
pub mod server;
mod source;
pub mod testing;

pub use attest::Caller;
pub use client::{
    DEFAULT_CALL_TIMEOUT, JwtSvidToken, SvidSelector, ValidatedJwt, Watch, WorkloadApiClient,
    X509Context, X509Svid,
};
pub use endpoint::{ENDPOINT_SOCKET_ENV, Endpoint};
pub use registration::{Entry, Registration};
pub use server::{ListenAddress, ServerOptions, WorkloadApiServer, WorkloadApiServerBuilder};
pub use source::{JwtSource, SourceOptions, SourceStatus, X509Source, X509State};
