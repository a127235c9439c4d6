//! Who is calling: the peer credentials of a unix socket (`SO_PEERCRED`: uid, gid, pid), the
//! binary behind the pid (`/proc/<pid>/exe`) and its supplementary groups, with a guard against
//! pid reuse; the owner of a loopback tcp connection from `/proc/net/tcp`.
//!
//! The guard: the process's start time (`/proc/<pid>/stat`, field 22) is read when the
//! connection is accepted and again after every attestation; a caller whose pid now names
//! another process (the original exited and the pid was reused) is refused with
//! `Unauthenticated`, as SPIRE's agent does.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The attested facts about a caller, from which its selectors are made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// The user id, when known.
    pub uid: Option<u32>,
    /// The primary group id, when known.
    pub gid: Option<u32>,
    /// The process id, when known (unix sockets in the same pid namespace).
    pub pid: Option<i32>,
    /// The supplementary group ids (from `/proc/<pid>/status`).
    pub supplementary_gids: Vec<u32>,
    /// The binary's path (from `/proc/<pid>/exe`).
    pub path: Option<PathBuf>,
}

impl Caller {
    /// The selectors of this caller, as registration entries name them: `unix:uid:<n>`,
    /// `unix:gid:<n>`, `unix:supplementary_gid:<n>`, `unix:path:<path>`.
    pub fn selectors(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(uid) = self.uid {
            out.push(format!("unix:uid:{uid}"));
        }
        if let Some(gid) = self.gid {
            out.push(format!("unix:gid:{gid}"));
        }
        for g in &self.supplementary_gids {
            out.push(format!("unix:supplementary_gid:{g}"));
        }
        if let Some(path) = &self.path {
            out.push(format!("unix:path:{}", path.display()));
        }
        out
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<String>| v.unwrap_or_else(|| "?".to_owned());
        write!(
            f,
            "uid={} gid={} pid={}",
            show(self.uid.map(|v| v.to_string())),
            show(self.gid.map(|v| v.to_string())),
            show(self.pid.map(|v| v.to_string()))
        )
    }
}

/// What is known about a connection when it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PeerCred {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
    /// The process's start time (clock ticks since boot) at accept time.
    pub start_time: Option<u64>,
}

/// Why attestation refused a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttestError {
    /// The pid no longer names the process that connected.
    Vanished(String),
}

impl PeerCred {
    /// The credentials of a unix-socket peer.
    pub(crate) fn of_unix(stream: &tokio::net::UnixStream) -> PeerCred {
        match stream.peer_cred() {
            Ok(cred) => {
                let pid = cred.pid().filter(|p| *p > 0);
                PeerCred {
                    uid: Some(cred.uid()),
                    gid: Some(cred.gid()),
                    pid,
                    start_time: pid.and_then(start_time),
                }
            }
            Err(_) => PeerCred::default(),
        }
    }

    /// The owner of a loopback tcp connection: the uid of the socket whose local address is
    /// the peer's and whose remote address is ours, from `/proc/net/tcp` or `/proc/net/tcp6`.
    pub(crate) fn of_tcp(peer: SocketAddr, local: SocketAddr) -> PeerCred {
        PeerCred {
            uid: tcp_owner(peer, local),
            ..PeerCred::default()
        }
    }

    /// Attests the caller now: the binary's path and groups through `/proc`, then the start
    /// time again (the pid-reuse guard).
    pub(crate) fn attest(&self) -> Result<Caller, AttestError> {
        let mut caller = Caller {
            uid: self.uid,
            gid: self.gid,
            pid: self.pid,
            ..Caller::default()
        };
        let Some(pid) = self.pid else {
            return Ok(caller);
        };
        caller.path = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| {
                let text = p.to_string_lossy();
                match text.strip_suffix(" (deleted)") {
                    Some(t) => PathBuf::from(t),
                    None => p,
                }
            });
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(rest) = line.strip_prefix("Groups:") {
                    caller.supplementary_gids = rest
                        .split_whitespace()
                        .filter_map(|g| g.parse().ok())
                        .collect();
                }
            }
        }
        if self.start_time.is_none() || start_time(pid) != self.start_time {
            return Err(AttestError::Vanished(format!(
                "process {pid} is not the one that connected (it exited or its pid was reused)"
            )));
        }
        Ok(caller)
    }
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command, which may hold spaces).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the command start at field 3; start time is field 22.
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

fn tcp_owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (file, want_local, want_remote) = match (peer, local) {
        (SocketAddr::V4(p), SocketAddr::V4(l)) => (
            "/proc/net/tcp",
            format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(p.ip().octets()),
                p.port()
            ),
            format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(l.ip().octets()),
                l.port()
            ),
        ),
        (SocketAddr::V6(p), SocketAddr::V6(l)) => (
            "/proc/net/tcp6",
            hex6(p.ip().octets(), p.port()),
            hex6(l.ip().octets(), l.port()),
        ),
        _ => return None,
    };
    let table = std::fs::read_to_string(file).ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.len() > 7 && cols[1] == want_local && cols[2] == want_remote)
            .then(|| cols[7].parse().ok())
            .flatten()
    })
}

/// `/proc/net/tcp6` writes an address as four 32-bit words, each in host byte order.
fn hex6(octets: [u8; 16], port: u16) -> String {
    let mut out = String::with_capacity(38);
    for word in octets.chunks(4) {
        let w = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
        out.push_str(&format!("{w:08X}"));
    }
    out.push_str(&format!(":{port:04X}"));
    out
}
