//! `SecretSpec`, `decide_secret` and `SecretAction`: the gateway-certificate controller's
//! decision (`meshtls::controller`), converted. No rule is decided here.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMapping, PyString};
use rustls_pki_types::CertificateDer;

use crate::args::{Text, duration_arg, now_arg, to_datetime, type_name};
use crate::ca::PySvid;
use crate::errors::{InvalidArgumentError, py_err};
use crate::identity::{PyMeshConfig, PySpiffeId};
use crate::svid::ChainArg;
use meshtls::controller::{self, Action, Inputs, ObservedSecret, SecretSpec};

/// What the gateway-certificate controller keeps: Secret ``namespace/name`` (a
/// ``kubernetes.io/tls`` Secret) holding the certificate of service account
/// ``identity_namespace/service_account`` in the mesh's trust domain.
///
/// Args:
///     name: the Secret's name.
///     namespace: the Secret's namespace.
///     identity_namespace: the namespace of the identity.
///     service_account: the service account of the identity.
///     source: where certificates come from, recorded in the ``meshtls.io/source``
///         annotation (e.g. ``"cacerts:istio-system/cacerts"``).
///     ttl: the certificate lifetime to ask for (default 24 h; more than a minute, at most
///         90 days).
///     grace_ratio: the share of the lifetime left when renewing (Istio: 0.5).
///     jitter: the largest random deviation of that ratio (Istio: 0.01), drawn from the
///         certificate's serial so every replica agrees.
///
/// Raises:
///     CaError: a bad Secret name or namespace.
///     InvalidSpiffeIdError: a bad identity namespace or service account.
///     ControllerError: a bad source or ttl.
#[pyclass(frozen, module = "meshtls", name = "SecretSpec")]
#[derive(Clone)]
pub(crate) struct PySecretSpec {
    pub(crate) inner: SecretSpec,
}

#[pymethods]
impl PySecretSpec {
    #[new]
    #[pyo3(
        signature = (name, namespace, *, identity_namespace, service_account, source, ttl = None, grace_ratio = None, jitter = None),
        text_signature = "(name, namespace, *, identity_namespace, service_account, source, ttl=None, grace_ratio=0.5, jitter=0.01)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: Text<'_>,
        namespace: Text<'_>,
        identity_namespace: Text<'_>,
        service_account: Text<'_>,
        source: Text<'_>,
        ttl: Option<&Bound<'_, PyAny>>,
        grace_ratio: Option<f64>,
        jitter: Option<f64>,
    ) -> PyResult<Self> {
        let mut spec = SecretSpec::new(
            &name,
            &namespace,
            &identity_namespace,
            &service_account,
            &source,
        )
        .map_err(py_err)?;
        if let Some(ttl) = ttl {
            spec = spec.with_ttl(duration_arg(ttl, "ttl")?).map_err(py_err)?;
        }
        let istio = meshtls::svid::RotationPolicy::default();
        let rotation = meshtls::svid::RotationPolicy::new(
            grace_ratio.unwrap_or(istio.grace_ratio),
            jitter.unwrap_or(istio.jitter),
        )
        .map_err(py_err)?;
        Ok(PySecretSpec {
            inner: spec.with_rotation(rotation),
        })
    }

    /// The Secret's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.secret_name()
    }

    /// The Secret's namespace.
    #[getter]
    fn namespace(&self) -> &str {
        self.inner.secret_namespace()
    }

    /// The namespace of the identity.
    #[getter]
    fn identity_namespace(&self) -> &str {
        self.inner.identity_namespace()
    }

    /// The service account of the identity.
    #[getter]
    fn service_account(&self) -> &str {
        self.inner.service_account()
    }

    /// The source name.
    #[getter]
    fn source(&self) -> &str {
        self.inner.source()
    }

    /// The certificate lifetime asked for, a ``timedelta``.
    #[getter]
    fn ttl(&self) -> Duration {
        self.inner.ttl()
    }

    /// The identity in ``mesh``'s trust domain.
    fn identity(&self, mesh: PyRef<'_, PyMeshConfig>) -> PyResult<PySpiffeId> {
        Ok(PySpiffeId {
            inner: self.inner.identity(&mesh.inner).map_err(py_err)?,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<SecretSpec {}/{} identity=ns/{}/sa/{} source={:?}>",
            self.inner.secret_namespace(),
            self.inner.secret_name(),
            self.inner.identity_namespace(),
            self.inner.service_account(),
            self.inner.source()
        )
    }
}

/// Reads the Secret as it is: ``None``, or a mapping with ``type``, ``data`` (values as
/// ``bytes``, or ``str`` holding base64 as the API's ``data`` field) and ``annotations`` (or
/// ``metadata.annotations``, so a Secret's ``to_dict()`` or API JSON can be passed as is).
fn observed_arg(ob: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ObservedSecret>> {
    use base64::Engine as _;
    let Some(ob) = ob.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let map = ob.cast::<PyMapping>().map_err(|_| {
        PyTypeError::new_err(format!(
            "current must be None or a mapping (a Secret as a dict), got {}",
            type_name(&ob.as_borrowed())
        ))
    })?;
    let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        if map.contains(key)? {
            let v = map.get_item(key)?;
            Ok((!v.is_none()).then_some(v))
        } else {
            Ok(None)
        }
    };
    let mut out = ObservedSecret {
        secret_type: match get("type")? {
            Some(t) => t.extract::<String>()?,
            None => "Opaque".to_owned(),
        },
        ..ObservedSecret::default()
    };
    if let Some(data) = get("data")? {
        let data = data
            .cast::<PyMapping>()
            .map_err(|_| PyTypeError::new_err("current['data'] must be a mapping"))?;
        for item in data.items()?.iter() {
            let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
            let bytes = if let Ok(b) = v.cast::<PyBytes>() {
                b.as_bytes().to_vec()
            } else if let Ok(s) = v.cast::<PyString>() {
                base64::engine::general_purpose::STANDARD
                    .decode(s.to_str()?.trim())
                    .map_err(|e| {
                        InvalidArgumentError::new_err(format!(
                            "current['data'][{k:?}] is not base64: {e}"
                        ))
                    })?
            } else {
                return Err(PyTypeError::new_err(format!(
                    "current['data'][{k:?}] must be bytes or base64 str, got {}",
                    type_name(&v.as_borrowed())
                )));
            };
            out.data.insert(k, bytes);
        }
    }
    let annotations = match get("annotations")? {
        Some(a) => Some(a),
        None => match get("metadata")? {
            Some(meta) => {
                let meta = meta
                    .cast::<PyMapping>()
                    .map_err(|_| PyTypeError::new_err("current['metadata'] must be a mapping"))?
                    .clone();
                if meta.contains("annotations")? {
                    let a = meta.get_item("annotations")?;
                    (!a.is_none()).then_some(a)
                } else {
                    None
                }
            }
            None => None,
        },
    };
    if let Some(a) = annotations {
        out.annotations = a.extract::<BTreeMap<String, String>>()?;
    }
    Ok(Some(out))
}

/// What the Secret must become: ``kind`` is ``"nothing"``, ``"issue"`` or ``"write"``.
///
/// - ``"issue"``: get a certificate for :attr:`identity` (``MeshCa.issue``,
///   ``IstioCaClient.fetch_svid``, ...) and pass it to :meth:`complete`;
/// - ``"write"``: write :attr:`secret` (:meth:`manifest` gives the object for the API); when
///   :attr:`replace` is true, delete the Secret first (its type is immutable);
/// - ``"nothing"``: look again at :attr:`recheck_at`.
#[pyclass(frozen, module = "meshtls", name = "SecretAction")]
pub(crate) struct PySecretAction {
    mesh: meshtls::MeshConfig,
    spec: SecretSpec,
    roots: Vec<CertificateDer<'static>>,
    current: Option<ObservedSecret>,
    now: SystemTime,
    action: Action,
}

impl PySecretAction {
    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            mesh: &self.mesh,
            spec: &self.spec,
            source_roots: &self.roots,
            current: self.current.as_ref(),
            now: self.now,
        }
    }

    fn with(&self, action: Action) -> Self {
        PySecretAction {
            mesh: self.mesh.clone(),
            spec: self.spec.clone(),
            roots: self.roots.clone(),
            current: self.current.clone(),
            now: self.now,
            action,
        }
    }

    fn the_reason(&self) -> Option<&controller::Reason> {
        match &self.action {
            Action::Issue { reason, .. } | Action::Write { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

#[pymethods]
impl PySecretAction {
    /// ``"nothing"``, ``"issue"`` or ``"write"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.action.kind()
    }

    /// Why (``"missing"``, ``"wrong-type"``, ``"unreadable"``, ``"identity-changed"``,
    /// ``"expired"``, ``"not-signed-by-mesh-roots"``, ``"rotation-due"``,
    /// ``"metadata-changed"``), or ``None`` for ``"nothing"``.
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.the_reason().map(controller::Reason::kind)
    }

    /// The reason as a sentence, or ``None``.
    #[getter]
    fn message(&self) -> Option<String> {
        self.the_reason().map(ToString::to_string)
    }

    /// The identity to issue for (``"issue"`` only), else ``None``.
    #[getter]
    fn identity(&self) -> Option<PySpiffeId> {
        match &self.action {
            Action::Issue { identity, .. } => Some(PySpiffeId {
                inner: identity.clone(),
            }),
            _ => None,
        }
    }

    /// Whether the Secret must be deleted before it is written (its type is wrong).
    #[getter]
    fn replace(&self) -> bool {
        matches!(
            self.action,
            Action::Issue { replace: true, .. } | Action::Write { replace: true, .. }
        )
    }

    /// When to look again (an aware UTC ``datetime``), or ``None`` for ``"issue"``.
    #[getter]
    fn recheck_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.action {
            Action::Nothing { recheck_at } | Action::Write { recheck_at, .. } => {
                Ok(Some(to_datetime(py, *recheck_at)?.into_any()))
            }
            _ => Ok(None),
        }
    }

    /// The Secret to write (``"write"`` only), as a dict: ``name``, ``namespace``, ``type``,
    /// ``data`` (``bytes`` values), ``annotations``, ``labels``; else ``None``.
    #[getter]
    fn secret<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Action::Write { secret, .. } = &self.action else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("name", secret.name())?;
        d.set_item("namespace", secret.namespace())?;
        d.set_item("type", secret.secret_type())?;
        let data = PyDict::new(py);
        for (k, v) in secret.data() {
            data.set_item(k, PyBytes::new(py, v.as_bytes()))?;
        }
        d.set_item("data", data)?;
        d.set_item("annotations", secret.annotations().clone())?;
        d.set_item("labels", secret.labels())?;
        Ok(Some(d))
    }

    /// The Secret as the API takes it (``"write"`` only): ``apiVersion``, ``kind``,
    /// ``metadata``, ``type`` and base64 ``data``, as JSON text for a server-side apply.
    fn manifest(&self) -> PyResult<Option<String>> {
        let Action::Write { secret, .. } = &self.action else {
            return Ok(None);
        };
        Ok(Some(secret.to_apply_json().to_string()))
    }

    /// Turns the certificate issued for an ``"issue"`` action into the ``"write"``.
    ///
    /// Raises:
    ///     ControllerError: the certificate is for another identity, already expired, or does
    ///         not chain to the source's roots (the Secret must then stay as it is).
    ///     InvalidArgumentError: this action is not ``"issue"``.
    fn complete(&self, py: Python<'_>, svid: PyRef<'_, PySvid>) -> PyResult<Self> {
        let Action::Issue { reason, .. } = &self.action else {
            return Err(InvalidArgumentError::new_err(format!(
                "complete() needs an \"issue\" action, this one is {:?}",
                self.action.kind()
            )));
        };
        let svid = svid.inner.clone();
        let action = py
            .detach(|| controller::complete(&self.inputs(), reason.clone(), &svid))
            .map_err(py_err)?;
        Ok(self.with(action))
    }

    /// What to do after the source or the API server failed on attempt ``attempt`` (0
    /// first): always ``"nothing"`` (a valid certificate is never replaced by nothing), with
    /// :attr:`recheck_at` after a capped exponential backoff, never past the current
    /// certificate's rotation point.
    #[pyo3(signature = (attempt, *, cap = None))]
    fn after_failure(&self, attempt: u32, cap: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let cap = match cap {
            Some(c) => duration_arg(c, "cap")?,
            None => Duration::from_secs(300),
        };
        Ok(self.with(controller::after_failure(&self.inputs(), attempt, cap)))
    }

    fn __repr__(&self) -> String {
        match self.the_reason() {
            Some(r) => format!(
                "<SecretAction {} reason={:?}>",
                self.action.kind(),
                r.kind()
            ),
            None => format!("<SecretAction {}>", self.action.kind()),
        }
    }
}

/// Decides what the gateway's certificate Secret must become (``meshtls.controller.decide``
/// in Rust: the same rules).
///
/// Args:
///     mesh: the :class:`MeshConfig` from the ``istio`` ConfigMap.
///     spec: the :class:`SecretSpec`.
///     current: the Secret as it is (a dict with ``type``, ``data``, ``annotations`` or
///         ``metadata.annotations``; ``data`` values ``bytes`` or base64 ``str``), or
///         ``None`` when it does not exist.
///     source_roots: the certificate source's roots (PEM text or a list of DER ``bytes``);
///         ``None`` when not known yet.
///     now: an aware ``datetime``; ``None`` for now.
///
/// Returns:
///     a :class:`SecretAction`.
///
/// Raises:
///     ControllerError: a ``caCertificates`` entry of the mesh config is not PEM.
#[pyfunction]
#[pyo3(signature = (mesh, spec, current, *, source_roots = None, now = None))]
fn decide_secret(
    py: Python<'_>,
    mesh: PyRef<'_, PyMeshConfig>,
    spec: PyRef<'_, PySecretSpec>,
    current: Option<&Bound<'_, PyAny>>,
    source_roots: Option<ChainArg>,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<PySecretAction> {
    let mut out = PySecretAction {
        mesh: mesh.inner.clone(),
        spec: spec.inner.clone(),
        roots: source_roots.map(|c| c.0).unwrap_or_default(),
        current: observed_arg(current)?,
        now: now_arg(now)?,
        action: Action::Nothing {
            recheck_at: SystemTime::UNIX_EPOCH,
        },
    };
    out.action = py
        .detach(|| controller::decide(&out.inputs()))
        .map_err(py_err)?;
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySecretSpec>()?;
    m.add_class::<PySecretAction>()?;
    m.add_function(wrap_pyfunction!(decide_secret, m)?)?;
    Ok(())
}
