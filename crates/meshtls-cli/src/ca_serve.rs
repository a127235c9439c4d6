//! `meshtls ca serve`: Istio's CA protocol served from a CA directory, one log line per
//! request on standard error, until interrupted.

use std::path::PathBuf;
use std::sync::Arc;

use meshtls::MeshCa;
use meshtls::ca_protocol::{IstioCaServer, JwtVerifier, ServerConfig};
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
    /// DNS names of the serving certificate (default istiod's); repeat for more.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// Default lifetime when a request asks for none.
    #[arg(long, default_value = "24h")]
    default_ttl: String,
    /// Longest lifetime granted (longer requests are refused).
    #[arg(long, default_value = "90d")]
    max_ttl: String,
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

pub(crate) fn serve(a: ServeArgs) -> Result<Outcome, Failure> {
    let listen: std::net::SocketAddr = a
        .listen
        .parse()
        .map_err(|_| format!("invalid --listen {:?}: expected ip:port", a.listen))?;
    let mut config = ServerConfig::default();
    config.jwt = match (&a.jwks, &a.issuer) {
        (Some(path), Some(issuer)) => {
            let jwks = crate::read_input(path)?;
            let audiences = if a.audiences.is_empty() {
                vec!["istio-ca".to_owned()]
            } else {
                a.audiences.clone()
            };
            Some(JwtVerifier::new(&jwks, issuer, &audiences).map_err(|e| e.to_string())?)
        }
        (None, None) => None,
        _ => return Err("--jwks and --issuer go together".to_owned().into()),
    };
    config.strict_csr = a.strict_csr;
    if !a.dns_names.is_empty() {
        config.dns_names = a.dns_names.clone();
    }
    config.default_ttl = parse_duration(&a.default_ttl)?;
    config.max_ttl = parse_duration(&a.max_ttl)?;
    let trust_domain = meshtls::TrustDomain::new(&a.trust_domain)
        .map_err(|e| format!("invalid --trust-domain: {e}"))?;
    let ca = match MeshCa::load(&a.ca, &trust_domain) {
        Ok(ca) => ca,
        Err(e) => return crate::ca::refusal(e),
    };
    config.trust_domain = Some(trust_domain);
    let server = match IstioCaServer::new(Arc::new(ca), config) {
        Ok(s) => s,
        Err(e) => return crate::ca::refusal(e),
    };
    let td = server.trust_domain().to_string();
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    let running = match server.start(listen) {
        Ok(r) => r,
        Err(e) => return crate::ca::refusal(e),
    };
    let addr = running.local_addr();
    // The first line tells scripts where the server listens (the port when 0 was asked for).
    println!(
        "{}",
        json!({"listening": addr.to_string(), "trust_domain": td})
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
        if !running.is_running() {
            return Err(Failure::new("ca_protocol", "the server stopped"));
        }
    }
}
