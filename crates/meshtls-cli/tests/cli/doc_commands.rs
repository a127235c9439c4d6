//! The `meshtls` commands shown in README.md and docs/*.md run as written.
//!
//! Every ```sh block whose commands are all `meshtls ...` (or `examples/manifests/make-chain.sh`,
//! which calls it) runs in bash from the repository root, with this build's `meshtls` first on
//! PATH and `/tmp/` mapped to a fresh directory. Each command must exit 0, or the code its
//! trailing comment names as `(exit N)`. Blocks that call other programs (cargo, curl, kubectl,
//! pip, a long-running server) are shown, not run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::repo;

/// (page:line, commands) of every ```sh block, continuation lines joined.
fn sh_blocks() -> Vec<(String, Vec<(usize, String)>)> {
    let root = repo();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);

    let mut blocks = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        let mut current: Option<(usize, Vec<(usize, String)>)> = None;
        let mut pending: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = line.trim();
            match &mut current {
                None if trimmed == "```sh" => current = Some((n, Vec::new())),
                None => {}
                Some((start, commands)) if trimmed == "```" => {
                    assert!(
                        pending.is_none(),
                        "{name}:{n}: a command ends with a backslash"
                    );
                    blocks.push((format!("{name}:{start}"), std::mem::take(commands)));
                    current = None;
                }
                Some((_, commands)) => {
                    let (at, mut joined) = pending.take().unwrap_or((n, String::new()));
                    joined.push_str(trimmed.trim_end_matches('\\').trim_end());
                    joined.push(' ');
                    if trimmed.ends_with('\\') {
                        pending = Some((at, joined));
                    } else if !joined.trim().is_empty() && !joined.trim_start().starts_with('#') {
                        commands.push((at, joined.trim().to_owned()));
                    }
                }
            }
        }
        assert!(current.is_none(), "{name}: unclosed ```sh block");
    }
    blocks
}

fn runnable(commands: &[(usize, String)]) -> bool {
    !commands.is_empty()
        && commands.iter().all(|(_, c)| {
            // Servers and the controller (which needs a cluster) are run by their own tests.
            c.starts_with("meshtls ")
                && !c.starts_with("meshtls ca serve")
                && !c.starts_with("meshtls hbone serve")
                && !c.starts_with("meshtls workload-api serve")
                && !c.starts_with("meshtls controller ")
                || c.starts_with("examples/manifests/make-chain.sh ")
        })
}

/// The exit code a command's trailing comment names as `(exit N)`, else 0.
fn expected_exit(command: &str) -> i32 {
    let Some(comment) = command.split_once(" #").map(|(_, c)| c) else {
        return 0;
    };
    let Some(rest) = comment.split_once("(exit ").map(|(_, r)| r) else {
        return 0;
    };
    rest.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("bad (exit N) in {command:?}"))
}

#[test]
fn the_documented_commands_run() {
    let blocks = sh_blocks();
    let bin = Path::new(env!("CARGO_BIN_EXE_meshtls"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = Vec::new();
    for (where_, commands) in &blocks {
        if !runnable(commands) {
            continue;
        }
        let tmp = std::env::temp_dir().join(format!(
            "meshtls-doc-commands-{}-{}",
            std::process::id(),
            ran.len()
        ));
        std::fs::create_dir_all(&tmp).unwrap();
        for (line, command) in commands {
            let command = command.replace("/tmp/", &format!("{}/", tmp.display()));
            let out = Command::new("bash")
                .arg("-c")
                .arg(&command)
                .current_dir(repo())
                .env("PATH", &path)
                .output()
                .unwrap();
            let want = expected_exit(&command);
            assert_eq!(
                out.status.code(),
                Some(want),
                "{where_} (line {line}): `{command}` exited {:?}, the page says {want}\nstdout: {}\nstderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
        }
        std::fs::remove_dir_all(&tmp).unwrap();
        ran.push(where_.clone());
    }
    // The walk must reach the pages' command blocks, or this test proves nothing.
    for page in [
        "README.md",
        "docs/identity.md",
        "docs/peer-authentication.md",
        "docs/authorization-policy.md",
        "docs/ca.md",
    ] {
        assert!(
            ran.iter().any(|w| w.starts_with(&format!("{page}:"))),
            "no command block of {page} ran: {ran:?}"
        );
    }
}

#[test]
fn blocks_with_other_programs_are_not_run() {
    let cargo = vec![(1, "cargo run --example gateway_to_sidecar".to_owned())];
    assert!(!runnable(&cargo));
    let serve = vec![(1, "meshtls ca serve --ca /tmp/mesh-ca".to_owned())];
    assert!(!runnable(&serve));
    let cli = vec![(1, "meshtls id spiffe://cluster.local/ns/a/sa/b".to_owned())];
    assert!(runnable(&cli));
    assert_eq!(expected_exit("meshtls path check x   # (exit 1)"), 1);
    assert_eq!(expected_exit("meshtls policy check x   # valid"), 0);
}
