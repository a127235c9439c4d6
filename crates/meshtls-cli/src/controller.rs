//! `meshtls controller run`: the gateway-certificate controller (meshtls::controller) with its
//! settings as flags. `--kubeconfig FILE` outside a cluster, the pod's in-cluster config
//! otherwise; `--once` reconciles once and exits (scripts, CronJobs); without it the controller
//! runs until SIGINT/SIGTERM, releasing its Lease on the way out. Logs go to standard error,
//! one JSON object per line with `--log-json`.

use std::path::PathBuf;
use std::time::Duration;

use meshtls::controller::{
    CaToken, CertSource, Controller, ControllerConfig, LeaseConfig, SecretSpec,
};
use serde_json::json;

use crate::ca::parse_duration;
use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct ControllerArgs {
    #[command(subcommand)]
    command: ControllerCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ControllerCommand {
    /// Keep a gateway's mesh certificate in a kubernetes.io/tls Secret.
    Run(Box<RunArgs>),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The Secret, NAMESPACE/NAME.
    #[arg(long)]
    secret: String,
    /// The identity, NAMESPACE/SERVICE-ACCOUNT (the trust domain comes from the mesh config).
    #[arg(long)]
    identity: String,
    /// The certificate source: `cacerts:NAMESPACE/NAME` (a local CA from Istio's plug-in
    /// Secret) or `istio-ca:HOST:PORT` (istiod or `meshtls ca serve`; with --ca-root).
    #[arg(long)]
    source: String,
    /// The CA server's root(s), PEM file (istio-ca sources).
    #[arg(long)]
    ca_root: Option<PathBuf>,
    /// The name checked on the CA server's certificate (default by Istio's rule).
    #[arg(long)]
    ca_server_name: Option<String>,
    /// A mounted token file for the CA (default: a token from the TokenRequest API for
    /// --token-service-account, audience istio-ca).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The service account whose token is requested, NAMESPACE/NAME (default: the identity).
    #[arg(long)]
    token_service_account: Option<String>,
    /// The namespace of the `istio` ConfigMap.
    #[arg(long, default_value = meshtls::mesh::DEFAULT_ROOT_NAMESPACE)]
    mesh_namespace: String,
    /// Istio's revision: the ConfigMap is `istio-<REV>`.
    #[arg(long)]
    revision: Option<String>,
    /// Certificate lifetime (default: Istio's 24h).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// The share of the lifetime left when renewing (Istio's SECRET_GRACE_PERIOD_RATIO).
    #[arg(long, default_value_t = meshtls::svid::ISTIO_GRACE_PERIOD_RATIO)]
    grace_ratio: f64,
    /// A kubeconfig file (default: in-cluster config, then $KUBECONFIG / ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Reconcile once and exit (0 when the Secret is current).
    #[arg(long)]
    once: bool,
    /// Leader election with this Lease, NAMESPACE/NAME (default: none; every replica writes).
    #[arg(long)]
    lease: Option<String>,
    /// This replica's name in the Lease (default: $POD_NAME, else the host name).
    #[arg(long)]
    lease_identity: Option<String>,
    /// How long a Lease claim lasts: a standby takes over within it.
    #[arg(long, default_value = "15s")]
    lease_duration: String,
    /// Where /healthz, /readyz and /metrics are served (e.g. 0.0.0.0:8080).
    #[arg(long)]
    health: Option<String>,
    /// The longest wait between retries after a failure (default: 60s).
    #[arg(long, value_parser = parse_duration)]
    backoff_cap: Option<Duration>,
    /// A full re-check at least this often (default: 5m).
    #[arg(long, value_parser = parse_duration)]
    resync: Option<Duration>,
    /// The field manager of the server-side applies.
    #[arg(long, default_value = meshtls::controller::FIELD_MANAGER)]
    field_manager: String,
    /// Logs as JSON lines on standard error.
    #[arg(long)]
    log_json: bool,
}

struct Logger {
    json: bool,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info && m.target().starts_with("meshtls")
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = r.level().as_str().to_ascii_lowercase();
        if self.json {
            let ts = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            eprintln!(
                "{}",
                json!({"ts": ts, "level": level, "target": r.target(), "msg": r.args().to_string()})
            );
        } else {
            eprintln!("{level} {}", r.args());
        }
    }
    fn flush(&self) {}
}

static TEXT_LOG: Logger = Logger { json: false };
static JSON_LOG: Logger = Logger { json: true };

fn split2<'a>(flag: &str, value: &'a str, what: &str) -> Result<(&'a str, &'a str), Failure> {
    match value.split_once('/') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains('/') => Ok((a, b)),
        _ => Err(format!("invalid {flag} {value:?}: expected {what}").into()),
    }
}

fn config(a: &RunArgs) -> Result<ControllerConfig, Failure> {
    let (ns, name) = split2("--secret", &a.secret, "NAMESPACE/NAME")?;
    let (id_ns, sa) = split2("--identity", &a.identity, "NAMESPACE/SERVICE-ACCOUNT")?;
    let source = if let Some(rest) = a.source.strip_prefix("cacerts:") {
        let (sns, sname) = split2("--source", rest, "cacerts:NAMESPACE/NAME")?;
        CertSource::Cacerts {
            namespace: sns.to_owned(),
            name: sname.to_owned(),
        }
    } else if let Some(address) = a.source.strip_prefix("istio-ca:") {
        let Some(root) = &a.ca_root else {
            return Err(
                "--source istio-ca:... needs --ca-root (the CA server's root PEM)"
                    .to_owned()
                    .into(),
            );
        };
        let root_cert_pem = crate::read_input(root)?;
        let token = match (&a.token_file, &a.token_service_account) {
            (Some(path), _) => CaToken::File(path.clone()),
            (None, Some(sa_ref)) => {
                let (tns, tsa) = split2("--token-service-account", sa_ref, "NAMESPACE/NAME")?;
                CaToken::TokenRequest {
                    namespace: tns.to_owned(),
                    service_account: tsa.to_owned(),
                    audience: "istio-ca".to_owned(),
                }
            }
            (None, None) => CaToken::TokenRequest {
                namespace: id_ns.to_owned(),
                service_account: sa.to_owned(),
                audience: "istio-ca".to_owned(),
            },
        };
        CertSource::IstioCa {
            address: address.to_owned(),
            root_cert_pem,
            server_name: a.ca_server_name.clone(),
            token,
        }
    } else {
        return Err(format!(
            "invalid --source {:?}: expected cacerts:NAMESPACE/NAME or istio-ca:HOST:PORT",
            a.source
        )
        .into());
    };
    let mut spec = SecretSpec::new(name, ns, id_ns, sa, &source.name())?;
    if let Some(ttl) = a.ttl {
        spec = spec.with_ttl(ttl)?;
    }
    let mut cfg = ControllerConfig::new(spec, source);
    cfg.mesh_namespace = a.mesh_namespace.clone();
    cfg.revision = a.revision.clone();
    cfg.field_manager = a.field_manager.clone();
    if let Some(cap) = a.backoff_cap {
        cfg.backoff_cap = cap;
    }
    if let Some(resync) = a.resync {
        cfg.resync = resync;
    }
    if let Some(h) = &a.health {
        cfg.health_addr = Some(
            h.parse()
                .map_err(|_| format!("invalid --health {h:?}: expected ip:port"))?,
        );
    }
    if let Some(lease) = &a.lease {
        let (lns, lname) = split2("--lease", lease, "NAMESPACE/NAME")?;
        let identity = a
            .lease_identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .unwrap_or_else(|| format!("meshtls-{}", std::process::id()));
        cfg.lease = Some(LeaseConfig {
            namespace: lns.to_owned(),
            name: lname.to_owned(),
            identity,
            duration: parse_duration(&a.lease_duration)?.max(Duration::from_secs(1)),
        });
    }
    Ok(cfg)
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Failure> {
    let config = kube_config(kubeconfig).await?;
    kube::Client::try_from(config)
        .map_err(|e| Failure::new("controller", format!("cannot build the client: {e}")))
}

/// `--kubeconfig FILE`, else the in-cluster config, then $KUBECONFIG / ~/.kube/config (also
/// `ca serve --node-authorization kube`'s).
pub(crate) async fn kube_config(kubeconfig: Option<&PathBuf>) -> Result<kube::Config, Failure> {
    Ok(match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Failure::new("io", format!("cannot read {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("invalid kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no kubernetes config (in-cluster or kubeconfig): {e}"))?,
    })
}

pub(crate) fn run(args: ControllerArgs) -> Result<Outcome, Failure> {
    let ControllerCommand::Run(a) = args.command;
    let logger: &'static Logger = if a.log_json { &JSON_LOG } else { &TEXT_LOG };
    let _ = log::set_logger(logger).map(|()| log::set_max_level(log::LevelFilter::Info));
    let cfg = config(&a)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new("io", format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let client = client(a.kubeconfig.as_ref()).await?;
        let secret = format!("{}/{}", cfg.spec.secret_namespace(), cfg.spec.secret_name());
        let controller = Controller::new(client, cfg);
        if a.once {
            return match controller.reconcile_once().await {
                Ok(o) => {
                    let recheck = o.recheck_at.map(|t| {
                        time::OffsetDateTime::from(t)
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    });
                    let value = json!({
                        "secret": secret, "result": o.result, "reason": o.reason,
                        "wrote": o.wrote, "recheck_at": recheck,
                    });
                    let text = match o.reason {
                        Some(r) => format!("{secret}: {} ({r})", o.result),
                        None => format!("{secret}: {}", o.result),
                    };
                    if o.result == "waiting" {
                        Ok(Outcome::No(
                            value,
                            format!("{secret}: waiting for the mesh ConfigMap"),
                        ))
                    } else {
                        Ok(Outcome::Yes(value, text))
                    }
                }
                Err(e) => Err(Failure::new("controller", e.to_string())),
            };
        }
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Failure::from(format!("cannot watch SIGINT: {e}")))?;
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Failure::from(format!("cannot watch SIGTERM: {e}")))?;
        log::info!("controller: keeping {secret}");
        let shutdown = async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        };
        controller
            .run(shutdown)
            .await
            .map_err(|e| Failure::new("controller", e.to_string()))?;
        log::info!("controller: stopped");
        Ok(Outcome::Yes(
            json!({"stopped": secret}),
            format!("stopped keeping {secret}"),
        ))
    })
}
