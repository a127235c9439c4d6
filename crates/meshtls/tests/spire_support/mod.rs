//! SPIRE as a real Workload API server for the client tests: spire-server (in-memory sqlite,
//! join-token node attestation, keys in memory) and spire-agent (unix workload attestor) on
//! loopback and temporary unix sockets, built from the published Go module
//! github.com/spiffe/spire v1.13.3 by scripts/build-spiffe-peers.sh into
//! ~/.cache/meshtls-peers/spire/.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The trust domain of the test SPIRE.
pub const TRUST_DOMAIN: &str = "spire.test";

/// The directory with spire-server and spire-agent, or None after saying why (a failure in CI).
pub fn spire_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("MESHTLS_PEERS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/meshtls-peers"))
        })?
        .join("spire");
    if dir.join("spire-server").is_file() && dir.join("spire-agent").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "SPIRE is missing in CI ({}): scripts/build-spiffe-peers.sh did not build it",
        dir.display()
    );
    eprintln!(
        "SKIP: SPIRE not built ({}); run scripts/build-spiffe-peers.sh",
        dir.display()
    );
    None
}

/// A running spire-server and spire-agent, stopped (and their files removed) on drop.
pub struct Spire {
    bin: PathBuf,
    dir: PathBuf,
    server: Child,
    agent: Option<Child>,
    /// The agent's SPIFFE ID (the parent of workload entries).
    pub agent_id: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "{what}: not ready after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Spire {
    /// Starts the server and the agent; the test process has no entry yet (see
    /// [`Spire::entry_for_me`]). None when SPIRE is not built (the caller skips).
    pub fn start(name: &str) -> Option<Spire> {
        let bin = spire_bin()?;
        // Short paths: a unix socket path has at most 107 bytes.
        let dir = std::env::temp_dir().join(format!("mtls-spire-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("server")).unwrap();
        std::fs::create_dir_all(dir.join("agent")).unwrap();
        let port = free_port();
        std::fs::write(
            dir.join("server.conf"),
            format!(
                r#"server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{dir}/server.sock"
    trust_domain = "{TRUST_DOMAIN}"
    data_dir = "{dir}/server"
    log_level = "WARN"
    ca_ttl = "24h"
    default_x509_svid_ttl = "1h"
    default_jwt_svid_ttl = "5m"
}}
plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "file:memdb-{name}?mode=memory&cache=shared"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data {{}}
    }}
}}
"#,
                dir = dir.display()
            ),
        )
        .unwrap();
        let server = Command::new(bin.join("spire-server"))
            .arg("run")
            .arg("-config")
            .arg(dir.join("server.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let mut spire = Spire {
            bin,
            dir,
            server,
            agent: None,
            agent_id: String::new(),
        };
        wait_until("spire-server", Duration::from_secs(60), || {
            spire.server_cli(&["healthcheck"]).is_ok()
        });
        let bundle = spire.server_cli(&["bundle", "show"]).unwrap();
        std::fs::write(spire.dir.join("bundle.pem"), bundle).unwrap();
        let token_out = spire
            .server_cli(&["token", "generate", "-ttl", "600"])
            .unwrap();
        // `Token: <uuid>` (later lines may carry advice).
        let token = token_out
            .lines()
            .find_map(|l| l.strip_prefix("Token:"))
            .unwrap_or_else(|| panic!("token generate said {token_out:?}"))
            .trim()
            .to_owned();
        spire.agent_id = format!("spiffe://{TRUST_DOMAIN}/spire/agent/join_token/{token}");
        std::fs::write(
            spire.dir.join("agent.conf"),
            format!(
                r#"agent {{
    data_dir = "{dir}/agent"
    log_level = "WARN"
    server_address = "127.0.0.1"
    server_port = "{port}"
    socket_path = "{dir}/agent.sock"
    trust_bundle_path = "{dir}/bundle.pem"
    trust_domain = "{TRUST_DOMAIN}"
    experimental {{
        sync_interval = "1s"
    }}
}}
plugins {{
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data {{}}
    }}
    WorkloadAttestor "unix" {{
        plugin_data {{}}
    }}
}}
"#,
                dir = spire.dir.display()
            ),
        )
        .unwrap();
        let agent = Command::new(spire.bin.join("spire-agent"))
            .arg("run")
            .arg("-config")
            .arg(spire.dir.join("agent.conf"))
            .arg("-joinToken")
            .arg(&token)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(spire.dir.join("agent.log")).unwrap())
            .spawn()
            .unwrap();
        spire.agent = Some(agent);
        let socket = spire.agent_socket();
        let agent_bin = spire.bin.join("spire-agent");
        wait_until("spire-agent", Duration::from_secs(60), || {
            Command::new(&agent_bin)
                .args(["healthcheck", "-socketPath"])
                .arg(&socket)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        Some(spire)
    }

    /// The agent's Workload API socket.
    pub fn agent_socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// `unix://<socket>`, the agent's address as `SPIFFE_ENDPOINT_SOCKET` spells it.
    pub fn agent_address(&self) -> String {
        format!("unix://{}", self.agent_socket().display())
    }

    /// The server's trust bundle (PEM), as `spire-server bundle show` prints it.
    pub fn bundle_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("bundle.pem")).unwrap()
    }

    /// Runs `spire-server <args> -socketPath <server socket>`: stdout, or stdout and stderr
    /// as the error.
    pub fn server_cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(self.bin.join("spire-server"))
            .args(args)
            .arg("-socketPath")
            .arg(self.dir.join("server.sock"))
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Runs `spire-agent api <args> -socketPath <agent socket>` (SPIRE's own client).
    pub fn agent_api(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(self.bin.join("spire-agent"))
            .arg("api")
            .args(args)
            .arg("-socketPath")
            .arg(self.agent_socket())
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Creates a workload entry for this process's uid (`unix:uid:<uid>`) with `spiffe_id`
    /// and `extra` flags (e.g. `-hint`, `-x509SVIDTTL`, `-dns`); returns the entry ID.
    pub fn entry_for_me(&self, spiffe_id: &str, extra: &[&str]) -> String {
        let selector = format!("unix:uid:{}", my_uid());
        let mut args = vec![
            "entry",
            "create",
            "-parentID",
            &self.agent_id,
            "-spiffeID",
            spiffe_id,
            "-selector",
            &selector,
        ];
        args.extend_from_slice(extra);
        let out = self.server_cli(&args).unwrap();
        out.lines()
            .find_map(|l| {
                l.strip_prefix("Entry ID")
                    .map(|r| r.trim_start_matches([' ', ':']).trim().to_owned())
            })
            .unwrap_or_else(|| panic!("entry create said {out:?}"))
    }

    /// Updates an entry made by [`Spire::entry_for_me`] (SPIRE re-signs its SVIDs at the
    /// agent's next sync: a rotation).
    pub fn update_entry(&self, entry_id: &str, spiffe_id: &str, extra: &[&str]) {
        let selector = format!("unix:uid:{}", my_uid());
        let mut args = vec![
            "entry",
            "update",
            "-entryID",
            entry_id,
            "-parentID",
            &self.agent_id,
            "-spiffeID",
            spiffe_id,
            "-selector",
            &selector,
        ];
        args.extend_from_slice(extra);
        self.server_cli(&args).unwrap();
    }

    /// Waits until the agent serves `spiffe_id` to this process (SPIRE's own client asks).
    pub fn wait_served(&self, spiffe_id: &str) {
        wait_until(
            &format!("spire-agent serving {spiffe_id}"),
            Duration::from_secs(60),
            || {
                self.agent_api(&["fetch", "x509"])
                    .is_ok_and(|out| out.contains(spiffe_id))
            },
        );
    }

    /// The files of this instance (configs, logs, sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Spire {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.as_mut() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        if std::thread::panicking() {
            for log in ["server.log", "agent.log"] {
                if let Ok(text) = std::fs::read_to_string(self.dir.join(log)) {
                    eprintln!("---- {log} ----\n{text}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// This process's uid (from /proc, without libc).
pub fn my_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap()
}
