use std::path::PathBuf;

use serde_json::json;

use crate::{Failure, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct IdArgs {
    /// The SPIFFE ID.
    id: String,
    /// Fold the case of the scheme and trust domain (rust-spiffe/py-spiffe behaviour).
    #[arg(long)]
    lenient: bool,
}

pub(crate) fn id(args: IdArgs) -> Result<Outcome, Failure> {
    let parsed = if args.lenient {
        meshtls::SpiffeId::parse_lenient(&args.id)
    } else {
        meshtls::SpiffeId::new(&args.id)
    };
    Ok(match parsed {
        Ok(id) => {
            let istio = meshtls::IstioIdentity::from_spiffe_id(&id).ok();
            let value = json!({
                "valid": true,
                "spiffe_id": id.as_str(),
                "trust_domain": id.trust_domain_name(),
                "path": id.path(),
                "istio": istio.as_ref().map(|i| json!({
                    "namespace": i.namespace(),
                    "service_account": i.service_account(),
                    "principal": i.principal(),
                })),
            });
            let text = format!(
                "{id}\n  trust domain: {}\n  path: {:?}{}",
                id.trust_domain_name(),
                id.path(),
                istio
                    .map(|i| format!(
                        "\n  istio: namespace {} service account {}",
                        i.namespace(),
                        i.service_account()
                    ))
                    .unwrap_or_default()
            );
            Outcome::Yes(value, text)
        }
        Err(e) => {
            let text = e.to_string();
            crate::refused(&e.into(), json!({"valid": false}), text)
        }
    })
}

#[derive(clap::Args, Debug)]
pub(crate) struct MeshArgs {
    /// The ConfigMap manifest or bare mesh document (`-` for standard input).
    file: PathBuf,
}

pub(crate) fn mesh(args: MeshArgs) -> Result<Outcome, Failure> {
    let text = crate::read_input(&args.file)?;
    Ok(match meshtls::MeshConfig::from_yaml(&text) {
        Ok(mesh) => {
            let tds: Vec<String> = mesh
                .trust_domains_for_validation()
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect();
            let aliases: Vec<&str> = mesh
                .trust_domain_aliases()
                .iter()
                .map(|t| t.as_str())
                .collect();
            let value = json!({
                "trust_domain": mesh.trust_domain().as_str(),
                "trust_domain_aliases": aliases,
                "root_namespace": mesh.root_namespace(),
                "min_protocol_version": mesh.min_protocol_version().as_str(),
                "trust_domains_for_validation": tds,
            });
            let text = format!(
                "trust domain: {}\naliases: {}\nroot namespace: {}\nmin TLS version: {}\naccepted on inbound mTLS: {}",
                mesh.trust_domain(),
                aliases.join(", "),
                mesh.root_namespace(),
                mesh.min_protocol_version().as_str(),
                tds.join(", ")
            );
            Outcome::Yes(value, text)
        }
        Err(e) => {
            let text = e.to_string();
            crate::refused(&e, json!({"valid": false}), text)
        }
    })
}
