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
    // `cargo test` (without --test) builds every example next to the tests; a missing binary
    // means the test was run on its own, which must not pass silently.
    let bin = example_binary().expect(
        "examples/gateway_to_sidecar is not built: run `cargo test -p meshtls` (it builds the examples) \
         or `cargo build --example gateway_to_sidecar` first",
    );
    let mut child = Command::new(bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against a hung demo, not a speed check: the demo takes about a second.
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(600) {
            child.kill().ok();
            panic!("the demo did not finish within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
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
        "offline path check  refused: denied: ALLOW policies apply",
        "gateway got   HTTP/1.1 403 Forbidden RBAC: access denied",
        "GET /api/headers denied by AuthorizationPolicy",
        "every step behaved as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("UNEXPECTED"), "{stdout}");
}
