//! `meshtls ca serve`: Istio's CA protocol served from a CA directory, one log line per
//! request on standard error, until SIGINT or SIGTERM (graceful: no new connections, requests
//! in flight are answered, exit 0). SIGHUP, or a new modification time of the `--jwks` file
//! (checked every two seconds), reloads the issuer keys; a file that does not load is logged
//! and the keys in use are kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshtls::MeshCa;
use meshtls::ca_protocol::{
    DEFAULT_SERVING_DNS_NAMES, IstioCaServer, JwtVerifier, NodeAccountSettings, ServerConfig,
    ServerSettings,
};
use serde_json::json;

use crate::ca::parse_duration;
use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// The CA directory (Istio's plug-in layout or tls.crt/tls.key/ca.crt).
    #[arg(long = "ca")]
    ca: PathBuf,
    /// The trust domain the CA issues for (identities of any other are refused).
    #[arg(long = "trust-domain", default_value = meshtls::identity::CLUSTER_LOCAL)]
    trust_domain: String,
    /// Where to listen (istiod: 0.0.0.0:15012).
    #[arg(long, default_value = "0.0.0.0:15012")]
    listen: String,
    /// The service-account token issuer's JWKS (the API server's /openid/v1/jwks).
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// The token issuer (`iss`), e.g. `https://kubernetes.default.svc.cluster.local`.
    #[arg(long)]
    issuer: Option<String>,
    /// Accepted audiences (default istio-ca); repeat for more.
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// istio-csr's strict CSR checks.
    #[arg(long)]
    strict_csr: bool,
    /// A DNS name added to the serving certificate's (istiod's names are kept); repeat for
    /// more. Agents check the host of their CA address, e.g. `--dns localhost`.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// Drop istiod's default serving names: only the `--dns` names (and the config file's).
    #[arg(long)]
    no_default_dns: bool,
    /// This server's cluster ID: a caller's `clusterid` naming another is refused (default
    /// Kubernetes, istiod's).
    #[arg(long)]
    cluster_id: Option<String>,
    /// A node agent allowed to request other identities with ImpersonatedIdentity (ztunnel's
    /// `istio-system/ztunnel`): `ns/sa` may request any identity of the trust domain,
    /// `ns/sa=ns1/sa1,ns2/sa2` only those; repeat for more.
    #[arg(long = "trusted-node-account", value_name = "NS/SA[=NS/SA,...]")]
    trusted_node_accounts: Vec<String>,
    /// Default lifetime when a request asks for none (default 24h).
    #[arg(long)]
    default_ttl: Option<String>,
    /// Longest lifetime granted; longer requests are refused (default 90d).
    #[arg(long)]
    max_ttl: Option<String>,
    /// Shortest lifetime granted; shorter requests are refused (default 4m: with the
    /// 2-minute back-dating, agents renewing at half the lifetime would loop below ~2m).
    #[arg(long)]
    min_ttl: Option<String>,
    /// istiod's node authorization of impersonation: `kube` watches the API server's pods,
    /// and a trusted node account may then request an identity only when a pod of that
    /// service account runs on the caller's node (named by its bound token's pod claims).
    /// Identities listed with `--trusted-node-account NS/SA=...` are still granted as listed.
    #[cfg(feature = "kube")]
    #[arg(long, value_name = "MODE", value_parser = ["kube"])]
    node_authorization: Option<String>,
    /// The kubeconfig for `--node-authorization kube` (default: in-cluster config, then
    /// $KUBECONFIG / ~/.kube/config).
    #[cfg(feature = "kube")]
    #[arg(long, requires = "node_authorization")]
    kubeconfig: Option<PathBuf>,
    /// Watch only the pods this field selector matches (e.g. `spec.nodeName=node-a`), for
    /// `--node-authorization kube`; default all pods of all namespaces, as istiod.
    #[cfg(feature = "kube")]
    #[arg(long, requires = "node_authorization")]
    pod_field_selector: Option<String>,
    /// A YAML/JSON file of server options (clusterId, dnsNames, extraDnsNames, minTtl,
    /// defaultTtl, maxTtl, strictCsr, trustedNodeAccounts); flags given override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info && m.target().starts_with("meshtls")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}", r.level().as_str().to_ascii_lowercase(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

/// How often the `--jwks` file's modification time is looked at.
const JWKS_POLL: Duration = Duration::from_secs(2);

fn load_jwt(path: &Path, issuer: &str, audiences: &[String]) -> Result<JwtVerifier, String> {
    let jwks = crate::read_input(path).map_err(|e| e.message)?;
    JwtVerifier::new(&jwks, issuer, audiences).map_err(|e| e.to_string())
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The JWKS file and what it is checked with, for reloads.
struct JwksSource {
    path: PathBuf,
    issuer: String,
    audiences: Vec<String>,
    mtime: Option<SystemTime>,
}

impl JwksSource {
    fn reload(&mut self, server: &IstioCaServer, why: &str) {
        self.mtime = mtime(&self.path);
        match load_jwt(&self.path, &self.issuer, &self.audiences) {
            Ok(v) => {
                let keys = v.key_count();
                server.set_jwt(Some(v));
                log::info!(
                    "ca server: reloaded jwks {} ({why}): {keys} keys",
                    self.path.display()
                );
            }
            Err(e) => log::error!(
                "ca server: jwks {} not reloaded ({why}), keeping the keys in use: {e}",
                self.path.display()
            ),
        }
    }
}

/// Waits for SIGINT/SIGTERM (returns the signal's name) while reloading the JWKS on SIGHUP
/// or when its file changes; returns early if the server thread stops.
fn wait_for_signals(
    server: &IstioCaServer,
    running: &meshtls::ca_protocol::RunningServer,
    mut jwks: Option<JwksSource>,
) -> Result<&'static str, Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    rt.block_on(async {
        let sig = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Failure::from(format!("cannot watch {name}: {e}")))
        };
        let mut int = sig(SignalKind::interrupt(), "SIGINT")?;
        let mut term = sig(SignalKind::terminate(), "SIGTERM")?;
        let mut hup = sig(SignalKind::hangup(), "SIGHUP")?;
        let mut tick = tokio::time::interval(JWKS_POLL);
        loop {
            tokio::select! {
                _ = int.recv() => return Ok("SIGINT"),
                _ = term.recv() => return Ok("SIGTERM"),
                _ = hup.recv() => match jwks.as_mut() {
                    Some(j) => j.reload(server, "SIGHUP"),
                    None => log::info!("ca server: SIGHUP: no --jwks to reload"),
                },
                _ = tick.tick() => {
                    if !running.is_running() {
                        return Err(Failure::new("ca_protocol", "the server stopped"));
                    }
                    if let Some(j) = jwks.as_mut() {
                        if mtime(&j.path) != j.mtime {
                            j.reload(server, "file changed");
                        }
                    }
                }
            }
        }
    })
}

/// `--node-authorization kube`: the pod watch, started and (for up to
/// [`NODE_SYNC_WAIT`]) synced before the server answers.
#[cfg(feature = "kube")]
fn node_authorizer(
    a: &ServeArgs,
    config: &ServerConfig,
) -> Result<Option<meshtls::ca_protocol::NodeAuthorizer>, Failure> {
    use meshtls::ca_protocol::{NodeAuthorizer, PodWatch};
    if a.node_authorization.is_none() {
        return Ok(None);
    }
    if config.trusted_node_accounts.is_empty() {
        return Err(
            "--node-authorization kube needs a --trusted-node-account (or trustedNodeAccounts \
             in --config): it decides what those accounts may impersonate"
                .to_owned()
                .into(),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let kube_config = rt.block_on(crate::controller::kube_config(a.kubeconfig.as_ref()))?;
    drop(rt);
    let mut watch = PodWatch::default();
    watch.field_selector = a.pod_field_selector.clone();
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    let nodes = NodeAuthorizer::start(Some(kube_config), watch)
        .map_err(|e| Failure::new("ca_protocol", e.to_string()))?;
    if !nodes.wait_synced(NODE_SYNC_WAIT) {
        log::warn!(
            "ca server: node authorizer: pods not listed after {}s; impersonation is refused \
             until they are",
            NODE_SYNC_WAIT.as_secs()
        );
    }
    Ok(Some(nodes))
}

/// How long `ca serve` waits for the first list of pods before serving anyway.
#[cfg(feature = "kube")]
const NODE_SYNC_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn serve(a: ServeArgs) -> Result<Outcome, Failure> {
    let listen: std::net::SocketAddr = a
        .listen
        .parse()
        .map_err(|_| format!("invalid --listen {:?}: expected ip:port", a.listen))?;
    let mut config = ServerConfig::default();
    let mut jwks_source = None;
    config.jwt = match (&a.jwks, &a.issuer) {
        (Some(path), Some(issuer)) => {
            let audiences = if a.audiences.is_empty() {
                vec![meshtls::ca_protocol::DEFAULT_AUDIENCE.to_owned()]
            } else {
                a.audiences.clone()
            };
            let source = JwksSource {
                path: path.clone(),
                issuer: issuer.clone(),
                audiences,
                mtime: mtime(path),
            };
            let verifier = load_jwt(path, issuer, &source.audiences)?;
            jwks_source = Some(source);
            Some(verifier)
        }
        (None, None) => None,
        _ => return Err("--jwks and --issuer go together".to_owned().into()),
    };
    let trust_domain = meshtls::TrustDomain::new(&a.trust_domain)
        .map_err(|e| format!("invalid --trust-domain: {e}"))?;
    // The core's defaults, then the file, then the flags.
    if let Some(path) = &a.config {
        let text = crate::read_input(path).map_err(|e| e.message)?;
        let applied = ServerSettings::parse(&text)
            .and_then(|settings| settings.apply(&mut config, &trust_domain));
        if let Err(e) = applied {
            return crate::ca::refusal(e);
        }
    }
    if a.strict_csr {
        config.strict_csr = true;
    }
    if a.no_default_dns {
        config
            .dns_names
            .retain(|n| !DEFAULT_SERVING_DNS_NAMES.contains(&n.as_str()));
    }
    config.add_dns_names(a.dns_names.iter().cloned());
    if config.dns_names.is_empty() {
        return Err("--no-default-dns needs at least one --dns name"
            .to_owned()
            .into());
    }
    if let Some(c) = &a.cluster_id {
        config.cluster_id = c.clone();
    }
    for (flag, text, slot) in [
        ("--default-ttl", &a.default_ttl, &mut config.default_ttl),
        ("--max-ttl", &a.max_ttl, &mut config.max_ttl),
        ("--min-ttl", &a.min_ttl, &mut config.min_ttl),
    ] {
        if let Some(text) = text {
            *slot = parse_duration(text).map_err(|e| format!("{flag}: {e}"))?;
        }
    }
    for text in &a.trusted_node_accounts {
        let (account, list) = match text.split_once('=') {
            Some((account, list)) => (
                account,
                Some(list.split(',').map(|s| s.trim().to_owned()).collect()),
            ),
            None => (text.as_str(), None),
        };
        match NodeAccountSettings::new(account.to_owned(), list).to_node_account(&trust_domain) {
            Ok(n) => config.trusted_node_accounts.push(n),
            Err(e) => return crate::ca::refusal(e),
        }
    }
    #[cfg(feature = "kube")]
    let nodes = node_authorizer(&a, &config)?;
    let ca = match MeshCa::load(&a.ca, &trust_domain) {
        Ok(ca) => ca,
        Err(e) => return crate::ca::refusal(e),
    };
    config.trust_domain = Some(trust_domain);
    #[cfg(feature = "kube")]
    let node_authorization = nodes.is_some().then_some("kube");
    #[cfg(not(feature = "kube"))]
    let node_authorization: Option<&str> = None;
    #[cfg(feature = "kube")]
    {
        config.node_authorizer = nodes;
    }
    let accounts: Vec<String> = config
        .trusted_node_accounts
        .iter()
        .map(|n| {
            if n.any_identity && node_authorization.is_some() {
                format!(
                    "{} may impersonate identities with a pod on its node (api server)",
                    n.account
                )
            } else if n.any_identity {
                format!(
                    "{} may impersonate any identity of the trust domain",
                    n.account
                )
            } else {
                let ids: Vec<&str> = n.may_impersonate.iter().map(|i| i.as_str()).collect();
                format!("{} may impersonate {}", n.account, ids.join(", "))
            }
        })
        .collect();
    let settings = json!({
        "node_authorization": node_authorization,
        "cluster_id": config.cluster_id,
        "dns_names": config.dns_names,
        "min_ttl_seconds": config.min_ttl.as_secs(),
        "default_ttl_seconds": config.default_ttl.as_secs(),
        "max_ttl_seconds": config.max_ttl.as_secs(),
    });
    let server = match IstioCaServer::new(Arc::new(ca), config) {
        Ok(s) => s,
        Err(e) => return crate::ca::refusal(e),
    };
    let td = server.trust_domain().to_string();
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    for line in &accounts {
        log::info!("ca server: trusted node account {line}");
    }
    let mut running = match server.clone().start(listen) {
        Ok(r) => r,
        Err(e) => return crate::ca::refusal(e),
    };
    let addr = running.local_addr();
    // The first line tells scripts where the server listens (the port when 0 was asked for).
    println!(
        "{}",
        json!({"listening": addr.to_string(), "trust_domain": td, "settings": settings})
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let signal = wait_for_signals(&server, &running, jwks_source)?;
    log::info!(
        "ca server: {signal}: shutting down (no new connections, finishing requests in flight)"
    );
    running.stop();
    log::info!("ca server: stopped");
    Ok(Outcome::Yes(
        json!({"stopped": addr.to_string(), "signal": signal}),
        format!("stopped on {signal}"),
    ))
}
