//! `IstioCaClient` and `IstioCaServer`: argument conversion, error mapping and GIL release
//! around `meshtls::ca_protocol`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use meshtls::ca::IssueParams;
use meshtls::ca_protocol::{
    ClientConfig, IstioCaClient, IstioCaServer, JwtVerifier, NodeAccountSettings, RefreshHandle,
    RefreshParams, RunningServer, ServerConfig, ServerSettings, TokenSource,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDelta;

use crate::args::Text;
use crate::args::duration_arg;
use crate::ca::{PyMeshCa, PySvid, issue_params, key_kind};
use crate::errors::{CaProtocolError, InvalidArgumentError, py_err};
use crate::identity::{SpiffeIdArg, TrustDomainArg};

/// A client of Istio's CA protocol (istiod's `IstioCertificateService` on port 15012).
///
/// ``address`` is ``host:port`` (default ``istiod.istio-system.svc:15012``); the server's
/// certificate must chain to ``root_cert_pem`` (the ``istio-ca-root-cert`` ConfigMap) and carry
/// the server name: the address's host, ``istiod.istio-system.svc`` when the host contains
/// ``localhost``, or ``server_name`` when given. Authentication is a bearer token, fixed
/// (``token``) or read from ``token_file`` for every request; ``cluster_id`` is sent as the
/// ``clusterid`` metadata and ``headers`` as extra metadata.
#[pyclass(frozen, module = "meshtls", name = "IstioCaClient")]
pub(crate) struct PyIstioCaClient {
    inner: Arc<IstioCaClient>,
}

#[pymethods]
impl PyIstioCaClient {
    #[new]
    #[pyo3(
        signature = (address = None, *, root_cert_pem, token = None, token_file = None, cluster_id = None, server_name = None, headers = None, timeout = None),
        text_signature = "(address='istiod.istio-system.svc:15012', *, root_cert_pem, token=None, token_file=None, cluster_id=None, server_name=None, headers=None, timeout=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        address: Option<String>,
        root_cert_pem: String,
        token: Option<String>,
        token_file: Option<PathBuf>,
        cluster_id: Option<String>,
        server_name: Option<String>,
        headers: Option<HashMap<String, String>>,
        timeout: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<Self> {
        let mut config = ClientConfig::new(root_cert_pem);
        if let Some(address) = address {
            config.address = address;
        }
        config.token = match (token, token_file) {
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err("give token or token_file, not both"));
            }
            (Some(t), None) => TokenSource::Fixed(t.into()),
            (None, Some(p)) => TokenSource::File(p),
            (None, None) => TokenSource::None,
        };
        config.cluster_id = cluster_id;
        config.server_name = server_name;
        let mut headers: Vec<(String, String)> = headers.unwrap_or_default().into_iter().collect();
        headers.sort();
        config.headers = headers;
        if let Some(t) = timeout {
            config.timeout = duration_arg(t.as_any(), "timeout")?;
        }
        let inner = IstioCaClient::new(config).map_err(py_err)?;
        Ok(PyIstioCaClient {
            inner: Arc::new(inner),
        })
    }

    /// The ``host:port`` dialled.
    #[getter]
    fn address(&self) -> String {
        self.inner.config().address.clone()
    }

    /// The name checked on the server's certificate.
    #[getter]
    fn server_name(&self) -> String {
        self.inner.server_name()
    }

    /// Generates a key of kind ``key`` locally, sends a CSR for ``identity`` (a ``SpiffeId`` or
    /// its text) asking for ``ttl`` (default 24 hours), and returns the checked ``Svid``: one
    /// certificate per entry, at least leaf and root, the leaf names ``identity`` and holds the
    /// key, the chain verifies against the mesh root. The GIL is released while waiting.
    /// Raises ``CaProtocolError`` (unreachable, TLS/server name, refused, bad chain).
    #[pyo3(
        signature = (identity, *, ttl = None, key = None),
        text_signature = "(self, /, identity, *, ttl=None, key='ec-p256')"
    )]
    fn fetch_svid(
        &self,
        py: Python<'_>,
        identity: SpiffeIdArg,
        ttl: Option<&Bound<'_, PyDelta>>,
        key: Option<Text<'_>>,
    ) -> PyResult<PySvid> {
        let IssueParams { ttl, key, .. } = issue_params(ttl.map(|t| t.as_any()), key, Vec::new())?;
        let client = self.inner.clone();
        let svid = py
            .detach(move || client.fetch_svid_blocking(&identity.0, ttl, key))
            .map_err(py_err)?;
        Ok(PySvid { inner: svid })
    }

    /// Renews ``svid`` while it is valid, authenticating with it as the TLS client certificate
    /// (no token is sent); returns the new ``Svid`` with a new key. The GIL is released.
    #[pyo3(
        signature = (svid, *, ttl = None, key = None),
        text_signature = "(self, /, svid, *, ttl=None, key='ec-p256')"
    )]
    fn renew(
        &self,
        py: Python<'_>,
        svid: &Bound<'_, PySvid>,
        ttl: Option<&Bound<'_, PyDelta>>,
        key: Option<Text<'_>>,
    ) -> PyResult<PySvid> {
        let IssueParams { ttl, key, .. } = issue_params(ttl.map(|t| t.as_any()), key, Vec::new())?;
        let current = svid.get().inner.clone();
        let client = self.inner.clone();
        let renewed = py
            .detach(move || client.renew_blocking(&current, ttl, key))
            .map_err(py_err)?;
        Ok(PySvid { inner: renewed })
    }

    /// Keeps ``material`` (a ``meshtls.tls.TlsMaterial``) holding a fresh certificate for
    /// ``identity``, as istio-agent does: gets a first ``Svid`` with the token now (unless
    /// ``svid``, a still-valid ``Svid`` of ``identity``, is given) and puts it into the
    /// material, then, on a background thread (the GIL is not held), renews at Istio's rotation
    /// time (half the lifetime plus jitter) by client certificate, falling back to the token
    /// once the SVID has expired or renewal is refused, and retries with exponential backoff
    /// from ``initial_backoff`` (default 1 s) up to ``max_backoff`` (default 5 min) while the
    /// server is unreachable or ``UNAVAILABLE`` (``max_failures`` failures in a row end the
    /// loop; default never). Each new certificate goes into the material, so TLS configs built
    /// from it use it for their next handshake.
    ///
    /// Returns a ``RefreshHandle``: ``stop()`` it (or use it as a context manager); an error
    /// that ends the loop is kept on ``handle.error``. Raises ``CaProtocolError`` when the first
    /// certificate cannot be had.
    #[pyo3(
        signature = (material, identity, *, ttl = None, key = None, svid = None, initial_backoff = None, max_backoff = None, max_failures = None),
        text_signature = "(self, /, material, identity, *, ttl=None, key='ec-p256', svid=None, initial_backoff=None, max_backoff=None, max_failures=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn keep_fresh(
        &self,
        py: Python<'_>,
        material: &Bound<'_, PyAny>,
        identity: SpiffeIdArg,
        ttl: Option<&Bound<'_, PyDelta>>,
        key: Option<Text<'_>>,
        svid: Option<&Bound<'_, PySvid>>,
        initial_backoff: Option<&Bound<'_, PyDelta>>,
        max_backoff: Option<&Bound<'_, PyDelta>>,
        max_failures: Option<u32>,
    ) -> PyResult<PyRefreshHandle> {
        let material = crate::tls::material_of(material)?;
        let mut params = RefreshParams::default();
        if let Some(t) = ttl {
            params.ttl = duration_arg(t.as_any(), "ttl")?;
        }
        if let Some(key) = key {
            params.key = key_kind(&key)?;
        }
        if let Some(t) = initial_backoff {
            params.initial_backoff = duration_arg(t.as_any(), "initial_backoff")?;
        }
        if let Some(t) = max_backoff {
            params.max_backoff = duration_arg(t.as_any(), "max_backoff")?;
        }
        if params.initial_backoff.is_zero() || params.max_backoff < params.initial_backoff {
            return Err(InvalidArgumentError::new_err(format!(
                "backoff: initial_backoff {:?} must be positive and at most max_backoff {:?}",
                params.initial_backoff, params.max_backoff
            )));
        }
        if max_failures == Some(0) {
            return Err(InvalidArgumentError::new_err(
                "max_failures must be at least 1 (or None: never give up)",
            ));
        }
        params.max_failures = max_failures;
        let given = svid.map(|s| s.get().inner.clone());
        if let Some(s) = &given
            && s.spiffe_id() != &identity.0
        {
            return Err(CaProtocolError::new_err(format!(
                "svid names {} but identity is {}",
                s.spiffe_id(),
                identity.0
            )));
        }
        let client = self.inner.clone();
        let handle = py
            .detach(move || -> Result<RefreshHandle, meshtls::Error> {
                let first = match given {
                    Some(s) => s,
                    None => client.fetch_svid_blocking(&identity.0, params.ttl, params.key)?,
                };
                material.set_svid(&first)?;
                client.keep_fresh_in_background(material, first, params)
            })
            .map_err(py_err)?;
        Ok(PyRefreshHandle {
            handle: Mutex::new(Some(handle)),
            error: Mutex::new(None),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<IstioCaClient address='{}' server_name='{}'>",
            self.inner.config().address,
            self.inner.server_name()
        )
    }
}

/// A certificate kept fresh in the background by ``IstioCaClient.keep_fresh``.
///
/// ``stop()`` ends the loop and waits for its thread (a renewal in progress is abandoned, the
/// material keeps its certificate); ``with client.keep_fresh(...) as handle:`` stops it on
/// exit. ``running`` says whether it still runs, ``renewals`` how many certificates it put
/// into the material after the first, ``svid`` the current one, and ``error`` the
/// ``CaProtocolError`` (or other meshtls error) that ended it, if any.
#[pyclass(frozen, module = "meshtls", name = "RefreshHandle")]
pub(crate) struct PyRefreshHandle {
    handle: Mutex<Option<RefreshHandle>>,
    error: Mutex<Option<PyErr>>,
}

impl PyRefreshHandle {
    fn with<T>(&self, f: impl FnOnce(&RefreshHandle) -> T) -> Option<T> {
        self.handle.lock().ok().and_then(|h| h.as_ref().map(f))
    }
}

#[pymethods]
impl PyRefreshHandle {
    /// Stops the loop and waits for its thread (the GIL is released meanwhile). Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        // Keep any error first, then stop.
        let _ = self.error(py);
        let taken = self
            .handle
            .lock()
            .map_err(|_| CaProtocolError::new_err("refresh state poisoned"))?
            .take();
        if let Some(mut h) = taken {
            // Joined without the GIL and without holding the lock; put back afterwards so
            // that `svid` and `renewals` still answer.
            let (h, err) = py.detach(move || {
                h.stop();
                let err = h.take_error();
                (h, err)
            });
            if let Some(e) = err
                && let Ok(mut slot) = self.error.lock()
            {
                slot.get_or_insert(py_err(e));
            }
            if let Ok(mut slot) = self.handle.lock() {
                *slot = Some(h);
            }
        }
        Ok(())
    }

    /// Whether the loop still runs.
    #[getter]
    fn running(&self) -> bool {
        self.with(RefreshHandle::is_running).unwrap_or(false)
    }

    /// How many renewed certificates were put into the material.
    #[getter]
    fn renewals(&self) -> u64 {
        self.with(RefreshHandle::renewals).unwrap_or(0)
    }

    /// The ``Svid`` the material holds now.
    #[getter]
    fn svid(&self) -> Option<PySvid> {
        self.with(RefreshHandle::current)
            .flatten()
            .map(|inner| PySvid { inner })
    }

    /// The exception that ended the loop, or ``None`` while it runs or after a clean stop.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<PyErr> {
        let mut slot = self.error.lock().ok()?;
        if slot.is_none()
            && let Some(e) = self.with(RefreshHandle::take_error).flatten()
        {
            *slot = Some(py_err(e));
        }
        slot.as_ref().map(|e| e.clone_ref(py))
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<RefreshHandle running={} renewals={}>",
            if self.running() { "True" } else { "False" },
            self.renewals()
        )
    }
}

/// A server of Istio's CA protocol backed by a ``MeshCa``, for tests and for running a CA in
/// front of Istio's agents.
///
/// Callers authenticate as with istiod: a client certificate of the CA's trust domain, or a
/// Kubernetes service-account token verified offline against ``jwks`` (the API server's
/// ``/openid/v1/jwks`` document) with ``issuer`` and one of ``audiences`` (default ``("istio-ca",)``). ``strict_csr``
/// applies istio-csr's CSR rules; ``trusted_node_accounts`` maps a node agent (``ns/sa`` or a
/// SPIFFE ID) to the identities it may request with ``ImpersonatedIdentity``, or to ``None``
/// for any identity of the trust domain. ``dns_names`` replaces the serving certificate's
/// names (istiod's by default), ``extra_dns_names`` adds to them. ``cluster_id`` (default
/// ``Kubernetes``) refuses callers of another cluster; ``min_ttl``/``default_ttl``/``max_ttl``
/// bound the lifetimes (default 4 minutes, 24 hours, 90 days: below the floor, agents would
/// renew in a loop). ``config_file`` is the YAML/JSON file of ``meshtls ca serve --config``;
/// keyword arguments override it. Every request is logged on the ``meshtls.ca_protocol``
/// logger (refusals with their reason, at WARNING), with the lines ``meshtls ca serve``
/// prints. Use ``start()``/``stop()`` or ``with IstioCaServer(...) as server:``; ``address``
/// is then the bound ``host:port``.
#[pyclass(frozen, module = "meshtls", name = "IstioCaServer")]
pub(crate) struct PyIstioCaServer {
    server: IstioCaServer,
    listen: std::net::SocketAddr,
    running: Mutex<Option<RunningServer>>,
}

impl PyIstioCaServer {
    /// Where the running server listens; `CaProtocolError` before `start()`.
    fn local_addr(&self) -> PyResult<std::net::SocketAddr> {
        let running = self
            .running
            .lock()
            .map_err(|_| CaProtocolError::new_err("server state poisoned"))?;
        running
            .as_ref()
            .map(RunningServer::local_addr)
            .ok_or_else(|| CaProtocolError::new_err("the server is not started"))
    }
}

#[pymethods]
impl PyIstioCaServer {
    #[new]
    #[pyo3(signature = (ca, *, listen = "127.0.0.1:0", jwks = None, issuer = None, audiences = None, strict_csr = None, dns_names = None, extra_dns_names = None, trust_domain = None, trusted_node_accounts = None, cluster_id = None, default_ttl = None, max_ttl = None, min_ttl = None, config_file = None),
        text_signature = "(ca, *, listen='127.0.0.1:0', jwks=None, issuer=None, audiences=['istio-ca'], strict_csr=None, dns_names=None, extra_dns_names=None, trust_domain=None, trusted_node_accounts=None, cluster_id=None, default_ttl=None, max_ttl=None, min_ttl=None, config_file=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ca: &Bound<'_, PyMeshCa>,
        listen: &str,
        jwks: Option<String>,
        issuer: Option<String>,
        audiences: Option<Vec<String>>,
        strict_csr: Option<bool>,
        dns_names: Option<Vec<String>>,
        extra_dns_names: Option<Vec<String>>,
        trust_domain: Option<TrustDomainArg>,
        trusted_node_accounts: Option<HashMap<String, Option<Vec<String>>>>,
        cluster_id: Option<String>,
        default_ttl: Option<&Bound<'_, PyDelta>>,
        max_ttl: Option<&Bound<'_, PyDelta>>,
        min_ttl: Option<&Bound<'_, PyDelta>>,
        config_file: Option<PathBuf>,
    ) -> PyResult<Self> {
        let listen: std::net::SocketAddr = listen.parse().map_err(|_| {
            CaProtocolError::new_err(format!(
                "invalid listen address {listen:?}: expected ip:port"
            ))
        })?;
        let mut config = ServerConfig::default();
        config.jwt = match (jwks, issuer) {
            (Some(jwks), Some(issuer)) => {
                let audiences = audiences
                    .unwrap_or_else(|| vec![meshtls::ca_protocol::DEFAULT_AUDIENCE.to_owned()]);
                Some(JwtVerifier::new(&jwks, &issuer, &audiences).map_err(py_err)?)
            }
            (None, None) => None,
            _ => {
                return Err(CaProtocolError::new_err(
                    "jwks and issuer go together: give both or neither",
                ));
            }
        };
        let td = match trust_domain {
            Some(t) => t.0,
            None => ca.get().inner.trust_domain().clone(),
        };
        // The defaults, then the file, then the keyword arguments (as `meshtls ca serve`).
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                CaProtocolError::new_err(format!("cannot read config_file {}: {e}", path.display()))
            })?;
            py.detach(|| ServerSettings::parse(&text)?.apply(&mut config, &td))
                .map_err(py_err)?;
        }
        if let Some(strict) = strict_csr {
            config.strict_csr = strict;
        }
        if let Some(names) = dns_names {
            config.dns_names = names;
        }
        config.add_dns_names(extra_dns_names.unwrap_or_default());
        if let Some(c) = cluster_id {
            config.cluster_id = c;
        }
        for (t, slot, name) in [
            (default_ttl, &mut config.default_ttl, "default_ttl"),
            (max_ttl, &mut config.max_ttl, "max_ttl"),
            (min_ttl, &mut config.min_ttl, "min_ttl"),
        ] {
            if let Some(t) = t {
                *slot = duration_arg(t.as_any(), name)?;
            }
        }
        let mut accounts: Vec<_> = trusted_node_accounts
            .unwrap_or_default()
            .into_iter()
            .collect();
        accounts.sort();
        for (account, ids) in accounts {
            let n = NodeAccountSettings::new(account, ids)
                .to_node_account(&td)
                .map_err(py_err)?;
            config.trusted_node_accounts.push(n);
        }
        config.trust_domain = Some(td);
        let server = IstioCaServer::new(ca.get().inner.clone(), config).map_err(py_err)?;
        Ok(PyIstioCaServer {
            server,
            listen,
            running: Mutex::new(None),
        })
    }

    /// Binds the listen address and serves on a background thread; returns ``self``.
    fn start(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let this = slf.get();
        let mut running = this
            .running
            .lock()
            .map_err(|_| CaProtocolError::new_err("server state poisoned"))?;
        if running.is_none() {
            let server = this.server.clone();
            let listen = this.listen;
            let started = slf
                .py()
                .detach(move || server.start(listen))
                .map_err(py_err)?;
            *running = Some(started);
        }
        drop(running);
        Ok(slf)
    }

    /// Stops serving (open connections get one second) and waits for the server thread.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .running
            .lock()
            .map_err(|_| CaProtocolError::new_err("server state poisoned"))?
            .take();
        if let Some(mut running) = taken {
            py.detach(move || running.stop());
        }
        Ok(())
    }

    /// Whether the server is serving.
    #[getter]
    fn running(&self) -> bool {
        self.running
            .lock()
            .map(|r| r.as_ref().is_some_and(RunningServer::is_running))
            .unwrap_or(false)
    }

    /// The bound ``host:port`` once started (with the real port when 0 was asked for).
    #[getter]
    fn address(&self) -> PyResult<String> {
        self.local_addr().map(|a| a.to_string())
    }

    /// The bound port once started.
    #[getter]
    fn port(&self) -> PyResult<u16> {
        self.local_addr().map(|a| a.port())
    }

    /// The trust domain of issued identities.
    #[getter]
    fn trust_domain(&self) -> String {
        self.server.trust_domain().to_string()
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        PyIstioCaServer::start(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<IstioCaServer trust_domain='{}' listen='{}' running={}>",
            self.server.trust_domain(),
            self.listen,
            if self.running() { "True" } else { "False" }
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIstioCaClient>()?;
    m.add_class::<PyIstioCaServer>()?;
    m.add_class::<PyRefreshHandle>()?;
    Ok(())
}
