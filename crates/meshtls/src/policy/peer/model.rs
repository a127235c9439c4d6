//! The PeerAuthentication object in its Kubernetes wire shape.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, PolicyError, Rule, Violation};
use crate::manifest::{self, Node, NodeKind};
pub use crate::policy::common::ApiVersion;

/// The API group of PeerAuthentication.
pub const GROUP: &str = "security.istio.io";
/// The kind.
pub const KIND: &str = "PeerAuthentication";

/// A mutual TLS mode (`istio.security.v1beta1.PeerAuthentication.MutualTLS.Mode`).
///
/// `Display` and `FromStr` use Istio's spelling (`STRICT`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum MtlsMode {
    /// Take the parent's mode; PERMISSIVE when there is no parent.
    #[default]
    Unset,
    /// Plaintext only: the sidecar does not terminate mTLS.
    Disable,
    /// Plaintext and mTLS are both accepted.
    Permissive,
    /// mTLS only, with a client certificate.
    Strict,
}

impl MtlsMode {
    /// Every mode, in the enum's order (`UNSET=0` ... `STRICT=3`).
    pub const ALL: [MtlsMode; 4] = [
        MtlsMode::Unset,
        MtlsMode::Disable,
        MtlsMode::Permissive,
        MtlsMode::Strict,
    ];

    /// Istio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Unset => "UNSET",
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }

    /// Parses Istio's spelling (exact, upper case, as the CRD's `enum` requires).
    pub fn parse(text: &str) -> Option<Self> {
        MtlsMode::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MtlsMode {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MtlsMode::parse(s).ok_or_else(|| PolicyError::Mode(s.to_owned()))
    }
}

impl Serialize for MtlsMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MtlsMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MtlsMode::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "Unsupported value: {text:?} (enum UNSET|DISABLE|PERMISSIVE|STRICT)"
            ))
        })
    }
}

pub(crate) fn unsupported_mode(path: &str, text: &str) -> Violation {
    Violation::new(
        path,
        format!("Unsupported value: {text:?} (enum UNSET|DISABLE|PERMISSIVE|STRICT)"),
        Rule::CrdSchema,
    )
}

/// The workload selector (`istio.type.v1beta1.WorkloadSelector`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkloadSelector {
    /// `matchLabels`; `None` when the field is absent.
    #[serde(rename = "matchLabels", skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// A `MutualTLS` block: `{mode: ...}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MutualTls {
    /// The mode; `None` when the block is `{}` (same meaning as UNSET).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<MtlsMode>,
}

impl MutualTls {
    /// The block with a mode.
    pub fn new(mode: MtlsMode) -> Self {
        MutualTls { mode: Some(mode) }
    }

    /// The mode, with `{}` read as UNSET.
    pub fn effective(&self) -> MtlsMode {
        self.mode.unwrap_or(MtlsMode::Unset)
    }
}

/// The `spec` of a PeerAuthentication. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerAuthenticationSpec {
    /// Which workloads the policy applies to. Absent or without labels: namespace-wide
    /// (mesh-wide in the root namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// The workload's mode. Absent means UNSET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MutualTls>,
    /// Per-port overrides keyed by the workload (container) port.
    #[serde(rename = "portLevelMtls", skip_serializing_if = "Option::is_none")]
    pub port_level_mtls: Option<BTreeMap<u32, MutualTls>>,
}

impl PeerAuthenticationSpec {
    /// The selector's labels when there is at least one: the policy is then workload-level.
    pub fn selector_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .filter(|l| !l.is_empty())
    }

    /// True when the policy applies to a whole namespace (or the mesh, in the root namespace):
    /// no selector, or a selector without labels.
    pub fn is_namespace_wide(&self) -> bool {
        self.selector_labels().is_none()
    }

    /// `spec.mtls.mode`, with an absent `mtls` or mode read as UNSET.
    pub fn mode(&self) -> MtlsMode {
        self.mtls.map(|m| m.effective()).unwrap_or(MtlsMode::Unset)
    }
}

/// The parts of `metadata` meshtls reads; everything else is kept as it was for output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` in manifests that leave it to `kubectl -n`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.creationTimestamp` as Kubernetes writes it (RFC 3339, e.g.
    /// `2024-01-01T00:00:00Z`); `None` for objects not yet applied.
    #[serde(rename = "creationTimestamp", skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl ObjectMeta {
    /// Metadata with a name and namespace.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            namespace: Some(namespace.into()),
            creation_timestamp: None,
            other: Map::new(),
        }
    }

    /// `namespace/name`, or `name` when there is no namespace.
    pub fn object_ref(&self) -> String {
        object_ref(self.namespace.as_deref(), &self.name)
    }
}

pub(crate) fn object_ref(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// A PeerAuthentication in the Kubernetes wire shape (`security.istio.io/v1` or `v1beta1`).
///
/// Reading is strict where a typo would silently change the outcome: an unknown field in
/// `spec`, a misspelt mode or a non-numeric port is an error naming the object and the field.
/// The Kubernetes bookkeeping in `metadata` (labels, uid, managedFields, ...) and `status` are
/// kept untouched, so an object read from YAML or JSON writes back unchanged (apart from
/// `null` fields, which Kubernetes drops as well).
///
/// ```
/// use meshtls::policy::{MtlsMode, PeerAuthentication};
///
/// let pa = PeerAuthentication::from_yaml(r#"
/// apiVersion: security.istio.io/v1
/// kind: PeerAuthentication
/// metadata: {name: default, namespace: shop}
/// spec:
///   mtls: {mode: STRICT}
/// "#)?;
/// assert_eq!(pa.spec.mode(), MtlsMode::Strict);
/// assert!(pa.spec.is_namespace_wide());
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct PeerAuthentication {
    /// The apiVersion it was written with.
    pub api_version: ApiVersion,
    /// Name, namespace, creation time and the rest of `metadata`.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: PeerAuthenticationSpec,
    status: Option<Value>,
    spec_written: bool,
}

impl PeerAuthentication {
    /// A `security.istio.io/v1` object.
    pub fn new(metadata: ObjectMeta, spec: PeerAuthenticationSpec) -> Self {
        PeerAuthentication {
            api_version: ApiVersion::V1,
            metadata,
            spec,
            status: None,
            spec_written: true,
        }
    }

    /// `namespace/name` (or `name`).
    pub fn object_ref(&self) -> String {
        self.metadata.object_ref()
    }

    /// Reads one object from YAML or JSON. For streams and lists see
    /// [`PolicySet::from_yaml`](crate::policy::PolicySet::from_yaml).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let value = manifest::parse_value(text, "PeerAuthentication")?;
        Ok(Self::from_value(&value)?)
    }

    /// Reads one object from a generic JSON value.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        Self::read(value, true)
    }

    /// [`from_value`](Self::from_value), with `keep` false for a reader that needs only the
    /// policy (a `PolicySet`): the rest of `metadata` and `status` are then not copied. The
    /// checks and errors are the same.
    pub(crate) fn read(value: &Value, keep: bool) -> Result<Self, PolicyError> {
        let mut pa = Self::read_node(&value)?;
        if let (true, Some(obj)) = (keep, value.as_object()) {
            if let Some(Value::Object(meta)) = obj.get("metadata") {
                pa.metadata.other = meta
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "name" | "namespace" | "creationTimestamp")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
            }
            pa.status = obj.get("status").filter(|v| !v.is_null()).cloned();
        }
        Ok(pa)
    }

    /// Reads one object from any document tree (the one reader behind every source), as
    /// [`read`](Self::read) with `keep` false: the rest of `metadata` and `status` are not
    /// copied.
    pub(crate) fn read_node<N: Node>(node: &N) -> Result<Self, PolicyError> {
        if node.kind() != NodeKind::Object {
            return Err(PolicyError::Document {
                index: "1".to_owned(),
                reason: format!("expected a mapping, found {}", node.kind().as_str()),
            });
        }
        let metadata = meta_from_node(node)?;
        let object = metadata.object_ref();
        let kind_node = node.get("kind");
        let kind = kind_node.as_ref().and_then(N::as_str);
        let kind = kind.as_deref().unwrap_or("");
        if kind != KIND {
            return Err(PolicyError::NotPeerAuthentication {
                index: "1".to_owned(),
                kind: if kind.is_empty() {
                    "document without kind".to_owned()
                } else {
                    kind.to_owned()
                },
            });
        }
        let version_node = node.get("apiVersion");
        let api_version = version_node.as_ref().and_then(N::as_str);
        let api_version = api_version.as_deref().unwrap_or("");
        let api_version =
            ApiVersion::parse(api_version).ok_or_else(|| PolicyError::ApiVersion {
                object: object.clone(),
                api_version: api_version.to_owned(),
            })?;
        node.try_for_each_entry(|key, _| {
            if matches!(key, "apiVersion" | "kind" | "metadata" | "spec" | "status") {
                Ok(())
            } else {
                Err(PolicyError::invalid(
                    &object,
                    Violation::new("", format!("unknown field {key:?}"), Rule::FieldValidation),
                ))
            }
        })?;
        let spec_node = node.get("spec").filter(|v| !v.is_null());
        let spec = match &spec_node {
            Some(v) => spec_from_value(&object, v)?,
            None => PeerAuthenticationSpec::default(),
        };
        Ok(PeerAuthentication {
            api_version,
            metadata,
            spec,
            status: None,
            spec_written: spec_node.is_some(),
        })
    }

    /// Writes the object as YAML (port keys as YAML integers).
    pub fn to_yaml(&self) -> Result<String, Error> {
        Ok(manifest::to_yaml(self)?)
    }

    /// Writes the object as pretty JSON (port keys as strings, as JSON requires).
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(manifest::to_json(self)?)
    }
}

impl TryFrom<Value> for PeerAuthentication {
    type Error = PolicyError;
    fn try_from(value: Value) -> Result<Self, PolicyError> {
        PeerAuthentication::from_value(&value)
    }
}

impl Serialize for PeerAuthentication {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("apiVersion", self.api_version.as_str())?;
        map.serialize_entry("kind", KIND)?;
        map.serialize_entry("metadata", &self.metadata)?;
        if self.spec_written || self.spec != PeerAuthenticationSpec::default() {
            map.serialize_entry("spec", &self.spec)?;
        }
        if let Some(status) = &self.status {
            map.serialize_entry("status", status)?;
        }
        map.end()
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    v.kind().as_str()
}

fn wrong_type<N: Node>(object: &str, path: &str, want: &str, got: &N) -> PolicyError {
    PolicyError::invalid(object, kind_violation(path, want, got.kind()))
}

pub(crate) fn type_violation(path: &str, want: &str, got: &Value) -> Violation {
    kind_violation(path, want, got.kind())
}

fn kind_violation(path: &str, want: &str, got: NodeKind) -> Violation {
    let got = got.as_str();
    Violation::new(
        path,
        format!("Invalid value: {got:?}: {path} in body must be of type {want}: {got:?}"),
        Rule::CrdSchema,
    )
}

fn meta_from_node<N: Node>(obj: &N) -> Result<ObjectMeta, PolicyError> {
    let meta = match obj.get("metadata") {
        Some(m) if m.kind() == NodeKind::Object => m,
        Some(other) => {
            return Err(PolicyError::Document {
                index: "1".to_owned(),
                reason: format!(
                    "metadata must be a mapping, found {}",
                    other.kind().as_str()
                ),
            });
        }
        None => {
            return Err(PolicyError::Document {
                index: "1".to_owned(),
                reason: "object has no metadata".to_owned(),
            });
        }
    };
    let text = |key: &str| -> Result<Option<String>, PolicyError> {
        let Some(v) = meta.get(key) else {
            return Ok(None);
        };
        match (v.kind(), v.as_str()) {
            (NodeKind::Null, _) => Ok(None),
            (_, Some(s)) => Ok(Some(s.into_owned())),
            (other, None) => Err(PolicyError::Document {
                index: "1".to_owned(),
                reason: format!("metadata.{key} must be a string, found {}", other.as_str()),
            }),
        }
    };
    let name = text("name")?.ok_or_else(|| PolicyError::Document {
        index: "1".to_owned(),
        reason: "metadata.name is required".to_owned(),
    })?;
    let namespace = text("namespace")?;
    let creation_timestamp = text("creationTimestamp")?;
    Ok(ObjectMeta {
        name,
        namespace,
        creation_timestamp,
        other: Map::new(),
    })
}

/// Parses a port key of `portLevelMtls` as the apiserver's CEL `int(key)` and protobuf's
/// `uint32` map key do: decimal digits only.
pub(crate) fn parse_port_key(key: &str) -> Option<u32> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// Reads a `MutualTLS` block; `path` renders where it is, for an error only.
fn mtls_from_node<N: Node>(
    object: &str,
    path: &dyn Fn() -> String,
    v: &N,
) -> Result<MutualTls, PolicyError> {
    match v.kind() {
        NodeKind::Null => return Ok(MutualTls::default()),
        NodeKind::Object => {}
        _ => return Err(wrong_type(object, &path(), "object", v)),
    }
    let mut out = MutualTls::default();
    v.try_for_each_entry(|key, val| {
        if key != "mode" {
            return Err(unknown_field(object, &format!("{}.{key}", path())));
        }
        if val.is_null() {
            return Ok(());
        }
        let Some(s) = val.as_str() else {
            return Err(wrong_type(
                object,
                &format!("{}.mode", path()),
                "string",
                &val,
            ));
        };
        out.mode = Some(MtlsMode::parse(&s).ok_or_else(|| {
            PolicyError::invalid(object, unsupported_mode(&format!("{}.mode", path()), &s))
        })?);
        Ok(())
    })?;
    Ok(out)
}

fn unknown_field(object: &str, path: &str) -> PolicyError {
    PolicyError::invalid(
        object,
        Violation::new("", format!("unknown field {path:?}"), Rule::FieldValidation),
    )
}

/// Reads `spec` strictly (types, enum values, port keys, no unknown fields) but without
/// Istio's semantic rules: those are [`validate`](crate::policy::validate_value)'s job, and
/// resolution has defined behaviour for policies that break them.
pub(crate) fn spec_from_value<N: Node>(
    object: &str,
    spec: &N,
) -> Result<PeerAuthenticationSpec, PolicyError> {
    if spec.kind() != NodeKind::Object {
        return Err(wrong_type(object, "spec", "object", spec));
    }
    let mut out = PeerAuthenticationSpec::default();
    spec.try_for_each_entry(|key, val| {
        match key {
            "selector" => match val.kind() {
                NodeKind::Null => {}
                NodeKind::Object => {
                    let mut selector = WorkloadSelector::default();
                    val.try_for_each_entry(|skey, sval| {
                        if skey != "matchLabels" {
                            return Err(unknown_field(object, &format!("spec.selector.{skey}")));
                        }
                        match sval.kind() {
                            NodeKind::Null => {}
                            NodeKind::Object => {
                                let mut map = BTreeMap::new();
                                sval.try_for_each_entry(|k, v| match v.as_str() {
                                    Some(s) => {
                                        map.insert(k.to_owned(), s.into_owned());
                                        Ok(())
                                    }
                                    None => {
                                        // The path is rendered only for the error.
                                        let path = format!("spec.selector.matchLabels[{k:?}]");
                                        Err(wrong_type(object, &path, "string", &v))
                                    }
                                })?;
                                selector.match_labels = Some(map);
                            }
                            _ => {
                                return Err(wrong_type(
                                    object,
                                    "spec.selector.matchLabels",
                                    "object",
                                    &sval,
                                ));
                            }
                        }
                        Ok(())
                    })?;
                    out.selector = Some(selector);
                }
                _ => return Err(wrong_type(object, "spec.selector", "object", &val)),
            },
            "mtls" => {
                if !val.is_null() {
                    out.mtls = Some(mtls_from_node(object, &|| "spec.mtls".to_owned(), &val)?);
                }
            }
            "portLevelMtls" => match val.kind() {
                NodeKind::Null => {}
                NodeKind::Object => {
                    let mut map = BTreeMap::new();
                    val.try_for_each_entry(|k, v| {
                        // Rendered only for an error.
                        let path = || format!("spec.portLevelMtls[{k:?}]");
                        let port = parse_port_key(k).ok_or_else(|| {
                            PolicyError::invalid(object, port_key_violation(&path(), k))
                        })?;
                        let entry = mtls_from_node(object, &path, &v)?;
                        if map.insert(port, entry).is_some() {
                            return Err(PolicyError::invalid(
                                object,
                                Violation::new(
                                    path(),
                                    format!("port {port} appears twice"),
                                    Rule::CrdSchema,
                                ),
                            ));
                        }
                        Ok(())
                    })?;
                    out.port_level_mtls = Some(map);
                }
                _ => return Err(wrong_type(object, "spec.portLevelMtls", "object", &val)),
            },
            _ => return Err(unknown_field(object, &format!("spec.{key}"))),
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn port_key_violation(path: &str, key: &str) -> Violation {
    Violation::new(
        path,
        format!("type conversion error (port key must parse as an integer): {key:?}"),
        Rule::CrdCel,
    )
}

pub(crate) use crate::x509::time::{
    format_rfc3339_nanos as format_timestamp, parse_rfc3339_nanos as parse_timestamp,
};
