#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `meshtls hbone serve` and `meshtls hbone connect` as processes: bytes through the tunnel,
//! the refusals (wrong server identity, 401 from --allow, 503 from a closed --forward port)
//! with exit 1, and both against Istio's own Go HBONE peer when scripts/build-peers.sh built it.
#![cfg(feature = "hbone")]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use meshtls::ca::{CaParams, IssueParams, KeyKind};
use meshtls::{MeshCa, SpiffeId, TrustDomain};

const SERVER_ID: &str = "spiffe://cluster.local/ns/shop/sa/api";
const CLIENT_ID: &str = "spiffe://cluster.local/ns/gateway/sa/agc";

struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d =
            std::env::temp_dir().join(format!("meshtls-cli-hbone-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA with a server and a client SVID written as files: `--cert --key --bundle` for each.
fn identities(dir: &Scratch) -> (Vec<String>, Vec<String>) {
    let ca = MeshCa::create(&CaParams {
        key: KeyKind::EcP256,
        ..CaParams::new(TrustDomain::new("cluster.local").unwrap())
    })
    .unwrap();
    let root = dir.write("root.pem", &ca.root_cert_pem());
    let mut out = Vec::new();
    for (name, id) in [("server", SERVER_ID), ("client", CLIENT_ID)] {
        let svid = ca
            .issue(&SpiffeId::new(id).unwrap(), &IssueParams::default())
            .unwrap();
        out.push(vec![
            "--cert".to_owned(),
            dir.write(&format!("{name}.pem"), &svid.cert_chain_pem()),
            "--key".to_owned(),
            dir.write(&format!("{name}-key.pem"), &svid.private_key_pem()),
            "--bundle".to_owned(),
            root.clone(),
        ]);
    }
    let client = out.pop().unwrap();
    let server = out.pop().unwrap();
    (server, client)
}

/// A process killed on drop, with the address it printed on its first line.
struct Running(Child, SocketAddr);
impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("first line {line:?}"))
            .parse()
            .unwrap();
        Running(child, addr)
    }
}
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(server: &[String], forward: SocketAddr, extra: &[&str]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshtls"));
    cmd.args(["hbone", "serve", "--listen", "127.0.0.1:0", "--forward"])
        .arg(forward.to_string())
        .args(server)
        .args(extra);
    Running::start(cmd)
}

fn connect(
    client: &[String],
    via: SocketAddr,
    target: SocketAddr,
    server_id: &str,
    input: &[u8],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args(["hbone", "connect", "--via"])
        .arg(via.to_string())
        .arg("--target")
        .arg(target.to_string())
        .args(["--server-id", server_id])
        .args(client)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A TCP echo server on 127.0.0.1 (one thread per connection).
fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = conn.try_clone().unwrap();
                let mut w = conn;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn connect_and_serve_carry_bytes_and_refusals_exit_1() {
    let dir = Scratch::new("pair");
    let (server, client) = identities(&dir);
    let echo = echo();
    let acceptor = serve(&server, echo, &[]);
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let out = connect(&client, acceptor.1, echo, SERVER_ID, &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, input);

    // The server is not who the caller expects.
    let out = connect(
        &client,
        acceptor.1,
        echo,
        "spiffe://cluster.local/ns/shop/sa/other",
        b"x",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not spiffe://cluster.local/ns/shop/sa/other"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // 400: a target IP that is not the one dialled.
    let out = connect(
        &client,
        acceptor.1,
        "127.0.0.9:80".parse().unwrap(),
        SERVER_ID,
        b"x",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(400)"));

    // 401 from --allow, 503 from a forward to a closed port.
    let strict = serve(
        &server,
        echo,
        &["--allow", "spiffe://cluster.local/ns/ops/sa/admin"],
    );
    let out = connect(&client, strict.1, echo, SERVER_ID, b"x");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied by policy (401)"));
    let nowhere = serve(&server, closed_port(), &[]);
    let out = connect(&client, nowhere.1, echo, SERVER_ID, b"x");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no upstream (503)"));

    // Bad usage: a host name as target.
    let out = Command::new(env!("CARGO_BIN_EXE_meshtls"))
        .args([
            "hbone",
            "connect",
            "--via",
            "127.0.0.1:15008",
            "--target",
            "api.shop:80",
        ])
        .args(["--server-id", SERVER_ID])
        .args(&client)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid hbone target \"api.shop:80\""));
}

fn go_peer() -> Option<PathBuf> {
    let p = std::env::var_os("MESHTLS_HBONE_PEER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("MESHTLS_PEERS_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/meshtls-peers"))
                })
                .map(|dir| dir.join("hbone-peer"))
        })?;
    if p.is_file() {
        Some(p)
    } else {
        // CI always builds the peers: there a missing peer is a failure, never a pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "Istio's HBONE peer is missing in CI ({}): scripts/build-peers.sh did not build it",
            p.display()
        );
        eprintln!(
            "SKIP: Istio's HBONE peer not built ({}); run scripts/build-peers.sh",
            p.display()
        );
        None
    }
}

/// The Go peer's flags: --cert/--key/--ca instead of --bundle.
fn go_flags(identity: &[String]) -> Vec<String> {
    identity
        .iter()
        .map(|a| {
            if a == "--bundle" {
                "--ca".to_owned()
            } else {
                a.clone()
            }
        })
        .collect()
}

#[test]
fn cli_against_istio_go_hbone() {
    let Some(peer) = go_peer() else { return };
    let dir = Scratch::new("go");
    let (server, client) = identities(&dir);
    let echo = echo();
    // meshtls hbone connect -> Istio's pkg/hbone server -> echo.
    let mut cmd = Command::new(&peer);
    cmd.arg("server").args(go_flags(&server));
    let go_server = Running::start(cmd);
    let out = connect(
        &client,
        go_server.1,
        echo,
        SERVER_ID,
        b"through istio's server\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"through istio's server\n");
    // Istio's pkg/hbone dialer -> meshtls hbone serve -> echo.
    let acceptor = serve(&server, echo, &[]);
    let message = b"through istio's dialer\n";
    let mut child = Command::new(&peer)
        .arg("dial")
        .args(go_flags(&client))
        .args([
            "--via",
            &acceptor.1.to_string(),
            "--target",
            "127.0.0.1:8080",
        ])
        .args([
            "--server-id",
            SERVER_ID,
            "--read",
            &message.len().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.stdout, message);
}
