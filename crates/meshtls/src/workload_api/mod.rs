//! The SPIFFE Workload API (feature `workload-api`): a server that hands X.509- and JWT-SVIDs
//! to any SPIFFE workload (go-spiffe, py-spiffe, rust-spiffe) over a unix socket, and the
//! wire messages it speaks.
//!
//! - [`proto`]: the messages and method paths of `workloadapi.proto`, written by hand.
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

pub mod attest;
mod authority;
pub mod proto;
pub mod registration;
pub mod server;
pub mod testing;

pub use attest::Caller;
pub use registration::{Entry, Registration};
pub use server::{ListenAddress, ServerOptions, WorkloadApiServer, WorkloadApiServerBuilder};
