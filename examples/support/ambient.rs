//! The demo's ambient mode: the app's pod is in Istio ambient, so mesh traffic reaches it only
//! through HBONE. meshtls's HBONE acceptor stands in for the pod's ztunnel (port 15008 in the
//! pod: TLS 1.3 with the pod's identity, HTTP/2 CONNECT to `podIP:port`, forwarded to the app),
//! and the gateway opens a tunnel with meshtls's HBONE client and speaks HTTP inside it.

use std::net::SocketAddr;

use meshtls::error::HboneError;
use meshtls::hbone::{HboneClient, HboneServerBuilder, Upstream};
use meshtls::tls::TlsMaterial;
use meshtls::{Error, SpiffeId, authz};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::support::http;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One GET through a tunnel: (status line, body), or the refusal.
async fn get_through(
    client: &HboneClient,
    via: SocketAddr,
    target: SocketAddr,
    material: &TlsMaterial,
    server: &SpiffeId,
) -> Result<(String, String), Error> {
    let mut tunnel = client.connect(via, target, material, server).await?;
    let request = format!(
        "GET /api/headers HTTP/1.1\r\nhost: api.demo.svc.cluster.local:{}\r\nconnection: close\r\n\r\n",
        target.port()
    );
    let io = |e: std::io::Error| {
        Error::from(HboneError::Closed {
            via: via.to_string(),
            reason: e.to_string(),
        })
    };
    tunnel.write_all(request.as_bytes()).await.map_err(io)?;
    http::read_response(&mut tunnel).await.map_err(|reason| {
        HboneError::Closed {
            via: via.to_string(),
            reason,
        }
        .into()
    })
}

fn refusal(r: &Result<(String, String), Error>) -> String {
    match r {
        Ok((status, _)) => format!("answered {status}"),
        Err(e) => format!("refused: {e}"),
    }
}

/// Runs the ambient demo; `check(ok, what)` records each expectation.
pub async fn demo(
    material_for: impl Fn(&SpiffeId) -> Res<TlsMaterial>,
    pod_id: &SpiffeId,
    gateway_id: &SpiffeId,
    mut check: impl FnMut(bool, &str),
) -> Res<()> {
    let app = TcpListener::bind("127.0.0.1:0").await?;
    let app_addr = app.local_addr()?;
    tokio::spawn(crate::support::run_app(app));
    println!("2. app (plaintext HTTP) on {app_addr}, in an ambient pod (no sidecar)");

    // The pod's ztunnel: its inbound HBONE listener presents the pod's own identity and
    // forwards each tunnel to the target port on the pod's address (here loopback).
    let ztunnel = HboneServerBuilder::new(material_for(pod_id)?).build()?;
    let listener = ztunnel.bind("127.0.0.1:0".parse()?).await?;
    let via = listener.local_addr();
    tokio::spawn(listener.forward(Upstream::TargetPortOn(app_addr.ip())));
    println!(
        "3. HBONE acceptor standing in for ztunnel on {via} (a pod's port 15008): TLS 1.3, ALPN h2,\n   \
         presents {pod_id}, accepts Istio identities of the same trust domain\n"
    );

    let gateway = material_for(gateway_id)?;
    let client = HboneClient::default();
    println!(
        "4. gateway {gateway_id} -> HBONE CONNECT {app_addr} via {via}, server must be {pod_id}"
    );
    let first = get_through(&client, via, app_addr, &gateway, pod_id).await;
    match &first {
        Ok((status, body)) => {
            println!("   app answered {status}\n{}", crate::indent(body, 6));
            check(status.contains("200"), "status 200 through the tunnel");
        }
        Err(e) => check(false, &format!("tunnel failed: {e}")),
    }
    let second = get_through(&client, via, app_addr, &gateway, pod_id).await;
    check(
        second.is_ok() && client.connection_count() == 1,
        "a second tunnel rides the pooled connection",
    );
    println!(
        "   second request: {} on the same connection ({} open)\n",
        refusal(&second),
        client.connection_count()
    );

    println!("5. refusals, each a typed error:");
    let wrong_ip: SocketAddr = SocketAddr::new("127.0.0.2".parse()?, app_addr.port());
    let r = get_through(&client, via, wrong_ip, &gateway, pod_id).await;
    println!(
        "   CONNECT {wrong_ip} (not the dialled IP): {}",
        refusal(&r)
    );
    check(
        matches!(r, Err(Error::Hbone(HboneError::BadRequest { .. }))),
        "400 for an authority that is not the dialled IP",
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let r = get_through(&client, via, closed, &gateway, pod_id).await;
    println!("   CONNECT {closed} (nothing listens): {}", refusal(&r));
    check(
        matches!(r, Err(Error::Hbone(HboneError::NoUpstream { .. }))),
        "503 when nothing listens",
    );
    let impostor = SpiffeId::new("spiffe://cluster.local/ns/demo/sa/other")?;
    let r = get_through(&client, via, app_addr, &gateway, &impostor).await;
    println!("   expecting {impostor} instead: {}", refusal(&r));
    check(
        matches!(r, Err(Error::Hbone(HboneError::PeerIdentity { .. }))),
        "a server with another identity is refused",
    );
    let not_istio = SpiffeId::new("spiffe://cluster.local/gateway/agc")?;
    let r = get_through(&client, via, app_addr, &material_for(&not_istio)?, pod_id).await;
    println!(
        "   gateway as {not_istio} (not ns/<ns>/sa/<sa>): {}",
        refusal(&r)
    );
    check(
        matches!(r, Err(Error::Hbone(HboneError::Tls { .. }))),
        "ztunnel refuses a client identity that is not Istio-form",
    );
    // An AuthorizationPolicy that allows only shop/web: ztunnel answers 401.
    let shop_web = SpiffeId::new("spiffe://cluster.local/ns/shop/sa/web")?;
    let strict = HboneServerBuilder::new(material_for(pod_id)?)
        .policy(authz::id(shop_web.clone()))
        .build()?
        .bind("127.0.0.1:0".parse()?)
        .await?;
    let strict_via = strict.local_addr();
    tokio::spawn(strict.forward(Upstream::TargetPortOn(app_addr.ip())));
    let r = get_through(&client, strict_via, app_addr, &gateway, pod_id).await;
    println!("   with a policy allowing only {shop_web}: {}", refusal(&r));
    check(
        matches!(r, Err(Error::Hbone(HboneError::Denied { .. }))),
        "401 when an authorization policy denies",
    );
    Ok(())
}
