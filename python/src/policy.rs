//! `PolicySet`, `Decision`, `validate_peer_authentication`; `MtlsMode` is the Python enum in
//! `meshtls/_policy.py`.
//!
//! The hot paths borrow Python's strings instead of copying them (`resolve`, `resolve_many`),
//! and a decision's explanation is built by the core's `PolicySet::explain` only when
//! `Decision.explanation` is read: the decision keeps the set and a copy of the query for that.

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyMapping, PyString, PyTuple, PyType};

use meshtls::policy::{
    CompactDecision, Decision, Labels, Level, MtlsMode, PolicyError, PolicyName, PolicySetBuilder,
};

use crate::args::{Str, Text, quote, strings, text_of, type_name};
use crate::errors::py_err;

// ---- workload queries -----------------------------------------------------------------------

/// Reads a workload's labels (a mapping of str to str, or None) as borrowed pairs. `hold`
/// keeps the Python strings alive while the pairs borrow them.
fn label_objects<'py>(
    labels: &Bound<'py, PyAny>,
    hold: &mut Vec<Bound<'py, PyString>>,
) -> PyResult<()> {
    if labels.is_none() {
        return Ok(());
    }
    if let Ok(d) = labels.cast::<PyDict>() {
        hold.reserve(d.len() * 2);
    }
    let mut push = |k: Bound<'py, PyAny>, v: Bound<'py, PyAny>| -> PyResult<()> {
        let key = k.cast_into::<PyString>().map_err(|e| {
            PyTypeError::new_err(format!(
                "label keys must be str, got {}",
                type_name(&e.into_inner().as_borrowed())
            ))
        })?;
        let value = v.cast_into::<PyString>().map_err(|e| {
            PyTypeError::new_err(format!(
                "label values must be str, got {} for key {}",
                type_name(&e.into_inner().as_borrowed()),
                quote(&key.to_string_lossy())
            ))
        })?;
        hold.push(key);
        hold.push(value);
        Ok(())
    };
    if let Ok(d) = labels.cast::<PyDict>() {
        for (k, v) in d.iter() {
            push(k, v)?;
        }
        return Ok(());
    }
    if let Ok(m) = labels.cast::<PyMapping>() {
        for item in m.items()?.iter() {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            push(k, v)?;
        }
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "labels must be a mapping of str to str (or None), got {}",
        type_name(&labels.as_borrowed())
    )))
}

/// The UTF-8 views of held label strings, as `(key, value)` pairs.
fn label_pairs<'a>(
    hold: &'a [Bound<'_, PyString>],
    out: &mut Vec<(&'a str, &'a str)>,
) -> PyResult<()> {
    for kv in hold.chunks_exact(2) {
        if let [k, v] = kv {
            out.push((text_of(k.as_borrowed())?.0, text_of(v.as_borrowed())?.0));
        }
    }
    Ok(())
}

/// The label pairs of a kept query: `(key start, key end = value start, value end)` in its
/// text. Up to four pairs live inline, so a decision of a typical pod keeps one allocation.
enum Offsets {
    Inline(u8, [(u32, u32, u32); 4]),
    Heap(Box<[(u32, u32, u32)]>),
}

impl Offsets {
    fn as_slice(&self) -> &[(u32, u32, u32)] {
        match self {
            Offsets::Inline(n, a) => a.get(..usize::from(*n)).unwrap_or(&[]),
            Offsets::Heap(b) => b,
        }
    }
}

/// Appends `namespace` and the labels to `text`, their offsets to `out`; returns where the
/// namespace ends. Offsets are u32: the strings of one call are far below 4 GiB (the reader
/// limits elsewhere are 16 MiB), and a longer text is refused rather than wrapped.
fn append_query(
    text: &mut String,
    namespace: &str,
    labels: &[(&str, &str)],
    mut out: impl FnMut((u32, u32, u32)),
) -> PyResult<u32> {
    let at = |text: &String| {
        u32::try_from(text.len())
            .map_err(|_| PyTypeError::new_err("the queries' strings exceed 4 GiB in one call"))
    };
    text.push_str(namespace);
    let ns_end = at(text)?;
    for (k, v) in labels {
        let a = at(text)?;
        text.push_str(k);
        let b = at(text)?;
        text.push_str(v);
        out((a, b, at(text)?));
    }
    Ok(ns_end)
}

/// A view of one kept query as the core's `Labels`.
struct View<'a> {
    text: &'a str,
    namespace: &'a str,
    pairs: &'a [(u32, u32, u32)],
}

impl Labels for View<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|&(a, b, c)| {
            (
                self.text.get(a as usize..b as usize).unwrap_or(""),
                self.text.get(b as usize..c as usize).unwrap_or(""),
            )
        })
    }
}

/// A query kept by a decision from `resolve` so that its explanation can be built when asked
/// for: the namespace and the labels in one buffer.
struct Query {
    text: Box<str>,
    namespace_len: u32,
    pairs: Offsets,
    port: Option<u16>,
}

impl Query {
    fn new(namespace: &str, labels: &[(&str, &str)], port: Option<u16>) -> PyResult<Self> {
        let len = namespace.len() + labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let mut text = String::with_capacity(len);
        let mut inline = [(0, 0, 0); 4];
        let mut heap = Vec::new();
        let mut n = 0usize;
        let small = labels.len() <= inline.len();
        if !small {
            heap.reserve_exact(labels.len());
        }
        let namespace_len = append_query(&mut text, namespace, labels, |o| {
            if let (true, Some(slot)) = (small, inline.get_mut(n)) {
                *slot = o;
            } else {
                heap.push(o);
            }
            n += 1;
        })?;
        let pairs = if small {
            Offsets::Inline(u8::try_from(n).unwrap_or(0), inline)
        } else {
            Offsets::Heap(heap.into_boxed_slice())
        };
        Ok(Query {
            text: text.into_boxed_str(),
            namespace_len,
            pairs,
            port,
        })
    }

    fn view(&self) -> View<'_> {
        View {
            text: &self.text,
            namespace: self.text.get(..self.namespace_len as usize).unwrap_or(""),
            pairs: self.pairs.as_slice(),
        }
    }
}

/// The queries of one `resolve_many(..., explain=True)` call, kept once for all its
/// decisions (each decision holds the batch and its index). It keeps the call's own Python
/// strings (immutable, so the explanation reads the query the decision was made for) instead
/// of copying them: the call only moves what it has already built.
struct Batch {
    set: Arc<meshtls::PolicySet>,
    strings: Vec<Py<PyString>>,
    /// Per query: the namespace's index in `strings`, the range of its label strings, the port.
    spans: Vec<Span>,
}

impl Batch {
    fn explain(&self, py: Python<'_>, index: usize) -> PyResult<Option<Decision>> {
        let Some(&(ns, start, end, port)) = self.spans.get(index) else {
            return Ok(None);
        };
        let text = |i: usize| -> PyResult<&str> {
            match self.strings.get(i) {
                Some(s) => Ok(text_of(s.bind_borrowed(py))?.0),
                None => Ok(""),
            }
        };
        let namespace = text(ns)?;
        let mut pairs = Vec::with_capacity((end - start) / 2);
        let mut i = start;
        while i + 1 < end {
            pairs.push((text(i)?, text(i + 1)?));
            i += 2;
        }
        Ok(Some(self.set.explain(namespace, pairs.as_slice(), port)))
    }
}

/// What a decision keeps to build its explanation when read (the set is the decision's own).
enum Lazy {
    One { query: Query },
    Batch { batch: Arc<Batch>, index: usize },
}

// ---- Decision -------------------------------------------------------------------------------

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
        .ok_or_else(|| py_err(PolicyError::Mode(mode.as_str().to_owned())))
}

/// The effective mutual-TLS mode of a workload (and port), with the policy that decided it.
///
/// Returned by :meth:`PolicySet.resolve` and :meth:`PolicySet.resolve_many`. Immutable;
/// two decisions are equal (and hash alike) when mode, level and policy are equal, whatever
/// their explanations. Pickles and copies like any value.
///
/// Example::
///
///     >>> d = policies.resolve("shop", {"app": "web"}, 8080)
///     >>> d.mode, d.level, d.policy
///     (<MtlsMode.STRICT: 'STRICT'>, 'workload', 'shop/web-strict')
#[pyclass(frozen, eq, hash, module = "meshtls", name = "Decision")]
pub(crate) struct PyDecision {
    made: Made,
    lazy: Option<Lazy>,
    explained: OnceLock<Vec<String>>,
}

/// What a decision holds. From a set: the core's compact answer and the set, which names the
/// policy when it is read (no reference to the name is taken per decision). Built from parts
/// (the constructor, unpickling): the core's `Decision`.
enum Made {
    Set(Arc<meshtls::PolicySet>, CompactDecision),
    Parts(Decision),
}

impl Made {
    fn mode(&self) -> MtlsMode {
        match self {
            Made::Set(_, c) => c.mode(),
            Made::Parts(d) => d.mode(),
        }
    }

    fn level(&self) -> Level {
        match self {
            Made::Set(_, c) => c.level(),
            Made::Parts(d) => d.level(),
        }
    }

    fn policy(&self) -> Option<&PolicyName> {
        match self {
            Made::Set(set, c) => c.policy_index().and_then(|i| set.policy_name(i)),
            Made::Parts(d) => d.policy(),
        }
    }

    /// The core's `Decision` (its `Display` is the one `__str__` shows).
    fn decision(&self) -> Decision {
        match self {
            Made::Set(set, c) => set.decision(*c),
            Made::Parts(d) => d.clone(),
        }
    }
}

impl PyDecision {
    fn plain(made: Made) -> Self {
        PyDecision {
            made,
            lazy: None,
            explained: OnceLock::new(),
        }
    }

    fn lazy(made: Made, lazy: Lazy) -> Self {
        PyDecision {
            made,
            lazy: Some(lazy),
            explained: OnceLock::new(),
        }
    }

    fn lines(&self, py: Python<'_>) -> &[String] {
        match (&self.lazy, &self.made) {
            (None, Made::Parts(d)) => d.explanation(),
            (None, Made::Set(..)) => &[],
            (Some(lazy), made) => self.explained.get_or_init(|| match lazy {
                Lazy::One { query } => match made {
                    Made::Set(set, _) => {
                        let view = query.view();
                        set.explain(view.namespace, &view, query.port)
                            .explanation()
                            .to_vec()
                    }
                    Made::Parts(d) => d.explanation().to_vec(),
                },
                // The strings were read when the decision was made: they read again.
                Lazy::Batch { batch, index } => batch
                    .explain(py, *index)
                    .ok()
                    .flatten()
                    .map(|d| d.explanation().to_vec())
                    .unwrap_or_default(),
            }),
        }
    }
}

/// As the core's `Decision`: mode, level and policy compared, the explanation not.
impl PartialEq for PyDecision {
    fn eq(&self, other: &Self) -> bool {
        (self.made.mode(), self.made.level(), self.made.policy())
            == (other.made.mode(), other.made.level(), other.made.policy())
    }
}

impl std::hash::Hash for PyDecision {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.made.mode(), self.made.level(), self.made.policy()).hash(state);
    }
}

#[pymethods]
impl PyDecision {
    /// Rebuilds a decision from its parts (as pickling does).
    ///
    /// Args:
    ///     mode: the effective mode, an :class:`MtlsMode` or its name; never ``UNSET``.
    ///     level: ``"workload"``, ``"port"``, ``"namespace"``, ``"mesh"`` or ``"default"``.
    ///     policy: the deciding policy as ``"namespace/name"``; ``None`` exactly when the
    ///         level is ``"default"``.
    ///     explanation: the lines of :attr:`explanation`.
    ///
    /// Raises:
    ///     PolicyError: an unknown mode or level, ``UNSET``, a malformed policy name, or a
    ///         policy given with level ``"default"`` (or missing with another level).
    #[new]
    #[pyo3(
        signature = (mode, level, policy = None, explanation = Vec::new()),
        text_signature = "(mode, level, policy=None, explanation=())"
    )]
    fn new(
        mode: Text<'_>,
        level: Text<'_>,
        policy: Option<Text<'_>>,
        explanation: Vec<Str>,
    ) -> PyResult<Self> {
        let explanation = strings(explanation);
        let mode = MtlsMode::parse(&mode).ok_or_else(|| py_err(PolicyError::Mode(quote(&mode))))?;
        let level =
            Level::parse(&level).ok_or_else(|| py_err(PolicyError::Level(quote(&level))))?;
        let policy = policy
            .map(|p| PolicyName::parse(&p))
            .transpose()
            .map_err(py_err)?;
        let inner = Decision::new(mode, level, policy, explanation).map_err(py_err)?;
        Ok(PyDecision::plain(Made::Parts(inner)))
    }

    /// The effective mode (an :class:`MtlsMode`); never ``UNSET``.
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        mode_member(py, self.made.mode())
    }

    /// The deciding policy as ``"namespace/name"``, or ``None`` when no policy sets a mode
    /// (level ``"default"``: Istio's PERMISSIVE).
    #[getter]
    fn policy(&self) -> Option<&str> {
        self.made.policy().map(PolicyName::as_str)
    }

    /// Which level decided: ``"workload"``, ``"port"``, ``"namespace"``, ``"mesh"`` or
    /// ``"default"``.
    #[getter]
    fn level(&self) -> &'static str {
        self.made.level().as_str()
    }

    /// Why, as istiod would reason: one line per policy considered (used, overridden or
    /// ignored) and per step, ending with the result. Built when first read (by the core's
    /// ``PolicySet.explain``), not when the decision is made; empty for decisions from
    /// ``resolve_many(..., explain=False)``.
    #[getter]
    fn explanation(&self, py: Python<'_>) -> Vec<String> {
        self.lines(py).to_vec()
    }

    /// ``"STRICT (workload level, shop/web-strict)"``.
    fn __str__(&self) -> String {
        self.made.decision().to_string()
    }

    /// ``Decision(mode=MtlsMode.STRICT, level='workload', policy='shop/web-strict')``.
    fn __repr__(&self) -> String {
        let policy = match self.made.policy() {
            Some(p) => format!("{:?}", p.as_str()).replace('"', "'"),
            None => "None".to_owned(),
        };
        format!(
            "Decision(mode=MtlsMode.{}, level='{}', policy={policy})",
            self.made.mode(),
            self.made.level().as_str(),
        )
    }

    /// Pickle support: the constructor's arguments, explanation included.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, PyType>,
        (String, &'static str, Option<String>, Vec<String>),
    )> {
        let me = slf.get();
        let d = &me.made;
        Ok((
            slf.get_type(),
            (
                d.mode().as_str().to_owned(),
                d.level().as_str(),
                d.policy().map(|p| p.as_str().to_owned()),
                me.lines(slf.py()).to_vec(),
            ),
        ))
    }
}

// ---- PolicySet ------------------------------------------------------------------------------

/// PeerAuthentication policies, read once and indexed to answer which mTLS mode a workload's
/// port enforces, exactly as istiod decides it.
///
/// Build one with :meth:`from_yaml` (manifests as ``kubectl get peerauthentications -A -o
/// yaml`` prints them) or :meth:`from_dicts` (objects from the kubernetes client), then call
/// :meth:`resolve`. Immutable and safe to share between threads.
///
/// Example::
///
///     >>> policies = PolicySet.from_yaml(open("pa.yaml").read())
///     >>> str(policies.resolve("shop", {"app": "web"}, port=8080).mode)
///     'STRICT'
#[pyclass(frozen, module = "meshtls", name = "PolicySet")]
pub(crate) struct PyPolicySet {
    pub(crate) inner: Arc<meshtls::PolicySet>,
}

/// One `resolve_many` query: the namespace's index in `hold`, the range of its label
/// strings in `hold`, and the port.
type Span = (usize, usize, usize, Option<u16>);

fn workload_arg<'py>(
    item: &Bound<'py, PyAny>,
    hold: &mut Vec<Bound<'py, PyString>>,
) -> PyResult<Span> {
    let tuple = item.cast::<PyTuple>().map_err(|_| {
        PyTypeError::new_err(format!(
            "each workload is a tuple (namespace, labels) or (namespace, labels, port), got {}",
            type_name(&item.as_borrowed())
        ))
    })?;
    let n = tuple.len();
    if !(2..=3).contains(&n) {
        return Err(PyTypeError::new_err(format!(
            "each workload is (namespace, labels[, port]), got a tuple of {n}"
        )));
    }
    let namespace = tuple.get_item(0)?.cast_into::<PyString>().map_err(|e| {
        PyTypeError::new_err(format!(
            "a workload's namespace must be str, got {}",
            type_name(&e.into_inner().as_borrowed())
        ))
    })?;
    let ns = hold.len();
    hold.push(namespace);
    label_objects(&tuple.get_item(1)?, hold)?;
    let end = hold.len();
    let port = if n == 3 {
        crate::args::opt_port_arg(Some(&tuple.get_item(2)?))?
    } else {
        None
    };
    Ok((ns, ns + 1, end, port))
}

/// Above this many queries, `resolve_many` resolves with the GIL released.
const DETACH_ABOVE: usize = 64;

#[pymethods]
impl PyPolicySet {
    /// Reads every PeerAuthentication from YAML or JSON text: one object, a multi-document
    /// stream, or a ``kind: List``. Documents of other kinds are skipped and counted
    /// (:attr:`skipped`).
    ///
    /// Args:
    ///     text: the manifests.
    ///     root_namespace: Istio's root namespace (``meshConfig.rootNamespace``), whose
    ///         namespace-wide policy is the mesh-wide one.
    ///
    /// Raises:
    ///     ManifestError: the text is not YAML/JSON or breaks a size or depth limit.
    ///     PolicyError: a PeerAuthentication has a field of the wrong type, an unknown field
    ///         or mode, no namespace, a duplicate name or a bad creationTimestamp.
    #[classmethod]
    #[pyo3(
        signature = (text, *, root_namespace = Text(meshtls::policy::DEFAULT_ROOT_NAMESPACE)),
        text_signature = "(text, *, root_namespace='istio-system')"
    )]
    fn from_yaml(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: Text<'_>,
        root_namespace: Text<'_>,
    ) -> PyResult<Self> {
        let (text, root) = (text.0, root_namespace.0);
        let inner = py
            .detach(|| meshtls::PolicySet::from_yaml(text, root))
            .map_err(py_err)?;
        Ok(PyPolicySet {
            inner: Arc::new(inner),
        })
    }

    /// Reads PeerAuthentications from Python objects, as the kubernetes client returns them
    /// (``dict``s, or ``kind: List`` dicts; ``datetime`` creation timestamps are accepted).
    /// Other kinds are skipped and counted, as in :meth:`from_yaml`.
    ///
    /// Args:
    ///     documents: an iterable of mappings (use ``[obj]`` for one object).
    ///     root_namespace: Istio's root namespace.
    ///
    /// Raises:
    ///     TypeError: ``documents`` is a single mapping or a string instead of an iterable
    ///         of mappings.
    ///     ManifestError: a value that is not JSON-like (with where it is), an integer out
    ///         of 64-bit range, a naive datetime, or a size/depth limit broken.
    ///     PolicyError: as for :meth:`from_yaml`.
    #[classmethod]
    #[pyo3(
        signature = (documents, *, root_namespace = Text(meshtls::policy::DEFAULT_ROOT_NAMESPACE)),
        text_signature = "(documents, *, root_namespace='istio-system')"
    )]
    fn from_dicts(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        documents: &Bound<'_, PyAny>,
        root_namespace: Text<'_>,
    ) -> PyResult<Self> {
        // Each document is walked once and read by the core as it stands (no value tree);
        // policy errors in document order, then the set's own.
        let mut builder = PolicySetBuilder::with_capacity(documents.len().unwrap_or(0));
        crate::document::for_each_document(documents, |doc| builder.push_document(doc))?
            .map_err(py_err)?;
        let root_ns = root_namespace.0;
        let inner = py.detach(|| builder.build(root_ns)).map_err(py_err)?;
        Ok(PyPolicySet {
            inner: Arc::new(inner),
        })
    }

    /// The effective mTLS mode for a workload, as istiod computes it.
    ///
    /// Args:
    ///     namespace: the workload's namespace.
    ///     labels: the pod's labels (a mapping of str to str; ``None`` for none).
    ///     port: the port the traffic arrives on (the container port); ``None`` for the
    ///         workload-level mode.
    ///
    /// Returns:
    ///     A :class:`Decision`; its :attr:`Decision.explanation` is built when first read.
    ///
    /// Raises:
    ///     TypeError: labels that are not a mapping of str to str.
    ///     InvalidArgumentError: a port outside 0..65535.
    ///
    /// Example::
    ///
    ///     >>> policies.resolve("shop", {"app": "web"}, 8080).mode
    ///     <MtlsMode.STRICT: 'STRICT'>
    #[pyo3(signature = (namespace, labels, port = None))]
    fn resolve(
        &self,
        namespace: Text<'_>,
        labels: &Bound<'_, PyAny>,
        port: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDecision> {
        let port = crate::args::opt_port_arg(port)?;
        let mut hold = Vec::new();
        label_objects(labels, &mut hold)?;
        // Up to eight labels, the pairs live on the stack.
        let mut small = [("", ""); 8];
        let mut large = Vec::new();
        let pairs: &[(&str, &str)] = match small.get_mut(..hold.len() / 2) {
            Some(slots) => {
                for (slot, kv) in slots.iter_mut().zip(hold.chunks_exact(2)) {
                    if let [k, v] = kv {
                        *slot = (text_of(k.as_borrowed())?.0, text_of(v.as_borrowed())?.0);
                    }
                }
                slots
            }
            None => {
                label_pairs(&hold, &mut large)?;
                &large
            }
        };
        let decision = self.inner.resolve_compact(&namespace, pairs, port);
        let query = Query::new(&namespace, pairs, port)?;
        Ok(PyDecision::lazy(
            Made::Set(Arc::clone(&self.inner), decision),
            Lazy::One { query },
        ))
    }

    /// Resolves many workloads in one call (with the GIL released for large batches).
    ///
    /// Args:
    ///     workloads: an iterable of ``(namespace, labels)`` or ``(namespace, labels, port)``
    ///         tuples.
    ///     explain: keep what is needed to build each decision's explanation on access;
    ///         with ``False`` the decisions' explanations are empty (and the call cheaper).
    ///
    /// Returns:
    ///     One :class:`Decision` per workload, in order.
    ///
    /// Raises:
    ///     TypeError: an item that is not such a tuple, or bad labels.
    ///     InvalidArgumentError: a port outside 0..65535.
    #[pyo3(signature = (workloads, *, explain = true))]
    fn resolve_many(
        &self,
        py: Python<'_>,
        workloads: &Bound<'_, PyAny>,
        explain: bool,
    ) -> PyResult<Vec<PyDecision>> {
        let mut hold: Vec<Bound<'_, PyString>> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        if let Ok(list) = workloads.cast::<PyList>() {
            spans.reserve(list.len());
            hold.reserve(list.len() * 4);
            for item in list.iter() {
                spans.push(workload_arg(&item, &mut hold)?);
            }
        } else {
            for item in workloads.try_iter()? {
                spans.push(workload_arg(&item?, &mut hold)?);
            }
        }
        let mut strs: Vec<&str> = Vec::with_capacity(hold.len());
        for s in &hold {
            strs.push(text_of(s.as_borrowed())?.0);
        }
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(hold.len() / 2);
        let mut queries: Vec<(&str, (usize, usize), Option<u16>)> = Vec::with_capacity(spans.len());
        for &(ns, start, end, port) in &spans {
            let first = pairs.len();
            let labels = strs.get(start..end).unwrap_or(&[]);
            for kv in labels.chunks_exact(2) {
                if let [k, v] = kv {
                    pairs.push((k, v));
                }
            }
            let namespace = strs.get(ns).copied().unwrap_or("");
            queries.push((namespace, (first, pairs.len()), port));
        }
        let set = &*self.inner;
        let run = || {
            queries
                .iter()
                .map(|(ns, (a, b), port)| {
                    set.resolve_compact(ns, pairs.get(*a..*b).unwrap_or(&[]), *port)
                })
                .collect::<Vec<_>>()
        };
        let decisions = if queries.len() > DETACH_ABOVE {
            py.detach(run)
        } else {
            run()
        };
        if !explain {
            return Ok(decisions
                .into_iter()
                .map(|d| PyDecision::plain(Made::Set(Arc::clone(&self.inner), d)))
                .collect());
        }
        // The call's strings and spans, moved (not copied) into one batch for its decisions.
        drop((strs, pairs, queries));
        let batch = Arc::new(Batch {
            set: Arc::clone(&self.inner),
            strings: hold.into_iter().map(Bound::unbind).collect(),
            spans,
        });
        Ok(decisions
            .into_iter()
            .enumerate()
            .map(|(index, d)| {
                PyDecision::lazy(
                    Made::Set(Arc::clone(&self.inner), d),
                    Lazy::Batch {
                        batch: Arc::clone(&batch),
                        index,
                    },
                )
            })
            .collect())
    }

    /// The root namespace the set was built with.
    #[getter]
    fn root_namespace(&self) -> &str {
        self.inner.root_namespace()
    }

    /// How many documents of other kinds were skipped while reading.
    #[getter]
    fn skipped(&self) -> usize {
        self.inner.skipped_documents()
    }

    /// The policies as ``"namespace/name"``, oldest first (the order resolution uses).
    #[getter]
    fn policy_names(&self) -> Vec<String> {
        self.inner.policy_names().map(|p| p.to_string()).collect()
    }

    /// The number of policies.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// ``<PolicySet 3 policies, root_namespace="istio-system", skipped=0>``.
    fn __repr__(&self) -> String {
        format!(
            "<PolicySet {} policies, root_namespace={:?}, skipped={}>",
            self.inner.len(),
            self.inner.root_namespace(),
            self.inner.skipped_documents()
        )
    }
}

/// Validates PeerAuthentications as Istio's admission webhook and the CRD's schema do.
///
/// Args:
///     text_or_dict: YAML or JSON text (one object, a multi-document stream or a
///         ``kind: List``), or one object as a mapping.
///
/// Returns:
///     The warnings Istio would print (e.g. for a policy that selects nothing), as strings.
///
/// Raises:
///     PolicyError: the first error, with Istio's reason in the message.
///     ManifestError: text that is not YAML/JSON, a value in a mapping that is not
///         JSON-like (with where it is), or a size/depth limit broken.
///     TypeError: neither text nor a mapping.
///
/// Example::
///
///     >>> validate_peer_authentication({"apiVersion": "security.istio.io/v1",
///     ...     "kind": "PeerAuthentication", "metadata": {"name": "a", "namespace": "ns"},
///     ...     "spec": {"mtls": {"mode": "STRICT"}}})
///     []
#[pyfunction]
fn validate_peer_authentication(
    py: Python<'_>,
    text_or_dict: &Bound<'_, PyAny>,
) -> PyResult<Vec<String>> {
    if let Ok(s) = text_or_dict.cast::<PyString>() {
        let text = text_of(s.as_borrowed())?.0;
        return py
            .detach(|| meshtls::policy::validate_peer_authentication(text))
            .map_err(py_err);
    }
    if text_or_dict.cast::<PyMapping>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "validate_peer_authentication takes YAML/JSON text (str) or one object (a mapping), got {}",
            type_name(&text_or_dict.as_borrowed())
        )));
    }
    let value = crate::document::to_json(text_or_dict, "object")?;
    py.detach(|| meshtls::policy::validate_documents(vec![value]))
        .map_err(py_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPolicySet>()?;
    m.add_class::<PyDecision>()?;
    m.add_function(wrap_pyfunction!(validate_peer_authentication, m)?)?;
    Ok(())
}
