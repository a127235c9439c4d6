//! `meshtls.workload_api.WorkloadApiClient`, `X509Source`, `JwtSource`: argument conversion,
//! error mapping and GIL release around `meshtls::workload_api`'s client side. The calls run
//! on one shared tokio runtime (two worker threads) that also drives the sources' streams.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use meshtls::error::{StatusCode, WorkloadClientError};
use meshtls::jwt::{AudienceMatch, JwksShape, JwtPolicy};
use meshtls::workload_api::{
    Endpoint, JwtSource, SourceOptions, SvidSelector, WorkloadApiClient, X509Context, X509Source,
    X509Svid,
};
use pyo3::exceptions::PyValueError;
use pyo3::import_exception;
use pyo3::prelude::*;
use pyo3::types::{PyDelta, PyDict};

use crate::args::duration_arg;
use crate::ca::PySvid;
use crate::errors::py_err;
use crate::identity::{PySpiffeId, SpiffeIdArg};
use crate::jwt::PyJwtSvid;
use crate::svid::PyBundleSet;
use crate::tls::PyTlsMaterial;

import_exception!(meshtls._workload_client, WorkloadApiClientError);
import_exception!(meshtls._workload_client, InvalidEndpointError);
import_exception!(meshtls._workload_client, WorkloadApiConnectError);
import_exception!(meshtls._workload_client, WorkloadApiStatusError);
import_exception!(meshtls._workload_client, NoIdentityError);
import_exception!(meshtls._workload_client, WorkloadApiTimeoutError);
import_exception!(meshtls._workload_client, NoMatchingSvidError);
import_exception!(meshtls._workload_client, SourceClosedError);

/// The runtime the client's calls and the sources' streams run on.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("meshtls-workload-api")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            WorkloadApiClientError::new_err(format!("cannot start the workload api runtime: {e}"))
        })
}

/// A client error → its Python exception (the gRPC code name as the exception's ``code``).
fn client_err(err: meshtls::Error) -> PyErr {
    let meshtls::Error::WorkloadClient(e) = err else {
        return py_err(err);
    };
    let msg = e.to_string();
    let exc = match &e {
        WorkloadClientError::Endpoint { .. } | WorkloadClientError::NoEndpoint => {
            InvalidEndpointError::new_err(msg)
        }
        WorkloadClientError::Option { .. } => PyValueError::new_err(msg),
        WorkloadClientError::Connect { .. } => WorkloadApiConnectError::new_err(msg),
        WorkloadClientError::Status { code, .. } if *code == StatusCode::PermissionDenied => {
            NoIdentityError::new_err(msg)
        }
        WorkloadClientError::Status { .. } => WorkloadApiStatusError::new_err(msg),
        WorkloadClientError::Timeout { .. } => WorkloadApiTimeoutError::new_err(msg),
        WorkloadClientError::NoMatch { .. } => NoMatchingSvidError::new_err(msg),
        WorkloadClientError::Closed => SourceClosedError::new_err(msg),
        _ => WorkloadApiClientError::new_err(msg),
    };
    if let Some(code) = e.code() {
        Python::attach(|py| {
            let _ = exc.value(py).setattr("code", code.name());
        });
    }
    exc
}

fn endpoint(address: Option<&str>) -> PyResult<Endpoint> {
    match address {
        Some(a) => Endpoint::parse(a),
        None => Endpoint::from_env(),
    }
    .map_err(|e| client_err(e.into()))
}

fn selector(hint: Option<String>, spiffe_id: Option<SpiffeIdArg>) -> PyResult<SvidSelector> {
    Ok(match (hint, spiffe_id) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err("give hint or spiffe_id, not both"));
        }
        (Some(h), None) => SvidSelector::Hint(h),
        (None, Some(id)) => SvidSelector::SpiffeId(id.0),
        (None, None) => SvidSelector::First,
    })
}

fn connect(
    py: Python<'_>,
    address: Option<&str>,
    timeout: Option<Duration>,
) -> PyResult<WorkloadApiClient> {
    let endpoint = endpoint(address)?;
    let rt = runtime()?;
    let client = py
        .detach(|| rt.block_on(WorkloadApiClient::connect(endpoint)))
        .map_err(client_err)?;
    Ok(match timeout {
        Some(t) => client.with_timeout(t),
        None => client,
    })
}

fn opt_duration(d: Option<&Bound<'_, PyDelta>>, what: &str) -> PyResult<Option<Duration>> {
    d.map(|d| duration_arg(d.as_any(), what)).transpose()
}

fn jwt_policy(audience: Vec<String>, all_audiences: bool) -> PyResult<JwtPolicy> {
    Ok(JwtPolicy::new(audience)
        .map_err(py_err)?
        .audience_match(if all_audiences {
            AudienceMatch::AllOf
        } else {
            AudienceMatch::AnyOf
        }))
}

fn jwks_dict<'py>(
    py: Python<'py>,
    set: &meshtls::jwt::JwtBundleSet,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for b in set.bundles() {
        dict.set_item(b.trust_domain().as_str(), b.to_jwks(JwksShape::WorkloadApi))?;
    }
    Ok(dict)
}

// ---- value types ------------------------------------------------------------------------------

/// An X.509-SVID from the Workload API: the :class:`~meshtls.Svid` (its ``trust_bundle_pem`` is
/// its own trust domain's bundle) and the server's hint.
#[pyclass(frozen, module = "meshtls.workload_api", name = "X509Svid")]
pub(crate) struct PyX509Svid {
    inner: X509Svid,
}

#[pymethods]
impl PyX509Svid {
    /// The SPIFFE ID.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    /// The server's hint (``""`` when none).
    #[getter]
    fn hint(&self) -> &str {
        self.inner.hint()
    }

    /// The certificate chain and private key as a :class:`~meshtls.Svid`.
    #[getter]
    fn svid(&self) -> PySvid {
        PySvid {
            inner: self.inner.svid().clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<X509Svid spiffe_id='{}' hint={:?}>",
            self.inner.spiffe_id(),
            self.inner.hint()
        )
    }
}

/// One full state of ``FetchX509SVID``: ``svids`` (the first is the default identity) and
/// ``bundles`` (the own trust domain's and the federated ones).
#[pyclass(frozen, module = "meshtls.workload_api", name = "X509Context")]
pub(crate) struct PyX509Context {
    inner: X509Context,
}

#[pymethods]
impl PyX509Context {
    /// The SVIDs in the server's order.
    #[getter]
    fn svids(&self) -> Vec<PyX509Svid> {
        self.inner
            .svids()
            .iter()
            .map(|s| PyX509Svid { inner: s.clone() })
            .collect()
    }

    /// The bundles as a :class:`~meshtls.BundleSet`.
    #[getter]
    fn bundles(&self) -> PyBundleSet {
        PyBundleSet {
            inner: Arc::new(self.inner.bundles().clone()),
        }
    }

    /// The SVID with ``hint`` or ``spiffe_id`` (the first SVID when neither is given).
    ///
    /// Raises:
    ///     NoMatchingSvidError: none matches (the message lists what was sent).
    #[pyo3(signature = (*, hint = None, spiffe_id = None))]
    fn select(&self, hint: Option<String>, spiffe_id: Option<SpiffeIdArg>) -> PyResult<PyX509Svid> {
        let pick = selector(hint, spiffe_id)?;
        let svid = self.inner.select(&pick).map_err(|e| client_err(e.into()))?;
        Ok(PyX509Svid {
            inner: svid.clone(),
        })
    }

    fn __repr__(&self) -> String {
        format!("<X509Context svids={}>", self.inner.svids().len())
    }
}

/// A JWT-SVID minted by the Workload API (``token`` not validated here: it comes from the
/// local agent).
#[pyclass(frozen, module = "meshtls.workload_api", name = "JwtSvidToken")]
pub(crate) struct PyJwtSvidToken {
    inner: meshtls::workload_api::JwtSvidToken,
}

#[pymethods]
impl PyJwtSvidToken {
    /// The SPIFFE ID the server says the token is for.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id.clone(),
        }
    }

    /// The token (JWS compact serialization).
    #[getter]
    fn token(&self) -> &str {
        &self.inner.token
    }

    /// The server's hint (``""`` when none).
    #[getter]
    fn hint(&self) -> &str {
        &self.inner.hint
    }

    fn __repr__(&self) -> String {
        format!("<JwtSvidToken spiffe_id='{}'>", self.inner.spiffe_id)
    }
}

// ---- the client -------------------------------------------------------------------------------

/// A client of the SPIFFE Workload API (SPIRE's agent, ``meshtls workload-api serve``, ...).
///
/// ``address`` is ``unix:///path`` or ``tcp://ip:port`` (default: ``SPIFFE_ENDPOINT_SOCKET``),
/// parsed as SPIFFE Workload Endpoint §4 says; the connection is made here (GIL released).
/// Every call carries the ``workload.spiffe.io: true`` header and waits at most ``timeout``
/// (default 10 s).
///
/// Raises:
///     InvalidEndpointError: the address breaks the standard (the message names the rule).
///     WorkloadApiConnectError: nothing listens there.
#[pyclass(frozen, module = "meshtls.workload_api", name = "WorkloadApiClient")]
pub(crate) struct PyWorkloadApiClient {
    inner: WorkloadApiClient,
}

#[pymethods]
impl PyWorkloadApiClient {
    #[new]
    #[pyo3(signature = (address = None, *, timeout = None))]
    fn new(
        py: Python<'_>,
        address: Option<&str>,
        timeout: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<Self> {
        let timeout = opt_duration(timeout, "timeout")?;
        Ok(PyWorkloadApiClient {
            inner: connect(py, address, timeout)?,
        })
    }

    /// The endpoint as a URI (``unix:///...`` or ``tcp://...``).
    #[getter]
    fn address(&self) -> String {
        self.inner.endpoint().to_string()
    }

    /// The caller's X.509-SVIDs and bundles (the first message of ``FetchX509SVID``).
    ///
    /// Raises:
    ///     NoIdentityError: the server has no identity for this process (``PermissionDenied``).
    ///     WorkloadApiStatusError: another gRPC status (``.code`` is its name).
    fn fetch_x509_context(&self, py: Python<'_>) -> PyResult<PyX509Context> {
        let rt = runtime()?;
        let c = self.inner.clone();
        let inner = py
            .detach(|| rt.block_on(c.fetch_x509_context()))
            .map_err(client_err)?;
        Ok(PyX509Context { inner })
    }

    /// The X.509-SVID with ``hint`` or ``spiffe_id`` (default: the first, the default identity).
    #[pyo3(signature = (*, hint = None, spiffe_id = None))]
    fn fetch_x509_svid(
        &self,
        py: Python<'_>,
        hint: Option<String>,
        spiffe_id: Option<SpiffeIdArg>,
    ) -> PyResult<PyX509Svid> {
        let pick = selector(hint, spiffe_id)?;
        let rt = runtime()?;
        let c = self.inner.clone();
        let inner = py
            .detach(|| rt.block_on(c.fetch_x509_svid(&pick)))
            .map_err(client_err)?;
        Ok(PyX509Svid { inner })
    }

    /// The X.509 bundles (``FetchX509Bundles``) as a :class:`~meshtls.BundleSet`.
    fn fetch_x509_bundles(&self, py: Python<'_>) -> PyResult<PyBundleSet> {
        let rt = runtime()?;
        let c = self.inner.clone();
        let set = py
            .detach(|| rt.block_on(c.fetch_x509_bundles()))
            .map_err(client_err)?;
        Ok(PyBundleSet {
            inner: Arc::new(set),
        })
    }

    /// JWT-SVIDs for ``audience`` (at least one): every identity of the caller, or the one
    /// with ``spiffe_id`` or ``hint``.
    #[pyo3(signature = (audience, *, spiffe_id = None, hint = None))]
    fn fetch_jwt_svids(
        &self,
        py: Python<'_>,
        audience: Vec<String>,
        spiffe_id: Option<SpiffeIdArg>,
        hint: Option<String>,
    ) -> PyResult<Vec<PyJwtSvidToken>> {
        let pick = selector(hint, spiffe_id)?;
        let rt = runtime()?;
        let c = self.inner.clone();
        let tokens = py
            .detach(|| {
                rt.block_on(async {
                    if pick == SvidSelector::First {
                        c.fetch_jwt_svids(&audience, None).await
                    } else {
                        Ok(vec![c.fetch_jwt_svid(&audience, &pick).await?])
                    }
                })
            })
            .map_err(client_err)?;
        Ok(tokens
            .into_iter()
            .map(|inner| PyJwtSvidToken { inner })
            .collect())
    }

    /// One JWT-SVID for ``audience``: the one with ``spiffe_id`` or ``hint``, or the first.
    #[pyo3(signature = (audience, *, spiffe_id = None, hint = None))]
    fn fetch_jwt_svid(
        &self,
        py: Python<'_>,
        audience: Vec<String>,
        spiffe_id: Option<SpiffeIdArg>,
        hint: Option<String>,
    ) -> PyResult<PyJwtSvidToken> {
        let pick = selector(hint, spiffe_id)?;
        let rt = runtime()?;
        let c = self.inner.clone();
        let inner = py
            .detach(|| rt.block_on(c.fetch_jwt_svid(&audience, &pick)))
            .map_err(client_err)?;
        Ok(PyJwtSvidToken { inner })
    }

    /// The JWT bundles: trust domain name to JWKS JSON text (the shape
    /// :func:`meshtls.validate_jwt_svid` takes).
    fn fetch_jwt_bundles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rt = runtime()?;
        let c = self.inner.clone();
        let set = py
            .detach(|| rt.block_on(c.fetch_jwt_bundles()))
            .map_err(client_err)?;
        jwks_dict(py, &set)
    }

    /// Asks the server to validate ``token`` for ``audience`` (``ValidateJWTSVID``); returns
    /// ``(SpiffeId, claims dict)``. A refusal raises ``WorkloadApiStatusError`` with code
    /// ``InvalidArgument`` and the server's reason.
    fn validate_jwt_svid<'py>(
        &self,
        py: Python<'py>,
        token: String,
        audience: String,
    ) -> PyResult<(PySpiffeId, Bound<'py, PyAny>)> {
        let rt = runtime()?;
        let c = self.inner.clone();
        let v = py
            .detach(|| rt.block_on(c.validate_jwt_svid(&token, &audience)))
            .map_err(client_err)?;
        let claims = py
            .import("json")?
            .call_method1("loads", (serde_json::Value::Object(v.claims).to_string(),))?;
        Ok((PySpiffeId { inner: v.spiffe_id }, claims))
    }

    fn __repr__(&self) -> String {
        format!("<WorkloadApiClient {}>", self.inner.endpoint())
    }
}

// ---- sources ----------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn options(
    hint: Option<String>,
    spiffe_id: Option<SpiffeIdArg>,
    initial_timeout: Option<&Bound<'_, PyDelta>>,
    backoff_initial: Option<&Bound<'_, PyDelta>>,
    backoff_max: Option<&Bound<'_, PyDelta>>,
) -> PyResult<SourceOptions> {
    let mut o = SourceOptions {
        selector: selector(hint, spiffe_id)?,
        ..SourceOptions::default()
    };
    if let Some(t) = opt_duration(initial_timeout, "initial_timeout")? {
        o.initial_timeout = t;
    }
    if let Some(t) = opt_duration(backoff_initial, "backoff_initial")? {
        o.backoff_initial = t;
    }
    if let Some(t) = opt_duration(backoff_max, "backoff_max")? {
        o.backoff_max = t;
    }
    Ok(o)
}

fn status_dict<'py>(
    py: Python<'py>,
    s: &meshtls::workload_api::SourceStatus,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("updates", s.updates)?;
    d.set_item("last_error", s.last_error.as_ref().map(ToString::to_string))?;
    d.set_item(
        "last_code",
        s.last_error
            .as_ref()
            .and_then(|e| e.code())
            .map(|c| c.name()),
    )?;
    d.set_item("stopped", s.stopped)?;
    d.set_item("withdrawn", s.withdrawn)?;
    Ok(d)
}

/// X.509-SVIDs and bundles from the Workload API, kept current by a background task (no
/// Python thread, no GIL), and a :class:`meshtls.tls.TlsMaterial` that follows every
/// rotation: ``meshtls.tls.ClientConfig(source.tls_material, ...)`` and
/// ``meshtls.tls.ServerConfig(source.tls_material, ...)`` present the new SVID at their next
/// handshake without being rebuilt.
///
/// Connects (raising ``WorkloadApiConnectError`` when nothing listens), then waits (GIL
/// released) for the first update, retrying ``PermissionDenied``, ``Unavailable`` and a
/// dropped connection with exponential backoff (``backoff_initial`` doubling up to
/// ``backoff_max``) for up to ``initial_timeout`` (default 30 s), then raises the last error;
/// ``InvalidArgument`` and ``Unimplemented`` are raised at once (the standard says not to
/// retry them). ``hint`` or ``spiffe_id`` picks the SVID (default: the first). A context
/// manager: leaving it stops the task.
#[pyclass(frozen, module = "meshtls.workload_api", name = "X509Source")]
pub(crate) struct PyX509Source {
    inner: X509Source,
}

#[pymethods]
impl PyX509Source {
    #[new]
    #[pyo3(signature = (address = None, *, hint = None, spiffe_id = None, initial_timeout = None, backoff_initial = None, backoff_max = None, timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        address: Option<&str>,
        hint: Option<String>,
        spiffe_id: Option<SpiffeIdArg>,
        initial_timeout: Option<&Bound<'_, PyDelta>>,
        backoff_initial: Option<&Bound<'_, PyDelta>>,
        backoff_max: Option<&Bound<'_, PyDelta>>,
        timeout: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<Self> {
        let opts = options(
            hint,
            spiffe_id,
            initial_timeout,
            backoff_initial,
            backoff_max,
        )?;
        let client = connect(py, address, opt_duration(timeout, "timeout")?)?;
        let rt = runtime()?;
        let inner = py
            .detach(|| rt.block_on(X509Source::start(client, opts)))
            .map_err(client_err)?;
        Ok(PyX509Source { inner })
    }

    /// The :class:`meshtls.tls.TlsMaterial` that follows this source.
    #[getter]
    fn tls_material(&self) -> PyTlsMaterial {
        PyTlsMaterial {
            inner: self.inner.tls_material(),
        }
    }

    /// The selected SVID now (raises the withdrawal or stop reason when there is none).
    #[getter]
    fn svid(&self) -> PyResult<PyX509Svid> {
        let inner = self.inner.svid().map_err(client_err)?;
        Ok(PyX509Svid { inner })
    }

    /// The bundles now.
    #[getter]
    fn bundles(&self) -> PyResult<PyBundleSet> {
        let set = self.inner.bundles().map_err(client_err)?;
        Ok(PyBundleSet {
            inner: Arc::new(set),
        })
    }

    /// The number of updates so far (1 after construction).
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// ``{"updates", "last_error", "last_code", "stopped", "withdrawn"}``.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_dict(py, &self.inner.status())
    }

    /// Waits (GIL released) for an update after generation ``after`` (default: the current
    /// one) for at most ``timeout`` (default 60 s); returns the new generation.
    ///
    /// Raises:
    ///     WorkloadApiTimeoutError: no update in time (or the last error seen meanwhile).
    #[pyo3(signature = (after = None, *, timeout = None))]
    fn wait_for_update(
        &self,
        py: Python<'_>,
        after: Option<u64>,
        timeout: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<u64> {
        let after = after.unwrap_or_else(|| self.inner.generation());
        let timeout = opt_duration(timeout, "timeout")?.unwrap_or(Duration::from_secs(60));
        let rt = runtime()?;
        py.detach(|| rt.block_on(self.inner.wait_for_update(after, timeout)))
            .map_err(client_err)
    }

    /// Stops the background task; the material keeps its last SVID.
    fn close(&self) {
        self.inner.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.inner.close();
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<X509Source {} generation={}>",
            self.inner.client().endpoint(),
            self.inner.generation()
        )
    }
}

/// JWT bundles from the Workload API kept current by a background task, JWT-SVIDs fetched
/// on demand, and local validation by meshtls's JWT-SVID policy against the current bundles.
/// Start-up, retries and ``hint``/``spiffe_id`` as :class:`X509Source`. A context manager.
#[pyclass(frozen, module = "meshtls.workload_api", name = "JwtSource")]
pub(crate) struct PyJwtSource {
    inner: JwtSource,
}

#[pymethods]
impl PyJwtSource {
    #[new]
    #[pyo3(signature = (address = None, *, hint = None, spiffe_id = None, initial_timeout = None, backoff_initial = None, backoff_max = None, timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        address: Option<&str>,
        hint: Option<String>,
        spiffe_id: Option<SpiffeIdArg>,
        initial_timeout: Option<&Bound<'_, PyDelta>>,
        backoff_initial: Option<&Bound<'_, PyDelta>>,
        backoff_max: Option<&Bound<'_, PyDelta>>,
        timeout: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<Self> {
        let opts = options(
            hint,
            spiffe_id,
            initial_timeout,
            backoff_initial,
            backoff_max,
        )?;
        let client = connect(py, address, opt_duration(timeout, "timeout")?)?;
        let rt = runtime()?;
        let inner = py
            .detach(|| rt.block_on(JwtSource::start(client, opts)))
            .map_err(client_err)?;
        Ok(PyJwtSource { inner })
    }

    /// A JWT-SVID for ``audience`` from the server, picked by the source's hint or SPIFFE ID.
    fn fetch_svid(&self, py: Python<'_>, audience: Vec<String>) -> PyResult<PyJwtSvidToken> {
        let rt = runtime()?;
        let inner = py
            .detach(|| rt.block_on(self.inner.fetch_svid(&audience)))
            .map_err(client_err)?;
        Ok(PyJwtSvidToken { inner })
    }

    /// Validates ``token`` locally against the current bundles (the bundle of the token's own
    /// trust domain) by meshtls's policy; ``audience`` any-of (all-of with
    /// ``all_audiences=True``). Returns a :class:`~meshtls.JwtSvid`; raises ``JwtError``.
    #[pyo3(signature = (token, *, audience, all_audiences = false))]
    fn validate(
        &self,
        py: Python<'_>,
        token: String,
        audience: Vec<String>,
        all_audiences: bool,
    ) -> PyResult<PyJwtSvid> {
        let policy = jwt_policy(audience, all_audiences)?;
        let inner = py
            .detach(|| self.inner.validate(&token, &policy))
            .map_err(client_err)?;
        Ok(PyJwtSvid { inner })
    }

    /// The bundles now: trust domain name to JWKS JSON text.
    #[getter]
    fn bundles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let set = self.inner.bundles().map_err(client_err)?;
        jwks_dict(py, &set)
    }

    /// The number of bundle updates so far.
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// ``{"updates", "last_error", "last_code", "stopped", "withdrawn"}``.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_dict(py, &self.inner.status())
    }

    /// Stops the background task.
    fn close(&self) {
        self.inner.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.inner.close();
        false
    }

    fn __repr__(&self) -> String {
        format!("<JwtSource {}>", self.inner.client().endpoint())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWorkloadApiClient>()?;
    m.add_class::<PyX509Source>()?;
    m.add_class::<PyJwtSource>()?;
    m.add_class::<PyX509Context>()?;
    m.add_class::<PyX509Svid>()?;
    m.add_class::<PyJwtSvidToken>()?;
    Ok(())
}
