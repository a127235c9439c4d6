//! `meshtls istio-ca fetch`: get an X.509-SVID over Istio's CA protocol and write it in
//! istio-agent's file names.

use std::path::PathBuf;

use meshtls::ca_protocol::{ClientConfig, IstioCaClient, TokenSource};
use serde_json::json;

use crate::ca::{LeafArgs, rfc3339, spiffe_id};
use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct IstioCaArgs {
    #[command(subcommand)]
    command: IstioCaCommand,
}

#[derive(clap::Subcommand, Debug)]
enum IstioCaCommand {
    /// Send a CSR (key generated here) and write cert-chain.pem, key.pem (0600) and
    /// root-cert.pem into --out.
    Fetch(FetchArgs),
}

#[derive(clap::Args, Debug)]
struct FetchArgs {
    /// The CA server, host:port.
    #[arg(long, default_value = meshtls::ca_protocol::DEFAULT_ADDRESS)]
    address: String,
    /// The mesh root (root-cert.pem of the istio-ca-root-cert ConfigMap).
    #[arg(long)]
    root: PathBuf,
    /// Authenticate with the service-account token in this file.
    #[arg(
        long,
        conflicts_with = "cert_dir",
        required_unless_present = "cert_dir"
    )]
    token_file: Option<PathBuf>,
    /// Renew: authenticate with the still-valid cert-chain.pem and key.pem in this directory.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// The identity to ask for (required with --token-file; with --cert-dir, the current one).
    #[arg(long)]
    identity: Option<String>,
    /// The name checked on the server's certificate (Istio's ISTIOD_SAN).
    #[arg(long)]
    server_name: Option<String>,
    /// The clusterid metadata.
    #[arg(long)]
    cluster_id: Option<String>,
    #[command(flatten)]
    leaf: LeafArgs,
    /// Where to write the files.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(args: IstioCaArgs) -> Result<Outcome, Failure> {
    let IstioCaCommand::Fetch(a) = args.command;
    let meshtls::ca::IssueParams { ttl, key, .. } = a.leaf.params(Vec::new());
    let root = crate::read_input(&a.root)?;
    let mut config = ClientConfig::new(root);
    config.address = a.address.clone();
    config.server_name = a.server_name.clone();
    config.cluster_id = a.cluster_id.clone();
    let result = if let Some(dir) = &a.cert_dir {
        let chain = crate::read_input(&dir.join("cert-chain.pem"))?;
        let key_pem = crate::read_input(&dir.join("key.pem"))?;
        let current = meshtls::Svid::from_pem(&chain, &key_pem).map_err(|e| e.to_string())?;
        if let Some(id) = &a.identity {
            if spiffe_id(id)? != *current.spiffe_id() {
                return Err(format!(
                    "--identity {id} is not the identity of {} ({})",
                    dir.display(),
                    current.spiffe_id()
                )
                .into());
            }
        }
        let client = IstioCaClient::new(config).map_err(|e| e.to_string())?;
        client.renew_blocking(&current, ttl, key)
    } else {
        let id = spiffe_id(
            a.identity
                .as_deref()
                .ok_or_else(|| "--identity is required with --token-file".to_owned())?,
        )?;
        config.token = match &a.token_file {
            Some(p) => TokenSource::File(p.clone()),
            None => TokenSource::None,
        };
        let client = IstioCaClient::new(config).map_err(|e| e.to_string())?;
        client.fetch_svid_blocking(&id, ttl, key)
    };
    let svid = match result {
        Ok(s) => s,
        Err(e) => return crate::ca::refusal(e),
    };
    svid.save(&a.out)?;
    let value = json!({
        "ok": true,
        "spiffe_id": svid.spiffe_id().as_str(),
        "serial": svid.serial_hex(),
        "not_before": rfc3339(svid.not_before()),
        "not_after": rfc3339(svid.not_after()),
        "out": a.out.display().to_string(),
    });
    let text = format!(
        "wrote {} for {} (valid until {})",
        a.out.display(),
        svid.spiffe_id(),
        rfc3339(svid.not_after())
    );
    Ok(Outcome::Yes(value, text))
}
