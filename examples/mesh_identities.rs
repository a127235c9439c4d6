//! Prints parsed identities and the mesh config of a sample `istio` ConfigMap.
//!
//! `cargo run --example mesh_identities`

use meshtls::{IstioIdentity, MeshConfig, SpiffeId};

const CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |-
    trustDomain: cluster.local
    trustDomainAliases: [legacy.example]
    meshMTLS:
      minProtocolVersion: TLSV1_2
"#;

fn main() -> Result<(), meshtls::Error> {
    let mesh = MeshConfig::from_yaml(CONFIGMAP)?;
    println!("mesh trust domain: {}", mesh.trust_domain());
    println!("aliases: {:?}", mesh.trust_domain_aliases());
    println!(
        "accepted on inbound mTLS: {:?}",
        mesh.trust_domains_for_validation()
    );
    for text in [
        "spiffe://cluster.local/ns/demo/sa/api",
        "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller",
        "spiffe://Cluster.Local/ns/demo/sa/api",
    ] {
        match SpiffeId::new(text) {
            Ok(id) => {
                let istio = IstioIdentity::from_spiffe_id(&id)?;
                println!(
                    "{id}: namespace {}, service account {}",
                    istio.namespace(),
                    istio.service_account()
                );
                let expanded = mesh
                    .trust_domains()
                    .expand_spiffe_ids(std::slice::from_ref(&id))?;
                println!("  accepted as: {expanded:?}");
            }
            Err(e) => println!("rejected: {e}"),
        }
    }
    Ok(())
}
