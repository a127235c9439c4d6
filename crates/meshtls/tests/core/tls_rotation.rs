//! Certificates and bundles replaced while serving: no handshake fails, new handshakes see the
//! new material, established connections continue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use crate::tls_common::{TestCa, exchange, handshake};
use meshtls::SpiffeId;
use meshtls::tls::{ClientConfigBuilder, ServerConfigBuilder, TlsVersion};

const SIDECAR: &str = "spiffe://cluster.local/ns/demo/sa/api";
const GATEWAY: &str = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller";

#[test]
fn concurrent_handshakes_survive_100_rotations() {
    // Two CAs of the same trust domain, both in the bundle: a root rotation in progress.
    let ca1 = TestCa::new("cluster.local");
    let ca2 = TestCa::new("cluster.local");
    let both = || crate::tls_common::bundles(&[&ca1, &ca2]);
    let first_server = ca1.issue(SIDECAR);
    let first_client = ca1.issue(GATEWAY);
    let server_material =
        meshtls::tls::TlsMaterial::from_der(first_server.chain, &first_server.key_pkcs8, both())
            .unwrap();
    let client_material =
        meshtls::tls::TlsMaterial::from_der(first_client.chain, &first_client.key_pkcs8, both())
            .unwrap();
    let server = ServerConfigBuilder::new(server_material.clone())
        .build()
        .unwrap();
    let clients: Vec<_> = [TlsVersion::Tls12, TlsVersion::Tls13]
        .into_iter()
        .map(|v| {
            ClientConfigBuilder::new(client_material.clone())
                .expect_server_ids([SpiffeId::new(SIDECAR).unwrap()])
                .versions(v, v)
                .unwrap()
                .build()
                .unwrap()
        })
        .collect();

    // A connection established before any rotation.
    let mut old_c = clients[1].connect(None).unwrap();
    let mut old_s = server.new_connection().unwrap();
    handshake(&mut old_c, &mut old_s).unwrap();

    // Certificates for the rotations, alternating issuers.
    let rotations: Vec<_> = (0..100)
        .map(|i| {
            let ca = if i % 2 == 0 { &ca2 } else { &ca1 };
            (ca.issue(SIDECAR), ca.issue(GATEWAY))
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let client = clients[w % 2].clone();
            let server = server.clone();
            let stop = Arc::clone(&stop);
            let ok = Arc::clone(&ok);
            let failures = Arc::clone(&failures);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut c = client.connect(None).unwrap();
                    let mut s = server.new_connection().unwrap();
                    let result = handshake(&mut c, &mut s).and_then(|()| {
                        exchange(&mut c, &mut s, b"x");
                        server
                            .check_connection(&s)
                            .map_err(|e| rustls::Error::General(e.to_string()))
                    });
                    match result {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("handshake failed: {e}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    for (server_cert, client_cert) in &rotations {
        server_material.set_svid(&server_cert.svid).unwrap();
        client_material
            .set_svid_der(client_cert.chain.clone(), &client_cert.key_pkcs8)
            .unwrap();
        server_material.set_bundles(both());
        client_material.set_bundles(both());
        wait_for_handshakes(&ok, &workers);
    }
    // And handshakes with the last certificates too.
    wait_for_handshakes(&ok, &workers);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > rotations.len(),
        "only {} handshakes",
        ok.load(Ordering::Relaxed)
    );

    // New handshakes present the newest certificates.
    let (last_server, last_client) = rotations.last().unwrap();
    let mut c = clients[0].connect(None).unwrap();
    let mut s = server.new_connection().unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.peer_certificates().unwrap()[0], last_server.chain[0]);
    assert_eq!(s.peer_certificates().unwrap()[0], last_client.chain[0]);

    // The connection from before the rotations still carries data, on its original keys.
    assert_eq!(
        exchange(&mut old_c, &mut old_s, b"still here"),
        b"still here"
    );
    assert_ne!(old_c.peer_certificates().unwrap()[0], last_server.chain[0]);
}

#[test]
fn rotating_to_a_bundle_without_the_peer_root_refuses_new_handshakes() {
    let ca1 = TestCa::new("cluster.local");
    let ca2 = TestCa::new("cluster.local");
    let server = ServerConfigBuilder::new(crate::tls_common::material(&ca1, SIDECAR, &[&ca1]))
        .max_version(TlsVersion::Tls12)
        .build()
        .unwrap();
    let client = ClientConfigBuilder::new(crate::tls_common::material(&ca1, GATEWAY, &[&ca1]))
        .expect_server_ids([SpiffeId::new(SIDECAR).unwrap()])
        .build()
        .unwrap();
    let mut c = client.connect(None).unwrap();
    let mut s = server.new_connection().unwrap();
    handshake(&mut c, &mut s).unwrap();
    server
        .material()
        .set_bundles(crate::tls_common::bundles(&[&ca2]));
    let mut c = client.connect(None).unwrap();
    let mut s = server.new_connection().unwrap();
    assert!(handshake(&mut c, &mut s).is_err());
}

/// Waits until every worker has completed a handshake after this call (progress, not time:
/// the rotations interleave with handshakes however loaded the machine is), or a worker ended.
fn wait_for_handshakes(ok: &AtomicUsize, workers: &[thread::JoinHandle<()>]) {
    let target = ok.load(Ordering::Relaxed) + workers.len();
    while ok.load(Ordering::Relaxed) < target && !workers.iter().any(|w| w.is_finished()) {
        thread::yield_now();
    }
}
