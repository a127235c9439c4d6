//! `meshtls authz check`: validate AuthorizationPolicies, or evaluate one request against them.

use std::path::PathBuf;

use meshtls::MeshConfig;
use meshtls::policy::authorization::{
    AuthorizationPolicySet, DataPlane, Request, Verdict, check_manifests,
};
use serde_json::{Value, json};

use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct AuthzArgs {
    #[command(subcommand)]
    command: AuthzCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AuthzCommand {
    /// Validate every AuthorizationPolicy in FILE as a cluster would (apiserver: CRD schema,
    /// strict fields; istiod webhook), exit 1 if any is invalid. With --to, evaluate one
    /// request against them instead: exit 0 allowed, 1 refused.
    Check(CheckArgs),
}

/// The request: who, where, what.
#[derive(clap::Args, Debug)]
pub(crate) struct RequestArgs {
    /// The caller's SPIFFE ID (the mTLS peer), e.g. spiffe://cluster.local/ns/a/sa/b.
    #[arg(long, conflicts_with = "plaintext")]
    pub(crate) from: Option<String>,
    /// The caller sends plaintext (no peer identity).
    #[arg(long)]
    pub(crate) plaintext: bool,
    /// The destination: `namespace` or `namespace/key=value,key=value` (pod labels).
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// The destination (workload) port.
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Who enforces the policies: the pod's sidecar, or ztunnel for a pod in ambient mode
    /// (L4 attributes only).
    #[arg(long, value_enum, default_value_t = Plane::Sidecar)]
    pub(crate) data_plane: Plane,
    #[command(flatten)]
    pub(crate) attributes: AttributeArgs,
    /// The `istio` ConfigMap (or its `mesh` document): root namespace, trust domain, aliases.
    #[arg(long)]
    pub(crate) mesh_config: Option<PathBuf>,
}

/// `--data-plane`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plane {
    /// The pod's Istio sidecar.
    Sidecar,
    /// ztunnel (ambient mode).
    Ambient,
}

impl From<Plane> for DataPlane {
    fn from(p: Plane) -> Self {
        match p {
            Plane::Sidecar => DataPlane::Sidecar,
            Plane::Ambient => DataPlane::Ambient,
        }
    }
}

/// Every request attribute AuthorizationPolicy evaluates besides the peer and the port, with
/// the names of the core's `Request` (and of Python's `check`).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct AttributeArgs {
    /// HTTP method (any HTTP option makes it an HTTP request: method GET and path / unless
    /// given; TCP without them).
    #[arg(long)]
    pub(crate) method: Option<String>,
    /// HTTP path.
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// HTTP Host.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// An HTTP header `name=value` (repeat).
    #[arg(long = "header")]
    pub(crate) headers: Vec<String>,
    /// The direct peer's IP (`source.ip`, `ipBlocks`).
    #[arg(long)]
    pub(crate) source_ip: Option<std::net::IpAddr>,
    /// The original client's IP (`remote.ip`, `remoteIpBlocks`); the source IP when absent.
    #[arg(long)]
    pub(crate) remote_ip: Option<std::net::IpAddr>,
    /// The destination (pod) IP (`destination.ip`).
    #[arg(long)]
    pub(crate) destination_ip: Option<std::net::IpAddr>,
    /// The TLS SNI (`connection.sni`).
    #[arg(long)]
    pub(crate) sni: Option<String>,
    /// A validated JWT's `iss/sub` (`requestPrincipals`, `request.auth.principal`).
    #[arg(long)]
    pub(crate) request_principal: Option<String>,
    /// A validated JWT's claim `name=value` (repeat; repeat a name for a list claim).
    #[arg(long = "claim")]
    pub(crate) claims: Vec<String>,
}

impl AttributeArgs {
    /// Whether any attribute was given.
    pub(crate) fn any(&self) -> bool {
        self.method.is_some()
            || self.path.is_some()
            || self.host.is_some()
            || !self.headers.is_empty()
            || self.source_ip.is_some()
            || self.remote_ip.is_some()
            || self.destination_ip.is_some()
            || self.sni.is_some()
            || self.request_principal.is_some()
            || !self.claims.is_empty()
    }

    /// The attributes on `req`, by the core's rules.
    pub(crate) fn apply(&self, mut req: Request) -> Result<Request, Failure> {
        req = req.with_http_parts(
            self.method.as_deref(),
            self.path.as_deref(),
            self.host.as_deref(),
            headers(&self.headers)?,
        );
        if let Some(ip) = self.source_ip {
            req = req.with_source_ip(ip);
        }
        if let Some(ip) = self.remote_ip {
            req = req.with_remote_ip(ip);
        }
        if let Some(ip) = self.destination_ip {
            req = req.with_destination_ip(ip);
        }
        if let Some(sni) = &self.sni {
            req = req.with_sni(sni);
        }
        if let Some(p) = &self.request_principal {
            req = req.with_request_principal(p);
        }
        for c in &self.claims {
            let (k, v) = c
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Failure::new("usage", format!("--claim {c:?} is not name=value")))?;
            req = req.with_claim(k, v);
        }
        Ok(req)
    }
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// YAML or JSON: one object, a stream or a `kind: List` (`-` for stdin).
    file: PathBuf,
    #[command(flatten)]
    request: RequestArgs,
}

pub(crate) fn run(args: AuthzArgs) -> Result<Outcome, Failure> {
    match args.command {
        AuthzCommand::Check(a) => {
            if a.request.to.is_some() {
                evaluate(a)
            } else {
                validate(a)
            }
        }
    }
}

fn validate(a: CheckArgs) -> Result<Outcome, Failure> {
    let r = &a.request;
    if r.from.is_some()
        || r.plaintext
        || r.port.is_some()
        || r.attributes.any()
        || r.data_plane != Plane::Sidecar
    {
        return Err(Failure::new(
            "usage",
            "request options (--from, --plaintext, --port, --data-plane and the attributes) need --to",
        ));
    }
    let text = crate::read_input(&a.file)?;
    Ok(match check_manifests(&text) {
        Ok(summary) => {
            let valid = summary.all_valid();
            crate::policy::reports_outcome(
                &summary.reports,
                summary.skipped,
                ("AuthorizationPolicy", "AuthorizationPolicies"),
                valid,
            )
        }
        Err(e) => crate::policy::unreadable(&e),
    })
}

/// `ns` or `ns/k=v,k=v`.
pub(crate) fn parse_to(text: &str) -> Result<(String, Vec<(String, String)>), Failure> {
    let (ns, labels) = text.split_once('/').unwrap_or((text, ""));
    if ns.is_empty() {
        return Err(Failure::new(
            "usage",
            format!("--to {text:?}: the namespace is empty (use ns or ns/key=value,...)"),
        ));
    }
    let out = crate::policy::parse_labels(labels, "--to")?;
    Ok((ns.to_owned(), out))
}

pub(crate) fn mesh_config(path: &Option<PathBuf>) -> Result<Option<MeshConfig>, Failure> {
    match path {
        Some(p) => MeshConfig::from_yaml(&crate::read_input(p)?)
            .map(Some)
            .map_err(|e| Failure::new(crate::error_kind(&e), format!("{}: {e}", p.display()))),
        None => Ok(None),
    }
}

pub(crate) fn headers(list: &[String]) -> Result<Vec<(String, String)>, Failure> {
    list.iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Failure::new("usage", format!("--header {h:?} is not name=value")))
        })
        .collect()
}

pub(crate) fn verdict_json(v: &Verdict) -> Value {
    json!({
        "allowed": v.allowed(),
        "step": v.step().kind(),
        "reason": v.reason(),
        "policy": v.step().policy().map(|p| p.as_str()),
        "rule": v.step().rule(),
        "explanation": v.explanation(),
    })
}

fn evaluate(a: CheckArgs) -> Result<Outcome, Failure> {
    let r = &a.request;
    let (ns, labels) = parse_to(r.to.as_deref().unwrap_or(""))?;
    let port = r
        .port
        .ok_or_else(|| Failure::new("usage", "--port is required with --to"))?;
    if r.from.is_none() && !r.plaintext {
        return Err(Failure::new(
            "usage",
            "give --from SPIFFE_ID or --plaintext",
        ));
    }
    let mut req = Request::tcp(port);
    if let Some(id) = &r.from {
        let id = meshtls::SpiffeId::new(id).map_err(|e| format!("--from: {e}"))?;
        req = req.with_peer(&id);
    }
    let req = r.attributes.apply(req)?;
    let mesh = mesh_config(&r.mesh_config)?.unwrap_or_default();
    let text = crate::read_input(&a.file)?;
    let set = AuthorizationPolicySet::from_yaml(&text, &mesh)?;
    let plane = DataPlane::from(r.data_plane);
    let v = set.explain_in(plane, &ns, &labels, &req);
    let mut value = verdict_json(&v);
    value["data_plane"] = plane.as_str().into();
    value["policies"] = set.len().into();
    value["skipped"] = set.skipped_documents().into();
    Ok(verdict_outcome(
        v.allowed(),
        &v.reason(),
        v.explanation(),
        value,
    ))
}

/// A verdict as `authz check` and `path check` print it: `allowed: <reason>` or `refused:
/// <reason>` and one indented line per explanation step; exit 0 when allowed, 1 otherwise.
pub(crate) fn verdict_outcome(
    allowed: bool,
    reason: &str,
    explanation: &[String],
    value: Value,
) -> Outcome {
    let verdict = if allowed { "allowed" } else { "refused" };
    let text = crate::policy::explained(&format!("{verdict}: {reason}"), explanation);
    if allowed {
        Outcome::Yes(value, text)
    } else {
        Outcome::No(value, text)
    }
}
