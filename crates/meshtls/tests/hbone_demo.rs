#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs the demo's ambient mode, `cargo run --example gateway_to_sidecar -- --ambient`, from the
//! binary that `cargo test` builds beside the tests, and checks what it reports.

use std::path::PathBuf;
use std::process::Command;

fn example_binary() -> Option<PathBuf> {
    // target/<profile>/deps/hbone_demo-<hash> → target/<profile>/examples/gateway_to_sidecar
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("gateway_to_sidecar");
    path.exists().then_some(path)
}

#[test]
fn the_ambient_demo_tunnels_and_types_every_refusal() {
    let bin = example_binary().expect(
        "examples/gateway_to_sidecar is not built: run `cargo test -p meshtls` (it builds the examples) \
         or `cargo build --example gateway_to_sidecar` first",
    );
    let out = Command::new(bin).arg("--ambient").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "HBONE acceptor standing in for ztunnel",
        "app answered HTTP/1.1 200 OK",
        "on the same connection (1 open)",
        "refused as a bad request (400)",
        "no upstream (503)",
        "is not spiffe://cluster.local/ns/demo/sa/other",
        "denied by policy (401)",
        "every step behaved as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("UNEXPECTED"), "{stdout}");
}
