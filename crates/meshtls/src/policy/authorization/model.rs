//! The AuthorizationPolicy object in its Kubernetes wire shape.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AuthorizationPolicyError, Error};
use crate::manifest;

/// The kind.
pub const KIND: &str = "AuthorizationPolicy";
/// The API group (the same as PeerAuthentication's).
pub const GROUP: &str = "security.istio.io";
/// The annotation that turns a policy into a dry run: evaluated and logged, never enforced.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// What a policy does when one of its rules matches (`spec.action`; absent means ALLOW).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Allow a request only if it matches a rule (the default).
    #[default]
    Allow,
    /// Deny a request if it matches a rule.
    Deny,
    /// Mark a matching request for audit; never changes the decision.
    Audit,
    /// Delegate a matching request to the external authorizer named by `provider.name`.
    Custom,
}

impl Action {
    /// Every action, in the enum's order.
    pub const ALL: [Action; 4] = [Action::Allow, Action::Deny, Action::Audit, Action::Custom];

    /// Istio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
            Action::Custom => "CUSTOM",
        }
    }

    /// Parses Istio's spelling (exact, as the CRD's `enum` requires).
    pub fn parse(text: &str) -> Option<Self> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The served API versions (both carry the same schema).
pub use crate::policy::common::ApiVersion;

/// `spec.selector`: `{matchLabels: {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// `matchLabels`; `None` when absent.
    #[serde(
        rename = "matchLabels",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// `spec.targetRef` / `spec.targetRefs[]` (`istio.type.v1beta1.PolicyTargetReference`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRef {
    /// The group (`gateway.networking.k8s.io`, or `""` for core kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Gateway`, `GatewayClass`, `Service` or `ServiceEntry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The target's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The target's namespace (must be the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `spec.provider` of a CUSTOM policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// The extension provider's name in the mesh config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `rules[].from[].source`: who sends the request. Fields are ANDed, the values of one field
/// are ORed, `not*` fields exclude.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)] // one line per proto field would only repeat its name
pub struct Source {
    /// Peer identities (`<td>/ns/<ns>/sa/<sa>`, mTLS only), expanded with trust-domain aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_principals: Option<Vec<String>>,
    /// JWT identities (`iss/sub`), HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_principals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_request_principals: Option<Vec<String>>,
    /// Namespaces of the peer identity (mTLS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_namespaces: Option<Vec<String>>,
    /// `namespace/serviceaccount` of the peer identity, any trust domain (mTLS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_service_accounts: Option<Vec<String>>,
    /// The direct peer's IP (address or CIDR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_blocks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ip_blocks: Option<Vec<String>>,
    /// The original client IP (X-Forwarded-For / proxy protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_blocks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_remote_ip_blocks: Option<Vec<String>>,
}

/// `rules[].to[].operation`: what the request does. `ports` works for TCP; the rest is HTTP only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Operation {
    /// `Host` / `:authority`, case-insensitive (HTTP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_hosts: Option<Vec<String>>,
    /// Destination ports, as strings of numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ports: Option<Vec<String>>,
    /// HTTP methods (HTTP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_methods: Option<Vec<String>>,
    /// URL paths without the query (HTTP only); `{*}` and `{**}` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_paths: Option<Vec<String>>,
}

/// `rules[].from[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct From {
    /// The source; the webhook refuses a `from` without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// `rules[].to[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct To {
    /// The operation; the webhook refuses a `to` without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// `rules[].when[]`: a condition on an attribute (`source.ip`, `request.headers[x]`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    /// The attribute.
    #[serde(default)]
    pub key: String,
    /// The condition holds when the attribute matches one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// ... and none of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_values: Option<Vec<String>>,
}

/// One rule: it matches when a `from` matches (or there is none), a `to` matches (or there is
/// none) and every `when` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Sources, ORed. `None`: any source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<From>>,
    /// Operations, ORed. `None`: any operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To>>,
    /// Conditions, ANDed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Vec<Condition>>,
}

/// The `spec` of an AuthorizationPolicy. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    /// Which workloads of the namespace (of every namespace, in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    /// Binds the policy to a gateway instead (not to sidecars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    /// Binds the policy to gateways, waypoints or services instead (not to sidecars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_refs: Option<Vec<TargetRef>>,
    /// The action; absent means ALLOW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The external authorizer of a CUSTOM policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// The rules; `None` never matches (with ALLOW: allow nothing), `[{}]` matches everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
}

impl AuthorizationPolicySpec {
    /// `spec.action`, ALLOW when absent.
    pub fn action(&self) -> Action {
        self.action.unwrap_or_default()
    }

    /// The selector's labels when there is at least one.
    pub fn selector_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .filter(|l| !l.is_empty())
    }

    /// True when `targetRef`/`targetRefs` bind the policy to gateways, waypoints or services:
    /// such a policy does not apply to sidecars.
    pub fn has_target_refs(&self) -> bool {
        self.target_ref.is_some() || self.target_refs.as_ref().is_some_and(|t| !t.is_empty())
    }
}

/// The parts of `metadata` an AuthorizationPolicy needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` in manifests that leave it to `kubectl -n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.annotations` (only `istio.io/dry-run` changes evaluation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata with a namespace and a name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Metadata {
            name: name.into(),
            namespace: Some(namespace.into()),
            annotations: BTreeMap::new(),
        }
    }

    /// `namespace/name`, or `name` without a namespace.
    pub fn object_ref(&self) -> String {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => format!("{ns}/{}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// An AuthorizationPolicy (`security.istio.io/v1` or `v1beta1`; both have one schema).
///
/// Reading is strict where a typo would silently change the outcome: an unknown field in
/// `spec` or a misspelt action is an error naming the object. Istio's semantic rules are
/// checked by [`validate_value`](super::validate_value).
///
/// ```
/// use meshtls::policy::authorization::{Action, AuthorizationPolicy};
/// let ap = AuthorizationPolicy::from_yaml(r#"
/// apiVersion: security.istio.io/v1
/// kind: AuthorizationPolicy
/// metadata: {name: deny-dev, namespace: foo}
/// spec:
///   action: DENY
///   rules: [{from: [{source: {namespaces: [dev]}}]}]
/// "#)?;
/// assert_eq!(ap.spec.action(), Action::Deny);
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationPolicy {
    /// The apiVersion it was written with.
    pub api_version: ApiVersion,
    /// Name, namespace, annotations.
    pub metadata: Metadata,
    /// The policy.
    pub spec: AuthorizationPolicySpec,
}

impl AuthorizationPolicy {
    /// A `security.istio.io/v1` object.
    pub fn new(metadata: Metadata, spec: AuthorizationPolicySpec) -> Self {
        AuthorizationPolicy {
            api_version: ApiVersion::V1,
            metadata,
            spec,
        }
    }

    /// `namespace/name` (or `name`).
    pub fn object_ref(&self) -> String {
        self.metadata.object_ref()
    }

    /// True when the `istio.io/dry-run: "true"` annotation makes it a dry run.
    pub fn is_dry_run(&self) -> bool {
        self.metadata
            .annotations
            .get(DRY_RUN_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Reads one object from YAML or JSON. For streams and lists see
    /// [`AuthorizationPolicySet::from_yaml`](super::AuthorizationPolicySet::from_yaml).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let value = manifest::parse_value(text, "AuthorizationPolicy")?;
        Ok(Self::from_value(&value, "1")?)
    }

    /// Reads one object from a generic JSON value; `index` names it in errors.
    pub fn from_value(value: &Value, index: &str) -> Result<Self, AuthorizationPolicyError> {
        let doc = |reason: String| AuthorizationPolicyError::Document {
            index: index.to_owned(),
            reason,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| doc("expected a mapping".to_owned()))?;
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != KIND {
            return Err(doc(format!("is a {kind:?}, not an AuthorizationPolicy")));
        }
        let metadata: Metadata = match obj.get("metadata") {
            Some(m) => {
                let name = m.get("name").and_then(Value::as_str);
                let Some(name) = name else {
                    return Err(doc("AuthorizationPolicy has no metadata.name".to_owned()));
                };
                let namespace = m
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                let mut annotations = BTreeMap::new();
                if let Some(a) = m.get("annotations").and_then(Value::as_object) {
                    for (k, v) in a {
                        if let Some(v) = v.as_str() {
                            annotations.insert(k.clone(), v.to_owned());
                        }
                    }
                }
                Metadata {
                    name: name.to_owned(),
                    namespace,
                    annotations,
                }
            }
            None => return Err(doc("AuthorizationPolicy has no metadata.name".to_owned())),
        };
        let object = metadata.object_ref();
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let api_version =
            ApiVersion::parse(api_version).ok_or_else(|| AuthorizationPolicyError::ApiVersion {
                kind: KIND,
                group: GROUP,
                object: object.clone(),
                api_version: api_version.to_owned(),
            })?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "apiVersion" | "kind" | "metadata" | "spec" | "status"
            ) {
                return Err(doc(format!(
                    "AuthorizationPolicy {object}: unknown field {key:?}"
                )));
            }
        }
        let spec = match obj.get("spec") {
            None | Some(Value::Null) => AuthorizationPolicySpec::default(),
            Some(v) => AuthorizationPolicySpec::deserialize(v)
                .map_err(|e| doc(format!("AuthorizationPolicy {object}: spec: {e}")))?,
        };
        Ok(AuthorizationPolicy {
            api_version,
            metadata,
            spec,
        })
    }

    /// The object as a generic JSON value (the wire shape).
    pub fn to_value(&self) -> Value {
        let mut obj = serde_json::Map::new();
        obj.insert("apiVersion".into(), Value::from(self.api_version.as_str()));
        obj.insert("kind".into(), Value::from(KIND));
        obj.insert(
            "metadata".into(),
            serde_json::to_value(&self.metadata).unwrap_or(Value::Null),
        );
        obj.insert(
            "spec".into(),
            serde_json::to_value(&self.spec).unwrap_or(Value::Null),
        );
        Value::Object(obj)
    }

    /// YAML text of the object.
    pub fn to_yaml(&self) -> Result<String, Error> {
        Ok(manifest::to_yaml(&self.to_value())?)
    }
}
