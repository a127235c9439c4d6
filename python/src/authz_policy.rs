//! `AuthorizationPolicySet`, `AuthorizationDecision`, `validate_authorization_policy`, and the
//! path check (`Mesh`, `PathResult`). Conversions only: every decision is the core's.

use std::net::IpAddr;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyString, PyTuple, PyType};

use meshtls::path::{Caller, Destination, Mesh};
use meshtls::policy::PolicyName;
use meshtls::policy::authorization::{AuthorizationPolicySet, DataPlane, Request, Step, Verdict};

use crate::args::port_arg;
use crate::errors::{InvalidArgumentError, py_err};
use crate::identity::{PyMeshConfig, SpiffeIdArg};

/// A workload's labels: a mapping of str to str, or None.
fn labels_arg(ob: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    if ob.is_none() {
        return Ok(Vec::new());
    }
    let items = if let Ok(d) = ob.cast::<PyDict>() {
        d.items().into_any()
    } else if ob.hasattr("items")? {
        ob.call_method0("items")?
    } else {
        return Err(PyTypeError::new_err(format!(
            "labels must be a mapping of str to str, got {}",
            ob.get_type().name()?
        )));
    };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let k: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("label keys must be str"))?;
        let v: String = v
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("label value for {k:?} must be str")))?;
        out.push((k, v));
    }
    Ok(out)
}

fn ip_arg(what: &str, ip: Option<&str>) -> PyResult<Option<IpAddr>> {
    ip.map(|s| {
        s.parse::<IpAddr>().map_err(|_| {
            InvalidArgumentError::new_err(format!("invalid {what} {s:?}: not an IP address"))
        })
    })
    .transpose()
}

fn pairs_arg(what: &str, ob: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    match ob {
        None => Ok(Vec::new()),
        Some(o) if o.is_none() => Ok(Vec::new()),
        Some(o) => labels_arg(o)
            .map_err(|_| PyTypeError::new_err(format!("{what} must be a mapping of str to str"))),
    }
}

/// One request of `check_many`: namespace, labels, request, data plane.
type Query = (String, Vec<(String, String)>, Request, DataPlane);

/// Everything `check` reads, as the keyword arguments (and `check_many`'s mapping keys) name it.
#[derive(Default)]
struct RequestArgs<'py> {
    principal: Option<Bound<'py, PyAny>>,
    source_ip: Option<String>,
    remote_ip: Option<String>,
    destination_ip: Option<String>,
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    headers: Option<Bound<'py, PyAny>>,
    request_principal: Option<String>,
    claims: Option<Bound<'py, PyAny>>,
    sni: Option<String>,
}

/// The request attribute names, as `check`'s keywords and `check_many`'s mapping keys.
const ATTRIBUTES: &[&str] = &[
    "principal",
    "source_ip",
    "remote_ip",
    "destination_ip",
    "method",
    "path",
    "host",
    "headers",
    "request_principal",
    "claims",
    "sni",
];

fn plane_arg(data_plane: &str) -> PyResult<DataPlane> {
    match data_plane {
        "sidecar" => Ok(DataPlane::Sidecar),
        "ambient" => Ok(DataPlane::Ambient),
        other => Err(InvalidArgumentError::new_err(format!(
            "invalid data_plane {other:?}: must be \"sidecar\" or \"ambient\""
        ))),
    }
}

fn build_request(port: u16, a: RequestArgs<'_>) -> PyResult<Request> {
    let mut r = Request::tcp(port);
    if let Some(p) = a.principal.filter(|p| !p.is_none()) {
        let id: SpiffeIdArg = p.extract()?;
        r = r.with_peer(&id.0);
    }
    r.source_ip = ip_arg("source_ip", a.source_ip.as_deref())?;
    r.remote_ip = ip_arg("remote_ip", a.remote_ip.as_deref())?;
    r.destination_ip = ip_arg("destination_ip", a.destination_ip.as_deref())?;
    let headers = pairs_arg("headers", a.headers.as_ref())?;
    r = r.with_http_parts(
        a.method.as_deref(),
        a.path.as_deref(),
        a.host.as_deref(),
        headers,
    );
    r.request_principal = a.request_principal;
    r.sni = a.sni;
    if let Some(c) = a.claims.filter(|c| !c.is_none()) {
        let d = c.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err("claims must be a dict of str to str or list of str")
        })?;
        for (k, v) in d.iter() {
            let k: String = k.extract()?;
            if let Ok(s) = v.extract::<String>() {
                r = r.with_claim(&k, &s);
            } else {
                let list: Vec<String> = v.extract().map_err(|_| {
                    PyTypeError::new_err(format!("claim {k:?} must be str or a list of str"))
                })?;
                for s in list {
                    r = r.with_claim(&k, &s);
                }
            }
        }
    }
    Ok(r)
}

/// The decision for one request: the deciding step, the deciding policy and rule, and (when
/// asked for) why every candidate policy did or did not match.
#[pyclass(frozen, eq, hash, module = "meshtls", name = "AuthorizationDecision")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyAuthorizationDecision {
    inner: Verdict,
}

fn step_from_parts(
    step: &str,
    policy: Option<&str>,
    rule: Option<usize>,
    provider: Option<String>,
) -> PyResult<Step> {
    let with_policy = || -> PyResult<(PolicyName, usize)> {
        let p =
            policy.ok_or_else(|| PyValueError::new_err(format!("step {step:?} needs a policy")))?;
        let p = PolicyName::parse(p).map_err(py_err)?;
        Ok((p, rule.unwrap_or(0)))
    };
    Ok(match step {
        "allowed" => {
            let (policy, rule) = with_policy()?;
            Step::Allowed { policy, rule }
        }
        "denied" => {
            let (policy, rule) = with_policy()?;
            Step::Denied { policy, rule }
        }
        "external" => {
            let (policy, rule) = with_policy()?;
            Step::External {
                policy,
                rule,
                provider: provider.unwrap_or_default(),
            }
        }
        "no-allow-policy" => Step::NoAllowPolicy,
        "no-allow-matched" => Step::NoAllowMatched,
        other => {
            return Err(PyValueError::new_err(format!(
                "invalid step {other:?}: must be one of allowed, denied, external, no-allow-policy, no-allow-matched"
            )));
        }
    })
}

#[pymethods]
impl PyAuthorizationDecision {
    /// Rebuilds a decision from its parts (what pickling stores).
    #[new]
    #[pyo3(signature = (step, policy=None, rule=None, provider=None, explanation=None))]
    fn new(
        step: &str,
        policy: Option<&str>,
        rule: Option<usize>,
        provider: Option<String>,
        explanation: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let explanation = explanation.unwrap_or_default();
        let step = step_from_parts(step, policy, rule, provider)?;
        Ok(PyAuthorizationDecision {
            inner: Verdict::new(step, explanation),
        })
    }

    /// True when the sidecar lets the request through without asking anyone else.
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.allowed()
    }

    /// One sentence naming the step that decided.
    #[getter]
    fn reason(&self) -> String {
        self.inner.reason()
    }

    /// `"allowed"`, `"denied"`, `"external"`, `"no-allow-policy"` or `"no-allow-matched"`.
    #[getter]
    fn step(&self) -> &'static str {
        self.inner.step().kind()
    }

    /// The deciding policy as `"namespace/name"`, or None when no policy decided.
    #[getter]
    fn policy(&self) -> Option<String> {
        self.inner.step().policy().map(|p| p.to_string())
    }

    /// The deciding rule's index in the policy's `rules`, or None.
    #[getter]
    fn rule(&self) -> Option<usize> {
        self.inner.step().rule()
    }

    /// The external authorizer (`provider.name`) when the step is `"external"`, else None.
    #[getter]
    fn provider(&self) -> Option<String> {
        match self.inner.step() {
            Step::External { provider, .. } => Some(provider.clone()),
            _ => None,
        }
    }

    /// One line per candidate policy and step (empty when computed with `explain=False`).
    #[getter]
    fn explanation(&self) -> Vec<String> {
        self.inner.explanation().to_vec()
    }

    fn __str__(&self) -> String {
        self.inner.reason()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let opt = |o: Option<String>| -> PyResult<String> {
            match o {
                Some(s) => PyString::new(py, &s).repr()?.extract(),
                None => Ok("None".to_owned()),
            }
        };
        Ok(format!(
            "AuthorizationDecision(step={}, policy={}, rule={}, provider={})",
            opt(Some(self.step().to_owned()))?,
            opt(self.policy())?,
            self.rule().map_or("None".to_owned(), |r| r.to_string()),
            opt(self.provider())?,
        ))
    }

    /// Pickle support: the constructor and its arguments.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, PyType>,
        (
            &'static str,
            Option<String>,
            Option<usize>,
            Option<String>,
            Vec<String>,
        ),
    )> {
        let d = slf.get();
        Ok((
            slf.get_type(),
            (
                d.step(),
                d.policy(),
                d.rule(),
                d.provider(),
                d.explanation(),
            ),
        ))
    }
}

fn mesh_arg(mesh_config: Option<&Bound<'_, PyAny>>) -> PyResult<meshtls::MeshConfig> {
    match mesh_config {
        None => Ok(meshtls::MeshConfig::default()),
        Some(m) if m.is_none() => Ok(meshtls::MeshConfig::default()),
        Some(m) => {
            if let Ok(c) = m.cast::<PyMeshConfig>() {
                return Ok(c.get().inner.clone());
            }
            if let Ok(s) = m.cast::<PyString>() {
                return meshtls::MeshConfig::from_yaml(&s.extract::<String>()?).map_err(py_err);
            }
            Err(PyTypeError::new_err(format!(
                "mesh_config must be a MeshConfig or its YAML text, got {}",
                m.get_type().name()?
            )))
        }
    }
}

/// AuthorizationPolicies read once, compiled and indexed per namespace; `check` evaluates a
/// request in Istio's order (CUSTOM, DENY, ALLOW).
#[pyclass(frozen, module = "meshtls", name = "AuthorizationPolicySet")]
pub(crate) struct PyAuthorizationPolicySet {
    inner: AuthorizationPolicySet,
}

#[pymethods]
impl PyAuthorizationPolicySet {
    /// Reads every AuthorizationPolicy of a YAML/JSON text (one object, a stream, or a
    /// `kind: List`); other kinds are skipped and counted. `mesh_config` (a `MeshConfig` or
    /// its YAML) gives the root namespace and the trust domains principals expand to.
    #[classmethod]
    #[pyo3(signature = (text, *, mesh_config=None))]
    fn from_yaml(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: String,
        mesh_config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mesh = mesh_arg(mesh_config)?;
        let inner = py
            .detach(|| AuthorizationPolicySet::from_yaml(&text, &mesh))
            .map_err(py_err)?;
        Ok(PyAuthorizationPolicySet { inner })
    }

    /// Reads AuthorizationPolicies from a list of dicts (as the kubernetes client returns
    /// them); other kinds are skipped.
    #[classmethod]
    #[pyo3(signature = (documents, *, mesh_config=None))]
    fn from_dicts(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        documents: &Bound<'_, PyAny>,
        mesh_config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mesh = mesh_arg(mesh_config)?;
        let values = crate::document::documents_to_json(documents)?;
        let inner = py
            .detach(|| AuthorizationPolicySet::from_json_values(values, &mesh))
            .map_err(py_err)?;
        Ok(PyAuthorizationPolicySet { inner })
    }

    /// The decision for one request to a workload (`namespace`, pod `labels`) on `port`.
    /// `principal` is the mTLS peer's SPIFFE ID (None: plaintext); `method`/`path`/`host`/
    /// `headers` make it an HTTP request (TCP without them); `data_plane` is who enforces:
    /// `"sidecar"` or `"ambient"` (ztunnel, L4 attributes only).
    #[pyo3(signature = (namespace, labels, *, port, principal=None, source_ip=None, remote_ip=None, destination_ip=None, method=None, path=None, host=None, headers=None, request_principal=None, claims=None, sni=None, data_plane="sidecar", explain=true))]
    #[allow(clippy::too_many_arguments)]
    fn check<'py>(
        &self,
        py: Python<'py>,
        namespace: &str,
        labels: &Bound<'py, PyAny>,
        port: &Bound<'py, PyAny>,
        principal: Option<Bound<'py, PyAny>>,
        source_ip: Option<String>,
        remote_ip: Option<String>,
        destination_ip: Option<String>,
        method: Option<String>,
        path: Option<String>,
        host: Option<String>,
        headers: Option<Bound<'py, PyAny>>,
        request_principal: Option<String>,
        claims: Option<Bound<'py, PyAny>>,
        sni: Option<String>,
        data_plane: &str,
        explain: bool,
    ) -> PyResult<PyAuthorizationDecision> {
        let labels = labels_arg(labels)?;
        let plane = plane_arg(data_plane)?;
        let req = build_request(
            port_arg(port)?,
            RequestArgs {
                principal,
                source_ip,
                remote_ip,
                destination_ip,
                method,
                path,
                host,
                headers,
                request_principal,
                claims,
                sni,
            },
        )?;
        let set = &self.inner;
        let inner = py.detach(|| {
            if explain {
                set.explain_in(plane, namespace, &labels, &req)
            } else {
                set.check_in(plane, namespace, &labels, &req)
            }
        });
        Ok(PyAuthorizationDecision { inner })
    }

    /// Many requests at once, evaluated with the GIL released: each item is a mapping with
    /// `check`'s argument names (`namespace`, `labels`, `port`, `principal`, ...,
    /// `data_plane`).
    #[pyo3(signature = (requests, *, explain=false))]
    fn check_many(
        &self,
        py: Python<'_>,
        requests: &Bound<'_, PyAny>,
        explain: bool,
    ) -> PyResult<Vec<PyAuthorizationDecision>> {
        const OTHER_KEYS: &[&str] = &["namespace", "labels", "port", "data_plane"];
        let mut queries: Vec<Query> = Vec::new();
        for (i, item) in requests.try_iter()?.enumerate() {
            let item = item?;
            let d = item.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "requests[{i}] must be a dict with check()'s argument names"
                ))
            })?;
            for k in d.keys() {
                let k: String = k.extract()?;
                if !OTHER_KEYS.contains(&k.as_str()) && !ATTRIBUTES.contains(&k.as_str()) {
                    return Err(PyTypeError::new_err(format!(
                        "requests[{i}]: unknown key {k:?}"
                    )));
                }
            }
            let get = |k: &str| d.get_item(k).ok().flatten().filter(|v| !v.is_none());
            let s =
                |k: &str| -> PyResult<Option<String>> { get(k).map(|v| v.extract()).transpose() };
            let namespace: String = get("namespace")
                .ok_or_else(|| PyTypeError::new_err(format!("requests[{i}] has no namespace")))?
                .extract()?;
            let labels = match get("labels") {
                Some(l) => labels_arg(&l)?,
                None => Vec::new(),
            };
            let port = port_arg(
                &get("port")
                    .ok_or_else(|| PyTypeError::new_err(format!("requests[{i}] has no port")))?,
            )?;
            let req = build_request(
                port,
                RequestArgs {
                    principal: get("principal"),
                    source_ip: s("source_ip")?,
                    remote_ip: s("remote_ip")?,
                    destination_ip: s("destination_ip")?,
                    method: s("method")?,
                    path: s("path")?,
                    host: s("host")?,
                    headers: get("headers"),
                    request_principal: s("request_principal")?,
                    claims: get("claims"),
                    sni: s("sni")?,
                },
            )?;
            let plane = match s("data_plane")? {
                Some(p) => plane_arg(&p)?,
                None => DataPlane::default(),
            };
            queries.push((namespace, labels, req, plane));
        }
        let set = &self.inner;
        let out = py.detach(|| {
            queries
                .iter()
                .map(|(ns, labels, req, plane)| {
                    if explain {
                        set.explain_in(*plane, ns, labels, req)
                    } else {
                        set.check_in(*plane, ns, labels, req)
                    }
                })
                .collect::<Vec<_>>()
        });
        Ok(out
            .into_iter()
            .map(|inner| PyAuthorizationDecision { inner })
            .collect())
    }

    /// The root namespace (its policies apply mesh-wide).
    #[getter]
    fn root_namespace(&self) -> &str {
        self.inner.root_namespace()
    }

    /// Documents of other kinds skipped while reading.
    #[getter]
    fn skipped(&self) -> usize {
        self.inner.skipped_documents()
    }

    /// The policies' `"namespace/name"`, by namespace then name.
    #[getter]
    fn policy_names(&self) -> Vec<String> {
        self.inner.policy_names().map(|p| p.to_string()).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<AuthorizationPolicySet {} policies, root_namespace={:?}, skipped={}>",
            self.inner.len(),
            self.inner.root_namespace(),
            self.inner.skipped_documents()
        )
    }
}

/// Validates AuthorizationPolicy text (YAML/JSON, one object, a stream or a List) or a dict
/// as a cluster would; returns the warnings, raises `AuthorizationPolicyError` on the first
/// invalid object.
#[pyfunction]
fn validate_authorization_policy(
    py: Python<'_>,
    text_or_dict: &Bound<'_, PyAny>,
) -> PyResult<Vec<String>> {
    let text: String = if let Ok(s) = text_or_dict.cast::<PyString>() {
        crate::args::text_of(s.as_borrowed())?.0.to_owned()
    } else if text_or_dict.cast::<PyMapping>().is_ok() {
        // The one document reader (strict types, limits), then the core's own text reader.
        crate::document::to_json(text_or_dict, "object")?.to_string()
    } else {
        return Err(PyTypeError::new_err(format!(
            "validate_authorization_policy takes YAML/JSON text (str) or one object (a mapping), got {}",
            crate::args::type_name(&text_or_dict.as_borrowed())
        )));
    };
    py.detach(|| meshtls::policy::authorization::validate_authorization_policy(&text))
        .map_err(py_err)
}

/// The answer of `Mesh.check`: allowed or refused, the deciding step, and every step's line.
#[pyclass(frozen, eq, hash, module = "meshtls", name = "PathResult")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyPathResult {
    allowed: bool,
    step: String,
    reason: String,
    transport: String,
    mode: String,
    mode_policy: Option<String>,
    authorization: Option<PyAuthorizationDecision>,
    explanation: Vec<String>,
    data_plane: String,
}

#[pymethods]
impl PyPathResult {
    /// Rebuilds a result from its parts (what pickling stores).
    #[new]
    #[pyo3(signature = (allowed, step, reason, transport, mode, mode_policy=None, authorization=None, explanation=None, data_plane="sidecar"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        allowed: bool,
        step: String,
        reason: String,
        transport: String,
        mode: String,
        mode_policy: Option<String>,
        authorization: Option<Bound<'_, PyAuthorizationDecision>>,
        explanation: Option<Vec<String>>,
        data_plane: &str,
    ) -> Self {
        let explanation = explanation.unwrap_or_default();
        let authorization = authorization.map(|a| a.get().clone());
        PyPathResult {
            allowed,
            step,
            reason,
            transport,
            mode,
            mode_policy,
            authorization,
            explanation,
            data_plane: data_plane.to_owned(),
        }
    }

    /// Who decided at the pod: `"sidecar"`, or `"ambient"` (ztunnel).
    #[getter]
    fn data_plane(&self) -> &str {
        &self.data_plane
    }

    /// True when the call gets through to the app.
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }

    /// The deciding step: `"mode"`, `"client-tls"`, `"trust-domain"`, an ambient refusal
    /// (`"hbone-identity"`, `"hbone-trust-domain"`, `"not-tunnelled"`, `"not-ambient"`), or an
    /// authorization step (`"allowed"`, `"denied"`, `"external"`, `"no-allow-policy"`,
    /// `"no-allow-matched"`).
    #[getter]
    fn step(&self) -> &str {
        &self.step
    }

    /// One sentence naming the deciding step.
    #[getter]
    fn reason(&self) -> &str {
        &self.reason
    }

    /// What the caller sends: `"mtls"`, `"tls"`, `"plaintext"` or `"hbone"`.
    #[getter]
    fn transport(&self) -> &str {
        &self.transport
    }

    /// The destination port's mTLS mode (`MtlsMode`).
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .import("meshtls._policy")?
            .getattr("MtlsMode")?
            .call1((self.mode.as_str(),))?
            .unbind())
    }

    /// The PeerAuthentication that set the mode (`"namespace/name"`), or None for the default.
    #[getter]
    fn mode_policy(&self) -> Option<&str> {
        self.mode_policy.as_deref()
    }

    /// The authorization decision, when the call got that far.
    #[getter]
    fn authorization(&self) -> Option<PyAuthorizationDecision> {
        self.authorization.clone()
    }

    /// Every step, one line each.
    #[getter]
    fn explanation(&self) -> Vec<String> {
        self.explanation.clone()
    }

    fn __str__(&self) -> String {
        self.reason.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "<PathResult allowed={} step={:?} data_plane={:?} transport={:?} mode={}>",
            if self.allowed { "True" } else { "False" },
            self.step,
            self.data_plane,
            self.transport,
            self.mode
        )
    }

    /// Pickle support: the constructor and its arguments.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let r = slf.get();
        let args = (
            r.allowed,
            r.step.clone(),
            r.reason.clone(),
            r.transport.clone(),
            r.mode.clone(),
            r.mode_policy.clone(),
            r.authorization.clone(),
            r.explanation.clone(),
            r.data_plane.clone(),
        )
            .into_pyobject(py)?;
        Ok((slf.get_type(), args))
    }
}

/// What a cluster dump shows (mesh config, PeerAuthentications, AuthorizationPolicies,
/// DestinationRules); `check` walks a caller's path to a pod port.
#[pyclass(frozen, module = "meshtls", name = "Mesh")]
pub(crate) struct PyMesh {
    inner: Mesh,
}

#[pymethods]
impl PyMesh {
    /// Reads `kubectl get namespaces,peerauthentications,authorizationpolicies,destinationrules
    /// -A -o json` (YAML or JSON). `mesh_config` is the `istio` ConfigMap (or its `mesh`
    /// document) as text or a `MeshConfig`; without it an `istio` ConfigMap in the dump is
    /// used. Namespaces labelled `istio.io/dataplane-mode: ambient` put their pods in ambient
    /// mode.
    #[classmethod]
    #[pyo3(signature = (text, *, mesh_config=None))]
    fn from_dump(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: String,
        mesh_config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let inner = match mesh_config.filter(|m| !m.is_none()) {
            Some(m) if m.cast::<PyMeshConfig>().is_ok() => {
                let cfg = mesh_arg(Some(m))?;
                py.detach(|| Mesh::from_dump_with(&text, Some(cfg)))
                    .map_err(py_err)?
            }
            Some(m) => {
                let cfg_text: String = m.extract().map_err(|_| {
                    PyTypeError::new_err("mesh_config must be a MeshConfig or its YAML text")
                })?;
                py.detach(|| Mesh::from_dump(&text, Some(&cfg_text)))
                    .map_err(py_err)?
            }
            None => py.detach(|| Mesh::from_dump(&text, None)).map_err(py_err)?,
        };
        Ok(PyMesh { inner })
    }

    /// Will `caller` get through to port `port` of a pod (`namespace`, `labels`)?
    /// `caller` is a SPIFFE ID (an outside caller with a certificate, such as a gateway; with
    /// `workload=True` a mesh workload whose sidecar decides what it sends; with
    /// `hbone=True` an outside caller speaking HBONE to an ambient pod), or None for a
    /// plaintext client. `service` names the Service for DestinationRule lookup; the other
    /// keywords are the request's attributes, named as in `AuthorizationPolicySet.check`.
    #[pyo3(signature = (namespace, labels, port, *, caller, workload=false, hbone=false, service=None, source_ip=None, remote_ip=None, destination_ip=None, method=None, path=None, host=None, headers=None, request_principal=None, claims=None, sni=None))]
    #[allow(clippy::too_many_arguments)]
    fn check<'py>(
        &self,
        py: Python<'py>,
        namespace: &str,
        labels: &Bound<'py, PyAny>,
        port: &Bound<'py, PyAny>,
        caller: Option<SpiffeIdArg>,
        workload: bool,
        hbone: bool,
        service: Option<String>,
        source_ip: Option<String>,
        remote_ip: Option<String>,
        destination_ip: Option<String>,
        method: Option<String>,
        path: Option<String>,
        host: Option<String>,
        headers: Option<Bound<'py, PyAny>>,
        request_principal: Option<String>,
        claims: Option<Bound<'py, PyAny>>,
        sni: Option<String>,
    ) -> PyResult<PyPathResult> {
        let caller = match (caller, workload, hbone) {
            (None, false, false) => Caller::Plaintext,
            (None, _, _) => {
                return Err(InvalidArgumentError::new_err(
                    "workload=True and hbone=True need the caller's SPIFFE ID",
                ));
            }
            (Some(_), true, true) => {
                return Err(InvalidArgumentError::new_err(
                    "workload=True and hbone=True exclude each other (a workload's sidecar decides what it sends)",
                ));
            }
            (Some(id), false, false) => Caller::External(id.0),
            (Some(id), false, true) => Caller::Hbone(id.0),
            (Some(id), true, false) => Caller::workload(id.0.as_str()).map_err(py_err)?,
        };
        let port = port_arg(port)?;
        let request = build_request(
            port,
            RequestArgs {
                principal: None,
                source_ip,
                remote_ip,
                destination_ip,
                method,
                path,
                host,
                headers,
                request_principal,
                claims,
                sni,
            },
        )?;
        let mut to = Destination::new(namespace, labels_arg(labels)?, port).with_request(request);
        if let Some(s) = &service {
            to = to.with_service(s);
        }
        let mesh = &self.inner;
        let r = py.detach(|| mesh.check(&caller, &to));
        Ok(PyPathResult {
            data_plane: r.data_plane().as_str().to_owned(),
            allowed: r.allowed(),
            step: r.step().kind().to_owned(),
            reason: r.reason(),
            transport: r.transport().as_str().to_owned(),
            mode: r.mode().mode().as_str().to_owned(),
            mode_policy: r.mode().policy().map(|p| p.to_string()),
            authorization: r
                .authorization()
                .map(|v| PyAuthorizationDecision { inner: v.clone() }),
            explanation: r.explanation().to_vec(),
        })
    }

    /// The AuthorizationPolicies' names.
    #[getter]
    fn authorization_policies(&self) -> Vec<String> {
        self.inner
            .authorization_policies()
            .policy_names()
            .map(|p| p.to_string())
            .collect()
    }

    /// How many DestinationRules the dump holds.
    #[getter]
    fn destination_rules(&self) -> usize {
        self.inner.destination_rules().len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Mesh trust_domain={:?} {} PeerAuthentications, {} AuthorizationPolicies, {} DestinationRules>",
            self.inner.config().trust_domain().as_str(),
            self.inner.peer_authentications().len(),
            self.inner.authorization_policies().len(),
            self.inner.destination_rules().len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAuthorizationPolicySet>()?;
    m.add_class::<PyAuthorizationDecision>()?;
    m.add_class::<PyMesh>()?;
    m.add_class::<PyPathResult>()?;
    m.add_function(wrap_pyfunction!(validate_authorization_policy, m)?)?;
    Ok(())
}
