#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs the README's main job, `cargo run --example gateway_to_sidecar`, from the binary that
//! `cargo test` builds beside the tests, and checks what it reports.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn example_binary() -> Option<PathBuf> {
    // target/<profile>/deps/tls_demo-<hash> → target/<profile>/examples/gateway_to_sidecar
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("gateway_to_sidecar");
    path.exists().then_some(path)
}

#[test]
fn the_demo_runs_and_every_step_behaves() {
    let Some(bin) = example_binary() else {
        eprintln!("SKIP: examples/gateway_to_sidecar was not built by this cargo invocation");
        return;
    };
    let started = Instant::now();
    let out = Command::new(bin).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "TLS version   TLSv1.2",
        "TLS version   TLSv1.3",
        "sidecar ID    spiffe://cluster.local/ns/demo/sa/api",
        "x-forwarded-client-cert",
        "By=spiffe://cluster.local/ns/demo/sa/api;Hash=",
        "connection refused under STRICT: plaintext connection",
        "PERMISSIVE: plaintext from",
        "PERMISSIVE: mTLS from spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller",
        "every step behaved as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("UNEXPECTED"), "{stdout}");
}
