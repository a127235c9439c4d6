//! `meshtls path check`: will this caller get through to that pod, and if not, why?

use std::path::PathBuf;

use meshtls::path::{Caller, Destination, Mesh};
use serde_json::json;

use crate::authz::{AttributeArgs, parse_to};
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
    /// The outside caller (--from) speaks HBONE (to an ambient pod through ztunnel).
    #[arg(long, requires = "from", conflicts_with = "workload")]
    hbone: bool,
    /// The destination: `namespace` or `namespace/key=value,key=value` (pod labels).
    #[arg(long)]
    to: String,
    /// The destination (workload) port.
    #[arg(long)]
    port: u16,
    /// The Service name in front of the pod (DestinationRules name services).
    #[arg(long)]
    service: Option<String>,
    #[command(flatten)]
    attributes: AttributeArgs,
    /// The `istio` ConfigMap (or its `mesh` document).
    #[arg(long)]
    mesh_config: Option<PathBuf>,
}

pub(crate) fn run(args: PathArgs) -> Result<Outcome, Failure> {
    let PathCommand::Check(a) = args.command;
    let caller = match (&a.from, a.plaintext, a.workload) {
        (Some(id), false, false) if a.hbone => {
            Caller::hbone(id).map_err(|e| format!("--from: {e}"))?
        }
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
    let request = a.attributes.apply(to.request.clone())?;
    to = to.with_request(request);
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
        "data_plane": r.data_plane().as_str(),
        "transport": r.transport().as_str(),
        "mode": r.mode().mode().as_str(),
        "mode_policy": r.mode().policy().map(|p| p.as_str()),
        "authorization": r.authorization().map(crate::authz::verdict_json),
        "explanation": r.explanation(),
    });
    Ok(crate::authz::verdict_outcome(
        r.allowed(),
        &r.reason(),
        r.explanation(),
        value,
    ))
}
