//! The sidecar's AuthorizationPolicy enforcement, as Envoy's RBAC filters do it: an HTTP
//! request that is denied gets `403 Forbidden` with the body `RBAC: access denied`; a TCP
//! connection that is denied is closed.

use meshtls::SpiffeId;
use meshtls::policy::authorization::{AuthorizationPolicySet, Request, Verdict};

use super::http;

/// The body Envoy's HTTP RBAC filter sends with its 403.
pub const RBAC_DENIED_BODY: &[u8] = b"RBAC: access denied";

/// The policies of one workload: its namespace, pod labels and port.
pub struct SidecarAuthz {
    set: AuthorizationPolicySet,
    namespace: String,
    labels: Vec<(String, String)>,
    port: u16,
}

impl SidecarAuthz {
    pub fn new(
        set: AuthorizationPolicySet,
        namespace: &str,
        labels: Vec<(String, String)>,
        port: u16,
    ) -> Self {
        SidecarAuthz {
            set,
            namespace: namespace.to_owned(),
            labels,
            port,
        }
    }

    fn request(&self, peer: Option<&SpiffeId>) -> Request {
        let r = Request::tcp(self.port);
        match peer {
            Some(id) => r.with_peer(id),
            None => r,
        }
    }

    /// The decision for an HTTP request from `peer` (None: plaintext).
    pub fn http(&self, peer: Option<&SpiffeId>, req: &http::Request) -> Verdict {
        let mut r = self.request(peer).with_http(&req.method, &req.target);
        if let Some(host) = req.header("host") {
            r = r.with_host(host);
        }
        for (k, v) in &req.headers {
            if !k.eq_ignore_ascii_case("host") {
                r = r.with_header(k, v);
            }
        }
        self.set.check(&self.namespace, &self.labels, &r)
    }

    /// The decision for a TCP connection from `peer` (None: plaintext).
    pub fn tcp(&self, peer: Option<&SpiffeId>) -> Verdict {
        self.set
            .check(&self.namespace, &self.labels, &self.request(peer))
    }
}
