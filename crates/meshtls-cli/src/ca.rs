//! `meshtls ca init|intermediate|cacerts`, `meshtls issue`, `meshtls sign-csr`,
//! `meshtls secret`: the mesh CA for scripts.
//!
//! Exit codes follow the rest of the CLI: 2 when the arguments cannot be understood (a bad
//! duration, key kind or SPIFFE ID), 1 when the CA says no (unusable CA material, a refused
//! request, a rejected CSR), 0 otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use meshtls::ca::{CaLayout, CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::{SpiffeId, TrustDomain};
use serde_json::{Value, json};

use crate::{Failure, Outcome};

/// Parses a Go-style duration: `24h`, `90m`, `3650d`, `1h30m`, `45s`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: use e.g. 24h, 90m, 3650d, 1h30m, 45s");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

pub(crate) fn key_kind(text: &str) -> Result<KeyKind, String> {
    KeyKind::parse(text).map_err(|e| e.to_string())
}

/// `--ttl` and `--key` of a new leaf (`issue`, `secret`, `istio-ca fetch`). Left out, the
/// core's [`IssueParams::default`] decides (Istio's 24 hours, a P-256 key).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct LeafArgs {
    /// Lifetime, e.g. 12h (default: Istio's 24h; at most 90d).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) ttl: Option<Duration>,
    /// Key kind of the new key: ec-p256 (the default), ec-p384, rsa-2048, rsa-3072, rsa-4096.
    #[arg(long, value_parser = key_kind)]
    pub(crate) key: Option<KeyKind>,
}

impl LeafArgs {
    /// The core's defaults with what was given.
    pub(crate) fn params(&self, dns_names: Vec<String>) -> IssueParams {
        let mut p = IssueParams::default();
        if let Some(ttl) = self.ttl {
            p.ttl = ttl;
        }
        if let Some(key) = self.key {
            p.key = key;
        }
        p.dns_names = dns_names;
        p
    }
}

/// `--key`, `--ttl` and `--organization` of a new CA: left out, the core's [`CaParams::new`]
/// (a root) or [`CaParams::intermediate`] decides.
#[derive(clap::Args, Debug)]
struct NewCaArgs {
    /// Key kind: ec-p256, ec-p384, rsa-2048 (istiod's, the default), rsa-3072 or rsa-4096.
    #[arg(long, value_parser = key_kind)]
    key: Option<KeyKind>,
    /// Lifetime, e.g. 365d (default: istiod's 3650d for a root, 730d for an intermediate,
    /// clamped to the issuer's).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Subject O (default: the trust domain).
    #[arg(long)]
    organization: Option<String>,
}

impl NewCaArgs {
    fn apply(self, mut p: CaParams) -> CaParams {
        if let Some(key) = self.key {
            p.key = key;
        }
        if let Some(ttl) = self.ttl {
            p.ttl = ttl;
        }
        if self.organization.is_some() {
            p.organization = self.organization;
        }
        p
    }
}

pub(crate) fn spiffe_id(text: &str) -> Result<SpiffeId, String> {
    SpiffeId::new(text).map_err(|e| e.to_string())
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// A refusal from the CA: exit code 1 with the reason.
pub(crate) fn no(e: impl std::fmt::Display) -> Outcome {
    let msg = e.to_string();
    Outcome::No(json!({"ok": false, "error": msg, "kind": "refused"}), msg)
}

/// How a library error ends the command: a file that cannot be read or written is bad usage
/// (exit 2); anything else is the CA saying no (exit 1).
pub(crate) fn refusal(e: meshtls::Error) -> Result<Outcome, Failure> {
    match e {
        meshtls::Error::Io { .. } => Err(e.into()),
        other => {
            let msg = other.to_string();
            Ok(crate::refused(&other, json!({"ok": false}), msg))
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CaCommand {
    /// Create a self-signed root (istiod's defaults: RSA 2048, 3650d, `O=<trust domain>`) and
    /// write it in Istio's plug-in layout.
    Init(InitArgs),
    /// Create an intermediate signed by the CA in --ca (offline root, per-cluster
    /// intermediate) and write it in Istio's plug-in layout.
    Intermediate(IntermediateArgs),
    /// Print Istio's `cacerts` Secret for the CA in --ca DIR.
    Cacerts(CacertsArgs),
    /// Serve Istio's CA protocol (istiod's CreateCertificate) from the CA in --ca.
    #[cfg(feature = "grpc")]
    Serve(Box<crate::ca_serve::ServeArgs>),
}

#[derive(clap::Args, Debug)]
struct InitArgs {
    /// Where to write ca-cert.pem, ca-key.pem (0600), cert-chain.pem, root-cert.pem.
    dir: PathBuf,
    /// The mesh trust domain.
    #[arg(long, default_value = meshtls::identity::CLUSTER_LOCAL)]
    trust_domain: String,
    #[command(flatten)]
    new: NewCaArgs,
    /// Write tls.crt/tls.key/ca.crt instead.
    #[arg(long)]
    kubernetes_tls: bool,
    /// Overwrite CA files already in DIR.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
struct IntermediateArgs {
    /// Where to write the intermediate's plug-in layout.
    dir: PathBuf,
    /// The issuing CA.
    #[command(flatten)]
    issuer: CaDirArgs,
    #[command(flatten)]
    new: NewCaArgs,
    /// Subject CN (default: `Intermediate CA`).
    #[arg(long)]
    common_name: Option<String>,
    /// Overwrite CA files already in DIR.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
struct CacertsArgs {
    #[command(flatten)]
    ca: CaDirArgs,
    /// istiod's namespace.
    #[arg(long, default_value = meshtls::mesh::DEFAULT_ROOT_NAMESPACE)]
    namespace: String,
}

/// The CA a command reads, as every such command names it: `--ca DIR` and the trust domain
/// it issues for (`--trust-domain`, Istio's default cluster.local).
#[derive(clap::Args, Debug, Clone)]
struct CaDirArgs {
    /// The CA directory (Istio's plug-in or the kubernetes.io/tls layout).
    #[arg(long = "ca")]
    ca: PathBuf,
    /// The trust domain the loaded CA issues for (identities of any other are refused).
    #[arg(long = "trust-domain", default_value = meshtls::identity::CLUSTER_LOCAL)]
    trust_domain: String,
}

impl CaDirArgs {
    fn trust_domain(&self) -> Result<TrustDomain, String> {
        TrustDomain::new(&self.trust_domain).map_err(|e| format!("invalid --trust-domain: {e}"))
    }

    /// Loads the CA. `Err` is how the command ends: bad usage (the trust domain) or the
    /// CA's refusal (exit 1; an unreadable file is exit 2).
    fn load(&self) -> Result<MeshCa, Result<Outcome, Failure>> {
        let td = self.trust_domain().map_err(|e| Err(e.into()))?;
        MeshCa::load(&self.ca, &td).map_err(refusal)
    }
}

fn refuse_overwrite(dir: &Path, force: bool) -> Result<(), Outcome> {
    let taken: Vec<&str> = [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
        "tls.crt",
        "tls.key",
        "ca.crt",
    ]
    .into_iter()
    .filter(|f| dir.join(f).exists())
    .collect();
    if !force && !taken.is_empty() {
        return Err(no(format!(
            "{} already holds CA files ({}); pass --force to replace them",
            dir.display(),
            taken.join(", ")
        )));
    }
    Ok(())
}

fn ca_summary(ca: &MeshCa, dir: &Path) -> (Value, String) {
    let value = json!({
        "ok": true,
        "dir": dir.display().to_string(),
        "trust_domain": ca.trust_domain().as_str(),
        "key": ca.key_description(),
        "self_signed": ca.is_self_signed(),
        "not_before": rfc3339(ca.not_before()),
        "not_after": rfc3339(ca.not_after()),
    });
    let text = format!(
        "wrote {} ({} CA, {}, valid until {})",
        dir.display(),
        if ca.is_self_signed() {
            "root"
        } else {
            "intermediate"
        },
        ca.key_description(),
        rfc3339(ca.not_after())
    );
    (value, text)
}

pub(crate) fn ca(args: CaArgs) -> Result<Outcome, Failure> {
    match args.command {
        #[cfg(feature = "grpc")]
        CaCommand::Serve(a) => crate::ca_serve::serve(*a),
        CaCommand::Init(a) => {
            let params = a.new.apply(CaParams::new(
                TrustDomain::new(&a.trust_domain).map_err(meshtls::Error::from)?,
            ));
            if let Err(o) = refuse_overwrite(&a.dir, a.force) {
                return Ok(o);
            }
            let ca = match MeshCa::create(&params) {
                Ok(ca) => ca,
                Err(e) => return refusal(e),
            };
            let layout = if a.kubernetes_tls {
                CaLayout::KubernetesTls
            } else {
                CaLayout::Istio
            };
            if let Err(e) = ca.save_as(&a.dir, layout) {
                return refusal(e);
            }
            let (v, t) = ca_summary(&ca, &a.dir);
            Ok(Outcome::Yes(v, t))
        }
        CaCommand::Intermediate(a) => {
            let issuer = match a.issuer.load() {
                Ok(c) => c,
                Err(end) => return end,
            };
            let mut params = a
                .new
                .apply(CaParams::intermediate(a.issuer.trust_domain()?));
            if a.common_name.is_some() {
                params.common_name = a.common_name;
            }
            if let Err(o) = refuse_overwrite(&a.dir, a.force) {
                return Ok(o);
            }
            let ca = match issuer.create_intermediate(&params) {
                Ok(ca) => ca,
                Err(e) => return refusal(e),
            };
            if let Err(e) = ca.save(&a.dir) {
                return refusal(e);
            }
            let (v, t) = ca_summary(&ca, &a.dir);
            Ok(Outcome::Yes(v, t))
        }
        CaCommand::Cacerts(a) => {
            let ca = match a.ca.load() {
                Ok(c) => c,
                Err(end) => return end,
            };
            manifest(ca.to_cacerts_secret(&a.namespace))
        }
    }
}

fn manifest(secret: meshtls::Result<meshtls::k8s::Secret>) -> Result<Outcome, Failure> {
    let secret = match secret {
        Ok(s) => s,
        Err(e) => return refusal(e),
    };
    let (json_text, yaml) = match (secret.to_json(), secret.to_yaml()) {
        (Ok(j), Ok(y)) => (j, y),
        (Err(e), _) | (_, Err(e)) => return refusal(e),
    };
    let value: Value = serde_json::from_str(&json_text).map_err(|e| e.to_string())?;
    Ok(Outcome::Yes(value, yaml.trim_end().to_owned()))
}

#[derive(clap::Args, Debug)]
pub(crate) struct IssueArgs {
    /// The workload's SPIFFE ID.
    spiffe_id: String,
    #[command(flatten)]
    ca: CaDirArgs,
    /// Write cert-chain.pem, key.pem (0600) and root-cert.pem here instead of printing.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    leaf: LeafArgs,
    /// Extra DNS SAN (repeatable).
    #[arg(long = "dns")]
    dns: Vec<String>,
}

fn svid_facts(svid: &meshtls::Svid) -> Value {
    json!({
        "ok": true,
        "spiffe_id": svid.spiffe_id().as_str(),
        "serial": svid.serial_hex(),
        "not_before": rfc3339(svid.not_before()),
        "not_after": rfc3339(svid.not_after()),
    })
}

/// Issues an SVID; `Err` is how the command ends (bad usage, or the CA's refusal).
fn issue_from(
    ca: &CaDirArgs,
    id: &str,
    params: &IssueParams,
) -> Result<meshtls::Svid, Result<Outcome, Failure>> {
    let id = spiffe_id(id).map_err(|e| Err(e.into()))?;
    ca.load()?.issue(&id, params).map_err(refusal)
}

pub(crate) fn issue(args: IssueArgs) -> Result<Outcome, Failure> {
    let params = args.leaf.params(args.dns);
    let svid = match issue_from(&args.ca, &args.spiffe_id, &params) {
        Ok(s) => s,
        Err(end) => return end,
    };
    let mut value = svid_facts(&svid);
    match &args.out {
        Some(dir) => {
            if let Err(e) = svid.save(dir) {
                return refusal(e);
            }
            value["dir"] = json!(dir.display().to_string());
            let text = format!(
                "wrote {}/{{cert-chain.pem,key.pem,root-cert.pem}} for {} (serial {}, valid until {})",
                dir.display(),
                svid.spiffe_id(),
                svid.serial_hex(),
                rfc3339(svid.not_after())
            );
            Ok(Outcome::Yes(value, text))
        }
        None => {
            let key = svid.private_key_pem();
            value["cert_chain_pem"] = json!(svid.cert_chain_pem());
            value["private_key_pem"] = json!(key.as_str());
            let text = format!("{}{}", svid.cert_chain_pem(), key.as_str());
            Ok(Outcome::Yes(value, text.trim_end().to_owned()))
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct SignCsrArgs {
    /// The PEM CSR (`-` for standard input).
    csr_file: PathBuf,
    /// The identity to certify (the CSR's own subject and SANs are ignored).
    spiffe_id: String,
    #[command(flatten)]
    ca: CaDirArgs,
    /// Lifetime, e.g. 12h (default: Istio's 24h; at most 90d).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
}

pub(crate) fn sign_csr(args: SignCsrArgs) -> Result<Outcome, Failure> {
    let id = spiffe_id(&args.spiffe_id)?;
    let ttl = args.ttl.unwrap_or(IssueParams::default().ttl);
    let csr = crate::read_input(&args.csr_file)?;
    let ca = match args.ca.load() {
        Ok(c) => c,
        Err(end) => return end,
    };
    match ca.sign_csr(&csr, &id, ttl) {
        Ok(issued) => {
            let chain = issued.cert_chain_pem();
            let value = json!({
                "ok": true,
                "spiffe_id": issued.spiffe_id().as_str(),
                "not_before": rfc3339(issued.not_before()),
                "not_after": rfc3339(issued.not_after()),
                "cert_chain_pem": chain,
            });
            Ok(Outcome::Yes(value, chain.trim_end().to_owned()))
        }
        Err(e) => refusal(e),
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct SecretArgs {
    /// The workload's SPIFFE ID.
    spiffe_id: String,
    #[command(flatten)]
    ca: CaDirArgs,
    /// The Secret's name.
    #[arg(long)]
    name: String,
    /// The Secret's namespace.
    #[arg(long)]
    namespace: String,
    #[command(flatten)]
    leaf: LeafArgs,
    /// Extra DNS SAN (repeatable).
    #[arg(long = "dns")]
    dns: Vec<String>,
}

pub(crate) fn secret(args: SecretArgs) -> Result<Outcome, Failure> {
    let params = args.leaf.params(args.dns);
    let svid = match issue_from(&args.ca, &args.spiffe_id, &params) {
        Ok(s) => s,
        Err(end) => return end,
    };
    manifest(svid.to_k8s_secret(&args.name, &args.namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("3650d").unwrap(),
            Duration::from_secs(3650 * 86400)
        );
        for bad in ["", "24", "h", "1x", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
