//! The Workload API's address: `SPIFFE_ENDPOINT_SOCKET`, parsed as SPIFFE Workload Endpoint §4
//! says.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{EndpointRule, WorkloadClientError, quote};

/// The environment variable that names the Workload API endpoint.
pub const ENDPOINT_SOCKET_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where a Workload API server listens: a unix socket or a TCP address.
///
/// Parsed exactly as SPIFFE Workload Endpoint §4 says (RFC 3986 URIs):
///
/// - `unix:///absolute/path`: scheme and an absolute path, **no authority** (so `unix://host/x`
///   and go-spiffe's lenient `unix://relative` are refused), nothing else. `unix:/path` (no
///   `//` at all) has no authority either and is accepted. Percent escapes in the path are
///   decoded.
/// - `tcp://<ip>:<port>`: the host an IPv4 address or a bracketed IPv6 address (never a name),
///   the port mandatory (1-65535), nothing else: no user information, no path (not even `/`).
/// - No query and no fragment on either. Schemes compare case-insensitively (RFC 3986 §3.1).
///
/// ```
/// use meshtls::workload_api::Endpoint;
///
/// let e = Endpoint::parse("unix:///run/spire/agent.sock")?;
/// assert_eq!(e.to_string(), "unix:///run/spire/agent.sock");
/// let e = Endpoint::parse("tcp://127.0.0.1:8000")?;
/// assert_eq!(e, Endpoint::Tcp("127.0.0.1:8000".parse().unwrap()));
///
/// let err = Endpoint::parse("tcp://127.0.0.1:8000/foo").unwrap_err();
/// assert_eq!(err.to_string(), "workload api address \"tcp://127.0.0.1:8000/foo\" is invalid: \
///     a tcp address must not set a path");
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A unix domain socket at this absolute path.
    Unix(PathBuf),
    /// A TCP listen socket at this IP address and port.
    Tcp(SocketAddr),
}

fn refuse(value: &str, rule: EndpointRule) -> WorkloadClientError {
    WorkloadClientError::Endpoint {
        value: quote(value),
        rule,
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn percent_decode(value: &str, text: &str) -> Result<String, WorkloadClientError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| refuse(value, EndpointRule::Escape))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err(refuse(value, EndpointRule::Escape));
    }
    String::from_utf8(out).map_err(|_| refuse(value, EndpointRule::Escape))
}

impl Endpoint {
    /// Parses an address (see the type's documentation for the rules); each refusal is a
    /// [`WorkloadClientError::Endpoint`] naming the value and the [`EndpointRule`].
    pub fn parse(value: &str) -> Result<Endpoint, WorkloadClientError> {
        if value.is_empty() {
            return Err(refuse(value, EndpointRule::Empty));
        }
        let (scheme, rest) = value
            .split_once(':')
            .filter(|(s, _)| is_scheme(s))
            .ok_or_else(|| refuse(value, EndpointRule::NotUri))?;
        if rest.contains(['?', '#']) {
            return Err(refuse(value, EndpointRule::QueryOrFragment));
        }
        if scheme.eq_ignore_ascii_case("unix") {
            let path = match rest.strip_prefix("//") {
                Some(after) => {
                    // `//` starts an authority, which runs to the next `/`; it must be empty.
                    let cut = after.find('/').unwrap_or(after.len());
                    if cut != 0 {
                        return Err(refuse(value, EndpointRule::UnixAuthority));
                    }
                    after
                }
                None => rest,
            };
            if !path.starts_with('/') || path.len() < 2 {
                return Err(refuse(value, EndpointRule::UnixPath));
            }
            Ok(Endpoint::Unix(PathBuf::from(percent_decode(value, path)?)))
        } else if scheme.eq_ignore_ascii_case("tcp") {
            let authority = rest
                .strip_prefix("//")
                .ok_or_else(|| refuse(value, EndpointRule::TcpAuthority))?;
            let (authority, path) = match authority.find('/') {
                Some(cut) => authority.split_at(cut),
                None => (authority, ""),
            };
            if !path.is_empty() {
                return Err(refuse(value, EndpointRule::TcpPath));
            }
            if authority.contains('@') {
                return Err(refuse(value, EndpointRule::TcpUserinfo));
            }
            let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| refuse(value, EndpointRule::TcpHost))?;
                let ip = std::net::Ipv6Addr::from_str(host)
                    .map_err(|_| refuse(value, EndpointRule::TcpHost))?;
                let port = after
                    .strip_prefix(':')
                    .ok_or_else(|| refuse(value, EndpointRule::TcpPort))?;
                (IpAddr::V6(ip), port)
            } else {
                let (host, port) = authority
                    .rsplit_once(':')
                    .ok_or_else(|| refuse(value, EndpointRule::TcpPort))?;
                let ip = std::net::Ipv4Addr::from_str(host)
                    .map_err(|_| refuse(value, EndpointRule::TcpHost))?;
                (IpAddr::V4(ip), port)
            };
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| refuse(value, EndpointRule::TcpPort))?;
            Ok(Endpoint::Tcp(SocketAddr::new(host, port)))
        } else {
            Err(refuse(value, EndpointRule::Scheme))
        }
    }

    /// The address in `SPIFFE_ENDPOINT_SOCKET`: [`WorkloadClientError::NoEndpoint`] when it is
    /// unset (or not UTF-8 text), otherwise [`Endpoint::parse`]'s verdict.
    pub fn from_env() -> Result<Endpoint, WorkloadClientError> {
        match std::env::var(ENDPOINT_SOCKET_ENV) {
            Ok(value) => Endpoint::parse(&value),
            Err(_) => Err(WorkloadClientError::NoEndpoint),
        }
    }

    /// A unix socket endpoint from a path (must be absolute).
    pub fn unix(path: impl AsRef<Path>) -> Result<Endpoint, WorkloadClientError> {
        let path = path.as_ref();
        if !path.is_absolute() {
            return Err(refuse(&path.display().to_string(), EndpointRule::UnixPath));
        }
        Ok(Endpoint::Unix(path.to_path_buf()))
    }
}

impl FromStr for Endpoint {
    type Err = WorkloadClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

impl fmt::Display for Endpoint {
    /// The canonical URI: `unix:///path` (with `%`, `?`, `#` and non-printing bytes escaped)
    /// or `tcp://ip:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => {
                f.write_str("unix://")?;
                for b in path.to_string_lossy().bytes() {
                    if b == b'%' || b == b'?' || b == b'#' || !b.is_ascii_graphic() {
                        write!(f, "%{b:02X}")?;
                    } else {
                        write!(f, "{}", b as char)?;
                    }
                }
                Ok(())
            }
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(value: &str) -> EndpointRule {
        match Endpoint::parse(value) {
            Err(WorkloadClientError::Endpoint { rule, .. }) => rule,
            other => panic!("{value}: {other:?}"),
        }
    }

    #[test]
    fn accepted() {
        let unix = |p: &str| Endpoint::Unix(PathBuf::from(p));
        assert_eq!(
            Endpoint::parse("unix:///tmp/a.sock").unwrap(),
            unix("/tmp/a.sock")
        );
        assert_eq!(
            Endpoint::parse("unix:/tmp/a.sock").unwrap(),
            unix("/tmp/a.sock")
        );
        assert_eq!(Endpoint::parse("UNIX:///a%20b").unwrap(), unix("/a b"));
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:8000").unwrap(),
            Endpoint::Tcp("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:1").unwrap(),
            Endpoint::Tcp("[::1]:1".parse().unwrap())
        );
        for text in [
            "unix:///a%25b%3Fc d",
            "tcp://[::1]:65535",
            "tcp://10.0.0.1:8081",
        ] {
            let e = Endpoint::parse(text).unwrap();
            assert_eq!(Endpoint::parse(&e.to_string()).unwrap(), e, "{text}");
        }
    }

    #[test]
    fn refused_with_the_rule() {
        use EndpointRule::*;
        for (value, want) in [
            ("", Empty),
            ("/tmp/agent.sock", NotUri),
            ("1unix:///x", NotUri),
            ("http://127.0.0.1:80", Scheme),
            ("npipe:spire-agent", Scheme),
            ("unix:///a?b", QueryOrFragment),
            ("unix:///a#b", QueryOrFragment),
            ("tcp://127.0.0.1:80?x", QueryOrFragment),
            ("unix://foo", UnixAuthority),
            ("unix://host/tmp/a.sock", UnixAuthority),
            ("unix://user@/tmp/a", UnixAuthority),
            ("unix:relative/a.sock", UnixPath),
            ("unix:", UnixPath),
            ("unix://", UnixPath),
            ("unix:///", UnixPath),
            ("unix:///a%zz", Escape),
            ("unix:///a%00b", Escape),
            ("unix:///a%ff", Escape),
            ("tcp:127.0.0.1:80", TcpAuthority),
            ("tcp://127.0.0.1:8000/foo", TcpPath),
            ("tcp://127.0.0.1:8000/", TcpPath),
            ("tcp://u@127.0.0.1:80", TcpUserinfo),
            ("tcp://localhost:80", TcpHost),
            ("tcp://127.1:80", TcpHost),
            ("tcp://[fe80::1%25eth0]:80", TcpHost),
            ("tcp://[::1]", TcpPort),
            ("tcp://127.0.0.1", TcpPort),
            ("tcp://127.0.0.1:", TcpPort),
            ("tcp://127.0.0.1:0", TcpPort),
            ("tcp://127.0.0.1:65536", TcpPort),
            ("tcp://127.0.0.1:+80", TcpPort),
        ] {
            assert_eq!(rule(value), want, "{value}");
        }
    }

    #[test]
    fn message_names_value_and_rule() {
        let err = Endpoint::parse("unix://foo").unwrap_err();
        assert_eq!(
            err.to_string(),
            "workload api address \"unix://foo\" is invalid: a unix address must not set an \
             authority (unix:///path, three slashes)"
        );
        let long = format!("tcp://{}", "a".repeat(10_000));
        assert!(Endpoint::parse(&long).unwrap_err().to_string().len() < 400);
    }
}
