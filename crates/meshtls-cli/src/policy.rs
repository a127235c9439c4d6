//! `meshtls policy check` and `meshtls policy resolve`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use meshtls::policy::{PolicySet, Report, Violation, check_manifests};
use serde_json::{Value, json};

use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PolicyCommand {
    /// Validate every PeerAuthentication in FILE as a cluster would (apiserver: CRD schema,
    /// CEL rules, strict fields; istiod webhook). Other kinds are skipped. Exit 1 if any is
    /// invalid.
    Check(CheckArgs),
    /// Which mTLS mode applies to a workload, from which policy, and why.
    Resolve(ResolveArgs),
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// YAML or JSON: one object, a multi-document stream or a `kind: List` (`-` for stdin).
    file: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ResolveArgs {
    /// The policies, e.g. `kubectl get peerauthentications -A -o yaml` (`-` for stdin).
    file: PathBuf,
    /// The workload's namespace.
    #[arg(long, short = 'n')]
    namespace: String,
    /// The workload's labels: `key=value,key=value` (pod labels, not the Deployment's).
    #[arg(long, short = 'l', default_value = "")]
    labels: String,
    /// The workload (container) port; without it, the workload-level mode.
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// The mesh's root namespace (`meshConfig.rootNamespace`).
    #[arg(long, default_value = meshtls::policy::DEFAULT_ROOT_NAMESPACE, conflicts_with = "mesh_config")]
    root_namespace: String,
    /// Take the root namespace from the `istio` ConfigMap (or its `mesh` document).
    #[arg(long)]
    mesh_config: Option<PathBuf>,
}

pub(crate) fn run(args: PolicyArgs) -> Result<Outcome, Failure> {
    match args.command {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Resolve(a) => resolve(a),
    }
}

fn violation_json(v: &Violation) -> Value {
    json!({
        "path": v.path,
        "message": v.message,
        "rule": v.rule.as_str(),
        "layer": if v.rule.is_istiod() { "istiod" } else { "apiserver" },
    })
}

/// A validation report as the CLI prints it with `--json` (`policy check` and `authz check`).
pub(crate) fn report_json(r: &Report) -> Value {
    json!({
        "object": r.object,
        "valid": r.is_valid(),
        "errors": r.errors.iter().map(violation_json).collect::<Vec<_>>(),
        "warnings": r.warnings.iter().map(violation_json).collect::<Vec<_>>(),
    })
}

/// `head` followed by one indented line per explanation step.
pub(crate) fn explained(head: &str, explanation: &[String]) -> String {
    let mut text = head.to_owned();
    for line in explanation {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn check(args: CheckArgs) -> Result<Outcome, Failure> {
    let text = crate::read_input(&args.file)?;
    Ok(match check_manifests(&text) {
        Ok(summary) => {
            let valid = summary.reports.iter().all(Report::is_valid) && !summary.reports.is_empty();
            reports_outcome(
                &summary.reports,
                summary.skipped,
                ("PeerAuthentication", "PeerAuthentications"),
                valid,
            )
        }
        Err(e) => unreadable(&e),
    })
}

/// `policy check` and `authz check` on text that is not a manifest stream: exit 1 with the
/// error's kind, as every refusal carries.
pub(crate) fn unreadable(e: &meshtls::Error) -> Outcome {
    crate::refused(
        e,
        json!({"valid": false, "objects": [], "skipped": 0}),
        format!("invalid: {e}"),
    )
}

/// `policy check` and `authz check`: the reports of the objects of one kind (`(singular,
/// plural)`) as text and JSON, exit 0 when `valid`, 1 otherwise.
pub(crate) fn reports_outcome(
    reports: &[Report],
    skipped: usize,
    (one, many): (&str, &str),
    valid: bool,
) -> Outcome {
    let mut lines = Vec::new();
    for r in reports {
        if r.is_valid() {
            lines.push(format!("ok       {}", r.object));
        } else {
            lines.push(format!("invalid  {}", r.object));
            for e in &r.errors {
                lines.push(format!("         {e}"));
            }
        }
        for w in r.warning_messages() {
            lines.push(format!("warning  {w}"));
        }
    }
    let invalid = reports.iter().filter(|r| !r.is_valid()).count();
    let warned = reports.iter().filter(|r| !r.warnings.is_empty()).count();
    lines.push(format!(
        "{}: {} valid ({} with warnings), {} invalid; {} skipped",
        plural(reports.len(), one, many),
        reports.len() - invalid,
        warned,
        invalid,
        plural(skipped, "other document", "other documents"),
    ));
    if reports.is_empty() {
        lines.push(format!("no {one} found"));
    }
    let value = json!({
        "valid": valid,
        "objects": reports.iter().map(report_json).collect::<Vec<_>>(),
        "skipped": skipped,
    });
    let text = lines.join("\n");
    if valid {
        Outcome::Yes(value, text)
    } else {
        Outcome::No(value, text)
    }
}

/// `app=web,version=v1` → pairs in order; an empty string is no labels. `flag` names the
/// option in errors (`--labels`, `--to`).
pub(crate) fn parse_labels(text: &str, flag: &str) -> Result<Vec<(String, String)>, Failure> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let refuse = |why: &str| Failure::new("usage", format!("{flag} label {item:?} {why}"));
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| refuse("is not key=value"))?;
        if k.is_empty() {
            return Err(refuse("has an empty key"));
        }
        if out.iter().any(|(ek, _)| ek == k) {
            return Err(refuse("repeats a key"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

fn resolve(args: ResolveArgs) -> Result<Outcome, Failure> {
    let labels: BTreeMap<String, String> = parse_labels(&args.labels, "--labels")?
        .into_iter()
        .collect();
    let root = match crate::authz::mesh_config(&args.mesh_config)? {
        Some(mesh) => mesh.root_namespace().to_owned(),
        None => args.root_namespace.clone(),
    };
    let text = crate::read_input(&args.file)?;
    let set = match PolicySet::from_yaml(&text, &root) {
        Ok(set) => set,
        Err(e @ meshtls::Error::Policy(meshtls::policy::PolicyError::RootNamespace(_))) => {
            return Err(e.into());
        }
        Err(e) => {
            let text = format!("invalid: {e}");
            return Ok(crate::refused(&e, json!({"valid": false}), text));
        }
    };
    let d = set.explain(&args.namespace, &labels, args.port);
    let value = json!({
        "namespace": args.namespace,
        "labels": labels,
        "port": args.port,
        "root_namespace": root,
        "mode": d.mode().as_str(),
        "policy": d.policy().map(|p| p.as_str()),
        "level": d.level().as_str(),
        "explanation": d.explanation(),
        "policies": set.len(),
        "skipped": set.skipped_documents(),
    });
    Ok(Outcome::Yes(
        value,
        explained(&d.to_string(), d.explanation()),
    ))
}
