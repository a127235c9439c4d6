//! Istio's CA protocol: `CreateCertificate` round trips per second on loopback with 64
//! concurrent clients (each its own TLS connection, ES256 service-account token checked per
//! request as istiod does) against the CSR verify+sign limit of the same machine measured in
//! the same run (`MeshCa::sign_csr` on every core), and the added p50 latency of one request
//! over in-process `sign_csr`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use meshtls::ca::{CaParams, KeyKind, MeshCa};
use meshtls::ca_protocol::{
    CallContext, ClientConfig, IstioCaClient, IstioCaServer, IstioCertificateRequest, JwtVerifier,
    ServerConfig, TokenSource,
};
use meshtls::{Csr, CsrParams, SpiffeId, TrustDomain};

use crate::harness::{Harness, Stat, human};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const CLIENTS: usize = 64;

fn stat(name: &str, ops: u64, elapsed: Duration) -> Stat {
    let per = elapsed.as_nanos() as f64 / ops.max(1) as f64;
    Stat {
        name: name.to_owned(),
        median_ns: per,
        min_ns: per,
        ops_per_sec: 1e9 / per,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `f` on `threads` threads for `dur`; returns the operations done and the time taken.
fn parallel(threads: usize, dur: Duration, f: impl Fn() + Sync) -> (u64, Duration) {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    f();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
    });
    (done.load(Ordering::Relaxed), t.elapsed())
}

pub fn rows(h: &mut Harness) {
    if let Err(e) = run(h) {
        eprintln!("meshtls-bench: grpc group skipped: {e}");
    }
}

fn run(h: &mut Harness) -> Result<(), String> {
    let td = TrustDomain::new("cluster.local").map_err(|e| e.to_string())?;
    let mut p = CaParams::new(td);
    p.key = KeyKind::EcP256;
    let ca = Arc::new(MeshCa::create(&p).map_err(|e| e.to_string())?);
    let id =
        SpiffeId::new("spiffe://cluster.local/ns/bench/sa/client").map_err(|e| e.to_string())?;
    let csr = Csr::new(&id, &CsrParams::with_key(KeyKind::EcP256)).map_err(|e| e.to_string())?;
    let csr_pem = csr.pem();
    let ttl = Duration::from_secs(3600);

    // The token issuer (ES256, as an API server with an EC key would sign).
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "keygen")?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| "key")?;
    let pt = pair.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
        "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..65])}]})
    .to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = B64.encode(br#"{"alg":"ES256","kid":"k"}"#);
    let payload = B64.encode(
        serde_json::json!({"iss": ISSUER, "sub": "system:serviceaccount:bench:client",
            "aud": ["istio-ca"], "exp": now + 3600})
        .to_string(),
    );
    let sig = pair
        .sign(&rng, format!("{header}.{payload}").as_bytes())
        .map_err(|_| "sign")?;
    let token = format!("{header}.{payload}.{}", B64.encode(sig.as_ref()));

    let mut config = ServerConfig::default();
    config.jwt = Some(JwtVerifier::new(&jwks, ISSUER, &["istio-ca"]).map_err(|e| e.to_string())?);
    let server = IstioCaServer::new(ca.clone(), config).map_err(|e| e.to_string())?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let window = h.target * 10; // 2 s normally, 0.2 s with --quick

    // 1. The limit: CSR verify + sign on every core, in process.
    let (n, el) = parallel(cores, window, || {
        let _ = std::hint::black_box(ca.sign_csr(&csr_pem, &id, ttl));
    });
    let limit = stat(
        &format!("MeshCa::sign_csr on {cores} threads (limit)"),
        n,
        el,
    );
    // 1b. The same plus istiod's authentication (ES256 token), in process.
    let bearer = format!("Bearer {token}");
    let request = IstioCertificateRequest {
        csr: csr_pem.clone(),
        validity_duration: 3600,
        metadata: None,
    };
    let (n, el) = parallel(cores, window, || {
        let ctx = CallContext {
            authorization: Some(&bearer),
            ..Default::default()
        };
        let _ = std::hint::black_box(server.create_certificate(&ctx, &request));
    });
    let in_process = stat(
        &format!("create_certificate in process, {cores} threads"),
        n,
        el,
    );

    // 2. Over the wire: 64 clients, each with its own TLS connection, on loopback.
    let mut running = server
        .clone()
        .start("127.0.0.1:0".parse().map_err(|_| "addr")?)
        .map_err(|e| e.to_string())?;
    let port = running.local_addr().port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let make_client = || -> Result<Arc<IstioCaClient>, String> {
        let mut c = ClientConfig::new(ca.root_cert_pem());
        c.address = format!("localhost:{port}");
        c.token = TokenSource::Fixed(token.clone().into());
        IstioCaClient::new(c)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    };
    let clients: Vec<Arc<IstioCaClient>> = (0..CLIENTS)
        .map(|_| make_client())
        .collect::<Result<_, _>>()?;
    let (ok, failed, el) = rt.block_on(async {
        // Connect and warm up every client first.
        for c in &clients {
            let _ = c.create_certificate(request.clone()).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let tasks: Vec<_> = clients
            .iter()
            .map(|c| {
                let (c, stop, ok, failed, req) = (
                    c.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    request.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match c.create_certificate(req.clone()).await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        tokio::time::sleep(window).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        (
            ok.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            t.elapsed(),
        )
    });
    let wire = stat(
        &format!("CreateCertificate, {CLIENTS} clients, loopback"),
        ok,
        el,
    );
    let ratio = wire.ops_per_sec / limit.ops_per_sec;
    let note = format!(
        "{} round trips/s vs limit {}/s; in-process with token auth {}/s; {failed} failed; clients and server share the {cores} cores",
        wire.ops_per_sec.round(),
        limit.ops_per_sec.round(),
        in_process.ops_per_sec.round()
    );
    h.derived("grpc", wire, limit, ratio, Some(0.7), &note);

    // 3. Latency: one client, sequential requests, p50 against in-process sign_csr.
    let samples = if h.samples < 11 { 200 } else { 2000 };
    let mut local: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            let _ = std::hint::black_box(ca.sign_csr(&csr_pem, &id, ttl));
            t.elapsed().as_nanos() as f64
        })
        .collect();
    local.sort_by(|a, b| a.total_cmp(b));
    let one = clients[0].clone();
    let mut remote: Vec<f64> = rt.block_on(async {
        let mut v = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            let _ = one.create_certificate(request.clone()).await;
            v.push(t.elapsed().as_nanos() as f64);
        }
        v
    });
    remote.sort_by(|a, b| a.total_cmp(b));
    let (p50_local, p50_remote) = (percentile(&local, 0.5), percentile(&remote, 0.5));
    let added = p50_remote - p50_local;
    let remote_stat = Stat {
        name: "CreateCertificate p50, one client".to_owned(),
        median_ns: p50_remote,
        min_ns: remote[0],
        ops_per_sec: 1e9 / p50_remote,
    };
    let local_stat = Stat {
        name: "MeshCa::sign_csr p50, in process".to_owned(),
        median_ns: p50_local,
        min_ns: local[0],
        ops_per_sec: 1e9 / p50_local,
    };
    let note = format!(
        "added p50 {} (goal <= 2 ms); p99 {} vs {}",
        human(added),
        human(percentile(&remote, 0.99)),
        human(percentile(&local, 0.99))
    );
    // ratio column: 2 ms / added latency (>= 1 meets the goal)
    h.derived(
        "grpc",
        remote_stat,
        local_stat,
        2e6 / added.max(1.0),
        Some(1.0),
        &note,
    );
    drop(clients);
    drop(rt);
    running.stop();
    Ok(())
}
