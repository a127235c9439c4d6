//! One CLI convention (issue 13): every command that reads a CA takes `--ca DIR`; with
//! `--json` every error is `{"error", "kind"}` on standard output whatever the exit code;
//! messages are Display text, never Debug.

use std::process::Output;

fn meshtls(args: &[&str], stdin: Option<&str>) -> Output {
    crate::support::output(args, stdin.unwrap_or(""))
}

/// Runs with --json and returns (exit code, the one JSON object on stdout).
fn json(args: &[&str], stdin: Option<&str>) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = meshtls(&all, stdin);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON object ({e}): {stdout:?}; stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), value)
}

fn assert_error(args: &[&str], stdin: Option<&str>, code: i32, kind: &str) -> String {
    let (got, v) = json(args, stdin);
    assert_eq!(got, code, "{args:?}: {v}");
    assert_eq!(v["kind"], kind, "{args:?}: {v}");
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{args:?}: no error in {v}"));
    assert!(!msg.is_empty());
    for debug in ["Other(", "OtherError", " { ", "Err(", "Some("] {
        assert!(!msg.contains(debug), "{args:?}: a Debug dump in {msg:?}");
    }
    msg.to_owned()
}

#[test]
fn usage_errors_are_json_with_exit_code_2() {
    // clap's own refusals: unknown flag, missing argument, unknown subcommand.
    let m = assert_error(&["id", "--frobnicate", "x"], None, 2, "usage");
    assert!(m.contains("--frobnicate"), "{m}");
    assert_error(
        &["issue", "spiffe://cluster.local/ns/a/sa/b"],
        None,
        2,
        "usage",
    );
    assert_error(&["no-such-command"], None, 2, "usage");
    // Our own usage checks.
    assert_error(
        &["policy", "resolve", "-n", "a", "-l", "novalue", "-"],
        Some(""),
        2,
        "usage",
    );
    assert_error(&["verify", "-"], Some(""), 2, "usage");
    // Without --json the same refusal is text on stderr, nothing on stdout.
    let out = meshtls(&["id", "--frobnicate", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.is_empty());
}

#[test]
fn unreadable_files_and_bad_cas_are_json_too() {
    let m = assert_error(&["policy", "check", "/nonexistent/pa.yaml"], None, 2, "io");
    assert!(m.contains("/nonexistent/pa.yaml"), "{m}");
    // Every command that reads a CA takes --ca DIR, and reports a missing CA the same way.
    for args in [
        vec!["ca", "cacerts", "--ca", "/nonexistent/ca"],
        vec![
            "ca",
            "intermediate",
            "--ca",
            "/nonexistent/ca",
            "/tmp/meshtls-never-written",
        ],
        vec![
            "issue",
            "--ca",
            "/nonexistent/ca",
            "spiffe://cluster.local/ns/a/sa/b",
        ],
        vec![
            "secret",
            "--ca",
            "/nonexistent/ca",
            "--name",
            "n",
            "--namespace",
            "a",
            "spiffe://cluster.local/ns/a/sa/b",
        ],
        vec![
            "sign-csr",
            "--ca",
            "/nonexistent/ca",
            "-",
            "spiffe://cluster.local/ns/a/sa/b",
        ],
    ] {
        let (code, v) = json(&args, Some(""));
        assert!(code == 1 || code == 2, "{args:?}: {code} {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|m| m.contains("/nonexistent/ca")),
            "{args:?}: {v}"
        );
        assert!(v["kind"].is_string(), "{args:?}: {v}");
    }
    // The old positional form of `ca cacerts` is gone.
    assert_error(&["ca", "cacerts", "/nonexistent/ca"], None, 2, "usage");
}

#[test]
fn verdicts_of_no_carry_error_and_kind() {
    let m = assert_error(&["id", "spiffe://Bad/x"], None, 1, "spiffe_id");
    assert!(m.contains("trust domain characters"), "{m}");
    assert_error(&["mesh", "-"], Some("trustDomain: [1]\n"), 1, "mesh_config");
}

#[test]
fn authz_check_refusals_carry_kind_like_every_command() {
    // Text that is no manifest stream: the same shape as `policy check`'s refusal.
    let bad = "kind: AuthorizationPolicy\nmetadata: {name: x\n";
    let m = assert_error(&["authz", "check", "-"], Some(bad), 1, "manifest");
    assert!(m.contains("AuthorizationPolicy"), "{m}");
    let (_, v) = json(&["authz", "check", "-"], Some(bad));
    assert_eq!(
        (&v["valid"], &v["objects"], &v["skipped"]),
        (
            &serde_json::json!(false),
            &serde_json::json!([]),
            &serde_json::json!(0)
        ),
        "{v}"
    );
    // A document that is no Kubernetes object: refused by the AuthorizationPolicy reader.
    let m = assert_error(
        &["authz", "check", "-"],
        Some("foo: bar\n"),
        1,
        "authorization_policy",
    );
    assert!(m.contains("has no kind"), "{m}");
}

#[test]
fn check_and_resolve_agree_on_malformed_yaml() {
    let bad = "kind: PeerAuthentication\nmetadata: {name: x\n";
    let check = assert_error(&["policy", "check", "-"], Some(bad), 1, "manifest");
    let resolve = assert_error(
        &["policy", "resolve", "-n", "a", "-"],
        Some(bad),
        1,
        "manifest",
    );
    assert_eq!(check, resolve);
    assert!(
        check.starts_with("cannot parse PeerAuthentication manifests: "),
        "{check}"
    );
    // Other kinds are skipped by both; a document without kind is refused by both.
    let (code, v) = json(
        &["policy", "check", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
    );
    assert_eq!((code, v["skipped"].as_u64()), (1, Some(1)), "{v}");
    let (code, v) = json(
        &["policy", "resolve", "-n", "a", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
    );
    assert_eq!(
        (code, v["skipped"].as_u64(), v["mode"].as_str()),
        (0, Some(1), Some("PERMISSIVE")),
        "{v}"
    );
    let check = assert_error(&["policy", "check", "-"], Some("foo: bar\n"), 1, "policy");
    let resolve = assert_error(
        &["policy", "resolve", "-n", "a", "-"],
        Some("foo: bar\n"),
        1,
        "policy",
    );
    assert_eq!(check, resolve);
}

/// `meshtls ... | head` closes the pipe early: the command ends quietly (no panic message,
/// the verdict's exit code kept), as Unix tools do.
#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader); // nobody will read: the first write fails with EPIPE
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_meshtls"));
        cmd.args(["id", "spiffe://cluster.local/ns/a/sa/b"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run meshtls");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "json={json}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "json={json}: {stderr}");
    }
}
