//! HBONE, Istio ambient mode's tunnel: mTLS (TLS 1.3, ALPN `h2`) to port 15008 of the pod,
//! then one HTTP/2 `CONNECT` per tunnelled TCP connection, whose `:authority` is the target
//! `podIP:port` (cargo feature `hbone`).
//!
//! - [`HboneClient`] (and [`connect`], on a process-wide client): what ztunnel's outbound side
//!   does. TLS 1.3 only, ALPN `h2`, no SNI, no session resumption; presents the caller's
//!   Istio-form SVID (`spiffe://<td>/ns/<ns>/sa/<sa>` in the pod's own trust domain: ztunnel
//!   applies no trust-domain aliases) and requires the server to present **exactly** the
//!   destination's SPIFFE ID. Connections are pooled per (source identity, destination
//!   identity, address), at most 100 streams each, closed after 5 idle minutes (ztunnel's
//!   defaults; [`HboneClientConfig`] changes them). Each refusal is its own
//!   [`HboneError`](crate::error::HboneError) variant: 401 [`Denied`](crate::error::HboneError::Denied)
//!   by policy, 503 [`NoUpstream`](crate::error::HboneError::NoUpstream), 400
//!   [`BadRequest`](crate::error::HboneError::BadRequest) (e.g. the authority's IP is not the
//!   dialled one), a TLS failure, a server with the wrong identity, a reset.
//! - [`HboneServer`]: what ztunnel's inbound side does. TLS 1.3 with the workload's SVID,
//!   clients checked by an [`Authorizer`](crate::Authorizer) (default: Istio form in the
//!   server's own trust domain, [`istio_same_trust_domain`]); `CONNECT` only (else 400); the
//!   authority's IP must be the address the connection arrived on (else 400); its port must be
//!   one served (else 503); a per-CONNECT policy answers 401. Accepted tunnels come out of
//!   [`HboneListener::accept`] or are forwarded to a local port ([`HboneListener::forward`],
//!   503 when nothing listens). HTTP/2 settings as ztunnel: 200 concurrent streams, 64 KiB
//!   header list.
//! - [`HboneStream`]: the tunnel, a tokio `AsyncRead + AsyncWrite` byte stream on both sides.
//!
//! ```no_run
//! # async fn demo(material: meshtls::tls::TlsMaterial) -> Result<(), meshtls::Error> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let pod = "10.0.0.7".parse().unwrap();
//! let server = meshtls::SpiffeId::new("spiffe://cluster.local/ns/shop/sa/api")?;
//! let mut tunnel = meshtls::hbone::connect(
//!     std::net::SocketAddr::new(pod, meshtls::hbone::HBONE_PORT),
//!     std::net::SocketAddr::new(pod, 8080),
//!     &material,
//!     &server,
//! ).await?;
//! tunnel.write_all(b"GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n").await.ok();
//! let mut answer = Vec::new();
//! tunnel.read_to_end(&mut answer).await.ok();
//! # Ok(()) }
//! ```

mod client;
mod io;
mod server;
mod stream;

use std::net::SocketAddr;
use std::time::Duration;

pub use client::{HboneClient, HboneClientConfig};
pub use server::{
    HboneListener, HboneRequest, HboneServer, HboneServerBuilder, Upstream, istio_same_trust_domain,
};
pub use stream::HboneStream;

use crate::error::Error;
use crate::identity::SpiffeId;
use crate::tls::TlsMaterial;

/// The HBONE port inside every ambient pod (ztunnel's inbound listener).
pub const HBONE_PORT: u16 = 15008;
/// The one ALPN protocol of HBONE.
pub const ALPN_H2: &[u8] = b"h2";
/// ztunnel's cap of streams per pooled connection.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: usize = 100;
/// ztunnel's idle timeout of a pooled connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// ztunnel's inbound `SETTINGS_MAX_CONCURRENT_STREAMS`.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;
/// ztunnel's inbound `SETTINGS_MAX_HEADER_LIST_SIZE`.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;
/// How long dialling, each handshake and the CONNECT answer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 stream window (ztunnel's 4 MiB).
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// HTTP/2 connection window.
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// The largest DATA frame we accept.
const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// How much one stream may queue for sending (h2's default is 400 KiB, which capped one
/// tunnel's rate below a plain mTLS stream's).
const MAX_SEND_BUFFER: usize = 4 * 1024 * 1024;

/// Opens a tunnel to `target` through the HBONE server at `via` on the process-wide
/// [`HboneClient::shared`] pool; see [`HboneClient::connect`].
pub async fn connect(
    via: SocketAddr,
    target: SocketAddr,
    material: &TlsMaterial,
    expected: &SpiffeId,
) -> Result<HboneStream, Error> {
    HboneClient::shared()
        .connect(via, target, material, expected)
        .await
}

/// Parses `ip:port` (a CONNECT target or an HBONE address), refusing anything else (host
/// names included) with [`HboneError::Invalid`](crate::error::HboneError::Invalid).
pub fn parse_address(what: &'static str, text: &str) -> Result<SocketAddr, Error> {
    text.parse::<SocketAddr>().map_err(|_| {
        crate::error::HboneError::Invalid {
            what,
            value: crate::error::quote(text),
            rule: "expected ip:port (e.g. 10.0.0.7:8080 or [fd00::7]:8080)".to_owned(),
        }
        .into()
    })
}
