//! Mesh mTLS with rustls: the sidecar side, the gateway side, and the port modes.
//!
//! - [`TlsMaterial`]: your own SVID and the trust bundles, shared by configs and replaceable
//!   while serving (certificate rotation, bundle updates).
//! - [`ServerConfigBuilder`] → [`MtlsServerConfig`]: what an inbound Istio sidecar does
//!   (client certificate required, verified by SPIFFE rules, accepted trust domains, an
//!   authorizer).
//! - [`ClientConfigBuilder`] → [`MtlsClientConfig`]: what a gateway does towards a sidecar
//!   (presents its SVID, verifies the sidecar by exact SPIFFE ID, never by DNS name, offers
//!   Istio ALPN).
//! - [`params`]: Istio's protocol versions, cipher list and ALPN values, mapped onto rustls.
//! - [`sniff`]: TLS-or-plaintext detection over the first bytes of a connection.
//! - [`Peer`]: the authenticated peer of a finished handshake.
//! - [`MtlsSession`] and [`Sniffer`]: the same connections without I/O, for runtimes that own
//!   the socket (the Python binding's blocking sockets and asyncio transports).
//!
//! Every builder takes an explicit [`rustls::crypto::CryptoProvider`] (default:
//! [`params::istio_provider`]); meshtls never installs a process-wide provider.
//!
//! ## Session resumption
//!
//! rustls, like Go's `crypto/tls` and BoringSSL, runs no certificate verifier when a session is
//! resumed, so a resumed connection would keep an identity that a since-changed authorizer or
//! bundle no longer accepts (go-spiffe and Envoy have this bug). meshtls's builders turn
//! resumption off by default. When you turn it on, call `check_connection` after each handshake:
//! it verifies the stored peer chain against the current bundles and authorizes it again.

pub mod acceptor;
mod client;
mod common;
mod material;
pub mod params;
mod peer;
mod server;
mod session;
pub mod sniff;
mod verifier;

#[cfg(feature = "tokio")]
pub use acceptor::AsyncInbound;
pub use acceptor::{Inbound, InboundAcceptor, MtlsStream, Prefixed, Route};
pub use client::{ClientConfigBuilder, MtlsClientConfig, server_name_for};
pub use material::TlsMaterial;
pub use params::{MtlsParams, TlsVersion};
pub use peer::{Peer, peer_spiffe_id};
pub use server::{MtlsServerConfig, ServerConfigBuilder};
pub use session::{MtlsSession, Plaintext, Sniffer, Started};
pub use verifier::handshake_error_message;
