//! A gateway outside the mesh calls an app behind a STRICT Istio-style sidecar, on loopback.
//!
//! ```text
//! cargo run --example gateway_to_sidecar            # the whole demo, no set-up
//! # the gateway gets its certificate over Istio's CA protocol (a CA server, as istiod):
//! cargo run --example gateway_to_sidecar --features grpc -- --ca-protocol
//! # Istio ambient: the gateway reaches the app through HBONE (an acceptor standing in for ztunnel):
//! cargo run --example gateway_to_sidecar -- --ambient
//! ```
//!
//! The pieces also run as separate processes, so other tools (openssl, curl, Python) can be
//! pointed at them:
//!
//! ```text
//! cargo run --example gateway_to_sidecar -- ca --dir /tmp/mesh-ca
//! cargo run --example gateway_to_sidecar -- app --listen 127.0.0.1:8080
//! cargo run --example gateway_to_sidecar -- sidecar --ca-dir /tmp/mesh-ca \
//!     --listen 127.0.0.1:15006 --upstream 127.0.0.1:8080 --peer-authentication pa.yaml \
//!     --authorization-policy examples/authz/deny-gateway.yaml --label app=api
//! cargo run --example gateway_to_sidecar -- gateway --ca-dir /tmp/mesh-ca \
//!     --connect 127.0.0.1:15006 --expect-peer spiffe://cluster.local/ns/demo/sa/api --tls 1.3
//! ```

#[path = "support/ambient.rs"]
mod ambient;
#[path = "support/ca.rs"]
mod ca;
#[cfg(feature = "grpc")]
#[path = "support/ca_protocol.rs"]
mod ca_protocol;
#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use meshtls::path::{Caller, Destination, Mesh};
use meshtls::policy::authorization::AuthorizationPolicySet;
use meshtls::policy::{MtlsMode, PolicySet};
use meshtls::tls::{
    ClientConfigBuilder, MtlsClientConfig, ServerConfigBuilder, TlsVersion, params,
};
use meshtls::{MeshConfig, SpiffeId};
use tokio::net::TcpListener;

/// The workload behind the sidecar (namespace `demo`, service account `api`, port 8080).
const SIDECAR_ID: &str = "spiffe://cluster.local/ns/demo/sa/api";
/// The gateway's own mesh identity (the mesh extension's service account).
const GATEWAY_ID: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

/// The namespace-wide policy the demo enforces.
const PEER_AUTHENTICATION: &str = "\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: demo
spec:
  mtls:
    mode: STRICT
";

/// The AuthorizationPolicy of the demo's refused call: only shop/web may call the api.
const AUTHORIZATION_POLICY: &str = include_str!("authz/deny-gateway.yaml");

#[derive(Parser)]
#[command(about = "meshtls: a gateway talks mesh mTLS to a STRICT sidecar")]
struct Cli {
    /// In the whole demo, the gateway gets its certificate from a CA server over Istio's CA
    /// protocol instead of from the CA files (build with `--features grpc`).
    #[arg(long)]
    ca_protocol: bool,
    /// The whole demo in Istio ambient mode: the gateway reaches the app through HBONE (TLS 1.3,
    /// HTTP/2 CONNECT) to an acceptor standing in for the pod's ztunnel.
    #[arg(long, conflicts_with = "ca_protocol")]
    ambient: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a mesh CA directory (Istio plug-in layout).
    Ca {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "cluster.local")]
        trust_domain: String,
    },
    /// Run the plaintext app (`GET /api/headers`).
    App {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Run a sidecar in front of an app.
    Sidecar {
        #[arg(long, default_value = "127.0.0.1:15006")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8080")]
        upstream: SocketAddr,
        /// Mesh CA directory; the sidecar issues its own SVID from it.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The trust domain the CA serves.
        #[arg(long, default_value = "cluster.local")]
        trust_domain: String,
        /// The sidecar's SPIFFE ID.
        #[arg(long, default_value = SIDECAR_ID)]
        id: String,
        /// STRICT, PERMISSIVE or DISABLE (instead of --peer-authentication).
        #[arg(long)]
        mode: Option<String>,
        /// PeerAuthentication manifests (multi-document YAML) to resolve the port's mode from.
        #[arg(long)]
        peer_authentication: Option<PathBuf>,
        /// The workload's namespace, for --peer-authentication.
        #[arg(long, default_value = "demo")]
        namespace: String,
        /// The workload's labels (key=value), for --peer-authentication.
        #[arg(long)]
        label: Vec<String>,
        /// The application port the mode is resolved for.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Only these client SPIFFE IDs are authorized (default: any in the mesh).
        #[arg(long)]
        expect_peer: Vec<String>,
        /// AuthorizationPolicy manifests to enforce for the workload (--namespace, --label,
        /// --port): a denied HTTP request gets 403 "RBAC: access denied", a denied TCP
        /// connection is closed, as Envoy does.
        #[arg(long)]
        authorization_policy: Option<PathBuf>,
    },
    /// Call an app through a sidecar, as the gateway.
    Gateway {
        #[arg(long, default_value = "127.0.0.1:15006")]
        connect: SocketAddr,
        /// Mesh CA directory; the gateway issues its own SVID from it.
        #[arg(long, required_unless_present = "secret_dir")]
        ca_dir: Option<PathBuf>,
        /// Instead of --ca-dir: the files of the kubernetes.io/tls Secret that
        /// `meshtls controller run` keeps (tls.crt, tls.key, ca.crt), as a gateway mounts it.
        #[arg(long, conflicts_with = "ca_dir")]
        secret_dir: Option<PathBuf>,
        /// The trust domain the CA serves.
        #[arg(long, default_value = "cluster.local")]
        trust_domain: String,
        /// The gateway's SPIFFE ID.
        #[arg(long, default_value = GATEWAY_ID)]
        id: String,
        /// The sidecar's expected SPIFFE ID.
        #[arg(long, default_value = SIDECAR_ID)]
        expect_peer: Vec<String>,
        /// 1.2 or 1.3 (default: either).
        #[arg(long)]
        tls: Option<String>,
        /// ALPN protocols to offer.
        #[arg(long, default_values = ["istio-http/1.1", "http/1.1"])]
        alpn: Vec<String>,
        #[arg(long)]
        sni: Option<String>,
        #[arg(long, default_value = "/api/headers")]
        path: String,
    },
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The port's mode: from `--mode`, or resolved from PeerAuthentication manifests as istiod
/// does for a pod in `namespace` with `labels` on `port`.
fn sidecar_mode(
    mode: Option<&str>,
    policy_file: Option<&std::path::Path>,
    namespace: &str,
    labels: &[String],
    port: u16,
) -> Res<(MtlsMode, String)> {
    match (mode, policy_file) {
        (Some(_), Some(_)) => Err("give --mode or --peer-authentication, not both".into()),
        (Some(text), None) => Ok((text.parse::<MtlsMode>()?, "--mode".to_owned())),
        (None, file) => {
            let text = match file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                None => String::new(),
            };
            let set = PolicySet::from_yaml(&text, meshtls::policy::DEFAULT_ROOT_NAMESPACE)?;
            let pairs = label_pairs(labels)?;
            let decision = set.resolve(namespace, &pairs, Some(port));
            let why = match decision.policy() {
                Some(name) => format!("PeerAuthentication {name}, {} level", decision.level()),
                None => "no PeerAuthentication applies: Istio's default".to_owned(),
            };
            Ok((decision.mode(), why))
        }
    }
}

fn label_pairs(labels: &[String]) -> Res<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for label in labels {
        let (k, v) = label
            .split_once('=')
            .ok_or_else(|| format!("label {label:?} is not key=value"))?;
        pairs.push((k.to_owned(), v.to_owned()));
    }
    Ok(pairs)
}

fn parse_tls(text: Option<&str>) -> Res<(TlsVersion, TlsVersion)> {
    Ok(match text {
        None => (TlsVersion::Tls12, TlsVersion::Tls13),
        Some("1.2") => (TlsVersion::Tls12, TlsVersion::Tls12),
        Some("1.3") => (TlsVersion::Tls13, TlsVersion::Tls13),
        Some(other) => {
            return Err(format!("unknown TLS version {other:?}: expected 1.2 or 1.3").into());
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            None if cli.ambient => ambient_demo().await,
            None => demo(cli.ca_protocol).await,
            Some(Command::Ca { dir, trust_domain }) => {
                let ca = ca::Ca::create(&trust_domain)?;
                ca.save(&dir)?;
                println!("mesh CA for {trust_domain} written to {}", dir.display());
                Ok(true)
            }
            Some(Command::App { listen }) => {
                let listener = TcpListener::bind(listen).await?;
                println!("app (plaintext) on {}", listener.local_addr()?);
                support::run_app(listener).await;
                Ok(true)
            }
            Some(Command::Sidecar {
                listen,
                upstream,
                ca_dir,
                trust_domain,
                id,
                mode,
                peer_authentication,
                namespace,
                label,
                port,
                expect_peer,
                authorization_policy,
            }) => {
                let (mode, why) = sidecar_mode(
                    mode.as_deref(),
                    peer_authentication.as_deref(),
                    &namespace,
                    &label,
                    port,
                )?;
                let ca = ca::Ca::load(&ca_dir, &trust_domain)?;
                let material = ca.material(&SpiffeId::new(&id)?, ca.bundles()?)?;
                let mut builder = ServerConfigBuilder::from_mesh(material, &MeshConfig::default())?
                    .alpn_protocols([params::ALPN_HTTP11]);
                if !expect_peer.is_empty() {
                    let ids = expect_peer
                        .iter()
                        .map(|p| SpiffeId::new(p))
                        .collect::<Result<Vec<_>, _>>()?;
                    builder = builder.authorizer(meshtls::authz::one_of(ids));
                }
                let listener = TcpListener::bind(listen).await?;
                println!(
                    "sidecar {id} on {} ({mode}: {why}) -> app {upstream}",
                    listener.local_addr()?
                );
                let sidecar = support::Sidecar::new(builder.build()?, mode, upstream, None);
                if let Some(path) = authorization_policy {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let set = AuthorizationPolicySet::from_yaml(&text, &MeshConfig::default())?;
                    let pairs = label_pairs(&label)?;
                    println!(
                        "sidecar enforces {} AuthorizationPolicies for {namespace} {label:?} port {port}",
                        set.len()
                    );
                    sidecar.set_authorization(Some(support::authz::SidecarAuthz::new(
                        set, &namespace, pairs, port,
                    )));
                }
                sidecar.run(listener).await;
                Ok(true)
            }
            Some(Command::Gateway {
                connect,
                ca_dir,
                secret_dir,
                trust_domain,
                id,
                expect_peer,
                tls,
                alpn,
                sni,
                path,
            }) => {
                let material = match (secret_dir, ca_dir) {
                    (Some(dir), _) => {
                        let read = |name: &str| {
                            std::fs::read_to_string(dir.join(name))
                                .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))
                        };
                        let roots = meshtls::TrustBundle::from_pem(
                            meshtls::TrustDomain::new(&trust_domain)?,
                            &read("ca.crt")?,
                        )?;
                        meshtls::tls::TlsMaterial::from_pem(
                            &read("tls.crt")?,
                            &read("tls.key")?,
                            meshtls::BundleSet::from_bundles([roots])?,
                        )?
                    }
                    (None, Some(dir)) => {
                        let ca = ca::Ca::load(&dir, &trust_domain)?;
                        ca.material(&SpiffeId::new(&id)?, ca.bundles()?)?
                    }
                    (None, None) => return Err("give --ca-dir or --secret-dir".into()),
                };
                let (min, max) = parse_tls(tls.as_deref())?;
                let ids = expect_peer
                    .iter()
                    .map(|p| SpiffeId::new(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let client =
                    ClientConfigBuilder::new(material)
                        .expect_server_ids(ids)
                        .versions(min, max)?
                        .alpn_protocols(alpn.iter().map(String::as_bytes))
                        .build()?;
                let ex = support::gateway_get(connect, &client, sni.as_deref(), &path).await?;
                print_exchange(&client, &ex);
                Ok(true)
            }
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_exchange(client: &MtlsClientConfig, ex: &support::Exchange) {
    let p = &ex.peer;
    println!(
        "    TLS version   {}",
        p.protocol_version().map(|v| v.as_str()).unwrap_or("?")
    );
    println!("    cipher suite  {}", p.cipher_suite().unwrap_or("?"));
    println!(
        "    ALPN          {}",
        p.alpn()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_else(|| "(none)".into())
    );
    println!("    gateway ID    {}", client.material().spiffe_id());
    println!("    sidecar ID    {}", p.spiffe_id());
    println!("    response      {}", ex.status);
    for line in ex.body.lines() {
        println!("      {line}");
    }
}

/// Tracks whether every step did what the demo says it does.
struct Checks(bool);

impl Checks {
    fn expect(&mut self, ok: bool, what: &str) {
        if !ok {
            println!("    UNEXPECTED: {what}");
            self.0 = false;
        }
    }
}

async fn next_event(events: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        Ok(Some(e)) => e,
        _ => "(no event)".into(),
    }
}

async fn ambient_demo() -> Res<bool> {
    let mut checks = Checks(true);
    println!(
        "meshtls demo, ambient mode: a gateway outside the mesh reaches an app in an ambient pod\n"
    );
    let ca = ca::Ca::create(MeshConfig::default().trust_domain().as_str())?;
    println!("1. mesh CA for trust domain {}", ca.trust_domain);
    let bundles = ca.bundles()?;
    ambient::demo(
        |id| ca.material(id, bundles.clone()),
        &SpiffeId::new(SIDECAR_ID)?,
        &SpiffeId::new(GATEWAY_ID)?,
        |ok, what| checks.expect(ok, what),
    )
    .await?;
    if checks.0 {
        println!("\nevery step behaved as expected");
    }
    Ok(checks.0)
}

async fn demo(ca_protocol: bool) -> Res<bool> {
    let mut checks = Checks(true);
    println!("meshtls demo: a gateway outside the mesh calls an app behind a STRICT sidecar\n");

    let mesh = MeshConfig::default();
    let ca = ca::Ca::create(mesh.trust_domain().as_str())?;
    println!("1. mesh CA for trust domain {}", ca.trust_domain);

    let app = TcpListener::bind("127.0.0.1:0").await?;
    let app_addr = app.local_addr()?;
    tokio::spawn(support::run_app(app));
    println!(
        "2. app (plaintext HTTP, no TLS) on {app_addr}: GET /api/headers returns the request headers"
    );

    let policies =
        PolicySet::from_yaml(PEER_AUTHENTICATION, meshtls::policy::DEFAULT_ROOT_NAMESPACE)?;
    let labels = [("app", "api")];
    let decision = policies.resolve("demo", &labels, Some(8080));
    let mode = decision.mode();
    println!("3. PeerAuthentication:\n{}", indent(PEER_AUTHENTICATION, 6));
    println!(
        "   resolves for a pod app=api in namespace demo, port 8080, to {mode} (policy {}, {} level)",
        decision
            .policy()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "none".into()),
        decision.level()
    );
    checks.expect(
        mode == MtlsMode::Strict,
        "the namespace policy resolves to STRICT",
    );

    let sidecar_id = SpiffeId::new(SIDECAR_ID)?;
    let sidecar_material = ca.material(&sidecar_id, ca.bundles()?)?;
    let server = ServerConfigBuilder::from_mesh(sidecar_material, &mesh)?
        .alpn_protocols([params::ALPN_HTTP11])
        .build()?;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let sidecar_addr = listener.local_addr()?;
    let sidecar = support::Sidecar::new(server, mode, app_addr, Some(tx));
    tokio::spawn(std::sync::Arc::clone(&sidecar).run(listener));
    println!("   sidecar {sidecar_id} on {sidecar_addr} enforces {mode}, forwards to the app\n");

    #[cfg(feature = "grpc")]
    let (gateway_material, _ca_server) = if ca_protocol {
        println!("   the gateway's certificate comes over Istio's CA protocol:");
        let (m, s) =
            ca_protocol::gateway_material(&ca, &SpiffeId::new(GATEWAY_ID)?, ca.bundles()?).await?;
        println!();
        (m, Some(s))
    } else {
        (
            ca.material(&SpiffeId::new(GATEWAY_ID)?, ca.bundles()?)?,
            None,
        )
    };
    #[cfg(not(feature = "grpc"))]
    let gateway_material = if ca_protocol {
        return Err(
            "--ca-protocol needs the CA protocol: cargo run --example gateway_to_sidecar --features grpc -- --ca-protocol".into(),
        );
    } else {
        ca.material(&SpiffeId::new(GATEWAY_ID)?, ca.bundles()?)?
    };
    let gateway = |min, max, alpn: &[&[u8]]| {
        ClientConfigBuilder::new(gateway_material.clone())
            .expect_server_ids([sidecar_id.clone()])
            .versions(min, max)
            .and_then(|b| b.alpn_protocols(alpn.iter().copied()).build())
    };
    let istio_alpn: &[&[u8]] = &[params::ALPN_ISTIO_HTTP11, params::ALPN_HTTP11];
    for (n, version) in [(4, TlsVersion::Tls12), (5, TlsVersion::Tls13)] {
        println!(
            "{n}. gateway {GATEWAY_ID} -> sidecar over {version}, ALPN offered istio-http/1.1, http/1.1"
        );
        let client = gateway(version, version, istio_alpn)?;
        match support::gateway_get(sidecar_addr, &client, None, "/api/headers").await {
            Ok(ex) => {
                print_exchange(&client, &ex);
                checks.expect(ex.status.contains("200"), "status 200");
                checks.expect(
                    ex.peer.protocol_version() == Some(version),
                    "negotiated version",
                );
                checks.expect(
                    ex.body.contains(&format!("URI={GATEWAY_ID}")),
                    "XFCC names the gateway",
                );
            }
            Err(e) => checks.expect(false, &format!("mTLS call failed: {e}")),
        }
        println!("    sidecar saw   {}\n", next_event(&mut events).await);
    }

    println!("6. plaintext GET /api/headers to the same port");
    let plain = support::plain_get(sidecar_addr, "/api/headers").await;
    println!("    client got    {}", describe(&plain));
    println!("    sidecar saw   {}\n", next_event(&mut events).await);
    checks.expect(plain.is_err(), "plaintext refused under STRICT");

    println!("7. a client with a certificate from another trust domain (foreign.example)");
    let foreign = ca::Ca::create("foreign.example")?;
    let both = meshtls::BundleSet::from_bundles([foreign.bundle()?, ca.bundle()?])?;
    let intruder = ClientConfigBuilder::new(foreign.material(
        &SpiffeId::new("spiffe://foreign.example/ns/demo/sa/intruder")?,
        both,
    )?)
    .expect_server_ids([sidecar_id.clone()])
    .alpn_protocols(istio_alpn.iter().copied())
    .build()?;
    let refused = support::gateway_get(sidecar_addr, &intruder, None, "/api/headers").await;
    println!(
        "    client got    {}",
        refused
            .as_ref()
            .map(|e| e.status.clone())
            .unwrap_or_else(|e| format!("error: {e}"))
    );
    println!("    sidecar saw   {}\n", next_event(&mut events).await);
    checks.expect(refused.is_err(), "foreign trust domain refused");

    println!(
        "8. an AuthorizationPolicy on the api pods that allows only shop/web:\n{}",
        indent(AUTHORIZATION_POLICY.trim_end(), 6)
    );
    let authz = AuthorizationPolicySet::from_yaml(AUTHORIZATION_POLICY, &mesh)?;
    let offline = Mesh::new(mesh.clone(), policies.clone(), authz.clone(), Vec::new()).check(
        &Caller::External(SpiffeId::new(GATEWAY_ID)?),
        &Destination::new("demo", labels, 8080).with_http("GET", "/api/headers"),
    );
    println!(
        "    offline path check  {}: {}",
        if offline.allowed() {
            "allowed"
        } else {
            "refused"
        },
        offline.reason()
    );
    checks.expect(!offline.allowed(), "the path check predicts the refusal");
    let owned_labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    sidecar.set_authorization(Some(support::authz::SidecarAuthz::new(
        authz,
        "demo",
        owned_labels,
        8080,
    )));
    let client = gateway(TlsVersion::Tls12, TlsVersion::Tls13, istio_alpn)?;
    match support::gateway_get(sidecar_addr, &client, None, "/api/headers").await {
        Ok(ex) => {
            println!("    gateway got   {} {}", ex.status, ex.body.trim());
            checks.expect(ex.status.contains("403"), "the gateway gets 403");
            checks.expect(ex.body.contains("RBAC: access denied"), "Envoy's RBAC body");
        }
        Err(e) => checks.expect(false, &format!("the call failed instead of a 403: {e}")),
    }
    println!("    sidecar saw   {}", next_event(&mut events).await);
    println!("    sidecar saw   {}", next_event(&mut events).await);
    sidecar.set_authorization(None);
    println!("    (the policy is removed again for the next step)\n");

    let after_delete = PolicySet::from_yaml("", meshtls::policy::DEFAULT_ROOT_NAMESPACE)?.resolve(
        "demo",
        &labels,
        Some(8080),
    );
    println!(
        "9. the PeerAuthentication is deleted: the port resolves to {} ({} level), on the same port",
        after_delete.mode(),
        after_delete.level()
    );
    checks.expect(
        after_delete.mode() == MtlsMode::Permissive,
        "no policy resolves to PERMISSIVE",
    );
    sidecar.set_mode(after_delete.mode());
    let plain = support::plain_get(sidecar_addr, "/api/headers").await;
    println!("    plaintext     {}", describe(&plain));
    println!("    sidecar saw   {}", next_event(&mut events).await);
    checks.expect(
        plain.as_ref().map(|r| r.0.contains("200")).unwrap_or(false),
        "plaintext accepted under PERMISSIVE",
    );
    let client = gateway(TlsVersion::Tls12, TlsVersion::Tls13, istio_alpn)?;
    let mtls = support::gateway_get(sidecar_addr, &client, None, "/api/headers").await;
    println!(
        "    mTLS (Istio ALPN)  {}",
        mtls.as_ref()
            .map(|e| format!("{} from {}", e.status, e.peer.spiffe_id()))
            .unwrap_or_else(|e| format!("error: {e}"))
    );
    println!("    sidecar saw   {}", next_event(&mut events).await);
    checks.expect(
        mtls.map(|e| e.status.contains("200")).unwrap_or(false),
        "mTLS accepted under PERMISSIVE",
    );
    let no_istio_alpn = gateway(TlsVersion::Tls12, TlsVersion::Tls13, &[params::ALPN_HTTP11])?;
    let passthrough =
        support::gateway_get(sidecar_addr, &no_istio_alpn, None, "/api/headers").await;
    println!(
        "    mTLS without an Istio ALPN  {}",
        passthrough
            .as_ref()
            .map(|e| e.status.clone())
            .unwrap_or_else(|e| format!("error: {e}"))
    );
    println!("    sidecar saw   {}", next_event(&mut events).await);
    println!(
        "    (a PERMISSIVE port sends TLS without an Istio ALPN to its passthrough chain: the"
    );
    println!(
        "     plaintext app receives raw TLS. This is the 503 a gateway without Istio ALPN gets.)\n"
    );
    checks.expect(
        passthrough.is_err(),
        "TLS without Istio ALPN passed through under PERMISSIVE",
    );

    if checks.0 {
        println!("every step behaved as expected");
    }
    Ok(checks.0)
}

fn describe(r: &Result<(String, String), String>) -> String {
    match r {
        Ok((status, _)) => status.clone(),
        Err(e) => format!("error: {e}"),
    }
}

fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}
