//! Validation as a cluster does it: the apiserver (CRD schema, CEL rules, strict field
//! validation, object metadata), then istiod's webhook `ValidatePeerAuthentication`.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, PolicyError, Rule, Violation};
use crate::manifest::{self, Node};

use crate::policy::common::{
    ApiVersion, MAX_LABEL_VALUE_LEN, MAX_SELECTOR_LABELS, Report, dns1123_label, flatten_refs,
    is_kind,
};

use super::model::{
    KIND, object_ref, parse_port_key, parse_timestamp, port_key_violation, type_violation,
    unsupported_mode,
};

/// The lowest and highest port a `portLevelMtls` key may name.
pub const PORT_RANGE: std::ops::RangeInclusive<i64> = 1..=65535;

/// Validates one object (a parsed YAML/JSON mapping) with both of Istio's layers.
///
/// Every rule is checked, so the report lists all problems at once; istiod's webhook rules run
/// on whatever part of the object can be decoded, which lets one report carry both the
/// apiserver's and istiod's wording for the same mistake.
pub fn validate_value(value: &Value) -> Report {
    let mut v = Validator::default();
    let object = match value {
        Value::Object(obj) => {
            let object = object_name(obj);
            v.apiserver(obj);
            v.istiod(obj);
            object
        }
        other => {
            v.error(
                "",
                format!(
                    "expected a Kubernetes object (a mapping), found {}",
                    super::model::type_name(other)
                ),
                Rule::ObjectMeta,
            );
            "<document>".to_owned()
        }
    };
    Report {
        object,
        errors: v.errors,
        warnings: v.warnings,
    }
}

fn object_name(obj: &Map<String, Value>) -> String {
    let meta = obj.get("metadata").and_then(Value::as_object);
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .or_else(|| {
            meta.and_then(|m| m.get("generateName"))
                .and_then(Value::as_str)
        })
        .unwrap_or("<unnamed>");
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    object_ref(ns, name)
}

/// Validates every PeerAuthentication in a YAML/JSON text (one object, a multi-document
/// stream, or a `kind: List`) and returns the warnings, one line each.
///
/// The first invalid object ends the check with [`PolicyError::Invalid`], whose message carries
/// Istio's reason, the object (`namespace/name`), the field path and the rule. Objects of other
/// kinds are skipped, a document without `kind` is an error, and a text with no
/// PeerAuthentication at all is [`PolicyError::Empty`] (the rules of every reader: see
/// [the module documentation](crate::policy#other-kinds-and-a-missing-namespace)).
///
/// ```
/// let warnings = meshtls::policy::validate_peer_authentication(r#"
/// apiVersion: security.istio.io/v1
/// kind: PeerAuthentication
/// metadata: {name: default, namespace: shop}
/// spec:
///   selector: {}
/// "#)?;
/// assert_eq!(warnings, ["shop/default: spec.selector: warning: workload selector specified without labels [istiod webhook]"]);
///
/// let err = meshtls::policy::validate_peer_authentication(r#"
/// apiVersion: security.istio.io/v1
/// kind: PeerAuthentication
/// metadata: {name: default, namespace: shop}
/// spec:
///   portLevelMtls: {8080: {mode: DISABLE}}
/// "#).unwrap_err();
/// assert!(err.to_string().contains("portLevelMtls requires selector"));
/// # Ok::<(), meshtls::Error>(())
/// ```
pub fn validate_peer_authentication(text: &str) -> Result<Vec<String>, Error> {
    let docs = manifest::parse_documents(text, MANIFEST_WHAT)?;
    Ok(validate_documents(docs)?)
}

/// [`validate_peer_authentication`] for documents that are already parsed.
pub fn validate_documents(docs: Vec<Value>) -> Result<Vec<String>, PolicyError> {
    let mut warnings = Vec::new();
    let mut seen = 0usize;
    for (index, doc) in flatten_refs(&docs) {
        if !is_peer_authentication(&doc, &index)? {
            continue;
        }
        seen += 1;
        let report = validate_value(doc);
        warnings.extend(report.warning_messages());
        report.into_result()?;
    }
    if seen == 0 {
        return Err(PolicyError::Empty);
    }
    Ok(warnings)
}

/// The outcome of [`check_manifests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    /// One report per PeerAuthentication, in input order.
    pub reports: Vec<Report>,
    /// Documents of other kinds, skipped.
    pub skipped: usize,
}

impl CheckSummary {
    /// True when every PeerAuthentication is valid.
    pub fn all_valid(&self) -> bool {
        self.reports.iter().all(Report::is_valid)
    }
}

/// Validates every PeerAuthentication in a YAML/JSON text and reports on each, skipping (and
/// counting) documents of other kinds. This is what `meshtls policy check` prints.
pub fn check_manifests(text: &str) -> Result<CheckSummary, Error> {
    let docs = manifest::parse_documents(text, MANIFEST_WHAT)?;
    let mut reports = Vec::new();
    let mut skipped = 0;
    for (index, doc) in flatten_refs(&docs) {
        if is_peer_authentication(&doc, &index)? {
            reports.push(validate_value(doc));
        } else {
            skipped += 1;
        }
    }
    Ok(CheckSummary { reports, skipped })
}

/// What every PeerAuthentication reader calls its input in messages, so that one malformed
/// text gets one message from [`validate_peer_authentication`], [`check_manifests`] and
/// [`PolicySet::from_yaml`](crate::PolicySet::from_yaml).
pub(crate) const MANIFEST_WHAT: &str = "PeerAuthentication manifests";

/// The one rule for documents in a stream ([`is_kind`]) for PeerAuthentication: `index` names
/// the document in the error.
pub(crate) fn is_peer_authentication<N: Node>(
    doc: &N,
    index: impl fmt::Display,
) -> Result<bool, PolicyError> {
    is_kind(doc, KIND).map_err(|reason| PolicyError::Document {
        index: index.to_string(),
        reason,
    })
}

#[derive(Default)]
struct Validator {
    errors: Vec<Violation>,
    warnings: Vec<Violation>,
}

const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

impl Validator {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>, rule: Rule) {
        self.errors.push(Violation::new(path, message, rule));
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, known: &[&str], prefix: &str) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                self.error("", format!("unknown field {path:?}"), Rule::FieldValidation);
            }
        }
    }

    /// An optional object field: `None` when absent or null, a type error when not a mapping.
    fn object<'a>(&mut self, v: Option<&'a Value>, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.errors.push(type_violation(path, "object", other));
                None
            }
        }
    }

    fn apiserver(&mut self, obj: &Map<String, Value>) {
        match obj.get("apiVersion") {
            Some(Value::String(s)) if ApiVersion::parse(s).is_some() => {}
            Some(Value::String(s)) => self.error(
                "apiVersion",
                format!("no matches for kind \"PeerAuthentication\" in version {s:?}"),
                Rule::ObjectMeta,
            ),
            _ => self.error(
                "apiVersion",
                "Required value: security.istio.io/v1 or security.istio.io/v1beta1",
                Rule::ObjectMeta,
            ),
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some(KIND) => {}
            other => self.error(
                "kind",
                format!("expected \"PeerAuthentication\", found {other:?}"),
                Rule::ObjectMeta,
            ),
        }
        self.unknown_fields(obj, TOP_LEVEL, "");
        match obj.get("metadata") {
            Some(Value::Object(meta)) => self.metadata(meta),
            Some(other) => self
                .errors
                .push(type_violation("metadata", "object", other)),
            None => self.error(
                "metadata.name",
                "Required value: name or generateName is required",
                Rule::ObjectMeta,
            ),
        }
        if let Some(spec) = self.object(obj.get("spec"), "spec") {
            self.spec_schema(spec);
        }
    }

    fn metadata(&mut self, meta: &Map<String, Value>) {
        self.unknown_fields(meta, OBJECT_META, "metadata");
        match meta.get("name") {
            Some(Value::String(name)) => {
                if let Some(why) = dns1123_subdomain(name) {
                    self.error(
                        "metadata.name",
                        format!("Invalid value: {name:?}: {why}"),
                        Rule::ObjectMeta,
                    );
                }
            }
            Some(other) if !other.is_null() => {
                self.errors
                    .push(type_violation("metadata.name", "string", other));
            }
            _ => {
                if !meta.get("generateName").is_some_and(Value::is_string) {
                    self.error(
                        "metadata.name",
                        "Required value: name or generateName is required",
                        Rule::ObjectMeta,
                    );
                }
            }
        }
        match meta.get("namespace") {
            None | Some(Value::Null) => {}
            Some(Value::String(ns)) => {
                if let Some(why) = dns1123_label(ns) {
                    self.error(
                        "metadata.namespace",
                        format!("Invalid value: {ns:?}: {why}"),
                        Rule::ObjectMeta,
                    );
                }
            }
            Some(other) => self
                .errors
                .push(type_violation("metadata.namespace", "string", other)),
        }
        match meta.get("creationTimestamp") {
            None | Some(Value::Null) => {}
            Some(Value::String(ts)) => {
                if parse_timestamp(ts).is_none() {
                    self.error(
                        "metadata.creationTimestamp",
                        format!("Invalid value: {ts:?}: not an RFC 3339 time"),
                        Rule::ObjectMeta,
                    );
                }
            }
            Some(other) => self.errors.push(type_violation(
                "metadata.creationTimestamp",
                "string",
                other,
            )),
        }
        for field in ["labels", "annotations"] {
            let path = format!("metadata.{field}");
            if let Some(map) = self.object(meta.get(field), &path) {
                for (k, v) in map {
                    if !v.is_string() {
                        self.errors
                            .push(type_violation(&format!("{path}[{k:?}]"), "string", v));
                    }
                }
            }
        }
    }

    fn mtls_schema(&mut self, v: Option<&Value>, path: &str) {
        let Some(m) = self.object(v, path) else {
            return;
        };
        self.unknown_fields(m, &["mode"], path);
        match m.get("mode") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if super::MtlsMode::parse(s).is_none() {
                    self.errors
                        .push(unsupported_mode(&format!("{path}.mode"), s));
                }
            }
            Some(other) => {
                self.errors
                    .push(type_violation(&format!("{path}.mode"), "string", other))
            }
        }
    }

    fn spec_schema(&mut self, spec: &Map<String, Value>) {
        self.unknown_fields(spec, &["selector", "mtls", "portLevelMtls"], "spec");
        let mut label_count = 0;
        if let Some(sel) = self.object(spec.get("selector"), "spec.selector") {
            self.unknown_fields(sel, &["matchLabels"], "spec.selector");
            if let Some(labels) = self.object(sel.get("matchLabels"), "spec.selector.matchLabels") {
                label_count = labels.len();
                if labels.len() > MAX_SELECTOR_LABELS {
                    self.error(
                        "spec.selector.matchLabels",
                        format!(
                            "Too many: {}: must have at most {MAX_SELECTOR_LABELS} items",
                            labels.len()
                        ),
                        Rule::CrdSchema,
                    );
                }
                for (k, v) in labels {
                    let path = format!("spec.selector.matchLabels[{k:?}]");
                    if k.is_empty() {
                        self.error(&path, "key must not be empty", Rule::CrdCel);
                    }
                    if k.contains('*') {
                        self.error(
                            &path,
                            format!(
                                "Invalid value: {k:?}: wildcard not allowed in label key match"
                            ),
                            Rule::CrdCel,
                        );
                    }
                    match v {
                        Value::String(s) => {
                            let chars = s.chars().count();
                            if chars > MAX_LABEL_VALUE_LEN {
                                self.error(
                                    &path,
                                    format!(
                                        "Too long: may not be longer than {MAX_LABEL_VALUE_LEN} characters, got {chars} (label value maxLength {MAX_LABEL_VALUE_LEN})"
                                    ),
                                    Rule::CrdSchema,
                                );
                            }
                            if s.contains('*') {
                                self.error(
                                    &path,
                                    format!(
                                        "Invalid value: {s:?}: wildcard not allowed in label value match"
                                    ),
                                    Rule::CrdCel,
                                );
                            }
                        }
                        other => self.errors.push(type_violation(&path, "string", other)),
                    }
                }
            }
        }
        self.mtls_schema(spec.get("mtls"), "spec.mtls");
        let port_level = spec.get("portLevelMtls").filter(|v| !v.is_null());
        if let Some(ports) = self.object(port_level, "spec.portLevelMtls") {
            if ports.is_empty() {
                self.error(
                    "spec.portLevelMtls",
                    "Invalid value: 0: spec.portLevelMtls in body should have at least 1 properties",
                    Rule::CrdSchema,
                );
            }
            for (key, entry) in ports {
                let path = format!("spec.portLevelMtls[{key:?}]");
                match key.parse::<i64>() {
                    Ok(port) if PORT_RANGE.contains(&port) => {}
                    Ok(port) => self.error(
                        &path,
                        format!("Invalid value: {port}: port must be between 1-65535"),
                        Rule::CrdCel,
                    ),
                    Err(_) => self.errors.push(port_key_violation(&path, key)),
                }
                self.mtls_schema(Some(entry), &path);
            }
        }
        if port_level.is_some() && label_count == 0 {
            self.error("spec", "portLevelMtls requires selector", Rule::CrdCel);
        }
    }

    /// istiod's `ValidatePeerAuthentication`, on the parts of the object that decode.
    fn istiod(&mut self, obj: &Map<String, Value>) {
        let Some(spec) = obj.get("spec").and_then(Value::as_object) else {
            return;
        };
        let selector = spec.get("selector").filter(|v| !v.is_null());
        let labels = selector
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object);
        let label_count = labels.map_or(0, Map::len);
        if let Some(ports) = spec.get("portLevelMtls").and_then(Value::as_object) {
            for key in ports.keys() {
                if let Some(port) = parse_port_key(key) {
                    if !PORT_RANGE.contains(&i64::from(port)) {
                        self.error(
                            format!("spec.portLevelMtls[{key:?}]"),
                            format!("port must be in range 1..65535, got {port}"),
                            Rule::IstiodWebhook,
                        );
                    }
                }
            }
            if ports.is_empty() {
                self.error(
                    "spec.portLevelMtls",
                    "port level mTLS, if defined, must have at least one element",
                    Rule::IstiodWebhook,
                );
            } else if label_count == 0 {
                self.error(
                    "spec.portLevelMtls",
                    "mesh/namespace peer authentication cannot have port level mTLS",
                    Rule::IstiodWebhook,
                );
            }
        }
        if let Some(labels) = labels {
            for (k, v) in labels {
                let Some(v) = v.as_str() else { continue };
                let path = format!("spec.selector.matchLabels[{k:?}]");
                if k.is_empty() {
                    self.error(
                        &path,
                        format!("empty key is not supported in selector: \"{k}={v}\""),
                        Rule::IstiodWebhook,
                    );
                }
                if k.contains('*') || v.contains('*') {
                    self.error(
                        &path,
                        format!("wildcard is not supported in selector: \"{k}={v}\""),
                        Rule::IstiodWebhook,
                    );
                }
            }
        }
        if selector.is_some_and(Value::is_object) && label_count == 0 {
            self.warnings.push(Violation::new(
                "spec.selector",
                "workload selector specified without labels",
                Rule::IstiodWebhook,
            ));
        }
    }
}

/// Why `name` is not a DNS-1123 subdomain (Kubernetes object names), or `None`.
fn dns1123_subdomain(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("Required value: name must not be empty".to_owned());
    }
    if name.len() > 253 {
        return Some("must be no more than 253 characters".to_owned());
    }
    let ok = name.split('.').all(|part| dns1123_label(part).is_none());
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_owned()
    })
}
