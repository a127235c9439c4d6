//! HBONE (Istio ambient's tunnel) on loopback, each row against the plain mTLS stream of the
//! same stack (meshtls's TLS 1.3 configs over tokio-rustls, the same certificates, P-256) in
//! the same run:
//!
//! - bytes/s through one tunnel (HTTP/2 DATA frames inside TLS) against one plain mTLS stream:
//!   the client writes 64 MiB in 64 KiB writes, the server reads to the end and answers one
//!   byte (goal: the tunnel at ≥ 0.9× the plain stream's rate);
//! - opening a tunnel on a pooled connection (one CONNECT round trip) against a new TLS
//!   connection (TCP connect and a full TLS 1.3 handshake);
//! - 1,000 concurrent tunnels over the pool (ztunnel's 100 streams per connection: 10
//!   connections), each sending 64 KiB and reading it back, against 1,000 concurrent plain mTLS
//!   connections doing the same; wall time and the process's resident memory growth while all
//!   are open (client and server live in this process, so both sides are counted).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshtls::ca::{CaParams, IssueParams, KeyKind};
use meshtls::hbone::{HboneClient, HboneServerBuilder};
use meshtls::tls::{ClientConfigBuilder, TlsMaterial, TlsVersion, server_name_for};
use meshtls::{BundleSet, MeshCa, SpiffeId, TrustBundle, TrustDomain};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::harness::{Harness, Stat};

const SERVER: &str = "spiffe://cluster.local/ns/shop/sa/api";
const CLIENT: &str = "spiffe://cluster.local/ns/gateway/sa/agc";
const STREAM_BYTES: usize = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// The application's write size: `CHUNK`, or `MESHTLS_BENCH_HBONE_CHUNK` bytes.
fn chunk() -> usize {
    std::env::var("MESHTLS_BENCH_HBONE_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(CHUNK)
}

/// `MESHTLS_BENCH_ROWS=text` runs only the rows whose name contains `text` (e.g. `one tunnel`
/// to profile the throughput row alone).
fn wanted(name: &str) -> bool {
    std::env::var("MESHTLS_BENCH_ROWS").map_or(true, |filter| name.contains(filter.as_str()))
}

/// Rounds of the throughput row: `MESHTLS_BENCH_HBONE_ROUNDS`, else the harness's samples
/// clamped to 3..=7.
fn rounds(samples: usize) -> usize {
    std::env::var("MESHTLS_BENCH_HBONE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| samples.clamp(3, 7))
}
const CONCURRENT: usize = 1000;
const PER_STREAM: usize = 64 * 1024;
/// Set in the child processes of the 1,000-stream rows: `tunnels` or `plain`.
const CHILD_ENV: &str = "MESHTLS_BENCH_HBONE_CHILD";

/// One of the 1,000 streams.
enum Stream {
    Tunnel(meshtls::hbone::HboneStream),
    Plain(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

type Res<T> = Result<T, String>;

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

pub fn rows(h: &mut Harness) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hbone benchmarks skipped: {err}");
            return;
        }
    };
    if let Err(err) = try_rows(h, &rt) {
        eprintln!("hbone benchmarks skipped: {err}");
    }
}

/// What a server does with each stream: `Sink` reads to the end and answers one byte, `Echo`
/// copies back.
#[derive(Clone, Copy)]
enum App {
    Sink,
    Echo,
}

async fn run_app<S: AsyncRead + AsyncWrite + Unpin>(app: App, s: S) {
    let (mut r, mut w) = tokio::io::split(s);
    match app {
        App::Sink => {
            let mut buf = vec![0u8; CHUNK];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            let _ = w.write_all(b"k").await;
        }
        App::Echo => {
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    }
    let _ = w.shutdown().await;
}

/// Writes `bytes` in [`chunk`] writes, ends the write side, reads to the end; returns what came
/// back.
async fn push<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, bytes: usize) -> Res<usize> {
    let chunk = vec![7u8; chunk().min(bytes)];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).await.map_err(e)?;
        left -= n;
    }
    s.shutdown().await.map_err(e)?;
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.map_err(e)?;
    Ok(back.len())
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn stat(name: &str, per_op: Duration) -> Stat {
    let ns = per_op.as_nanos() as f64;
    Stat {
        name: name.to_owned(),
        median_ns: ns,
        min_ns: ns,
        ops_per_sec: 1e9 / ns,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn try_rows(h: &mut Harness, rt: &tokio::runtime::Runtime) -> Res<()> {
    let td = TrustDomain::new("cluster.local").map_err(e)?;
    let ca = MeshCa::create(&CaParams {
        key: KeyKind::EcP256,
        ..CaParams::new(td.clone())
    })
    .map_err(e)?;
    let bundles = || {
        TrustBundle::new(td.clone(), ca.root_certs_der().to_vec())
            .and_then(|b| BundleSet::from_bundles([b]))
            .map_err(e)
    };
    let server_id = SpiffeId::new(SERVER).map_err(e)?;
    let client_id = SpiffeId::new(CLIENT).map_err(e)?;
    let server_svid = ca.issue(&server_id, &IssueParams::default()).map_err(e)?;
    let client_svid = ca.issue(&client_id, &IssueParams::default()).map_err(e)?;
    let server_material = TlsMaterial::new(&server_svid, bundles()?).map_err(e)?;
    let client_material = TlsMaterial::new(&client_svid, bundles()?).map_err(e)?;

    // The HBONE acceptor and a plain mTLS server on the same TLS config (TLS 1.3 only).
    let hbone_server = HboneServerBuilder::new(server_material.clone())
        .build()
        .map_err(e)?;
    let tls_server = hbone_server.tls_config().clone();
    let start_hbone = |app: App| {
        let hbone_server = hbone_server.clone();
        async move {
            let mut listener = hbone_server
                .bind("127.0.0.1:0".parse().map_err(e)?)
                .await
                .map_err(e)?;
            let addr = listener.local_addr();
            tokio::spawn(async move {
                while let Some(req) = listener.accept().await {
                    if let Ok(s) = req.accept() {
                        tokio::spawn(run_app(app, s));
                    }
                }
            });
            Ok::<SocketAddr, String>(addr)
        }
    };
    let start_plain = |app: App| {
        let acceptor = TlsAcceptor::from(tls_server.rustls_config());
        async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.map_err(e)?;
            let addr = listener.local_addr().map_err(e)?;
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            run_app(app, tls).await;
                        }
                    });
                }
            });
            Ok::<SocketAddr, String>(addr)
        }
    };
    let plain_client = ClientConfigBuilder::new(client_material.clone())
        .expect_server_ids([server_id.clone()])
        .versions(TlsVersion::Tls13, TlsVersion::Tls13)
        .and_then(|b| b.alpn_protocols([b"h2"]).sni(false).build())
        .map_err(e)?;
    let connector = TlsConnector::from(plain_client.rustls_config());
    let plain_connect = |addr: SocketAddr| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(addr).await.map_err(e)?;
            let _ = tcp.set_nodelay(true);
            connector
                .connect(server_name_for(None).map_err(e)?, tcp)
                .await
                .map_err(e)
        }
    };
    let client = HboneClient::default();

    // The 1,000-stream rows' child processes (see 3. below) run only their part.
    let child = std::env::var(CHILD_ENV).ok();
    if let Some(kind) = child.as_deref() {
        let echo = match kind {
            "tunnels" => rt.block_on(start_hbone(App::Echo))?,
            _ => rt.block_on(start_plain(App::Echo))?,
        };
        let client_material = Arc::new(client_material);
        let server_id = Arc::new(server_id);
        let (elapsed, mem, connections) = rt.block_on(async {
            let before = rss_kib();
            let t = Instant::now();
            let mut opened = Vec::with_capacity(CONCURRENT);
            for _ in 0..CONCURRENT {
                let (c, m, id) = (client.clone(), client_material.clone(), server_id.clone());
                let plain = plain_connect(echo);
                let tunnel = kind == "tunnels";
                opened.push(tokio::spawn(async move {
                    if tunnel {
                        c.connect(echo, echo, &m, &id)
                            .await
                            .map(Stream::Tunnel)
                            .map_err(e)
                    } else {
                        plain.await.map(|s| Stream::Plain(Box::new(s)))
                    }
                }));
            }
            let mut streams = Vec::with_capacity(CONCURRENT);
            for o in opened {
                streams.push(o.await.map_err(e)??);
            }
            let open_rss = rss_kib();
            let connections = client.connection_count();
            let mut runs = Vec::with_capacity(CONCURRENT);
            for s in streams {
                runs.push(tokio::spawn(async move {
                    match s {
                        Stream::Tunnel(s) => push(s, PER_STREAM).await,
                        Stream::Plain(s) => push(s, PER_STREAM).await,
                    }
                }));
            }
            let mut back = 0usize;
            for r in runs {
                back += r.await.map_err(e)??;
            }
            if back != CONCURRENT * PER_STREAM {
                return Err(format!("{kind}: {back} bytes echoed"));
            }
            let mem = open_rss.zip(before).map(|(a, b)| a.saturating_sub(b));
            Ok::<_, String>((t.elapsed(), mem, connections))
        })?;
        println!(
            "{CHILD_ENV} {} {} {connections}",
            elapsed.as_nanos(),
            mem.map_or(-1, |m| m as i64)
        );
        std::process::exit(0);
    }
    // 1. Throughput of one stream, the two alternated.
    let hbone_sink = rt.block_on(start_hbone(App::Sink))?;
    let plain_sink = rt.block_on(start_plain(App::Sink))?;
    let target: SocketAddr = format!("127.0.0.1:{}", hbone_sink.port())
        .parse()
        .map_err(e)?;
    if wanted("one tunnel") {
        let rounds = rounds(h.samples);
        let cpu0 = crate::ca_protocol::process_cpu();
        let (tunnel_t, plain_t, tunnel_cpu, plain_cpu) = rt.block_on(async {
            let (mut tunnel_t, mut plain_t) = (Vec::new(), Vec::new());
            let (mut tunnel_cpu, mut plain_cpu) = (Duration::ZERO, Duration::ZERO);
            let cpu = || crate::ca_protocol::process_cpu().unwrap_or_default();
            for _ in 0..rounds {
                let s = client
                    .connect(hbone_sink, target, &client_material, &server_id)
                    .await
                    .map_err(e)?;
                let (t, c) = (Instant::now(), cpu());
                push(s, STREAM_BYTES).await?;
                tunnel_t.push(t.elapsed());
                tunnel_cpu += cpu().saturating_sub(c);
                let s = plain_connect(plain_sink).await?;
                let (t, c) = (Instant::now(), cpu());
                push(s, STREAM_BYTES).await?;
                plain_t.push(t.elapsed());
                plain_cpu += cpu().saturating_sub(c);
            }
            Ok::<_, String>((tunnel_t, plain_t, tunnel_cpu, plain_cpu))
        })?;
        // CPU per MiB of both sides (this process runs client and server), when /proc tells.
        let cpu_note = match cpu0 {
            Some(_) => {
                let per = |d: Duration| {
                    d.as_secs_f64() * 1e3
                        / (f64::from(rounds as u32) * (STREAM_BYTES / (1024 * 1024)) as f64)
                };
                format!(
                    "; CPU {:.2} vs {:.2} ms per MiB",
                    per(tunnel_cpu),
                    per(plain_cpu)
                )
            }
            None => String::new(),
        };
        let mib = (STREAM_BYTES / (1024 * 1024)) as u32;
        // The spread: each round's ratio (the plain stream's time over the tunnel's).
        let ratios: Vec<f64> = tunnel_t
            .iter()
            .zip(&plain_t)
            .map(|(t, p)| p.as_secs_f64() / t.as_secs_f64())
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        let (tun, pl) = (median(tunnel_t), median(plain_t));
        let rate = |d: Duration| STREAM_BYTES as f64 / d.as_secs_f64() / (1024.0 * 1024.0);
        h.pair(
            "hbone",
            stat("one tunnel, per MiB", tun / mib),
            stat("plain mTLS stream (tokio-rustls), per MiB", pl / mib),
            Some(0.9),
            &format!(
                "{:.0} MiB/s vs {:.0} MiB/s, {STREAM_BYTES} bytes in {} KiB writes, median of {rounds} (round ratios {lo:.2}-{hi:.2}x){cpu_note}",
                rate(tun),
                rate(pl),
                chunk() / 1024
            ),
        );
    }

    // 2. Opening a tunnel on a pooled connection vs a new TLS connection.
    if wanted("CONNECT") {
        let ops = 50u64;
        let pooled = h.measure_batch("CONNECT on a pooled connection", ops, || {
            let _ = rt.block_on(async {
                for _ in 0..ops {
                    let s = client
                        .connect(hbone_sink, target, &client_material, &server_id)
                        .await
                        .map_err(e)?;
                    drop(s);
                }
                Ok::<(), String>(())
            });
        });
        let fresh = h.measure_batch("new TCP + TLS 1.3 handshake (mTLS, P-256)", ops, || {
            let _ = rt.block_on(async {
                for _ in 0..ops {
                    let s = plain_connect(plain_sink).await?;
                    drop(s);
                }
                Ok::<(), String>(())
            });
        });
        h.pair(
            "hbone",
            pooled,
            fresh,
            None,
            "one CONNECT round trip vs a full handshake",
        );
    }

    if wanted("tunnels over") {
        // 3. 1,000 concurrent streams: tunnels over the pool vs plain mTLS connections, each in a
        // child process of its own so that neither inherits the other's freed memory.
        let run_child = |kind: &str| -> Res<(Duration, Option<u64>, usize)> {
            let exe = std::env::current_exe().map_err(e)?;
            let out = std::process::Command::new(exe)
                .args(["--only", "hbone"])
                .env(CHILD_ENV, kind)
                .output()
                .map_err(e)?;
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(CHILD_ENV))
                .ok_or_else(|| {
                    format!(
                        "{kind} child said {text:?} {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                })?;
            let f: Vec<i64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            match f[..] {
                [ns, mem, conns] => Ok((
                    Duration::from_nanos(ns as u64),
                    u64::try_from(mem).ok(),
                    conns as usize,
                )),
                _ => Err(format!("{kind} child said {line:?}")),
            }
        };
        let (tunnels_t, tunnels_mem, connections) = run_child("tunnels")?;
        let (plain_t, plain_mem, _) = run_child("plain")?;
        let kib = |m: Option<u64>| {
            m.map_or("?".to_owned(), |k| {
                format!("{:.1} KiB", k as f64 / CONCURRENT as f64)
            })
        };
        let total = (2 * CONCURRENT * PER_STREAM) as f64 / (1024.0 * 1024.0);
        h.pair(
            "hbone",
            stat(&format!("{CONCURRENT} tunnels over {connections} pooled connections"), tunnels_t),
            stat(&format!("{CONCURRENT} plain mTLS connections"), plain_t),
            None,
            &format!(
                "64 KiB each way per stream; {:.0} vs {:.0} MiB/s; RSS growth per open stream {} vs {} (both sides)",
                total / tunnels_t.as_secs_f64(),
                total / plain_t.as_secs_f64(),
                kib(tunnels_mem),
                kib(plain_mem)
            ),
        );
    }

    Ok(())
}
