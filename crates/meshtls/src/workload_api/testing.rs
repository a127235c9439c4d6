//! A Workload API for tests: an in-process [`WorkloadApiServer`] on a temporary unix socket,
//! with its own CA, that gives the identities you name to the calling process (its uid), and
//! lets the test rotate, withdraw identities, and inject `Unavailable` / `PermissionDenied`.
//!
//! ```no_run
//! # async fn run() -> Result<(), meshtls::Error> {
//! use meshtls::workload_api::testing::{InjectedStatus, TestWorkloadApi};
//!
//! let api = TestWorkloadApi::builder("example.org")?
//!     .identity("spiffe://example.org/app", "app")?
//!     .start()
//!     .await?;
//! // Point the code under test at it (go-spiffe, py-spiffe, rust-spiffe, meshtls's client):
//! // SPIFFE_ENDPOINT_SOCKET=api.endpoint()
//! api.rotate().await; // every open stream receives new SVIDs
//! api.fail_next(InjectedStatus::Unavailable, 2); // the next two calls fail
//! api.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;
use tonic::Code;

use super::registration::{Entry, Registration};
use super::server::{Fault, ListenAddress, ServerOptions, WorkloadApiServer};
use crate::ca::{CaParams, KeyKind, MeshCa};
use crate::error::{Error, WorkloadApiError};
use crate::identity::{SpiffeId, TrustDomain};
use crate::jwt::JwtSigner;

/// A status the test server can answer with instead of serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InjectedStatus {
    /// `Unavailable`: the server is starting or shedding load; clients retry with backoff.
    Unavailable,
    /// `PermissionDenied`: no identity for the caller (yet); clients retry with backoff.
    PermissionDenied,
}

impl InjectedStatus {
    fn code(self) -> Code {
        match self {
            InjectedStatus::Unavailable => Code::Unavailable,
            InjectedStatus::PermissionDenied => Code::PermissionDenied,
        }
    }

    fn message(self) -> &'static str {
        match self {
            InjectedStatus::Unavailable => "injected by the test: workload api unavailable",
            InjectedStatus::PermissionDenied => "injected by the test: no identity issued",
        }
    }
}

/// Configures a [`TestWorkloadApi`].
#[derive(Debug)]
pub struct TestWorkloadApiBuilder {
    trust_domain: TrustDomain,
    identities: Vec<(SpiffeId, String)>,
    options: ServerOptions,
    rotate_every: Option<Duration>,
    tcp: bool,
}

impl TestWorkloadApiBuilder {
    /// Listens on `tcp://127.0.0.1:<free port>` instead of a unix socket (callers are then
    /// attested by uid through `/proc/net/tcp`).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Adds an identity for the calling process (the first is its default), with a hint
    /// (`""` for none).
    pub fn identity(mut self, spiffe_id: &str, hint: &str) -> Result<Self, Error> {
        self.identities
            .push((SpiffeId::new(spiffe_id)?, hint.to_owned()));
        Ok(self)
    }

    /// Lifetime of the X.509-SVIDs (default 1 h); they rotate at half of it on their own.
    pub fn x509_ttl(mut self, ttl: Duration) -> Self {
        self.options.x509_ttl = ttl;
        self
    }

    /// Lifetime of the JWT-SVIDs (default 5 min).
    pub fn jwt_ttl(mut self, ttl: Duration) -> Self {
        self.options.jwt_ttl = ttl;
        self
    }

    /// Rotates every X.509-SVID at this period (a scripted rotation), besides
    /// [`TestWorkloadApi::rotate`].
    pub fn rotate_every(mut self, period: Duration) -> Self {
        self.rotate_every = Some(period);
        self
    }

    /// Creates a CA (EC P-256) and a JWT key for the trust domain, and serves on a fresh
    /// socket in a private temporary directory (removed when the server stops).
    pub async fn start(self) -> Result<TestWorkloadApi, Error> {
        let mut params = CaParams::new(self.trust_domain.clone());
        params.key = KeyKind::EcP256;
        let ca = MeshCa::create(&params)?;
        let signer = JwtSigner::generate(self.trust_domain.clone(), KeyKind::EcP256)?;
        let registration = registration_for(&self.identities)?;
        let dir = TempDir::new()?;
        let address = if self.tcp {
            ListenAddress::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        } else {
            ListenAddress::Unix(dir.path.join("agent.sock"))
        };
        let server = WorkloadApiServer::builder(ca)
            .jwt_signer(signer)
            .registration(registration)
            .options(self.options)
            .serve(&address)
            .await?;
        let server = std::sync::Arc::new(server);
        let rotator = self.rotate_every.map(|period| {
            let weak = std::sync::Arc::downgrade(&server);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    match weak.upgrade() {
                        Some(s) => s.rotate().await,
                        None => return,
                    }
                }
            })
        });
        Ok(TestWorkloadApi {
            server,
            rotator,
            dir,
        })
    }
}

fn registration_for(ids: &[(SpiffeId, String)]) -> Result<Registration, Error> {
    let selector = format!("unix:uid:{}", current_uid()?);
    let mut entries = Vec::with_capacity(ids.len());
    for (id, hint) in ids {
        entries.push(Entry::new(id.clone(), [selector.clone()])?.with_hint(hint.clone())?);
    }
    Ok(Registration::new(entries)?)
}

/// The effective uid of this process (from `/proc/self/status`).
fn current_uid() -> Result<u32, WorkloadApiError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| WorkloadApiError::Invalid {
            what: "setting",
            value: "/proc/self/status".to_owned(),
            rule: "the test server needs /proc to know the caller's uid".to_owned(),
        })
}

/// A running test Workload API. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct TestWorkloadApi {
    server: std::sync::Arc<WorkloadApiServer>,
    rotator: Option<JoinHandle<()>>,
    dir: TempDir,
}

impl TestWorkloadApi {
    /// A builder for a test server of `trust_domain`.
    pub fn builder(trust_domain: &str) -> Result<TestWorkloadApiBuilder, Error> {
        Ok(TestWorkloadApiBuilder {
            trust_domain: TrustDomain::new(trust_domain)?,
            identities: Vec::new(),
            options: ServerOptions::default(),
            rotate_every: None,
            tcp: false,
        })
    }

    fn server(&self) -> &WorkloadApiServer {
        &self.server
    }

    /// The `SPIFFE_ENDPOINT_SOCKET` value (`unix:///.../agent.sock`, or `tcp://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> String {
        self.server().endpoint()
    }

    /// The socket's path (`None` over tcp).
    pub fn socket_path(&self) -> Option<PathBuf> {
        match self.server.address() {
            ListenAddress::Unix(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// The CA that mints the X.509-SVIDs (its root is the trust bundle served).
    pub fn ca(&self) -> &MeshCa {
        self.server().ca()
    }

    /// The JWT-SVID signer (its bundle is the JWT bundle served).
    pub fn jwt_signer(&self) -> &JwtSigner {
        self.server().jwt_signer()
    }

    /// The server itself.
    pub fn workload_api(&self) -> &WorkloadApiServer {
        self.server()
    }

    /// Rotates every X.509-SVID now; returns once the new ones are published to every open
    /// stream.
    pub async fn rotate(&self) {
        self.server().rotate().await;
    }

    /// Replaces the identities of the calling process; an empty list withdraws them all (open
    /// streams end with `PermissionDenied`).
    pub async fn set_identities(&self, identities: &[(&str, &str)]) -> Result<(), Error> {
        let mut ids = Vec::with_capacity(identities.len());
        for (id, hint) in identities {
            ids.push((SpiffeId::new(id)?, (*hint).to_owned()));
        }
        let registration = registration_for(&ids)?;
        self.server().set_registration(registration).await;
        Ok(())
    }

    /// The next `calls` calls (of any method) fail with `status`.
    pub fn fail_next(&self, status: InjectedStatus, calls: u32) {
        self.server().inject_fault(Some(Fault {
            code: status.code(),
            message: status.message().to_owned(),
            remaining: Some(calls),
        }));
    }

    /// Every call fails with `status` until [`TestWorkloadApi::clear_failures`].
    pub fn fail_all(&self, status: InjectedStatus) {
        self.server().inject_fault(Some(Fault {
            code: status.code(),
            message: status.message().to_owned(),
            remaining: None,
        }));
    }

    /// Ends injected failures.
    pub fn clear_failures(&self) {
        self.server().inject_fault(None);
    }

    /// Ends every open stream with `status` (clients reconnect as they would after a server
    /// restart or a revoked identity).
    pub async fn interrupt_streams(&self, status: InjectedStatus) {
        self.server()
            .interrupt_streams(status.code(), status.message().to_owned())
            .await;
    }

    /// Stops the server and removes its directory.
    pub async fn shutdown(self) {
        let TestWorkloadApi {
            server,
            rotator,
            dir,
        } = self;
        if let Some(r) = rotator {
            r.abort();
            let _ = r.await;
        }
        if let Ok(server) = std::sync::Arc::try_unwrap(server) {
            server.shutdown().await;
        }
        drop(dir);
    }
}

/// A private directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, Error> {
        let mut b = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut b);
        let name = format!(
            "meshtls-wl-{}-{}",
            std::process::id(),
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        let path = std::env::temp_dir().join(name);
        create_private_dir(&path)?;
        Ok(TempDir { path })
    }
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io("create directory", path, &e))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
