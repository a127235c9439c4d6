//! `meshtls hbone connect` and `meshtls hbone serve`: Istio ambient's HBONE tunnel from a
//! shell. `connect` pipes standard input and output through one tunnel (like `openssl
//! s_client`); `serve` is an HBONE acceptor (what ztunnel does on port 15008) forwarding every
//! tunnel to one local address.

use std::net::SocketAddr;
use std::path::PathBuf;

use meshtls::hbone::{self, HboneClient, HboneClientConfig, HboneServerBuilder, Upstream};
use meshtls::tls::TlsMaterial;
use meshtls::{BundleSet, SpiffeId, Svid, TrustBundle, authz};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct HboneArgs {
    #[command(subcommand)]
    command: HboneCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HboneCommand {
    /// Open one tunnel and pipe standard input to it and its bytes to standard output
    /// (exit 1 when the tunnel is refused: TLS, server identity, 401, 503, 400).
    Connect(ConnectArgs),
    /// Accept HBONE tunnels (TLS 1.3, Istio clients of the own trust domain) and forward each
    /// to --forward (503 when nothing listens there). Prints `listening <addr>` and runs until
    /// killed.
    Serve(ServeArgs),
}

/// The own SVID and the roots it verifies peers with.
#[derive(clap::Args, Debug)]
struct Identity {
    /// Own certificate chain (PEM, leaf first): an Istio-form SVID spiffe://<td>/ns/<ns>/sa/<sa>.
    #[arg(long)]
    cert: PathBuf,
    /// Own private key (PEM, PKCS#8).
    #[arg(long)]
    key: PathBuf,
    /// The mesh root(s) (PEM), trusted for the own SVID's trust domain (ztunnel applies no
    /// trust-domain aliases).
    #[arg(long)]
    bundle: PathBuf,
}

impl Identity {
    fn material(&self) -> Result<TlsMaterial, Failure> {
        let chain = crate::read_input(&self.cert)?;
        let key = crate::read_input(&self.key)?;
        let svid = Svid::from_pem(&chain, &key)?;
        let roots = crate::read_input(&self.bundle)?;
        let bundle = TrustBundle::from_pem(svid.spiffe_id().trust_domain(), &roots)
            .map_err(meshtls::Error::from)?;
        let bundles = BundleSet::from_bundles([bundle]).map_err(meshtls::Error::from)?;
        Ok(TlsMaterial::new(&svid, bundles)?)
    }
}

#[derive(clap::Args, Debug)]
struct ConnectArgs {
    /// The HBONE endpoint: the pod's ip:15008.
    #[arg(long)]
    via: String,
    /// The CONNECT target: the pod's ip:port (the IP must be the one of --via).
    #[arg(long)]
    target: String,
    /// The SPIFFE ID the server must present (the destination's service account).
    #[arg(long)]
    server_id: String,
    /// A header sent with the CONNECT, `name: value` (e.g. `traceparent: 00-...`); repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    #[command(flatten)]
    identity: Identity,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Where to listen (ztunnel's port is 15008).
    #[arg(long, default_value = "127.0.0.1:15008")]
    listen: String,
    /// Forward every tunnel to this address.
    #[arg(long)]
    forward: String,
    /// Serve only these target ports (others get 503); repeatable. Default: any port.
    #[arg(long = "port")]
    ports: Vec<u16>,
    /// Answer 401 to clients other than these SPIFFE IDs (an authorization policy);
    /// repeatable. Default: every client that passed the handshake.
    #[arg(long = "allow")]
    allow: Vec<String>,
    #[command(flatten)]
    identity: Identity,
}

pub(crate) fn run(args: HboneArgs) -> Result<Outcome, Failure> {
    match args.command {
        HboneCommand::Connect(a) => connect(a),
        HboneCommand::Serve(a) => serve(a),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new("io", format!("cannot start the async runtime: {e}")))
}

fn connect(a: ConnectArgs) -> Result<Outcome, Failure> {
    let via = hbone::parse_address("address", &a.via)?;
    let target = hbone::parse_address("target", &a.target)?;
    let server_id = SpiffeId::new(&a.server_id).map_err(meshtls::Error::from)?;
    let mut config = HboneClientConfig::default();
    for h in &a.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected `name: value`"))?;
        config = config.with_header(name.trim(), value.trim())?;
    }
    let material = a.identity.material()?;
    let rt = runtime()?;
    let result = rt.block_on(pipe(config, via, target, material, server_id));
    // Standard input may still be blocked in a read: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(()) => Ok(Outcome::Piped(None, String::new())),
        Err(Piped::Refused(e)) => Ok(Outcome::Piped(
            Some(json!({"error": e.to_string(), "kind": crate::error_kind(&e)})),
            format!("meshtls: {e}"),
        )),
        Err(Piped::Io(message)) => Err(Failure::new("io", message)),
    }
}

enum Piped {
    Refused(meshtls::Error),
    Io(String),
}

async fn pipe(
    config: HboneClientConfig,
    via: SocketAddr,
    target: SocketAddr,
    material: TlsMaterial,
    server_id: SpiffeId,
) -> Result<(), Piped> {
    let stream = HboneClient::new(config)
        .connect(via, target, &material, &server_id)
        .await
        .map_err(Piped::Refused)?;
    let (mut from_tunnel, mut to_tunnel) = tokio::io::split(stream);
    // Standard input to the tunnel; at its end, our side of the tunnel ends (half-close).
    let upload = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let copied = tokio::io::copy(&mut stdin, &mut to_tunnel).await;
        let _ = to_tunnel.shutdown().await;
        copied.map(drop)
    });
    // The tunnel to standard output, until the peer ends its side.
    let mut stdout = tokio::io::stdout();
    let downloaded = tokio::io::copy(&mut from_tunnel, &mut stdout).await;
    let _ = stdout.flush().await;
    if upload.is_finished() {
        if let Ok(Err(e)) = upload.await {
            return Err(Piped::Io(format!("standard input to the tunnel: {e}")));
        }
    }
    downloaded
        .map(drop)
        .map_err(|e| Piped::Io(format!("tunnel to standard output: {e}")))
}

fn serve(a: ServeArgs) -> Result<Outcome, Failure> {
    let listen: SocketAddr = hbone::parse_address("address", &a.listen)?;
    let forward: SocketAddr = hbone::parse_address("address", &a.forward)?;
    let mut builder = HboneServerBuilder::new(a.identity.material()?);
    if !a.ports.is_empty() {
        builder = builder.ports(a.ports.iter().copied());
    }
    if !a.allow.is_empty() {
        let ids = a
            .allow
            .iter()
            .map(|s| SpiffeId::new(s).map_err(meshtls::Error::from))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.policy(authz::one_of(ids));
    }
    let server = builder.build()?;
    let rt = runtime()?;
    rt.block_on(async {
        let listener = server.bind(listen).await?;
        // The address goes out at once (a script reads it to learn the port of :0).
        crate::emit(&format!("listening {}", listener.local_addr()));
        listener.forward(Upstream::Address(forward)).await;
        Ok::<_, Failure>(())
    })?;
    Ok(Outcome::Piped(None, String::new()))
}
