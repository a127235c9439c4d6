//! The pieces of the gateway-to-sidecar demo: a plaintext app, a sidecar in front of it, and a
//! gateway client. Shared by the demo's subcommands.
#![allow(dead_code)]

pub mod authz;
pub mod http;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use meshtls::SpiffeId;
use meshtls::policy::MtlsMode;
use meshtls::tls::{
    AsyncInbound, InboundAcceptor, MtlsClientConfig, MtlsServerConfig, Peer, server_name_for,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

/// The app: plaintext HTTP, `GET /api/headers` returns the request headers as JSON.
pub async fn run_app(listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let req = match http::read_request(&mut sock).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = http::respond(&mut sock, "400 Bad Request", "text/plain", e.as_bytes())
                        .await;
                    return;
                }
            };
            if req.method == "GET" && req.target == "/api/headers" {
                let mut headers = serde_json::Map::new();
                for (n, v) in &req.headers {
                    headers.insert(n.to_ascii_lowercase(), serde_json::Value::String(v.clone()));
                }
                let body = serde_json::json!({ "headers": headers });
                let text = serde_json::to_string_pretty(&body).unwrap_or_default();
                let _ =
                    http::respond(&mut sock, "200 OK", "application/json", text.as_bytes()).await;
            } else {
                let _ =
                    http::respond(&mut sock, "404 Not Found", "text/plain", b"not found\n").await;
            }
        });
    }
}

/// A sidecar: applies the port's mode, terminates mTLS, forwards HTTP to the app with an
/// Envoy-style `X-Forwarded-Client-Cert`, passes plaintext through.
pub struct Sidecar {
    server: MtlsServerConfig,
    mode: RwLock<MtlsMode>,
    upstream: SocketAddr,
    local_id: SpiffeId,
    events: Option<UnboundedSender<String>>,
    authz: RwLock<Option<Arc<authz::SidecarAuthz>>>,
}

impl Sidecar {
    pub fn new(
        server: MtlsServerConfig,
        mode: MtlsMode,
        upstream: SocketAddr,
        events: Option<UnboundedSender<String>>,
    ) -> Arc<Self> {
        let local_id = server.material().spiffe_id();
        Arc::new(Sidecar {
            server,
            mode: RwLock::new(mode),
            upstream,
            local_id,
            events,
            authz: RwLock::new(None),
        })
    }

    /// Enforces AuthorizationPolicies from now on (None: none).
    pub fn set_authorization(&self, authz: Option<authz::SidecarAuthz>) {
        if let Ok(mut a) = self.authz.write() {
            *a = authz.map(Arc::new);
        }
    }

    fn authorization(&self) -> Option<Arc<authz::SidecarAuthz>> {
        self.authz.read().ok().and_then(|a| a.clone())
    }

    pub fn set_mode(&self, mode: MtlsMode) {
        if let Ok(mut m) = self.mode.write() {
            *m = mode;
        }
    }

    fn mode(&self) -> MtlsMode {
        self.mode.read().map(|m| *m).unwrap_or(MtlsMode::Strict)
    }

    fn event(&self, text: String) {
        match &self.events {
            Some(tx) => {
                let _ = tx.send(text);
            }
            None => println!("sidecar: {text}"),
        }
    }

    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((sock, from)) = listener.accept().await else {
                continue;
            };
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.handle(sock, from).await });
        }
    }

    async fn handle(&self, sock: TcpStream, from: SocketAddr) {
        let mode = self.mode();
        let acceptor = InboundAcceptor::new(self.server.clone(), mode);
        match acceptor.accept_async(sock).await {
            Err(e) => self.event(format!("{mode}: refused {from}: {e}")),
            Ok(AsyncInbound::Mtls { mut stream, peer }) => {
                self.event(format!(
                    "{mode}: mTLS from {} ({}, {})",
                    peer.spiffe_id(),
                    peer.protocol_version().map(|v| v.as_str()).unwrap_or("?"),
                    peer.cipher_suite().unwrap_or("?")
                ));
                let xfcc = peer.xfcc(&self.local_id);
                let id = peer.spiffe_id();
                if let Err(e) = self.forward_http(&mut stream, Some(xfcc), Some(id)).await {
                    self.event(format!("{mode}: forwarding failed: {e}"));
                }
            }
            Ok(AsyncInbound::Plaintext {
                mut stream,
                tls: None,
            }) => {
                self.event(format!("{mode}: plaintext from {from}, passed through"));
                if let Err(e) = self.forward_http(&mut stream, None, None).await {
                    self.event(format!("{mode}: forwarding failed: {e}"));
                }
            }
            Ok(AsyncInbound::Plaintext {
                mut stream,
                tls: Some(hello),
            }) => {
                self.event(format!(
                    "{mode}: TLS without an Istio ALPN (offered {:?}) from {from}: raw passthrough to the app",
                    hello.alpn_strings()
                ));
                if let Some(a) = self.authorization() {
                    let v = a.tcp(None);
                    if !v.allowed() {
                        // Envoy's network RBAC filter closes a denied TCP connection.
                        self.event(format!(
                            "{mode}: connection closed by AuthorizationPolicy: {v}"
                        ));
                        return;
                    }
                }
                if let Ok(mut up) = TcpStream::connect(self.upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut up).await;
                }
            }
        }
    }

    /// Forwards one HTTP request to the app, setting (or, for plaintext, removing) XFCC as
    /// Envoy's SANITIZE_SET does, and relays the response.
    async fn forward_http<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        client: &mut S,
        xfcc: Option<String>,
        peer: Option<&SpiffeId>,
    ) -> Result<(), String> {
        let mut req = http::read_request(client).await?;
        if let Some(a) = self.authorization() {
            let v = a.http(peer, &req);
            if !v.allowed() {
                // Envoy's HTTP RBAC filter: 403 with "RBAC: access denied".
                self.event(format!(
                    "{}: {} {} denied by AuthorizationPolicy: {v} -> 403",
                    self.mode(),
                    req.method,
                    req.target
                ));
                return http::respond(
                    client,
                    "403 Forbidden",
                    "text/plain",
                    authz::RBAC_DENIED_BODY,
                )
                .await
                .map_err(|e| e.to_string());
            }
        }
        req.remove("x-forwarded-client-cert");
        req.remove("connection");
        if let Some(v) = xfcc {
            req.headers.push(("X-Forwarded-Client-Cert".into(), v));
        }
        req.headers.push(("Connection".into(), "close".into()));
        let mut up = TcpStream::connect(self.upstream)
            .await
            .map_err(|e| format!("upstream {}: {e}", self.upstream))?;
        up.write_all(&req.to_bytes())
            .await
            .map_err(|e| e.to_string())?;
        tokio::io::copy(&mut up, client)
            .await
            .map_err(|e| e.to_string())?;
        client.shutdown().await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// What the gateway saw on one call.
pub struct Exchange {
    pub peer: Peer,
    pub status: String,
    pub body: String,
}

/// One `GET` through the sidecar over mesh mTLS, as the gateway.
pub async fn gateway_get(
    addr: SocketAddr,
    config: &MtlsClientConfig,
    sni: Option<&str>,
    path: &str,
) -> Result<Exchange, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = server_name_for(sni).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config.rustls_config());
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| meshtls::tls::handshake_error_message(&e))?;
    let peer = config
        .check_connection(tls.get_ref().1)
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: api.demo.svc.cluster.local:8080\r\nUser-Agent: meshtls-gateway\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let (status, body) = http::read_response(&mut tls).await?;
    Ok(Exchange { peer, status, body })
}

/// One plaintext `GET`.
pub async fn plain_get(addr: SocketAddr, path: &str) -> Result<(String, String), String> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: api.demo.svc.cluster.local:8080\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    http::read_response(&mut tcp).await
}
