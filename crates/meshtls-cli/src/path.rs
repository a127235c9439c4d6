//! `meshtls path check`: will this caller get through to that pod, and if not, why?

use std::path::PathBuf;

use meshtls::path::{Caller, Destination, Mesh};
use serde_json::json;

use crate::authz::{headers, parse_to};
use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct PathArgs {
    #[command(subcommand)]
    command: PathCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PathCommand {
    /// Walk the path from a caller to a workload port over a cluster dump (`kubectl get
    /// peerauthentications,authorizationpolicies,destinationrules -A -o json`): transport,
    /// mTLS mode, trust domain, authorization. Exit 0 allowed, 1 refused.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The cluster dump (YAML or JSON, `-` for stdin); an `istio` ConfigMap in it is used
    /// unless --mesh-config is given.
    dump: PathBuf,
    /// The caller's SPIFFE ID: an outside caller with a certificate (a gateway), or with
    /// --workload a mesh workload whose sidecar decides what it sends.
    #[arg(long, conflicts_with = "plaintext")]
    from: Option<String>,
    /// The caller is a mesh workload with a sidecar (DestinationRule / auto mTLS apply).
    #[arg(long, requires = "from")]
    workload: bool,
    /// The caller sends plaintext.
    #[arg(long)]
    plaintext: bool,
    /// The destination: `namespace` or `namespace/key=value,key=value` (pod labels).
    #[arg(long)]
    to: String,
    /// The destination (workload) port.
    #[arg(long)]
    port: u16,
    /// The Service name in front of the pod (DestinationRules name services).
    #[arg(long)]
    service: Option<String>,
    /// HTTP method (makes it an HTTP request).
    #[arg(long)]
    method: Option<String>,
    /// HTTP path.
    #[arg(long)]
    path: Option<String>,
    /// An HTTP header `name=value` (repeat).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// The `istio` ConfigMap (or its `mesh` document).
    #[arg(long)]
    mesh_config: Option<PathBuf>,
}

pub(crate) fn run(args: PathArgs) -> Result<Outcome, Failure> {
    let PathCommand::Check(a) = args.command;
    let caller = match (&a.from, a.plaintext, a.workload) {
        (Some(id), false, false) => Caller::external(id).map_err(|e| format!("--from: {e}"))?,
        (Some(id), false, true) => Caller::workload(id).map_err(|e| format!("--from: {e}"))?,
        (None, true, _) => Caller::Plaintext,
        _ => {
            return Err(Failure::new(
                "usage",
                "give --from SPIFFE_ID or --plaintext",
            ));
        }
    };
    let (ns, labels) = parse_to(&a.to)?;
    let mut to = Destination::new(&ns, labels, a.port);
    if let Some(s) = &a.service {
        to = to.with_service(s);
    }
    let hs = headers(&a.headers)?;
    if a.method.is_some() || a.path.is_some() || !hs.is_empty() {
        to = to.with_http(
            a.method.as_deref().unwrap_or("GET"),
            a.path.as_deref().unwrap_or("/"),
        );
        if let Some(http) = to.http.as_mut() {
            http.headers = hs;
        }
    }
    let mesh_text = match &a.mesh_config {
        Some(p) => Some(crate::read_input(p)?),
        None => None,
    };
    let dump = crate::read_input(&a.dump)?;
    let mesh = Mesh::from_dump(&dump, mesh_text.as_deref())?;
    let r = mesh.check(&caller, &to);
    let value = json!({
        "allowed": r.allowed(),
        "step": r.step().kind(),
        "reason": r.reason(),
        "transport": r.transport().as_str(),
        "mode": r.mode().mode().as_str(),
        "mode_policy": r.mode().policy().map(|p| p.as_str()),
        "authorization": r.authorization().map(crate::authz::verdict_json),
        "explanation": r.explanation(),
    });
    let mut text = format!(
        "{}: {}",
        if r.allowed() { "allowed" } else { "refused" },
        r.reason()
    );
    for line in r.explanation() {
        text.push_str("\n  ");
        text.push_str(line);
    }
    Ok(if r.allowed() {
        Outcome::Yes(value, text)
    } else {
        Outcome::No(value, text)
    })
}
