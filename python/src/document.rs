//! Python objects read as documents: the one reader behind every `from_dicts` and every
//! function that takes a document as a dict (`validate_peer_authentication`,
//! `validate_authorization_policy`). Strict types (mappings, lists, tuples, str, int, float,
//! bool, None, aware datetimes), the YAML reader's depth, size and node limits, and errors
//! that say where a bad value sits; never `str()` of an arbitrary object.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
};
use serde_json::Value;

use meshtls::manifest::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_VALUE_NODES, Node, NodeKind};

use crate::args::{is_aware, quote, text_of, type_name};
use crate::errors::ManifestError;

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

/// Where a walk of Python objects puts what it reads: a JSON value tree ([`to_json`]) or a
/// [`Tape`] (what `from_dicts` hands the core). Sinks only store; every rule is [`Walk`]'s.
trait Sink {
    type Out;
    type Seq;
    type Map;
    /// Null, a boolean or a number (as a value, which costs no allocation).
    fn scalar(&mut self, v: Value) -> Self::Out;
    fn text(&mut self, s: &str) -> Self::Out;
    fn begin_seq(&mut self, len: usize) -> Self::Seq;
    fn item(&mut self, seq: &mut Self::Seq, v: Self::Out);
    fn end_seq(&mut self, seq: Self::Seq) -> Self::Out;
    fn begin_map(&mut self) -> Self::Map;
    fn member(&mut self, map: &mut Self::Map, key: &str, v: Self::Out);
    fn end_map(&mut self, map: Self::Map) -> Self::Out;
}

/// Builds `serde_json` values.
struct JsonSink;

impl Sink for JsonSink {
    type Out = Value;
    type Seq = Vec<Value>;
    type Map = serde_json::Map<String, Value>;
    fn scalar(&mut self, v: Value) -> Value {
        v
    }
    fn text(&mut self, s: &str) -> Value {
        Value::String(s.to_owned())
    }
    fn begin_seq(&mut self, len: usize) -> Vec<Value> {
        Vec::with_capacity(len)
    }
    fn item(&mut self, seq: &mut Vec<Value>, v: Value) {
        seq.push(v);
    }
    fn end_seq(&mut self, seq: Vec<Value>) -> Value {
        Value::Array(seq)
    }
    fn begin_map(&mut self) -> Self::Map {
        serde_json::Map::new()
    }
    fn member(&mut self, map: &mut Self::Map, key: &str, v: Value) {
        map.insert(key.to_owned(), v);
    }
    fn end_map(&mut self, map: Self::Map) -> Value {
        Value::Object(map)
    }
}

/// Walks Python objects (dicts and other mappings, lists, tuples, str, int, float, bool, None,
/// aware datetimes) into a [`Sink`], with the YAML reader's depth, size and node limits.
/// Anything else in a document is a `ManifestError` naming where it is.
struct Walk<S> {
    nodes: usize,
    bytes: usize,
    sink: S,
}

impl<S: Sink> Walk<S> {
    fn new(sink: S) -> Self {
        Walk {
            nodes: 0,
            bytes: 0,
            sink,
        }
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

    /// A `str` (or a datetime's ISO text) as a text node.
    fn text(&mut self, s: Borrowed<'_, '_, PyString>, path: &Path<'_>) -> PyResult<S::Out> {
        let t = text_of(s)
            .map_err(|_| manifest_err(path, "a str that is not valid Unicode (lone surrogate)"))?;
        self.count(t.0)?;
        Ok(self.sink.text(t.0))
    }

    /// A list or tuple as a sequence node, its items one level deeper.
    fn seq<'py>(
        &mut self,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        path: &Path<'_>,
        depth: usize,
    ) -> PyResult<S::Out> {
        let mut seq = self.sink.begin_seq(len);
        for (i, item) in items.enumerate() {
            let v = self.convert(&item, &path.child(Step::Index(i)), depth + 1)?;
            self.sink.item(&mut seq, v);
        }
        Ok(self.sink.end_seq(seq))
    }

    fn convert(
        &mut self,
        ob: &Bound<'_, PyAny>,
        path: &Path<'_>,
        depth: usize,
    ) -> PyResult<S::Out> {
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
            PyKind::Str(s) => self.text(s.as_borrowed(), path),
            PyKind::Dict(d) => {
                let mut map = self.sink.begin_map();
                for (k, v) in d.iter() {
                    self.entry(&mut map, &k, &v, path, depth)?;
                }
                Ok(self.sink.end_map(map))
            }
            PyKind::List(l) => self.seq(l.len(), l.iter(), path, depth),
            PyKind::Bool(b) => Ok(self.sink.scalar(Value::Bool(b))),
            PyKind::Int => {
                if let Ok(i) = ob.extract::<i64>() {
                    return Ok(self.sink.scalar(Value::from(i)));
                }
                if let Ok(u) = ob.extract::<u64>() {
                    return Ok(self.sink.scalar(Value::from(u)));
                }
                Err(manifest_err(
                    path,
                    "an integer out of range (manifests hold 64-bit integers)",
                ))
            }
            PyKind::Null => Ok(self.sink.scalar(Value::Null)),
            PyKind::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => Ok(self.sink.scalar(Value::Number(n))),
                None => Err(manifest_err(
                    path,
                    format_args!("{f} (not a finite number)"),
                )),
            },
            PyKind::Tuple(t) => self.seq(t.len(), t.iter(), path, depth),
            PyKind::DateTime => {
                // A datetime, as the kubernetes client returns creationTimestamp: the one
                // datetime converter decides what is accepted, isoformat() gives RFC 3339.
                if !is_aware(ob)? {
                    return Err(ManifestError::new_err(format!(
                        "cannot read document: naive datetime at {}: use an aware datetime \
                         (e.g. tzinfo=timezone.utc)",
                        path.render()
                    )));
                }
                let text = ob.call_method0("isoformat")?;
                let text = text.cast::<PyString>()?;
                self.text(text.as_borrowed(), path)
            }
            PyKind::Mapping(m) => {
                let mut map = self.sink.begin_map();
                for item in m.items()?.iter() {
                    let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                    self.entry(&mut map, &k, &v, path, depth)?;
                }
                Ok(self.sink.end_map(map))
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
        map: &mut S::Map,
        k: &Bound<'_, PyAny>,
        v: &Bound<'_, PyAny>,
        path: &Path<'_>,
        depth: usize,
    ) -> PyResult<()> {
        let key = key_text(k).map_err(|why| manifest_err(path, why))?;
        if let std::borrow::Cow::Borrowed(text) = &key {
            self.count(text)?;
        }
        let value = self.convert(v, &path.child(Step::Key(&key)), depth + 1)?;
        self.sink.member(map, &key, value);
        Ok(())
    }
}

/// A mapping document (or list of them) from Python to JSON; `root` names it in errors.
pub(crate) fn to_json(ob: &Bound<'_, PyAny>, root: &str) -> PyResult<Value> {
    Walk::new(JsonSink).convert(ob, &Path::root(root), 0)
}

// ---- Python objects read for the core ---------------------------------------------------------

/// One document as read from Python objects, in flat buffers reused from one document to the
/// next (no allocation per node): what `from_dicts` hands the core's reader, as a
/// [`meshtls::manifest::Node`] ([`TapeNode`]). Mappings are stored as `serde_json::Map` holds
/// them (members in key order, the last of equal keys kept: a str key and an int key that
/// renders alike are one key), so the core reads exactly what it would read from the JSON
/// value of the same objects.
#[derive(Default)]
struct Tape {
    text: String,
    nodes: Vec<Slot>,
    /// `(key start, key end, node)`, each mapping's members together, in key order.
    members: Vec<(usize, usize, usize)>,
    items: Vec<usize>,
    /// Members and items of the containers being read (their own are moved on completion).
    open_members: Vec<(usize, usize, usize)>,
    open_items: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Slot {
    Null,
    Boolean,
    Integer,
    Number,
    Str(usize, usize),
    Array(usize, usize),
    Object(usize, usize),
}

impl Tape {
    fn clear(&mut self) {
        self.text.clear();
        self.nodes.clear();
        self.members.clear();
        self.items.clear();
        self.open_members.clear();
        self.open_items.clear();
    }

    fn push(&mut self, slot: Slot) -> usize {
        self.nodes.push(slot);
        self.nodes.len() - 1
    }

    fn key(&self, member: &(usize, usize, usize)) -> &str {
        self.text.get(member.0..member.1).unwrap_or("")
    }
}

impl Sink for &mut Tape {
    type Out = usize;
    type Seq = usize;
    type Map = usize;
    fn scalar(&mut self, v: Value) -> usize {
        let slot = match &v {
            Value::Null => Slot::Null,
            Value::Bool(_) => Slot::Boolean,
            Value::Number(n) if n.is_f64() => Slot::Number,
            Value::Number(_) => Slot::Integer,
            Value::String(_) | Value::Array(_) | Value::Object(_) => Slot::Null,
        };
        self.push(slot)
    }
    fn text(&mut self, s: &str) -> usize {
        let start = self.text.len();
        self.text.push_str(s);
        let end = self.text.len();
        self.push(Slot::Str(start, end))
    }
    fn begin_seq(&mut self, _len: usize) -> usize {
        self.open_items.len()
    }
    fn item(&mut self, _seq: &mut usize, v: usize) {
        self.open_items.push(v);
    }
    fn end_seq(&mut self, seq: usize) -> usize {
        let start = self.items.len();
        let open = self.open_items.get(seq..).unwrap_or(&[]);
        self.items.extend_from_slice(open);
        self.open_items.truncate(seq);
        let end = self.items.len();
        self.push(Slot::Array(start, end))
    }
    fn begin_map(&mut self) -> usize {
        self.open_members.len()
    }
    fn member(&mut self, _map: &mut usize, key: &str, v: usize) {
        let start = self.text.len();
        self.text.push_str(key);
        self.open_members.push((start, self.text.len(), v));
    }
    fn end_map(&mut self, map: usize) -> usize {
        let Tape {
            text,
            members,
            open_members,
            ..
        } = &mut **self;
        let key = |m: &(usize, usize, usize)| text.get(m.0..m.1).unwrap_or("");
        let open = open_members.get_mut(map..).unwrap_or(&mut []);
        // Stable: of equal keys, the last one read stays last.
        if !open.is_sorted_by(|a, b| key(a) < key(b)) {
            open.sort_by(|a, b| key(a).cmp(key(b)));
        }
        let start = members.len();
        for (i, m) in open.iter().enumerate() {
            if open.get(i + 1).is_some_and(|next| key(next) == key(m)) {
                continue;
            }
            members.push(*m);
        }
        open_members.truncate(map);
        let end = members.len();
        self.push(Slot::Object(start, end))
    }
}

/// A node of a [`Tape`].
#[derive(Clone, Copy)]
pub(crate) struct TapeNode<'t> {
    tape: &'t Tape,
    id: usize,
}

impl<'t> TapeNode<'t> {
    fn slot(&self) -> Slot {
        self.tape.nodes.get(self.id).copied().unwrap_or(Slot::Null)
    }

    fn at(&self, id: usize) -> Self {
        TapeNode {
            tape: self.tape,
            id,
        }
    }

    fn members(&self) -> &'t [(usize, usize, usize)] {
        match self.slot() {
            Slot::Object(a, b) => self.tape.members.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

impl Node for TapeNode<'_> {
    fn kind(&self) -> NodeKind {
        match self.slot() {
            Slot::Null => NodeKind::Null,
            Slot::Boolean => NodeKind::Boolean,
            Slot::Integer => NodeKind::Integer,
            Slot::Number => NodeKind::Number,
            Slot::Str(..) => NodeKind::String,
            Slot::Array(..) => NodeKind::Array,
            Slot::Object(..) => NodeKind::Object,
        }
    }

    fn as_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self.slot() {
            Slot::Str(a, b) => self.tape.text.get(a..b).map(std::borrow::Cow::Borrowed),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        // Mappings in documents are small: a scan that compares lengths first beats a binary
        // search's string comparisons.
        self.members()
            .iter()
            .find(|m| m.1 - m.0 == key.len() && self.tape.key(m) == key)
            .map(|m| self.at(m.2))
    }

    fn try_for_each_entry<E>(
        &self,
        mut f: impl FnMut(&str, Self) -> Result<(), E>,
    ) -> Result<(), E> {
        for m in self.members() {
            f(self.tape.key(m), self.at(m.2))?;
        }
        Ok(())
    }

    fn try_for_each_item<E>(&self, mut f: impl FnMut(Self) -> Result<(), E>) -> Result<(), E> {
        if let Slot::Array(a, b) = self.slot() {
            for id in self.tape.items.get(a..b).unwrap_or(&[]) {
                f(self.at(*id))?;
            }
        }
        Ok(())
    }
}

// ---- the readers every binding module calls ----------------------------------------------------

/// `from_dicts`' argument: an iterable of documents. One mapping, a `str` or `bytes` is a
/// `TypeError` (a list of one object is `[obj]`, text goes to `from_yaml`).
fn document_list<'py>(
    documents: &Bound<'py, PyAny>,
) -> PyResult<impl Iterator<Item = PyResult<Bound<'py, PyAny>>>> {
    if documents.cast::<PyDict>().is_ok()
        || documents.cast::<PyMapping>().is_ok()
        || documents.cast::<PyString>().is_ok()
        || documents.is_instance_of::<PyBytes>()
    {
        return Err(PyTypeError::new_err(format!(
            "from_dicts takes a list of objects (use [obj] for one, from_yaml for text), got {}",
            type_name(&documents.as_borrowed())
        )));
    }
    documents.try_iter()
}

/// Every document of `from_dicts`' list as a JSON value (named `documents[i]` in errors).
pub(crate) fn documents_to_json(documents: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    let root = Path::root("documents");
    let mut walk = Walk::new(JsonSink);
    let mut out = Vec::with_capacity(documents.len().unwrap_or(0));
    for (i, doc) in document_list(documents)?.enumerate() {
        out.push(walk.convert(&doc?, &root.child(Step::Index(i)), 0)?);
    }
    Ok(out)
}

/// Every document of `from_dicts`' list walked once onto one reused [`Tape`] and handed to
/// `each` as a core [`Node`], so no value tree is built. The first error `each` returns is
/// kept and returned after the walk: a value that is not JSON-like anywhere in the list
/// (`ManifestError`) wins over it, as when the whole list was converted first.
pub(crate) fn for_each_document<E>(
    documents: &Bound<'_, PyAny>,
    mut each: impl FnMut(TapeNode<'_>) -> Result<(), E>,
) -> PyResult<Result<(), E>> {
    let root = Path::root("documents");
    let mut tape = Tape::default();
    let mut walk = Walk::new(&mut tape);
    let mut first_error = Ok(());
    for (i, doc) in document_list(documents)?.enumerate() {
        walk.sink.clear();
        let top = walk.convert(&doc?, &root.child(Step::Index(i)), 0)?;
        if first_error.is_ok() {
            first_error = each(TapeNode {
                tape: &*walk.sink,
                id: top,
            });
        }
    }
    Ok(first_error)
}
