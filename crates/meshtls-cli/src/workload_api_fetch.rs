//! `meshtls workload-api fetch x509|jwt|bundles`: a Workload API client for scripts (what
//! `spire-agent api fetch` does), against SPIRE's agent, `meshtls workload-api serve` or any
//! other server.

use std::path::PathBuf;

use meshtls::Error;
use meshtls::error::WorkloadClientError;
use meshtls::jwt::JwksShape;
use meshtls::workload_api::{Endpoint, SvidSelector, WorkloadApiClient};
use serde_json::{Map, Value, json};

use crate::ca::{parse_duration, rfc3339, spiffe_id};
use crate::{Failure, Outcome};

/// `meshtls workload-api fetch`.
#[derive(clap::Args, Debug)]
pub(crate) struct FetchArgs {
    #[command(subcommand)]
    what: FetchWhat,
}

#[derive(clap::Args, Debug)]
struct Common {
    /// The Workload API address (`unix:///path` or `tcp://ip:port`); default
    /// SPIFFE_ENDPOINT_SOCKET.
    #[arg(long)]
    socket: Option<String>,
    /// Deadline of the call.
    #[arg(long, default_value = "10s")]
    timeout: String,
}

#[derive(clap::Subcommand, Debug)]
enum FetchWhat {
    /// The caller's X.509-SVIDs and bundles; --out writes svid.N.pem, svid.N.key (0600) and
    /// bundle.N.pem as spire-agent's -write does (N in the server's order).
    X509 {
        #[command(flatten)]
        common: Common,
        /// Only the SVID with this hint.
        #[arg(long, conflicts_with = "spiffe_id")]
        hint: Option<String>,
        /// Only the SVID with this SPIFFE ID.
        #[arg(long)]
        spiffe_id: Option<String>,
        /// Write the PEM files into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// JWT-SVIDs for the audiences (and the JWT bundles).
    Jwt {
        #[command(flatten)]
        common: Common,
        /// An audience (repeat for several; at least one).
        #[arg(long, required = true)]
        audience: Vec<String>,
        /// Only the SVID with this SPIFFE ID.
        #[arg(long)]
        spiffe_id: Option<String>,
        /// Only the SVID with this hint.
        #[arg(long, conflicts_with = "spiffe_id")]
        hint: Option<String>,
    },
    /// The X.509 bundles (PEM per trust domain) and the JWT bundles (JWKS per trust domain).
    Bundles {
        #[command(flatten)]
        common: Common,
    },
}

/// A library error: a bad address or option is bad usage (exit 2), anything the server or
/// the connection said is a verdict (exit 1).
fn outcome(e: Error) -> Result<Outcome, Failure> {
    match &e {
        Error::WorkloadClient(
            WorkloadClientError::Endpoint { .. }
            | WorkloadClientError::NoEndpoint
            | WorkloadClientError::Option { .. },
        ) => Err(Failure::new("usage", e.to_string())),
        Error::Io { .. } => Err(e.into()),
        _ => {
            let code = match &e {
                Error::WorkloadClient(w) => w.code().map(|c| c.name()),
                _ => None,
            };
            let msg = e.to_string();
            Ok(crate::refused(&e, json!({"ok": false, "code": code}), msg))
        }
    }
}

fn selector(hint: Option<String>, id: Option<String>) -> Result<SvidSelector, Failure> {
    Ok(match (hint, id) {
        (Some(h), _) => SvidSelector::Hint(h),
        (None, Some(id)) => SvidSelector::SpiffeId(spiffe_id(&id)?),
        (None, None) => SvidSelector::First,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new("io", format!("cannot start the runtime: {e}")))
}

async fn connect(common: &Common) -> Result<WorkloadApiClient, Error> {
    let endpoint = match &common.socket {
        Some(s) => Endpoint::parse(s)?,
        None => Endpoint::from_env()?,
    };
    let timeout = parse_duration(&common.timeout).map_err(|rule| WorkloadClientError::Option {
        name: "--timeout",
        value: common.timeout.clone(),
        rule: if rule.is_empty() {
            "a duration"
        } else {
            "a duration such as 10s"
        },
    })?;
    Ok(WorkloadApiClient::connect(endpoint)
        .await?
        .with_timeout(timeout))
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io =
        |e: std::io::Error| Failure::new("io", format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

fn write(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::new("io", format!("cannot write {}: {e}", path.display())))
}

pub(crate) fn run(fetch: FetchArgs) -> Result<Outcome, Failure> {
    let rt = runtime()?;
    match fetch.what {
        FetchWhat::X509 {
            common,
            hint,
            spiffe_id,
            out,
        } => {
            let pick = selector(hint, spiffe_id)?;
            let result = rt.block_on(async {
                let client = connect(&common).await?;
                client.fetch_x509_context().await
            });
            let ctx = match result {
                Ok(c) => c,
                Err(e) => return outcome(e),
            };
            let chosen: Vec<_> = if pick == SvidSelector::First {
                ctx.svids().iter().collect()
            } else {
                match ctx.select(&pick) {
                    Ok(s) => vec![s],
                    Err(e) => return outcome(e.into()),
                }
            };
            let mut svids = Vec::new();
            let mut text = String::new();
            for (n, s) in chosen.iter().enumerate() {
                let svid = s.svid();
                if let Some(dir) = &out {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Failure::new("io", format!("cannot create {}: {e}", dir.display()))
                    })?;
                    write(&dir.join(format!("svid.{n}.pem")), &svid.cert_chain_pem())?;
                    write_private(&dir.join(format!("svid.{n}.key")), &svid.private_key_pem())?;
                    write(
                        &dir.join(format!("bundle.{n}.pem")),
                        &svid.trust_bundle_pem(),
                    )?;
                }
                text.push_str(&format!(
                    "SPIFFE ID:\t{}\nHint:\t\t{}\nSerial:\t\t{}\nValid until:\t{}\n\n",
                    s.spiffe_id(),
                    s.hint(),
                    svid.serial_hex(),
                    rfc3339(svid.not_after())
                ));
                svids.push(json!({
                    "spiffe_id": s.spiffe_id().as_str(),
                    "hint": s.hint(),
                    "serial": svid.serial_hex(),
                    "not_before": rfc3339(svid.not_before()),
                    "not_after": rfc3339(svid.not_after()),
                    "chain_len": svid.cert_chain_der().len(),
                }));
            }
            let bundles: Map<String, Value> = ctx
                .bundles()
                .bundles()
                .map(|b| (b.trust_domain().id().to_string(), json!(b.len())))
                .collect();
            for (td, n) in &bundles {
                text.push_str(&format!("Bundle:\t\t{td} ({n} roots)\n"));
            }
            if let Some(dir) = &out {
                text.push_str(&format!(
                    "Wrote {} svid(s) into {}\n",
                    svids.len(),
                    dir.display()
                ));
            }
            Ok(Outcome::Yes(
                json!({"ok": true, "svids": svids, "bundles": bundles}),
                text.trim_end().to_owned(),
            ))
        }
        FetchWhat::Jwt {
            common,
            audience,
            spiffe_id,
            hint,
        } => {
            let pick = selector(hint, spiffe_id)?;
            let result = rt.block_on(async {
                let client = connect(&common).await?;
                let svids = if pick == SvidSelector::First {
                    client.fetch_jwt_svids(&audience, None).await?
                } else {
                    vec![client.fetch_jwt_svid(&audience, &pick).await?]
                };
                let bundles = client.fetch_jwt_bundles().await?;
                Ok::<_, Error>((svids, bundles))
            });
            let (svids, bundles) = match result {
                Ok(r) => r,
                Err(e) => return outcome(e),
            };
            let mut text = String::new();
            for s in &svids {
                text.push_str(&format!(
                    "SPIFFE ID:\t{}\nHint:\t\t{}\nToken:\t\t{}\n\n",
                    s.spiffe_id, s.hint, s.token
                ));
            }
            let jwks: Map<String, Value> = bundles
                .bundles()
                .map(|b| {
                    let doc: Value = serde_json::from_str(&b.to_jwks(JwksShape::WorkloadApi))
                        .unwrap_or(Value::Null);
                    (b.trust_domain().id().to_string(), doc)
                })
                .collect();
            for td in jwks.keys() {
                text.push_str(&format!("JWT bundle:\t{td}\n"));
            }
            let out: Vec<Value> = svids
                .iter()
                .map(|s| json!({"spiffe_id": s.spiffe_id.as_str(), "hint": s.hint, "token": s.token}))
                .collect();
            Ok(Outcome::Yes(
                json!({"ok": true, "svids": out, "bundles": jwks}),
                text.trim_end().to_owned(),
            ))
        }
        FetchWhat::Bundles { common } => {
            let result = rt.block_on(async {
                let client = connect(&common).await?;
                Ok::<_, Error>((
                    client.fetch_x509_bundles().await?,
                    client.fetch_jwt_bundles().await?,
                ))
            });
            let (x509, jwt) = match result {
                Ok(r) => r,
                Err(e) => return outcome(e),
            };
            let pem: Map<String, Value> = x509
                .bundles()
                .map(|b| (b.trust_domain().id().to_string(), json!(b.to_pem())))
                .collect();
            let jwks: Map<String, Value> = jwt
                .bundles()
                .map(|b| {
                    let doc: Value = serde_json::from_str(&b.to_jwks(JwksShape::WorkloadApi))
                        .unwrap_or(Value::Null);
                    (b.trust_domain().id().to_string(), doc)
                })
                .collect();
            let mut text = String::new();
            for (td, p) in &pem {
                text.push_str(&format!(
                    "X.509 bundle of {td}:\n{}\n",
                    p.as_str().unwrap_or("")
                ));
            }
            for (td, doc) in &jwks {
                text.push_str(&format!("JWT bundle of {td}:\n{doc}\n"));
            }
            Ok(Outcome::Yes(
                json!({"ok": true, "x509": pem, "jwt": jwks}),
                text.trim_end().to_owned(),
            ))
        }
    }
}
