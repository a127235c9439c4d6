//! `meshtls workload-api serve`: the SPIFFE Workload API on a unix socket (or tcp on
//! loopback), SVIDs minted by the CA in `--ca-dir`, identities from the `--registration` file
//! (reloaded when it changes), until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use meshtls::jwt::{JWT_KEY_FILE, JwtSigner};
use meshtls::workload_api::{ListenAddress, ServerOptions, WorkloadApiServer};
use meshtls::{MeshCa, TrustDomain};
use serde_json::json;

use crate::ca::parse_duration;
use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct WorkloadApiArgs {
    #[command(subcommand)]
    command: WorkloadApiCommand,
}

#[derive(clap::Subcommand, Debug)]
enum WorkloadApiCommand {
    /// Serve the Workload API (all five RPCs) from a CA directory and a registration file.
    Serve(ServeArgs),
    /// Fetch from a Workload API (SPIRE's agent or any other): `x509` (SVIDs and bundles),
    /// `jwt` (JWT-SVIDs and JWT bundles), `bundles` (X.509 and JWT bundles).
    Fetch(crate::workload_api_fetch::FetchArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Where to listen: unix:///absolute/path or tcp://127.0.0.1:PORT (loopback only).
    #[arg(long)]
    socket: String,
    /// The CA directory (Istio's plug-in layout or tls.crt/tls.key/ca.crt); a jwt-key.pem
    /// there signs the JWT-SVIDs (else a fresh EC P-256 key is held in memory).
    #[arg(long = "ca-dir")]
    ca_dir: PathBuf,
    /// The trust domain of the CA.
    #[arg(long = "trust-domain", default_value = meshtls::identity::CLUSTER_LOCAL)]
    trust_domain: String,
    /// The registration entries (YAML or JSON, `entries:` of spiffe_id, selectors, hint);
    /// re-read when it changes.
    #[arg(long)]
    registration: PathBuf,
    /// A federated trust domain's SPIFFE bundle: TD=FILE (re-read when it changes); repeat
    /// for more.
    #[arg(long = "federated", value_name = "TD=FILE")]
    federated: Vec<String>,
    /// Lifetime of the X.509-SVIDs (renewed at half of it; default 1h).
    #[arg(long = "x509-ttl")]
    x509_ttl: Option<String>,
    /// Lifetime of the JWT-SVIDs (default 5m).
    #[arg(long = "jwt-ttl")]
    jwt_ttl: Option<String>,
    /// The most open connections (default 1024).
    #[arg(long = "max-connections")]
    max_connections: Option<usize>,
    /// The most concurrent calls on one connection (default 128).
    #[arg(long = "max-streams-per-connection")]
    max_streams: Option<u32>,
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

pub(crate) fn run(args: WorkloadApiArgs) -> Result<Outcome, Failure> {
    match args.command {
        WorkloadApiCommand::Serve(a) => serve(a),
        WorkloadApiCommand::Fetch(a) => crate::workload_api_fetch::run(a),
    }
}

fn serve(a: ServeArgs) -> Result<Outcome, Failure> {
    let address = ListenAddress::parse(&a.socket)
        .map_err(|e| Failure::new("usage", format!("--socket: {e}")))?;
    let trust_domain = TrustDomain::new(&a.trust_domain).map_err(meshtls::Error::from)?;
    let mut options = ServerOptions::default();
    if let Some(t) = &a.x509_ttl {
        options.x509_ttl = parse_duration(t).map_err(|e| format!("--x509-ttl: {e}"))?;
    }
    if let Some(t) = &a.jwt_ttl {
        options.jwt_ttl = parse_duration(t).map_err(|e| format!("--jwt-ttl: {e}"))?;
    }
    if let Some(n) = a.max_connections {
        options.max_connections = n;
    }
    if let Some(n) = a.max_streams {
        options.max_streams_per_connection = n;
    }
    let mut federated = Vec::new();
    for text in &a.federated {
        let (td, file) = text
            .split_once('=')
            .ok_or_else(|| format!("--federated {text:?}: use TD=FILE"))?;
        let td = TrustDomain::new(td).map_err(meshtls::Error::from)?;
        federated.push((td, PathBuf::from(file)));
    }
    let ca = MeshCa::load(&a.ca_dir, &trust_domain)?;
    let jwt_path = a.ca_dir.join(JWT_KEY_FILE);
    let signer = if jwt_path.exists() {
        Some(JwtSigner::load(&a.ca_dir, trust_domain.clone())?)
    } else {
        None
    };
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new("io", format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let mut builder = WorkloadApiServer::builder(ca)
            .registration_file(&a.registration)
            .options(options);
        if let Some(s) = signer {
            builder = builder.jwt_signer(s);
        }
        for (td, file) in federated {
            builder = builder.federated_bundle_file(td, file);
        }
        let server = builder.serve(&address).await?;
        let endpoint = server.endpoint();
        println!(
            "{}",
            json!({
                "listening": endpoint,
                "trust_domain": trust_domain.as_str(),
                "jwt_kid": server.jwt_signer().kid(),
            })
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        log::info!("workload api: serving on {endpoint}");
        let signal = wait_for_stop().await?;
        log::info!("workload api: {signal}: shutting down");
        tokio::time::timeout(Duration::from_secs(5), server.shutdown())
            .await
            .ok();
        Ok(Outcome::Yes(
            json!({"stopped": endpoint, "signal": signal}),
            format!("stopped on {signal}"),
        ))
    })
}

async fn wait_for_stop() -> Result<&'static str, Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Failure::from(format!("cannot watch SIGINT: {e}")))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Failure::from(format!("cannot watch SIGTERM: {e}")))?;
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}
