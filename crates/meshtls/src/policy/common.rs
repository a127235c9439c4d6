//! What PeerAuthentication and AuthorizationPolicy share as Kubernetes objects in a stream of
//! manifests: the one rule for `kind: List` and for documents of other kinds.

use std::fmt;

use serde_json::Value;

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
