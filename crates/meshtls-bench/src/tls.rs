//! In-memory mTLS handshakes: meshtls's sidecar and gateway configs against stock rustls
//! (`WebPkiClientVerifier` / `WebPkiServerVerifier`) on the same certificates, the same crypto
//! provider and no session resumption, TLS 1.2 and 1.3.

use std::sync::Arc;

use meshtls::ca::{CaParams, IssueParams, KeyKind};
use meshtls::tls::{ClientConfigBuilder, ServerConfigBuilder, TlsMaterial, TlsVersion, params};
use meshtls::{BundleSet, MeshCa, SpiffeId, Svid, TrustBundle, TrustDomain};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;

use crate::harness::{Harness, Stat};

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";
/// Stock rustls verifies the server by DNS name, so the sidecar certificate also carries one.
const SIDECAR_DNS: &str = "api.demo.svc.cluster.local";

type Res<T> = Result<T, String>;

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

fn handshake(mut client: ClientConnection, mut server: ServerConnection) -> Res<()> {
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..10 {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).map_err(e)?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).map_err(e)?;
        }
        server.process_new_packets().map_err(e)?;
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).map_err(e)?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).map_err(e)?;
        }
        client.process_new_packets().map_err(e)?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

pub fn rows(h: &mut Harness) {
    if let Err(err) = try_rows(h) {
        eprintln!("tls benchmarks skipped: {err}");
    }
}

fn try_rows(h: &mut Harness) -> Res<()> {
    let td = TrustDomain::new("cluster.local").map_err(e)?;
    let ca = MeshCa::create(&CaParams {
        key: KeyKind::EcP256,
        ..CaParams::new(td.clone())
    })
    .map_err(e)?;
    let root = ca.root_certs_der()[0].clone();
    let issue = |id: &str, dns: &[&str]| -> Res<Svid> {
        let params = IssueParams {
            dns_names: dns.iter().map(|d| (*d).to_owned()).collect(),
            ..IssueParams::default()
        };
        ca.issue(&SpiffeId::new(id).map_err(e)?, &params).map_err(e)
    };
    let sidecar = issue(SIDECAR, &[SIDECAR_DNS])?;
    let gateway = issue(GATEWAY, &[])?;
    let bundles =
        || TrustBundle::new(td.clone(), [root.clone()]).and_then(|b| BundleSet::from_bundles([b]));

    let provider = params::istio_provider();
    let server_material = TlsMaterial::new(&sidecar, bundles().map_err(e)?).map_err(e)?;
    let client_material = TlsMaterial::new(&gateway, bundles().map_err(e)?).map_err(e)?;
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).map_err(e)?;
    let roots = Arc::new(roots);
    let sidecar_id = SpiffeId::new(SIDECAR).map_err(e)?;
    let dns_name = ServerName::try_from(SIDECAR_DNS).map_err(e)?;

    for (version, cache) in [
        (TlsVersion::Tls12, false),
        (TlsVersion::Tls13, false),
        (TlsVersion::Tls12, true),
        (TlsVersion::Tls13, true),
    ] {
        let (server_material, client_material) = if cache {
            (server_material.clone(), client_material.clone())
        } else {
            (
                TlsMaterial::new(&sidecar, bundles().map_err(e)?)
                    .map_err(e)?
                    .with_verification_cache(0),
                TlsMaterial::new(&gateway, bundles().map_err(e)?)
                    .map_err(e)?
                    .with_verification_cache(0),
            )
        };
        let label = if cache {
            "meshtls, cached peer"
        } else {
            "meshtls, cache off"
        };
        let ours_server = ServerConfigBuilder::new(server_material.clone())
            .max_version(version)
            .params(
                meshtls::tls::MtlsParams::istio_default()
                    .with_min_version(version)
                    .map_err(e)?,
            )
            .build()
            .map_err(e)?;
        let ours_client = ClientConfigBuilder::new(client_material.clone())
            .expect_server_ids([sidecar_id.clone()])
            .versions(version, version)
            .map_err(e)?
            .build()
            .map_err(e)?;

        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            TlsVersion::Tls12 => &[&rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(e)?;
        let mut stock_server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(e)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(sidecar.cert_chain_der().to_vec(), sidecar.private_key_der())
            .map_err(e)?;
        stock_server.session_storage = Arc::new(NoServerSessionStorage {});
        stock_server.send_tls13_tickets = 0;
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(e)?;
        let mut stock_client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(e)?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(gateway.cert_chain_der().to_vec(), gateway.private_key_der())
            .map_err(e)?;
        stock_client.resumption = Resumption::disabled();
        let stock_server = Arc::new(stock_server);
        let stock_client = Arc::new(stock_client);

        // Both must work before anything is timed.
        handshake(
            ours_client.connect(None).map_err(e)?,
            ours_server.new_connection().map_err(e)?,
        )?;
        handshake(
            ClientConnection::new(Arc::clone(&stock_client), dns_name.clone()).map_err(e)?,
            ServerConnection::new(Arc::clone(&stock_server)).map_err(e)?,
        )?;

        // The machine is shared: alternate the two sides a few times and keep each side's
        // quietest run, so that a burst of load does not land on one side only.
        let mut best: Option<(Stat, Stat)> = None;
        for _ in 0..3 {
            let ours = h.measure(&format!("mTLS handshake {version} ({label})"), || {
                let c = ours_client.connect(None);
                let s = ours_server.new_connection();
                match (c, s) {
                    (Ok(c), Ok(s)) => handshake(c, s).is_ok(),
                    _ => false,
                }
            });
            let theirs = h.measure(&format!("mTLS handshake {version} (rustls WebPki)"), || {
                let c = ClientConnection::new(Arc::clone(&stock_client), dns_name.clone());
                let s = ServerConnection::new(Arc::clone(&stock_server));
                match (c, s) {
                    (Ok(c), Ok(s)) => handshake(c, s).is_ok(),
                    _ => false,
                }
            });
            best = Some(match best {
                None => (ours, theirs),
                Some((o, t)) => (
                    if ours.median_ns < o.median_ns {
                        ours
                    } else {
                        o
                    },
                    if theirs.median_ns < t.median_ns {
                        theirs
                    } else {
                        t
                    },
                ),
            });
        }
        let Some((ours, theirs)) = best else {
            continue;
        };
        h.pair(
            "tls",
            ours,
            theirs,
            Some(0.95),
            "in memory, ECDSA P-256, no TLS resumption, same provider",
        );
    }
    Ok(())
}
