//! `PolicySet`, `Decision`, `validate_peer_authentication`; `MtlsMode` is the Python enum in
//! `meshtls/_policy.py`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::Value;

use meshtls::policy::{Decision, Level, MtlsMode, PolicyError, PolicyName};

use crate::errors::{ManifestError, py_err};

/// Converts a Python object (dicts, lists, str, int, float, bool, None, aware datetimes) to
/// a JSON value, with the same depth and size limits as the YAML reader.
struct ToJson {
    nodes: usize,
}

impl ToJson {
    fn convert(&mut self, ob: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Value> {
        self.nodes += 1;
        if depth > meshtls::manifest::MAX_DEPTH {
            return Err(ManifestError::new_err(format!(
                "cannot read document: nesting deeper than {} levels at {path}",
                meshtls::manifest::MAX_DEPTH
            )));
        }
        if self.nodes > meshtls::manifest::MAX_VALUE_NODES {
            return Err(ManifestError::new_err(format!(
                "cannot read document: more than {} values",
                meshtls::manifest::MAX_VALUE_NODES
            )));
        }
        if ob.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(s) = ob.cast::<PyString>() {
            return Ok(Value::String(s.extract::<String>()?));
        }
        if let Ok(b) = ob.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if ob.cast::<PyInt>().is_ok() {
            if let Ok(i) = ob.extract::<i64>() {
                return Ok(Value::from(i));
            }
            if let Ok(u) = ob.extract::<u64>() {
                return Ok(Value::from(u));
            }
            return Err(PyValueError::new_err(format!(
                "integer at {path} is out of range"
            )));
        }
        if let Ok(f) = ob.cast::<PyFloat>() {
            return serde_json::Number::from_f64(f.value())
                .map(Value::Number)
                .ok_or_else(|| {
                    PyValueError::new_err(format!("{path}: {} is not a finite number", f.value()))
                });
        }
        if let Ok(d) = ob.cast::<PyDict>() {
            return self.mapping(d.items().into_any(), path, depth);
        }
        if ob.cast::<PyList>().is_ok() || ob.cast::<PyTuple>().is_ok() {
            let mut out = Vec::new();
            for (i, item) in ob.try_iter()?.enumerate() {
                out.push(self.convert(&item?, &format!("{path}[{i}]"), depth + 1)?);
            }
            return Ok(Value::Array(out));
        }
        if ob.hasattr("isoformat")? && ob.hasattr("utcoffset")? {
            // datetime.datetime, as the kubernetes client returns creationTimestamp.
            if ob.call_method0("utcoffset")?.is_none() {
                return Err(PyValueError::new_err(format!(
                    "naive datetime at {path}: use an aware datetime (e.g. tzinfo=timezone.utc)"
                )));
            }
            let text: String = ob.call_method0("isoformat")?.extract()?;
            return Ok(Value::String(text));
        }
        if ob.hasattr("items")? {
            return self.mapping(ob.call_method0("items")?, path, depth);
        }
        Err(PyTypeError::new_err(format!(
            "cannot read {} at {path}: expected dict, list, str, int, float, bool, None or datetime",
            ob.get_type().name()?
        )))
    }

    fn mapping(&mut self, items: Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Value> {
        let mut out = serde_json::Map::new();
        for item in items.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            // Port keys may be Python ints ({8080: {"mode": "STRICT"}}).
            let key = if let Ok(s) = k.cast::<PyString>() {
                s.extract::<String>()?
            } else if k.cast::<PyInt>().is_ok() && k.cast::<PyBool>().is_err() {
                k.extract::<i64>()?.to_string()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "keys must be str (or int ports), got {} at {path}",
                    k.get_type().name()?
                )));
            };
            let child = format!("{path}.{key}");
            let value = self.convert(&v, &child, depth + 1)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn to_json(ob: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    ToJson { nodes: 0 }.convert(ob, path, 0)
}

/// A workload's labels: a mapping of str to str (or None for none).
struct LabelsArg(Vec<(String, String)>);

impl<'a, 'py> FromPyObject<'a, 'py> for LabelsArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if ob.is_none() {
            return Ok(LabelsArg(Vec::new()));
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
            let key: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err(format!("label keys must be str, got {k:?}")))?;
            let value: String = v.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "label values must be str, got {} for key {key:?}",
                    v.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            out.push((key, value));
        }
        Ok(LabelsArg(out))
    }
}

fn port_arg(port: Option<i64>) -> PyResult<Option<u16>> {
    port.map(|p| u16::try_from(p).map_err(|_| py_err(PolicyError::Port(p))))
        .transpose()
}

static MODES: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();

/// The `meshtls.MtlsMode` member for a mode.
fn mode_member(py: Python<'_>, mode: MtlsMode) -> PyResult<Py<PyAny>> {
    let members = MODES.get_or_try_init(py, || -> PyResult<Vec<Py<PyAny>>> {
        let cls = py.import("meshtls._policy")?.getattr("MtlsMode")?;
        MtlsMode::ALL
            .iter()
            .map(|m| Ok(cls.getattr(m.as_str())?.unbind()))
            .collect()
    })?;
    let i = MtlsMode::ALL.iter().position(|m| *m == mode).unwrap_or(0);
    members
        .get(i)
        .map(|m| m.clone_ref(py))
        .ok_or_else(|| PyValueError::new_err("unknown mode"))
}

/// The effective mTLS mode for a workload, with the deciding policy and the reasons.
#[pyclass(frozen, eq, hash, module = "meshtls", name = "Decision")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyDecision {
    inner: Decision,
}

#[pymethods]
impl PyDecision {
    #[new]
    #[pyo3(signature = (mode, level, policy=None, explanation=Vec::new()))]
    fn new(
        mode: String,
        level: &str,
        policy: Option<&str>,
        explanation: Vec<String>,
    ) -> PyResult<Self> {
        let mode = MtlsMode::parse(&mode).ok_or_else(|| py_err(PolicyError::Mode(mode.clone())))?;
        let level =
            Level::parse(level).ok_or_else(|| py_err(PolicyError::Level(level.to_owned())))?;
        let policy = policy.map(PolicyName::parse).transpose().map_err(py_err)?;
        let inner = Decision::new(mode, level, policy, explanation).map_err(py_err)?;
        Ok(PyDecision { inner })
    }

    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        mode_member(py, self.inner.mode())
    }

    #[getter]
    fn policy(&self) -> Option<&str> {
        self.inner.policy().map(PolicyName::as_str)
    }

    #[getter]
    fn level(&self) -> &'static str {
        self.inner.level().as_str()
    }

    #[getter]
    fn explanation(&self) -> Vec<String> {
        self.inner.explanation().to_vec()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let policy = match self.inner.policy() {
            Some(p) => PyString::new(py, p.as_str()).repr()?.extract::<String>()?,
            None => "None".to_owned(),
        };
        Ok(format!(
            "Decision(mode=MtlsMode.{}, level='{}', policy={policy})",
            self.inner.mode(),
            self.inner.level().as_str(),
        ))
    }

    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, PyType>,
        (String, &'static str, Option<String>, Vec<String>),
    )> {
        let d = &slf.get().inner;
        Ok((
            slf.get_type(),
            (
                d.mode().as_str().to_owned(),
                d.level().as_str(),
                d.policy().map(|p| p.as_str().to_owned()),
                d.explanation().to_vec(),
            ),
        ))
    }
}

/// PeerAuthentications read once and indexed for resolution.
#[pyclass(frozen, module = "meshtls", name = "PolicySet")]
pub(crate) struct PyPolicySet {
    inner: meshtls::PolicySet,
}

type Workload = (String, Vec<(String, String)>, Option<u16>);

fn workload_arg(item: &Bound<'_, PyAny>) -> PyResult<Workload> {
    let tuple = item.cast::<PyTuple>().map_err(|_| {
        PyTypeError::new_err(
            "each workload is a tuple (namespace, labels) or (namespace, labels, port)",
        )
    })?;
    let n = tuple.len();
    if !(2..=3).contains(&n) {
        return Err(PyTypeError::new_err(format!(
            "each workload is (namespace, labels[, port]), got a tuple of {n}"
        )));
    }
    let namespace: String = tuple.get_item(0)?.extract()?;
    let labels: LabelsArg = tuple.get_item(1)?.extract()?;
    let port = if n == 3 {
        port_arg(tuple.get_item(2)?.extract::<Option<i64>>()?)?
    } else {
        None
    };
    Ok((namespace, labels.0, port))
}

#[pymethods]
impl PyPolicySet {
    #[classmethod]
    #[pyo3(
        signature = (text, *, root_namespace=meshtls::policy::DEFAULT_ROOT_NAMESPACE.to_owned()),
        text_signature = "(text, *, root_namespace='istio-system')"
    )]
    fn from_yaml(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: &Bound<'_, PyString>,
        root_namespace: String,
    ) -> PyResult<Self> {
        // The size rule before the text is copied out of Python.
        meshtls::manifest::check_input_size(text.len()?, "PeerAuthentication manifests")
            .map_err(py_err)?;
        let text: String = text.extract()?;
        let inner = py
            .detach(|| meshtls::PolicySet::from_yaml(&text, &root_namespace))
            .map_err(py_err)?;
        Ok(PyPolicySet { inner })
    }

    #[classmethod]
    #[pyo3(
        signature = (documents, *, root_namespace=meshtls::policy::DEFAULT_ROOT_NAMESPACE.to_owned()),
        text_signature = "(documents, *, root_namespace='istio-system')"
    )]
    fn from_dicts(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        documents: &Bound<'_, PyAny>,
        root_namespace: String,
    ) -> PyResult<Self> {
        if documents.cast::<PyDict>().is_ok() || documents.cast::<PyString>().is_ok() {
            return Err(PyTypeError::new_err(
                "from_dicts takes a list of objects (use [obj] for one, from_yaml for text)",
            ));
        }
        let mut values = Vec::new();
        for (i, doc) in documents.try_iter()?.enumerate() {
            values.push(to_json(&doc?, &format!("documents[{i}]"))?);
        }
        let inner = py
            .detach(|| meshtls::PolicySet::from_json_values(values, &root_namespace))
            .map_err(py_err)?;
        Ok(PyPolicySet { inner })
    }

    #[pyo3(signature = (namespace, labels, port=None))]
    fn resolve(
        &self,
        namespace: &str,
        labels: LabelsArg,
        port: Option<i64>,
    ) -> PyResult<PyDecision> {
        let port = port_arg(port)?;
        Ok(PyDecision {
            inner: self.inner.explain(namespace, &labels.0, port),
        })
    }

    #[pyo3(signature = (workloads, *, explain=true))]
    fn resolve_many(
        &self,
        py: Python<'_>,
        workloads: &Bound<'_, PyAny>,
        explain: bool,
    ) -> PyResult<Vec<PyDecision>> {
        let mut queries: Vec<Workload> = Vec::new();
        for item in workloads.try_iter()? {
            queries.push(workload_arg(&item?)?);
        }
        let set = &self.inner;
        let decisions = py.detach(|| {
            queries
                .iter()
                .map(|(ns, labels, port)| {
                    if explain {
                        set.explain(ns, labels, *port)
                    } else {
                        set.resolve(ns, labels, *port)
                    }
                })
                .collect::<Vec<_>>()
        });
        Ok(decisions
            .into_iter()
            .map(|inner| PyDecision { inner })
            .collect())
    }

    #[getter]
    fn root_namespace(&self) -> &str {
        self.inner.root_namespace()
    }

    #[getter]
    fn skipped(&self) -> usize {
        self.inner.skipped_documents()
    }

    #[getter]
    fn policy_names(&self) -> Vec<String> {
        self.inner.policy_names().map(|p| p.to_string()).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<PolicySet {} policies, root_namespace={:?}, skipped={}>",
            self.inner.len(),
            self.inner.root_namespace(),
            self.inner.skipped_documents()
        )
    }
}

/// Validates PeerAuthentication text (YAML/JSON, one object, a stream or a List) or a dict.
#[pyfunction]
fn validate_peer_authentication(
    py: Python<'_>,
    text_or_dict: &Bound<'_, PyAny>,
) -> PyResult<Vec<String>> {
    if let Ok(s) = text_or_dict.cast::<PyString>() {
        // The size rule before the text is copied out of Python.
        meshtls::manifest::check_input_size(s.len()?, "PeerAuthentication manifests")
            .map_err(py_err)?;
        let text: String = s.extract()?;
        return py
            .detach(|| meshtls::policy::validate_peer_authentication(&text))
            .map_err(py_err);
    }
    let value = to_json(text_or_dict, "object")?;
    meshtls::policy::validate_documents(vec![value]).map_err(py_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPolicySet>()?;
    m.add_class::<PyDecision>()?;
    m.add_function(wrap_pyfunction!(validate_peer_authentication, m)?)?;
    Ok(())
}
