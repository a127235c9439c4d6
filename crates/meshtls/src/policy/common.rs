//! What PeerAuthentication and AuthorizationPolicy share: the one rule for `kind: List` and
//! for documents of other kinds in a stream of manifests, the policy name, workload labels,
//! the `security.istio.io` API versions, selector limits, the validation report and the
//! DNS-1123 name rules. Re-exported by [`peer`](crate::policy::peer) and
//! [`authorization`](crate::policy::authorization).

use std::fmt;

use serde_json::Value;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::error::{PolicyError, Violation};
use crate::manifest::{Node, NodeKind};

/// Whether `doc` stands for its items: its `kind` ends in `List` (`List`,
/// `PeerAuthenticationList`, ...) and it has an `items` sequence. Any other document is an
/// object of its kind, read or skipped by the caller.
pub(crate) fn is_list<N: Node>(doc: &N) -> bool {
    doc.get("kind")
        .as_ref()
        .and_then(N::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && doc
            .get("items")
            .is_some_and(|items| items.kind() == NodeKind::Array)
}

/// The one rule for an object of a stream (after [`for_each_object`] expanded the lists):
/// `Ok(true)` for an object of `kind`, `Ok(false)` for another kind (skipped and counted by the
/// reader), and the reason, for the reader's `Document` error, when the document is no
/// Kubernetes object (no string `kind`) or a `*List` without an `items` sequence.
pub(crate) fn is_kind<N: Node>(doc: &N, kind: &str) -> Result<bool, String> {
    match doc.get("kind").as_ref().and_then(N::as_str) {
        Some(k) if k == kind => Ok(true),
        Some(k) if k.ends_with("List") => Err(format!("is a {k} without an items list")),
        Some(_) => Ok(false),
        None => Err("has no kind: not a Kubernetes object".to_owned()),
    }
}

/// Where an object is in the input, numbered from 1: `3` for the third document, `3.2` for the
/// second item of a list in it, `3.2.1` for an item of a list inside that list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocIndex<'a>(&'a [usize]);

impl fmt::Display for DocIndex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// Calls `f` with every object of the document numbered `document` (from 1): the document
/// itself, or the items of a list ([`is_list`]), lists inside lists expanded too, in document
/// order, as kubectl expands them (cli-runtime's `FlattenListVisitor`). Nesting is bounded by
/// the readers' depth limit ([`crate::manifest::MAX_DEPTH`]).
pub(crate) fn for_each_object<N: Node, E>(
    doc: N,
    document: usize,
    f: &mut impl FnMut(DocIndex<'_>, N) -> Result<(), E>,
) -> Result<(), E> {
    let mut path = vec![document];
    visit(doc, &mut path, f)
}

fn visit<N: Node, E>(
    doc: N,
    path: &mut Vec<usize>,
    f: &mut impl FnMut(DocIndex<'_>, N) -> Result<(), E>,
) -> Result<(), E> {
    if !is_list(&doc) {
        return f(DocIndex(path), doc);
    }
    let Some(items) = doc.get("items") else {
        return Ok(());
    };
    path.push(0);
    let result = items.try_for_each_item(|item| {
        if let Some(last) = path.last_mut() {
            *last += 1;
        }
        visit(item, path, f)
    });
    path.pop();
    result
}

/// Every object of parsed documents with its [`DocIndex`] rendered, borrowed (see
/// [`for_each_object`]).
pub(crate) fn flatten_refs<'a>(
    docs: impl IntoIterator<Item = &'a Value>,
) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let _ = for_each_object(doc, i + 1, &mut |index, obj| {
            out.push((index.to_string(), obj));
            Ok::<(), std::convert::Infallible>(())
        });
    }
    out
}

/// A policy's `namespace/name`, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyName {
    text: Arc<str>,
    slash: usize,
}

impl PolicyName {
    /// A name from its parts.
    pub fn new(namespace: &str, name: &str) -> Self {
        let mut text = String::with_capacity(namespace.len() + 1 + name.len());
        text.push_str(namespace);
        text.push('/');
        text.push_str(name);
        PolicyName {
            text: Arc::from(text),
            slash: namespace.len(),
        }
    }

    /// Parses `namespace/name` (both parts non-empty, exactly one `/`).
    ///
    /// ```
    /// use meshtls::policy::PolicyName;
    /// let p = PolicyName::parse("shop/legacy")?;
    /// assert_eq!((p.namespace(), p.name()), ("shop", "legacy"));
    /// for bad in ["shop", "/legacy", "shop/", "a/b/c"] {
    ///     assert!(PolicyName::parse(bad).is_err(), "{bad}");
    /// }
    /// # Ok::<(), meshtls::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(PolicyName::new(ns, name))
            }
            _ => Err(PolicyError::PolicyName(text.to_owned())),
        }
    }

    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        self.text.get(..self.slash).unwrap_or("")
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.text.get(self.slash + 1..).unwrap_or("")
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

/// A workload's labels, as [`PolicySet::resolve`](crate::policy::PolicySet::resolve) reads them.
///
/// Implemented for maps (`BTreeMap`, `HashMap`) and for slices, vectors and arrays of
/// `(key, value)` pairs of anything that is `AsRef<str>`.
pub trait Labels {
    /// The value of `key`, if the workload has that label.
    fn label(&self, key: &str) -> Option<&str>;
    /// Every `(key, value)` pair.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)>;
}

impl<K: Borrow<str> + Ord, V: AsRef<str>> Labels for BTreeMap<K, V> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(AsRef::as_ref)
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(k, v)| (k.borrow(), v.as_ref()))
    }
}

impl<K: Borrow<str> + std::hash::Hash + Eq, V: AsRef<str>, S: BuildHasher> Labels
    for HashMap<K, V, S>
{
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(AsRef::as_ref)
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(k, v)| (k.borrow(), v.as_ref()))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for Vec<(K, V)> {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_slice().label(key)
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_slice().pairs()
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Labels for [(K, V); N] {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_slice().label(key)
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_slice().pairs()
    }
}

/// The served API versions. Both carry the same schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ApiVersion {
    /// `security.istio.io/v1` (the storage version).
    #[default]
    V1,
    /// `security.istio.io/v1beta1`.
    V1beta1,
}

impl ApiVersion {
    /// The `apiVersion` text.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "security.istio.io/v1",
            ApiVersion::V1beta1 => "security.istio.io/v1beta1",
        }
    }

    /// Parses the `apiVersion` text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "security.istio.io/v1" => Some(ApiVersion::V1),
            "security.istio.io/v1beta1" => Some(ApiVersion::V1beta1),
            _ => None,
        }
    }
}

/// The CRD's `maxProperties` for `spec.selector.matchLabels`.
pub const MAX_SELECTOR_LABELS: usize = 4096;
/// The CRD's `maxLength` for a `matchLabels` value (characters).
pub const MAX_LABEL_VALUE_LEN: usize = 63;

/// The verdict on one object: errors (any means the cluster refuses it) and warnings (the
/// cluster accepts it and prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `namespace/name`, or `name` when the manifest has no namespace.
    pub object: String,
    /// Broken rules, apiserver layer first, in the order a cluster reports them.
    pub errors: Vec<Violation>,
    /// Warnings (istiod's "workload selector specified without labels").
    pub warnings: Vec<Violation>,
}

impl Report {
    /// True when there are no errors.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// Each warning as one line naming the object, the field and the rule.
    pub fn warning_messages(&self) -> Vec<String> {
        self.warnings
            .iter()
            .map(|w| format!("{}: {}", self.object, warning_text(w)))
            .collect()
    }

    /// The warnings when valid, otherwise [`PolicyError::Invalid`] with every error.
    pub fn into_result(self) -> Result<Vec<Violation>, PolicyError> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(PolicyError::Invalid {
                object: self.object,
                violations: self.errors,
            })
        }
    }
}

fn warning_text(w: &Violation) -> String {
    if w.path.is_empty() {
        format!("warning: {} [{}]", w.message, w.rule)
    } else {
        format!("{}: warning: {} [{}]", w.path, w.message, w.rule)
    }
}

/// Why `name` is not a DNS-1123 label (namespace names), or `None`.
pub(crate) fn dns1123_label(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum);
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', must start and end with an alphanumeric character, and be at most 63 characters".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand_at_every_depth_in_document_order() {
        let docs: Vec<Value> = vec![
            serde_json::json!({"kind": "PeerAuthentication", "metadata": {"name": "a"}}),
            serde_json::json!({"kind": "List", "items": [
                {"kind": "AuthorizationPolicy"},
                {"kind": "PeerAuthenticationList", "items": [{"kind": "X"}, {"kind": "List", "items": [{"kind": "Y"}]}]},
                {"kind": "Z"},
            ]}),
            serde_json::json!({"kind": "List", "items": {"not": "an array"}}),
            serde_json::json!({"kind": "ConfigMap", "items": []}),
            serde_json::json!({"kind": "List", "items": []}),
            serde_json::json!([1, 2]),
        ];
        let flat = flatten_refs(&docs);
        let got: Vec<(&str, Option<&str>)> = flat
            .iter()
            .map(|(i, d)| (i.as_str(), d.get("kind").and_then(Value::as_str)))
            .collect();
        assert_eq!(
            got,
            [
                ("1", Some("PeerAuthentication")),
                ("2.1", Some("AuthorizationPolicy")),
                ("2.2.1", Some("X")),
                ("2.2.2.1", Some("Y")),
                ("2.3", Some("Z")),
                ("3", Some("List")),
                ("4", Some("ConfigMap")),
                ("6", None),
            ]
        );
    }
}
