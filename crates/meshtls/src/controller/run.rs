//! The controller on kube-rs (feature `kube`): reads the mesh ConfigMap and the Secret, asks
//! [`decide`](super::decide) what to do, gets certificates from the source and writes the
//! Secret by server-side apply; watches both objects, re-checks at the rotation point, holds a
//! Lease so that only one replica writes, and serves `/healthz`, `/readyz` and `/metrics`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::decide::{
    Action, Inputs, ObservedSecret, SecretSpec, complete, decide, holds_valid_certificate,
};
use crate::ca::{CaTrust, IssueParams, KeyKind, MeshCa};
use crate::ca_protocol::{ClientConfig, IstioCaClient, TokenSource};
use crate::error::{ControllerError, Error};
use crate::mesh::MeshConfig;
use crate::svid::Svid;

/// The default field manager of the server-side applies.
pub const FIELD_MANAGER: &str = "meshtls-controller";

/// Where certificates come from.
#[derive(Clone)]
#[non_exhaustive]
pub enum CertSource {
    /// A local CA read from Istio's plug-in `cacerts` Secret (`ca-cert.pem`, `ca-key.pem`,
    /// `cert-chain.pem`, `root-cert.pem`) at every issuance.
    Cacerts {
        /// The Secret's namespace (istiod's, `istio-system`).
        namespace: String,
        /// The Secret's name (`cacerts`).
        name: String,
    },
    /// istiod, or `meshtls ca serve`, over Istio's CA protocol.
    IstioCa {
        /// `host:port`.
        address: String,
        /// The mesh root(s), PEM: the server must chain to them; they also go into `ca.crt`.
        root_cert_pem: String,
        /// The name checked on the server's certificate (default by Istio's rule).
        server_name: Option<String>,
        /// How the controller authenticates.
        token: CaToken,
    },
}

impl fmt::Debug for CertSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl CertSource {
    /// The name recorded in the `meshtls.io/source` annotation: `cacerts:<ns>/<name>` or
    /// `istio-ca:<address>`.
    pub fn name(&self) -> String {
        match self {
            CertSource::Cacerts { namespace, name } => format!("cacerts:{namespace}/{name}"),
            CertSource::IstioCa { address, .. } => format!("istio-ca:{address}"),
        }
    }
}

/// The token the controller shows to the CA.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CaToken {
    /// A token requested for this service account with the TokenRequest API (audience
    /// `audience`, Istio's is `istio-ca`), fresh for every issuance.
    TokenRequest {
        /// The service account's namespace.
        namespace: String,
        /// The service account.
        service_account: String,
        /// The audience (`istio-ca`).
        audience: String,
    },
    /// A mounted (projected) token file, re-read for every issuance.
    File(PathBuf),
}

/// Leader election with a `coordination.k8s.io/v1` Lease.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a holder's claim lasts without renewal: a standby takes over within it.
    pub duration: Duration,
}

/// Everything the controller needs besides a client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ControllerConfig {
    /// The Secret to keep.
    pub spec: SecretSpec,
    /// The namespace of the mesh ConfigMap (`istio-system`).
    pub mesh_namespace: String,
    /// Istio's revision: the ConfigMap is `istio-<rev>` (`None`: `istio`).
    pub revision: Option<String>,
    /// Where certificates come from.
    pub source: CertSource,
    /// The key kind of issued certificates (default P-256).
    pub key: KeyKind,
    /// The field manager of the server-side applies.
    pub field_manager: String,
    /// Leader election (`None`: this replica always writes).
    pub lease: Option<LeaseConfig>,
    /// The longest wait between retries after a failure (default 60 s).
    pub backoff_cap: Duration,
    /// A full re-check at least this often, events or not (default 5 min).
    pub resync: Duration,
    /// Where `/healthz`, `/readyz` and `/metrics` are served (`None`: not served).
    pub health_addr: Option<SocketAddr>,
    /// How long events settle before a reconcile (default 25 ms): a burst of ConfigMap
    /// updates gives a few reconciles, not one per update.
    pub settle: Duration,
}

impl ControllerConfig {
    /// A configuration with the defaults: ConfigMap `istio` in `istio-system`, P-256 keys,
    /// field manager [`FIELD_MANAGER`], no Lease, backoff cap 60 s, resync 5 min.
    pub fn new(spec: SecretSpec, source: CertSource) -> Self {
        ControllerConfig {
            spec,
            mesh_namespace: "istio-system".to_owned(),
            revision: None,
            source,
            key: KeyKind::EcP256,
            field_manager: FIELD_MANAGER.to_owned(),
            lease: None,
            backoff_cap: Duration::from_secs(60),
            resync: Duration::from_secs(300),
            health_addr: None,
            settle: Duration::from_millis(25),
        }
    }

    /// The mesh ConfigMap's name: `istio`, or `istio-<rev>` for a revision.
    pub fn configmap_name(&self) -> String {
        match self.revision.as_deref() {
            None | Some("") | Some("default") => "istio".to_owned(),
            Some(rev) => format!("istio-{rev}"),
        }
    }
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// `nothing`, `write` (after an issuance or not) or `waiting` (no mesh ConfigMap yet).
    pub result: &'static str,
    /// Why, when something was written (a [`super::Reason::kind`]).
    pub reason: Option<&'static str>,
    /// When to look again.
    pub recheck_at: Option<SystemTime>,
    /// Whether the Secret was written.
    pub wrote: bool,
}

/// Counters and gauges behind `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct Status {
    ready: AtomicBool,
    leader: AtomicBool,
    reconciles_ok: AtomicU64,
    reconciles_err: AtomicU64,
    writes: AtomicU64,
    not_after: AtomicU64,
    duration_us_sum: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Status {
    /// Whether the Secret holds a current certificate (as last seen).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Whether this replica holds the Lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Writes of the Secret so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The last error, if the last reconcile failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let ok = self.reconciles_ok.load(Ordering::Relaxed);
        let err = self.reconciles_err.load(Ordering::Relaxed);
        let sum = self.duration_us_sum.load(Ordering::Relaxed) as f64 / 1e6;
        format!(
            "# HELP meshtls_controller_certificate_not_after_seconds NotAfter of the certificate in the Secret (Unix seconds).\n\
             # TYPE meshtls_controller_certificate_not_after_seconds gauge\n\
             meshtls_controller_certificate_not_after_seconds {}\n\
             # HELP meshtls_controller_reconciles_total Reconciles by result.\n\
             # TYPE meshtls_controller_reconciles_total counter\n\
             meshtls_controller_reconciles_total{{result=\"success\"}} {ok}\n\
             meshtls_controller_reconciles_total{{result=\"error\"}} {err}\n\
             # HELP meshtls_controller_reconcile_duration_seconds Time spent reconciling.\n\
             # TYPE meshtls_controller_reconcile_duration_seconds summary\n\
             meshtls_controller_reconcile_duration_seconds_sum {sum}\n\
             meshtls_controller_reconcile_duration_seconds_count {}\n\
             # HELP meshtls_controller_secret_writes_total Writes of the Secret.\n\
             # TYPE meshtls_controller_secret_writes_total counter\n\
             meshtls_controller_secret_writes_total {}\n\
             # HELP meshtls_controller_leader Whether this replica holds the Lease.\n\
             # TYPE meshtls_controller_leader gauge\n\
             meshtls_controller_leader {}\n\
             # HELP meshtls_controller_ready Whether the Secret holds a current certificate.\n\
             # TYPE meshtls_controller_ready gauge\n\
             meshtls_controller_ready {}\n",
            self.not_after.load(Ordering::Relaxed),
            ok + err,
            self.writes(),
            u8::from(self.is_leader()),
            u8::from(self.is_ready()),
        )
    }
}

fn api_err(verb: &'static str, object: impl Into<String>, e: kube::Error) -> Error {
    let transient = match &e {
        kube::Error::Api(s) => !matches!(s.code, 400 | 401 | 403 | 404 | 405 | 422),
        _ => true,
    };
    ControllerError::Api {
        verb,
        object: object.into(),
        reason: e.to_string(),
        transient,
    }
    .into()
}

fn source_err(source: &CertSource, reason: impl fmt::Display) -> Error {
    ControllerError::Source {
        source_name: source.name(),
        reason: reason.to_string(),
    }
    .into()
}

/// Whether an error may go away by itself (the API server or the CA is away): the controller
/// retries those with backoff and retries the others too, but slower, and says so.
pub fn is_transient(err: &Error) -> bool {
    match err {
        Error::Controller(ControllerError::Api { transient, .. }) => *transient,
        Error::Controller(ControllerError::Source { .. }) | Error::CaProtocol(_) => true,
        _ => false,
    }
}

/// The controller: one client, one configuration.
pub struct Controller {
    client: kube::Client,
    config: ControllerConfig,
    status: Arc<Status>,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller over `client`.
    pub fn new(client: kube::Client, config: ControllerConfig) -> Self {
        Controller {
            client,
            config,
            status: Arc::new(Status::default()),
        }
    }

    /// The status behind the health and metrics endpoints.
    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.status)
    }

    fn secret_object(&self) -> String {
        format!(
            "secret {}/{}",
            self.config.spec.secret_namespace(),
            self.config.spec.secret_name()
        )
    }

    async fn mesh(&self) -> Result<Option<MeshConfig>, Error> {
        let name = self.config.configmap_name();
        let object = format!("configmap {}/{name}", self.config.mesh_namespace);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.config.mesh_namespace);
        let Some(cm) = api
            .get_opt(&name)
            .await
            .map_err(|e| api_err("get", object.clone(), e))?
        else {
            return Ok(None);
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get("mesh"))
            .cloned()
            .unwrap_or_default();
        MeshConfig::from_yaml(&text).map(Some).map_err(|e| {
            ControllerError::BadObject {
                object,
                reason: e.to_string(),
            }
            .into()
        })
    }

    async fn observed(&self) -> Result<Option<ObservedSecret>, Error> {
        let api: Api<Secret> =
            Api::namespaced(self.client.clone(), self.config.spec.secret_namespace());
        let secret = api
            .get_opt(self.config.spec.secret_name())
            .await
            .map_err(|e| api_err("get", self.secret_object(), e))?;
        Ok(secret.map(|s| ObservedSecret {
            secret_type: s.type_.unwrap_or_else(|| "Opaque".to_owned()),
            data: s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            annotations: s.metadata.annotations.unwrap_or_default(),
        }))
    }

    async fn local_ca(
        &self,
        namespace: &str,
        name: &str,
        mesh: &MeshConfig,
    ) -> Result<MeshCa, Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let object = format!("secret {namespace}/{name}");
        let secret = api
            .get(name)
            .await
            .map_err(|e| api_err("get", object.clone(), e))?;
        let data = secret.data.unwrap_or_default();
        let text = |k: &str| -> String {
            data.get(k)
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default()
        };
        let key = Zeroizing::new(text("ca-key.pem"));
        MeshCa::from_pem(
            &text("ca-cert.pem"),
            &key,
            &text("cert-chain.pem"),
            &text("root-cert.pem"),
            // The CA issues for the mesh's trust domain and its aliases, as istiod does.
            CaTrust::Mesh(mesh.trust_domains()),
        )
        .map_err(|e| {
            ControllerError::BadObject {
                object,
                reason: e.to_string(),
            }
            .into()
        })
    }

    async fn source_roots(&self, mesh: &MeshConfig) -> Result<Vec<CertificateDer<'static>>, Error> {
        match &self.config.source {
            CertSource::Cacerts { namespace, name } => Ok(self
                .local_ca(namespace, name, mesh)
                .await?
                .root_certs_der()
                .to_vec()),
            CertSource::IstioCa { root_cert_pem, .. } => {
                crate::svid::parse_pem_chain(root_cert_pem)
                    .map_err(|e| source_err(&self.config.source, e))
            }
        }
    }

    async fn token(&self, token: &CaToken) -> Result<TokenSource, Error> {
        match token {
            CaToken::File(path) => Ok(TokenSource::File(path.clone())),
            CaToken::TokenRequest {
                namespace,
                service_account,
                audience,
            } => {
                let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
                let request = serde_json::json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"audiences": [audience], "expirationSeconds": 600},
                });
                let answer: serde_json::Value = api
                    .create_subresource("token", service_account, &PostParams::default(), &request)
                    .await
                    .map_err(|e| {
                        api_err(
                            "create token for",
                            format!("serviceaccount {namespace}/{service_account}"),
                            e,
                        )
                    })?;
                let token = answer
                    .pointer("/status/token")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| ControllerError::BadObject {
                        object: format!("tokenrequest for {namespace}/{service_account}"),
                        reason: "no status.token in the answer".to_owned(),
                    })?;
                Ok(TokenSource::Fixed(Zeroizing::new(token.to_owned())))
            }
        }
    }

    async fn issue(&self, identity: &crate::SpiffeId, mesh: &MeshConfig) -> Result<Svid, Error> {
        let ttl = self.config.spec.ttl();
        match &self.config.source {
            CertSource::Cacerts { namespace, name } => {
                let ca = self.local_ca(namespace, name, mesh).await?;
                let params = IssueParams {
                    ttl,
                    key: self.config.key,
                    dns_names: Vec::new(),
                };
                ca.issue(identity, &params)
            }
            CertSource::IstioCa {
                address,
                root_cert_pem,
                server_name,
                token,
            } => {
                let mut cfg = ClientConfig::new(root_cert_pem.clone());
                cfg.address = address.clone();
                cfg.server_name = server_name.clone();
                cfg.token = self.token(token).await?;
                let client = IstioCaClient::new(cfg)?;
                client
                    .fetch_svid(identity, ttl, self.config.key)
                    .await
                    .map_err(|e| source_err(&self.config.source, e))
            }
        }
    }

    async fn write(&self, secret: &super::DesiredSecret, replace: bool) -> Result<(), Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), secret.namespace());
        if replace {
            match api.delete(secret.name(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(api_err("delete", self.secret_object(), e)),
            }
        }
        let params = PatchParams::apply(&self.config.field_manager).force();
        api.patch(
            secret.name(),
            &params,
            &Patch::Apply(secret.to_apply_json()),
        )
        .await
        .map_err(|e| api_err("apply", self.secret_object(), e))?;
        Ok(())
    }

    /// One reconcile: read the mesh ConfigMap and the Secret, decide, issue when asked, write
    /// when the content changes. Nothing is written on any failure.
    pub async fn reconcile_once(&self) -> Result<Outcome, Error> {
        let Some(mesh) = self.mesh().await? else {
            return Ok(Outcome {
                result: "waiting",
                reason: None,
                recheck_at: None,
                wrote: false,
            });
        };
        let current = self.observed().await?;
        let roots = self.source_roots(&mesh).await?;
        let inputs = Inputs {
            mesh: &mesh,
            spec: &self.config.spec,
            source_roots: &roots,
            current: current.as_ref(),
            now: SystemTime::now(),
        };
        let mut action = decide(&inputs)?;
        if let Action::Issue {
            identity, reason, ..
        } = &action
        {
            let svid = self.issue(identity, &mesh).await?;
            let inputs = Inputs {
                now: SystemTime::now(),
                ..inputs
            };
            action = complete(&inputs, reason.clone(), &svid)?;
        }
        match action {
            Action::Write {
                secret,
                reason,
                replace,
                recheck_at,
            } => {
                self.write(&secret, replace).await?;
                self.status.writes.fetch_add(1, Ordering::Relaxed);
                self.note_certificate(Some(secret.not_after()));
                log::info!(
                    "wrote {}: {reason}; identity {}, not after {}",
                    self.secret_object(),
                    secret
                        .annotations()
                        .get(super::ANNOTATION_IDENTITY)
                        .map_or("", String::as_str),
                    secret
                        .annotations()
                        .get(super::ANNOTATION_NOT_AFTER)
                        .map_or("", String::as_str),
                );
                Ok(Outcome {
                    result: "write",
                    reason: Some(reason.kind()),
                    recheck_at: Some(recheck_at),
                    wrote: true,
                })
            }
            Action::Nothing { recheck_at } => {
                if let Some(c) = current.as_ref() {
                    let identity = self.config.spec.identity(&mesh)?;
                    let valid = holds_valid_certificate(c, &identity, SystemTime::now());
                    self.status.ready.store(valid, Ordering::Relaxed);
                }
                Ok(Outcome {
                    result: "nothing",
                    reason: None,
                    recheck_at: Some(recheck_at),
                    wrote: false,
                })
            }
            // `complete` never asks to issue again.
            Action::Issue { .. } => Err(source_err(
                &self.config.source,
                "the source's certificate was not accepted",
            )),
        }
    }

    fn note_certificate(&self, not_after: Option<SystemTime>) {
        if let Some(t) = not_after {
            let secs = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.status.not_after.store(secs, Ordering::Relaxed);
            self.status
                .ready
                .store(t > SystemTime::now(), Ordering::Relaxed);
        }
    }

    /// A standby's view: is the Secret current (for `/readyz`)?
    async fn observe_only(&self) {
        let (Ok(Some(mesh)), Ok(Some(current))) = (self.mesh().await, self.observed().await) else {
            return;
        };
        if let Ok(identity) = self.config.spec.identity(&mesh) {
            self.status.ready.store(
                holds_valid_certificate(&current, &identity, SystemTime::now()),
                Ordering::Relaxed,
            );
        }
    }

    /// Runs until `shutdown` completes: watches the ConfigMap and the Secret (events are
    /// coalesced: a burst gives one reconcile), re-checks at the rotation point and every
    /// `resync`, retries failures with capped backoff (never exits on them), holds the Lease
    /// when configured (only the leader writes; the Lease is released on shutdown), and serves
    /// the health endpoints.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let wake = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        if let Some(addr) = self.config.health_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::io("listen on", &PathBuf::from(addr.to_string()), &e))?;
            tasks.push(tokio::spawn(serve_health(listener, self.status())));
        }
        tasks.push(tokio::spawn(watch::<ConfigMap>(
            Api::namespaced(self.client.clone(), &self.config.mesh_namespace),
            self.config.configmap_name(),
            Arc::clone(&wake),
        )));
        tasks.push(tokio::spawn(watch::<Secret>(
            Api::namespaced(self.client.clone(), self.config.spec.secret_namespace()),
            self.config.spec.secret_name().to_owned(),
            Arc::clone(&wake),
        )));
        let lease = self.config.lease.clone().map(|l| {
            (
                Api::<Lease>::namespaced(self.client.clone(), &l.namespace),
                l,
            )
        });
        tokio::pin!(shutdown);
        let mut attempt: u32 = 0;
        let mut next = Instant::now();
        let mut lease_due = Instant::now();
        loop {
            let mut sleep_until = next;
            if let Some((api, l)) = &lease {
                if Instant::now() >= lease_due {
                    let was = self.status.is_leader();
                    let now_leader = match try_acquire(api, l).await {
                        Ok(v) => v,
                        Err(e) => {
                            log::warn!("lease {}/{}: {e}", l.namespace, l.name);
                            // Without a renewal the claim runs out: stop writing in time.
                            false
                        }
                    };
                    self.status.leader.store(now_leader, Ordering::Relaxed);
                    if now_leader != was {
                        log::info!(
                            "{} {} lease {}/{}",
                            l.identity,
                            if now_leader { "acquired" } else { "lost" },
                            l.namespace,
                            l.name
                        );
                        next = Instant::now();
                    }
                    lease_due = Instant::now() + l.duration / 3;
                }
                sleep_until = sleep_until.min(lease_due);
            } else {
                self.status.leader.store(true, Ordering::Relaxed);
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {
                    // Let a burst settle, then take the events that came meanwhile with it.
                    tokio::time::sleep(self.config.settle).await;
                    let _ = tokio::time::timeout(Duration::ZERO, wake.notified()).await;
                    next = Instant::now();
                }
                () = tokio::time::sleep_until(sleep_until.into()) => {}
            }
            if Instant::now() < next {
                continue;
            }
            if !self.status.is_leader() {
                self.observe_only().await;
                next = Instant::now() + self.config.resync.min(Duration::from_secs(10));
                continue;
            }
            let started = Instant::now();
            let result = self.reconcile_once().await;
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.status.duration_us_sum.fetch_add(us, Ordering::Relaxed);
            match result {
                Ok(outcome) => {
                    attempt = 0;
                    self.status.reconciles_ok.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut e) = self.status.last_error.lock() {
                        *e = None;
                    }
                    let wait = outcome
                        .recheck_at
                        .and_then(|t| t.duration_since(SystemTime::now()).ok())
                        .unwrap_or(self.config.resync)
                        .min(self.config.resync);
                    next = Instant::now() + wait;
                }
                Err(e) => {
                    self.status.reconciles_err.fetch_add(1, Ordering::Relaxed);
                    let transient = is_transient(&e);
                    log::warn!(
                        "reconcile of {} failed ({}): {e}",
                        self.secret_object(),
                        if transient {
                            "will retry"
                        } else {
                            "needs attention; will retry"
                        }
                    );
                    if let Ok(mut last) = self.status.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                    let delay = super::backoff(attempt, self.config.backoff_cap);
                    attempt = attempt.saturating_add(1);
                    next = Instant::now() + delay;
                }
            }
        }
        if let Some((api, l)) = &lease {
            if self.status.is_leader() {
                match release(api, l).await {
                    Ok(()) => {
                        log::info!("{} released lease {}/{}", l.identity, l.namespace, l.name)
                    }
                    Err(e) => log::warn!("releasing lease {}/{}: {e}", l.namespace, l.name),
                }
            }
        }
        for t in tasks {
            t.abort();
        }
        Ok(())
    }
}

/// Watches one named object and pokes `wake` on every event; restarts after errors.
async fn watch<K>(api: Api<K>, name: String, wake: Arc<Notify>)
where
    K: kube::Resource + Clone + fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut attempt = 0u32;
    loop {
        let mut stream = watcher(api.clone(), config.clone()).boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => {
                    attempt = 0;
                    wake.notify_one();
                }
                Err(e) => {
                    log::debug!("watch of {name}: {e}");
                    break;
                }
            }
        }
        tokio::time::sleep(super::backoff(attempt, Duration::from_secs(10))).await;
        attempt = attempt.saturating_add(1);
    }
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Takes or renews the Lease; `Ok(true)` when this replica holds it afterwards.
async fn try_acquire(api: &Api<Lease>, l: &LeaseConfig) -> Result<bool, Error> {
    let object = format!("lease {}/{}", l.namespace, l.name);
    let secs = i32::try_from(l.duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api
        .get_opt(&l.name)
        .await
        .map_err(|e| api_err("get", object.clone(), e))?
    else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(l.name.clone()),
                namespace: Some(l.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(l.identity.clone()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(micro_now()),
                renew_time: Some(micro_now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(api_err("create", object, e)),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let mine = holder == l.identity;
    if !mine && !holder.is_empty() {
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(secs)).unwrap_or(0),
        );
        let renewed = spec
            .renew_time
            .as_ref()
            .map(|t| {
                SystemTime::UNIX_EPOCH
                    + Duration::from_micros(u64::try_from(t.0.as_microsecond()).unwrap_or(0))
            })
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if renewed + duration > SystemTime::now() {
            return Ok(false);
        }
    }
    if !mine {
        spec.holder_identity = Some(l.identity.clone());
        spec.acquire_time = Some(micro_now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(secs);
    spec.renew_time = Some(micro_now());
    match api.replace(&l.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(api_err("update", object, e)),
    }
}

/// Gives the Lease up (holder cleared) so that a standby takes over at once.
async fn release(api: &Api<Lease>, l: &LeaseConfig) -> Result<(), Error> {
    let object = format!("lease {}/{}", l.namespace, l.name);
    let Some(mut lease) = api
        .get_opt(&l.name)
        .await
        .map_err(|e| api_err("get", object.clone(), e))?
    else {
        return Ok(());
    };
    if let Some(spec) = lease.spec.as_mut() {
        if spec.holder_identity.as_deref() != Some(l.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = None;
    }
    api.replace(&l.name, &PostParams::default(), &lease)
        .await
        .map_err(|e| api_err("update", object, e))?;
    Ok(())
}

/// `/healthz` (the process runs), `/readyz` (the Secret holds a current certificate) and
/// `/metrics` (Prometheus text), HTTP/1.1, one request per connection.
async fn serve_health(listener: tokio::net::TcpListener, status: Arc<Status>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let status = Arc::clone(&status);
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut len = 0;
            // Read the request head (the path is all that matters).
            while len < buf.len() {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[len..]))
                    .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        len += n;
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (code, body, ctype) = match path {
                "/healthz" => ("200 OK", "ok\n".to_owned(), "text/plain"),
                "/readyz" if status.is_ready() => ("200 OK", "ready\n".to_owned(), "text/plain"),
                "/readyz" => (
                    "503 Service Unavailable",
                    "the secret does not hold a current certificate\n".to_owned(),
                    "text/plain",
                ),
                "/metrics" => ("200 OK", status.metrics_text(), "text/plain; version=0.0.4"),
                _ => ("404 Not Found", "not found\n".to_owned(), "text/plain"),
            };
            let response = format!(
                "HTTP/1.1 {code}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The labels of the objects the controller owns (for selectors).
pub fn owned_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        super::LABEL_MANAGED_BY.to_owned(),
        super::MANAGED_BY.to_owned(),
    )])
}
