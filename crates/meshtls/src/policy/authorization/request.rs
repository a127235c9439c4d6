//! What the evaluator knows about a request.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::SpiffeId;

/// The HTTP part of a request (absent for TCP traffic, where HTTP-only fields cannot be
/// evaluated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HttpRequest {
    /// `:method`, e.g. `GET`.
    pub method: String,
    /// `:path`, possibly with a query (ignored by `paths`, as Envoy's `url_path` does).
    pub path: String,
    /// `Host` / `:authority`.
    pub host: Option<String>,
    /// Request headers (names compared case-insensitively).
    pub headers: Vec<(String, String)>,
}

/// A request as a sidecar's RBAC filter sees it: who sends it (the mTLS peer's identity, the
/// source IP, a JWT's principal and claims), where it goes (port, destination IP, SNI) and,
/// for HTTP, what it asks for.
///
/// ```
/// use meshtls::policy::authorization::Request;
/// let id = meshtls::SpiffeId::new("spiffe://cluster.local/ns/azure-alb-system/sa/alb")?;
/// let r = Request::tcp(8080).with_peer(&id).with_http("GET", "/api");
/// assert_eq!(r.principal.as_deref(), Some("cluster.local/ns/azure-alb-system/sa/alb"));
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Request {
    /// The mTLS peer's principal: its SPIFFE ID without `spiffe://`. `None` for plaintext.
    pub principal: Option<String>,
    /// The direct peer's IP (`source.ip`, `ipBlocks`).
    pub source_ip: Option<IpAddr>,
    /// The original client's IP (`remote.ip`, `remoteIpBlocks`); defaults to `source_ip`.
    pub remote_ip: Option<IpAddr>,
    /// `destination.ip`.
    pub destination_ip: Option<IpAddr>,
    /// The destination (workload) port.
    pub port: u16,
    /// `connection.sni`.
    pub sni: Option<String>,
    /// The HTTP request; `None` for TCP traffic.
    pub http: Option<HttpRequest>,
    /// A validated JWT's `iss/sub` (`requestPrincipals`, `request.auth.principal`).
    pub request_principal: Option<String>,
    /// A validated JWT's claims (`request.auth.claims[name]`; `aud` and `azp` also serve
    /// `request.auth.audiences` and `request.auth.presenter`).
    pub claims: BTreeMap<String, Vec<String>>,
}

impl Request {
    /// A TCP connection to `port`, from nobody in particular (plaintext, no IP).
    pub fn tcp(port: u16) -> Self {
        Request {
            port,
            ..Request::default()
        }
    }

    /// The mTLS peer's SPIFFE ID.
    pub fn with_peer(mut self, id: &SpiffeId) -> Self {
        self.principal = Some(principal_of(id));
        self
    }

    /// The mTLS peer's principal as text (`<td>/ns/<ns>/sa/<sa>`, no `spiffe://`; a leading
    /// `spiffe://` is removed).
    pub fn with_principal(mut self, principal: &str) -> Self {
        self.principal = Some(
            principal
                .strip_prefix("spiffe://")
                .unwrap_or(principal)
                .to_owned(),
        );
        self
    }

    /// Makes it an HTTP request.
    pub fn with_http(mut self, method: &str, path: &str) -> Self {
        let http = self.http.get_or_insert_with(HttpRequest::default);
        http.method = method.to_owned();
        http.path = path.to_owned();
        self
    }

    /// The HTTP `Host` (makes it an HTTP `GET /` request if it was TCP).
    pub fn with_host(mut self, host: &str) -> Self {
        let http = self.http.get_or_insert_with(|| HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            ..HttpRequest::default()
        });
        http.host = Some(host.to_owned());
        self
    }

    /// One HTTP header (makes it an HTTP `GET /` request if it was TCP).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let http = self.http.get_or_insert_with(|| HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            ..HttpRequest::default()
        });
        http.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The source IP (also the remote IP unless set apart).
    pub fn with_source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// The original client's IP.
    pub fn with_remote_ip(mut self, ip: IpAddr) -> Self {
        self.remote_ip = Some(ip);
        self
    }

    /// The destination (workload) IP (`destination.ip`).
    pub fn with_destination_ip(mut self, ip: IpAddr) -> Self {
        self.destination_ip = Some(ip);
        self
    }

    /// The HTTP attributes as a front end takes them, each optional: any of them makes the
    /// request HTTP, and what is missing takes Envoy's view of a bare request (method `GET`,
    /// path `/`); none of them leaves the request as it is (TCP unless already HTTP).
    pub fn with_http_parts<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        method: Option<&str>,
        path: Option<&str>,
        host: Option<&str>,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        if method.is_none() && path.is_none() && host.is_none() && headers.is_empty() {
            return self;
        }
        let http = self.http.get_or_insert_with(|| HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            ..HttpRequest::default()
        });
        if let Some(m) = method {
            http.method = m.to_owned();
        }
        if let Some(p) = path {
            http.path = p.to_owned();
        }
        if let Some(h) = host {
            http.host = Some(h.to_owned());
        }
        http.headers.extend(headers);
        self
    }

    /// A JWT's `iss/sub` principal.
    pub fn with_request_principal(mut self, principal: &str) -> Self {
        self.request_principal = Some(principal.to_owned());
        self
    }

    /// One JWT claim value (repeat for list claims).
    pub fn with_claim(mut self, name: &str, value: &str) -> Self {
        self.claims
            .entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
        self
    }

    /// `connection.sni`.
    pub fn with_sni(mut self, sni: &str) -> Self {
        self.sni = Some(sni.to_owned());
        self
    }

    pub(crate) fn remote(&self) -> Option<IpAddr> {
        self.remote_ip.or(self.source_ip)
    }

    /// One line describing the request, for explanations.
    pub fn describe(&self) -> String {
        let mut out = match &self.principal {
            Some(p) => format!("mTLS peer {p}"),
            None => "no peer identity (plaintext or no client certificate)".to_owned(),
        };
        if let Some(ip) = self.source_ip {
            out.push_str(&format!(" from {ip}"));
        }
        if let Some(ip) = self.remote_ip {
            out.push_str(&format!(" (remote {ip})"));
        }
        match self.destination_ip {
            Some(ip) => out.push_str(&format!(", to {ip} port {}", self.port)),
            None => out.push_str(&format!(", port {}", self.port)),
        }
        if let Some(sni) = &self.sni {
            out.push_str(&format!(", SNI {sni}"));
        }
        match &self.http {
            Some(h) => {
                out.push_str(&format!(", HTTP {} {}", h.method, h.path));
                if let Some(host) = &h.host {
                    out.push_str(&format!(" host {host}"));
                }
                for (k, v) in &h.headers {
                    out.push_str(&format!(", {k}: {v}"));
                }
            }
            None => out.push_str(", TCP (no HTTP attributes)"),
        }
        if let Some(rp) = &self.request_principal {
            out.push_str(&format!(", JWT principal {rp}"));
        }
        out
    }
}

/// A SPIFFE ID as an AuthorizationPolicy principal: the ID without `spiffe://`.
pub fn principal_of(id: &SpiffeId) -> String {
    let text = id.as_str();
    text.strip_prefix("spiffe://").unwrap_or(text).to_owned()
}
