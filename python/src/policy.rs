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
use pyo3::types::{
    PyBool, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple, PyType,
};
use serde_json::Value;

use meshtls::manifest::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_VALUE_NODES, Node, NodeKind};
use meshtls::policy::{
    CompactDecision, Decision, Labels, Level, MtlsMode, PolicyError, PolicyName, PolicySetBuilder,
};

use crate::args::{Str, Text, int_arg, is_aware, quote, strings, text_of, type_name};
use crate::errors::{ManifestError, py_err};

// ---- Python objects → JSON values -----------------------------------------------------------

/// Where a value sits in a document, as a chain of steps on the stack: rendered only when an
/// error names it, so converting costs nothing per node.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root(&'a str),
    Index(usize),
    Key(&'a str),
}

#[derive(Clone, Copy)]
struct Path<'a> {
    step: Step<'a>,
    parent: Option<&'a Path<'a>>,
}

impl<'a> Path<'a> {
    fn root(name: &'a str) -> Self {
        Path {
            step: Step::Root(name),
            parent: None,
        }
    }

    fn child(&'a self, step: Step<'a>) -> Path<'a> {
        Path {
            step,
            parent: Some(self),
        }
    }

    fn render(&self) -> String {
        let mut steps = vec![self.step];
        let mut at = self.parent;
        while let Some(p) = at {
            steps.push(p.step);
            at = p.parent;
        }
        let mut out = String::new();
        for s in steps.iter().rev() {
            match s {
                Step::Root(r) => out.push_str(r),
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key(k) if k.len() <= 64 && !k.contains(['.', '[', '"']) => {
                    out.push('.');
                    out.push_str(k);
                }
                Step::Key(k) => out.push_str(&format!("[{}]", quote(k))),
            }
        }
        out
    }
}

fn manifest_err(path: &Path<'_>, what: impl std::fmt::Display) -> PyErr {
    ManifestError::new_err(format!("cannot read document: {what} at {}", path.render()))
}

/// What a Python value is in a document: the one dispatch (in this order: `bool` before
/// `int`, a `datetime` before any mapping) that both the converter and the in-place reader use.
enum PyKind<'b, 'py> {
    Str(&'b Bound<'py, PyString>),
    Dict(&'b Bound<'py, PyDict>),
    List(&'b Bound<'py, PyList>),
    Bool(bool),
    Int,
    Null,
    Float(f64),
    Tuple(&'b Bound<'py, PyTuple>),
    DateTime,
    Mapping(&'b Bound<'py, PyMapping>),
    Other,
}

fn py_kind<'b, 'py>(ob: &'b Bound<'py, PyAny>) -> PyKind<'b, 'py> {
    if let Ok(s) = ob.cast::<PyString>() {
        PyKind::Str(s)
    } else if let Ok(d) = ob.cast::<PyDict>() {
        PyKind::Dict(d)
    } else if let Ok(l) = ob.cast::<PyList>() {
        PyKind::List(l)
    } else if let Ok(b) = ob.cast::<PyBool>() {
        PyKind::Bool(b.is_true())
    } else if ob.cast::<PyInt>().is_ok() {
        PyKind::Int
    } else if ob.is_none() {
        PyKind::Null
    } else if let Ok(f) = ob.cast::<PyFloat>() {
        PyKind::Float(f.value())
    } else if let Ok(t) = ob.cast::<PyTuple>() {
        PyKind::Tuple(t)
    } else if ob.is_instance_of::<PyDateTime>() {
        PyKind::DateTime
    } else if let Ok(m) = ob.cast::<PyMapping>() {
        PyKind::Mapping(m)
    } else {
        PyKind::Other
    }
}

/// A mapping key as document text: a `str`, or an `int` (port keys, `{8080: {...}}`) in
/// decimal. `Err` is the reason for anything else.
fn key_text<'k>(k: &'k Bound<'_, PyAny>) -> Result<std::borrow::Cow<'k, str>, String> {
    if let Ok(s) = k.cast::<PyString>() {
        return text_of(s.as_borrowed())
            .map(|t| std::borrow::Cow::Borrowed(t.0))
            .map_err(|_| "a str that is not valid Unicode (lone surrogate)".to_owned());
    }
    if k.cast::<PyInt>().is_ok() && k.cast::<PyBool>().is_err() {
        return match k.extract::<i64>() {
            Ok(i) => Ok(std::borrow::Cow::Owned(i.to_string())),
            Err(_) => Err("an integer key out of range".to_owned()),
        };
    }
    Err(format!(
        "a key of type {} (keys must be str, or int ports)",
        type_name(&k.as_borrowed())
    ))
}

/// The text of a `datetime` in a document (as the kubernetes client returns
/// `creationTimestamp`): `isoformat()`, RFC 3339 for an aware one. Awareness is checked by
/// [`ToJson`].
fn datetime_text(ob: &Bound<'_, PyAny>) -> PyResult<String> {
    ob.call_method0("isoformat")?.extract::<String>()
}

/// Converts Python objects (dicts and other mappings, lists, tuples, str, int, float, bool,
/// None, aware datetimes) to JSON values, with the YAML reader's depth, size and node limits.
/// Anything else in a document is a `ManifestError` naming where it is.
///
/// With `BUILD` false it only checks (the same rules, in the same order, nothing allocated):
/// what `from_dicts` does before the core reads a document in place ([`PyNode`]).
struct ToJson<const BUILD: bool> {
    nodes: usize,
    bytes: usize,
}

impl<const BUILD: bool> ToJson<BUILD> {
    fn new() -> Self {
        ToJson { nodes: 0, bytes: 0 }
    }

    fn count(&mut self, text: &str) -> PyResult<()> {
        self.bytes += text.len();
        if self.bytes > MAX_INPUT_BYTES {
            return Err(ManifestError::new_err(format!(
                "cannot read document: its strings exceed the limit of {MAX_INPUT_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn text(&mut self, s: &Bound<'_, PyString>, path: &Path<'_>) -> PyResult<Value> {
        let t = text_of(s.as_borrowed())
            .map_err(|_| manifest_err(path, "a str that is not valid Unicode (lone surrogate)"))?;
        self.count(t.0)?;
        Ok(if BUILD {
            Value::String(t.0.to_owned())
        } else {
            Value::Null
        })
    }

    fn convert(&mut self, ob: &Bound<'_, PyAny>, path: &Path<'_>, depth: usize) -> PyResult<Value> {
        self.nodes += 1;
        if depth > MAX_DEPTH {
            return Err(manifest_err(
                path,
                format_args!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        if self.nodes > MAX_VALUE_NODES {
            return Err(ManifestError::new_err(format!(
                "cannot read document: more than {MAX_VALUE_NODES} values"
            )));
        }
        match py_kind(ob) {
            PyKind::Str(s) => self.text(s, path),
            PyKind::Dict(d) => {
                let mut out = serde_json::Map::new();
                for (k, v) in d.iter() {
                    self.entry(&mut out, &k, &v, path, depth)?;
                }
                Ok(Value::Object(out))
            }
            PyKind::List(l) => {
                let mut out = Vec::with_capacity(if BUILD { l.len() } else { 0 });
                for (i, item) in l.iter().enumerate() {
                    let v = self.convert(&item, &path.child(Step::Index(i)), depth + 1)?;
                    if BUILD {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
            PyKind::Bool(b) => Ok(Value::Bool(b)),
            PyKind::Int => {
                if let Ok(i) = ob.extract::<i64>() {
                    return Ok(Value::from(i));
                }
                if let Ok(u) = ob.extract::<u64>() {
                    return Ok(Value::from(u));
                }
                Err(manifest_err(
                    path,
                    "an integer out of range (manifests hold 64-bit integers)",
                ))
            }
            PyKind::Null => Ok(Value::Null),
            PyKind::Float(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| manifest_err(path, format_args!("{f} (not a finite number)"))),
            PyKind::Tuple(t) => {
                let mut out = Vec::with_capacity(if BUILD { t.len() } else { 0 });
                for (i, item) in t.iter().enumerate() {
                    let v = self.convert(&item, &path.child(Step::Index(i)), depth + 1)?;
                    if BUILD {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
            PyKind::DateTime => {
                // The one datetime converter decides what is accepted, isoformat() gives
                // RFC 3339.
                if !is_aware(ob)? {
                    return Err(ManifestError::new_err(format!(
                        "cannot read document: naive datetime at {}: use an aware datetime \
                         (e.g. tzinfo=timezone.utc)",
                        path.render()
                    )));
                }
                let text = datetime_text(ob)?;
                self.count(&text)?;
                Ok(if BUILD {
                    Value::String(text)
                } else {
                    Value::Null
                })
            }
            PyKind::Mapping(m) => {
                let mut out = serde_json::Map::new();
                for item in m.items()?.iter() {
                    let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                    self.entry(&mut out, &k, &v, path, depth)?;
                }
                Ok(Value::Object(out))
            }
            PyKind::Other => Err(manifest_err(
                path,
                format_args!(
                    "a {} (expected dict, list, str, int, float, bool, None or an aware datetime)",
                    type_name(&ob.as_borrowed())
                ),
            )),
        }
    }

    fn entry(
        &mut self,
        out: &mut serde_json::Map<String, Value>,
        k: &Bound<'_, PyAny>,
        v: &Bound<'_, PyAny>,
        path: &Path<'_>,
        depth: usize,
    ) -> PyResult<()> {
        let key = key_text(k).map_err(|why| manifest_err(path, why))?;
        if k.cast::<PyString>().is_ok() {
            self.count(&key)?;
        }
        let value = self.convert(v, &path.child(Step::Key(&key)), depth + 1)?;
        if BUILD {
            out.insert(key.into_owned(), value);
        }
        Ok(())
    }
}

/// A mapping document (or list of them) from Python to JSON; `root` names it in errors.
pub(crate) fn to_json(ob: &Bound<'_, PyAny>, root: &str) -> PyResult<Value> {
    ToJson::<true>::new().convert(ob, &Path::root(root), 0)
}

// ---- Python objects read in place ------------------------------------------------------------

/// A Python object as the core's document tree ([`meshtls::manifest::Node`]), so that the core's
/// own reader (its rules, its messages) reads `from_dicts`' documents without a JSON value tree
/// in between. The documents were checked by [`ToJson`] first; should an object answer
/// differently now (a mapping whose `items()` changed, or raised), the failure is kept in the
/// reading's [`ReadCx`] and wins over what the reader returns.
#[derive(Clone)]
struct PyNode<'a, 'py> {
    ob: Bound<'py, PyAny>,
    cx: &'a ReadCx<'py>,
}

/// What the nodes of one `from_dicts` call share: the first failure, and the keys the reader
/// has asked for as interned Python strings (a lookup then hashes nothing and usually finds
/// the dict's own key by identity).
#[derive(Default)]
struct ReadCx<'py> {
    failed: std::cell::RefCell<Option<PyErr>>,
    keys: std::cell::RefCell<Vec<(Box<str>, Bound<'py, PyString>)>>,
}

/// The most keys a [`ReadCx`] keeps (the reader asks for about ten names).
const KEPT_KEYS: usize = 32;

impl<'py> ReadCx<'py> {
    fn key(&self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        let mut keys = self.keys.borrow_mut();
        if let Some((_, k)) = keys.iter().find(|(text, _)| &**text == key) {
            return k.clone();
        }
        let k = PyString::intern(py, key);
        if keys.len() < KEPT_KEYS {
            keys.push((key.into(), k.clone()));
        }
        k
    }
}

impl<'a, 'py> PyNode<'a, 'py> {
    fn child(&self, ob: Bound<'py, PyAny>) -> Self {
        PyNode { ob, cx: self.cx }
    }

    fn fail(&self, err: PyErr) {
        let mut slot = self.cx.failed.borrow_mut();
        if slot.is_none() {
            *slot = Some(err);
        }
    }

    fn changed(&self) {
        self.fail(ManifestError::new_err(
            "cannot read document: an object changed while it was read",
        ));
    }

    /// The members of a mapping as `(key, value)` objects.
    fn members(&self) -> Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        match py_kind(&self.ob) {
            PyKind::Dict(d) => d.iter().collect(),
            PyKind::Mapping(m) => {
                let items = m.items().and_then(|items| {
                    items
                        .iter()
                        .map(|item| item.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>())
                        .collect::<PyResult<Vec<_>>>()
                });
                items.unwrap_or_else(|e| {
                    self.fail(e);
                    Vec::new()
                })
            }
            _ => Vec::new(),
        }
    }
}

/// True when a dict's keys are all `str` and in strictly increasing order: its members are
/// then already as the reader wants them (as `kubectl` and most code write objects).
fn str_keys_in_order(d: &Bound<'_, PyDict>) -> bool {
    if d.len() < 2 {
        // One str key, or an int key that key_text renders (no other can follow).
        return d.iter().all(|(k, _)| k.cast::<PyString>().is_ok());
    }
    let mut prev: Option<Bound<'_, PyAny>> = None;
    for (k, _) in d.iter() {
        let Ok(key) = k.cast::<PyString>() else {
            return false;
        };
        let Ok(text) = text_of(key.as_borrowed()) else {
            return false;
        };
        if let Some(p) = &prev {
            match p.cast::<PyString>().map(|p| text_of(p.as_borrowed())) {
                Ok(Ok(before)) if before.0 < text.0 => {}
                _ => return false,
            }
        }
        prev = Some(k);
    }
    true
}

impl<'py> Node for PyNode<'_, 'py> {
    fn kind(&self) -> NodeKind {
        match py_kind(&self.ob) {
            PyKind::Str(_) | PyKind::DateTime => NodeKind::String,
            PyKind::Dict(_) | PyKind::Mapping(_) => NodeKind::Object,
            PyKind::List(_) | PyKind::Tuple(_) => NodeKind::Array,
            PyKind::Bool(_) => NodeKind::Boolean,
            PyKind::Int => NodeKind::Integer,
            PyKind::Null => NodeKind::Null,
            PyKind::Float(_) => NodeKind::Number,
            PyKind::Other => {
                self.changed();
                NodeKind::Null
            }
        }
    }

    fn as_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        let text = match py_kind(&self.ob) {
            PyKind::Str(s) => text_of(s.as_borrowed()).map(|t| std::borrow::Cow::Borrowed(t.0)),
            PyKind::DateTime => datetime_text(&self.ob).map(std::borrow::Cow::Owned),
            _ => return None,
        };
        text.map_err(|e| self.fail(e)).ok()
    }

    fn get(&self, key: &str) -> Option<Self> {
        // A key that an int renders to is looked up as the converter would have stored it
        // (the last of the str and the int key wins); any other key only as a str.
        if let (PyKind::Dict(d), false) = (py_kind(&self.ob), is_int_text(key)) {
            return match d.get_item(self.cx.key(d.py(), key)) {
                Ok(v) => v.map(|v| self.child(v)),
                Err(e) => {
                    self.fail(e);
                    None
                }
            };
        }
        let mut found = None;
        let _ = self.try_for_each_entry(|k, v| {
            if k == key {
                found = Some(v);
                return Err(());
            }
            Ok(())
        });
        found
    }

    fn try_for_each_entry<E>(
        &self,
        mut f: impl FnMut(&str, Self) -> Result<(), E>,
    ) -> Result<(), E> {
        if let PyKind::Dict(d) = py_kind(&self.ob)
            && str_keys_in_order(d)
        {
            for (k, v) in d.iter() {
                match key_text(&k) {
                    Ok(key) => f(&key, self.child(v))?,
                    Err(_) => {
                        self.changed();
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
        let members = self.members();
        let mut keyed = Vec::with_capacity(members.len());
        for (k, v) in &members {
            match key_text(k) {
                Ok(key) => keyed.push((key, v)),
                Err(_) => {
                    self.changed();
                    return Ok(());
                }
            }
        }
        // As `serde_json::Map` holds them: in key order, the last of equal keys kept.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut i = 0;
        while let Some((key, v)) = keyed.get(i) {
            i += 1;
            if keyed.get(i).is_some_and(|next| next.0 == *key) {
                continue;
            }
            f(key, self.child((*v).clone()))?;
        }
        Ok(())
    }

    fn try_for_each_item<E>(&self, mut f: impl FnMut(Self) -> Result<(), E>) -> Result<(), E> {
        match py_kind(&self.ob) {
            PyKind::List(l) => {
                for item in l.iter() {
                    f(self.child(item))?;
                }
            }
            PyKind::Tuple(t) => {
                for item in t.iter() {
                    f(self.child(item))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// True for the text an `int` key renders to (`"8080"`, `"-1"`).
fn is_int_text(key: &str) -> bool {
    key.parse::<i64>().is_ok_and(|i| i.to_string() == key)
}

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

/// `port`: None, or an int in 0..=65535 (else `PolicyError` naming the port).
fn port_arg(port: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u16>> {
    let Some(port) = port.filter(|p| !p.is_none()) else {
        return Ok(None);
    };
    let wide: i64 = int_arg(port, "port", "must be between 0 and 65535")?;
    u16::try_from(wide)
        .map(Some)
        .map_err(|_| py_err(PolicyError::Port(wide)))
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
        port_arg(Some(&tuple.get_item(2)?))?
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
        if documents.cast::<PyDict>().is_ok()
            || documents.cast::<PyString>().is_ok()
            || documents.is_instance_of::<pyo3::types::PyBytes>()
        {
            return Err(PyTypeError::new_err(
                "from_dicts takes a list of objects (use [obj] for one, from_yaml for text)",
            ));
        }
        // Each document is converted, read by the core and dropped before the next, so no
        // value tree of the whole list is ever held (and the allocator reuses one document's
        // memory for the next). Errors keep their precedence: a value that is not JSON-like
        // anywhere in the list (ManifestError) wins over a policy error, as when the whole list
        // was converted first; then policy errors in document order, then the set's own.
        let root = Path::root("documents");
        let mut check = ToJson::<false>::new();
        let cx = ReadCx::default();
        let mut builder = PolicySetBuilder::with_capacity(documents.len().unwrap_or(0));
        let mut first_error = None;
        for (i, doc) in documents.try_iter()?.enumerate() {
            let doc = doc?;
            check.convert(&doc, &root.child(Step::Index(i)), 0)?;
            if first_error.is_none() {
                let read = builder.push_document(PyNode { ob: doc, cx: &cx });
                if let Some(e) = cx.failed.take() {
                    return Err(e);
                }
                if let Err(e) = read {
                    first_error = Some(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(py_err(e));
        }
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
    ///     PolicyError: a port outside 0..65535 (``InvalidArgumentError`` past 64 bits).
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
        let port = port_arg(port)?;
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
    ///     PolicyError: a port outside 0..65535.
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
    let value = to_json(text_or_dict, "object")?;
    py.detach(|| meshtls::policy::validate_documents(vec![value]))
        .map_err(py_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPolicySet>()?;
    m.add_class::<PyDecision>()?;
    m.add_function(wrap_pyfunction!(validate_peer_authentication, m)?)?;
    Ok(())
}
