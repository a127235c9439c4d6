//! Istio's CA protocol (`istio.v1.auth.IstioCertificateService`, istiod port 15012), both ways
//! (cargo feature `grpc`).
//!
//! - [`IstioCaClient`] gets an X.509-SVID from a running istiod (or any server of the protocol):
//!   it generates the key locally, sends a CSR authenticated with a Kubernetes service-account
//!   token (or, to renew, with the still-valid SVID as client certificate), and checks the
//!   returned chain with meshtls's own verifier before handing it out. [`IstioCaClient::keep_fresh`]
//!   renews at Istio's rotation rule and updates a [`crate::tls::TlsMaterial`] in place.
//! - [`IstioCaServer`] serves the protocol from a [`crate::MeshCa`], authenticating callers as
//!   istiod does (client certificate of the trust domain, then a service-account JWT verified
//!   offline against a JWKS, see [`jwt`]) and signing with Istio's rules (or istio-csr's
//!   stricter CSR checks).
//!
//! gRPC is tonic's on both sides: the server is tonic's server on TLS connections meshtls
//! accepts itself (so that the caller's client certificate reaches the authentication), the
//! method a hand-written service around `tonic::server::Grpc`; the client a tonic `Channel` over
//! connections meshtls dials itself (so that dial and handshake failures are typed errors) with
//! `tonic::client::Grpc`. The prost messages are written by hand ([`messages`]): no protoc, no
//! build script, no generated code. TLS is rustls with the crate's aws-lc-rs provider on both
//! sides (TLS 1.2 and 1.3, ALPN `h2`). The server's limits (message sizes, calls per
//! connection, timeouts) are listed in docs/ca-protocol.md.
//!
//! # Scaling the server
//!
//! The server keeps no state between requests that matters for correctness: everything it
//! needs is the CA material and the issuer's keys. (It remembers tokens that verified, for at
//! most five minutes and with `exp`/`nbf` re-checked on every use, so that an agent's repeated
//! requests do not pay for the signature check each time; see [`token_cache`]. Its answers are
//! the ones a fresh verification gives.) Run it as istiod runs, several replicas behind one
//! Kubernetes Service, all loading the same `cacerts` Secret; any replica answers any agent.
//! When the issuer rotates its keys, hand the server the new JWKS with
//! [`IstioCaServer::set_jwt`] (`meshtls ca serve` does on SIGHUP or when the file changes).
//!
//! # Keeping a certificate fresh without an async runtime
//!
//! [`IstioCaClient::keep_fresh_in_background`] runs [`IstioCaClient::keep_fresh`] on a thread of
//! its own and returns a [`RefreshHandle`] (stop it, or drop it; it keeps the error that ended
//! the loop). The Python binding's `IstioCaClient.keep_fresh` is this.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshtls::Error> {
//! use std::time::Duration;
//! use meshtls::ca::KeyKind;
//! use meshtls::ca_protocol::{ClientConfig, IstioCaClient, TokenSource};
//! use meshtls::SpiffeId;
//!
//! let root = std::fs::read_to_string("/var/run/secrets/istio/root-cert.pem").unwrap_or_default();
//! let mut config = ClientConfig::new(root);
//! config.token = TokenSource::File("/var/run/secrets/tokens/istio-token".into());
//! let client = IstioCaClient::new(config)?;
//! let id = SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc")?;
//! let svid = client.fetch_svid(&id, Duration::from_secs(24 * 3600), KeyKind::EcP256).await?;
//! # let _ = svid; Ok(()) }
//! ```

mod client;
mod grpc;
pub mod jwt;
pub mod messages;
#[cfg(feature = "kube")]
pub mod node_auth;
mod server;
mod service;
pub mod settings;
pub mod token_cache;
mod transport;

pub use client::{
    ClientConfig, DEFAULT_ADDRESS, DEFAULT_ROOT_CERT_PATH, DEFAULT_TOKEN_PATH, IstioCaClient,
    RefreshHandle, RefreshParams, TokenSource, check_response, server_name_for_address,
};
pub use jwt::{DEFAULT_AUDIENCE, JwtVerifier};
pub use messages::{IstioCertificateRequest, IstioCertificateResponse};
#[cfg(feature = "kube")]
pub use node_auth::{NodeAuthorizer, PodWatch};
pub use server::{
    AUTH_FAILURE, CallContext, DEFAULT_MIN_TTL, DEFAULT_SERVING_DNS_NAMES, IMPERSONATION_FAILURE,
    INVALID_REQUEST, IstioCaServer, NodeAccount, Refusal, RunningServer, ServerConfig,
    parse_account,
};
pub use settings::{NodeAccountSettings, ServerSettings};
