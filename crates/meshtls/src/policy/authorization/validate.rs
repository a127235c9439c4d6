//! Validation as a cluster applies it: the apiserver (the CRD's schema, strict fields,
//! object metadata), then istiod's webhook `ValidateAuthorizationPolicy`.

use serde_json::{Map, Value};

use crate::error::{AuthorizationPolicyError, Error, Rule as Check, Violation};
use crate::policy::common::Report;

use super::compiled::Cidr;
use super::model::{Action, KIND};
use crate::policy::common::ApiVersion;

/// Target kinds a `targetRef` may name.
const TARGET_KINDS: &[&str] = &["Gateway", "GatewayClass", "Service", "ServiceEntry"];
/// At most this many `targetRefs`.
pub const MAX_TARGET_REFS: usize = 16;
/// The CRD's `maxItems` on `spec.rules` and on a rule's `from`.
pub const MAX_RULES: usize = 512;
/// The CRD's `maxItems` on `serviceAccounts` / `notServiceAccounts`.
pub const MAX_SERVICE_ACCOUNTS: usize = 16;
/// The CRD's `maxLength` of one `serviceAccounts` entry.
pub const MAX_SERVICE_ACCOUNT_LEN: usize = 320;

/// The CRD's rules on a `targetRef` / `targetRefs[]` entry (Gateway API's
/// `PolicyTargetReference` shape): `group` at most 253 bytes, a DNS subdomain or empty;
/// `kind` 1 to 63 bytes of `^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`; `name` 1 to 253 bytes;
/// `namespace` must be empty (CEL: "cross namespace referencing is not currently supported").
fn target_ref_fields(v: &mut V, path: &str, r: &Map<String, Value>) {
    let text = |k: &str| r.get(k).and_then(Value::as_str);
    if let Some(g) = text("group") {
        if g.len() > 253 {
            v.schema(
                format!("{path}.group"),
                "Too long: may not be more than 253 bytes",
            );
        }
        let label = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !g.is_empty() && !g.split('.').all(label) {
            v.schema(
                format!("{path}.group"),
                format!(
                    "Invalid value: {g:?}: should match '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"
                ),
            );
        }
    }
    if let Some(k) = text("kind").filter(|k| !k.is_empty()) {
        if k.len() > 63 {
            v.schema(
                format!("{path}.kind"),
                "Too long: may not be more than 63 bytes",
            );
        }
        let ok = k.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !k.ends_with('-');
        if !ok {
            v.schema(
                format!("{path}.kind"),
                format!(
                    "Invalid value: {k:?}: should match '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$'"
                ),
            );
        }
    }
    if text("name").is_some_and(|n| n.len() > 253) {
        v.schema(
            format!("{path}.name"),
            "Too long: may not be more than 253 bytes",
        );
    }
    if text("namespace").is_some_and(|n| !n.is_empty()) {
        v.err(
            format!("{path}.namespace"),
            "cross namespace referencing is not currently supported",
            Check::CrdCel,
        );
    }
}

const SOURCE_FIELDS: &[&str] = &[
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
];
const OPERATION_FIELDS: &[&str] = &[
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
];

#[derive(Default)]
struct V {
    errors: Vec<Violation>,
    warnings: Vec<Violation>,
}

impl V {
    fn err(&mut self, path: impl Into<String>, msg: impl Into<String>, rule: Check) {
        self.errors.push(Violation::new(path, msg, rule));
    }
    fn webhook(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.err(path, msg, Check::IstiodWebhook);
    }
    fn schema(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.err(path, msg, Check::CrdSchema);
    }
    fn unknown(&mut self, obj: &Map<String, Value>, known: &[&str], prefix: &str) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                self.err(
                    "",
                    format!("unknown field \"{prefix}.{k}\""),
                    Check::FieldValidation,
                );
            }
        }
    }
    fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            Value::Null => None,
            other => {
                self.schema(
                    path,
                    format!("Invalid value: {}: must be of type object", kind(other)),
                );
                None
            }
        }
    }
    /// A list of strings; `None` when absent or null.
    fn strings(&mut self, v: Option<&Value>, path: &str) -> Option<Vec<String>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.schema(
                            format!("{path}[{i}]"),
                            format!("Invalid value: {}: must be of type string", kind(other)),
                        ),
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.schema(
                    path,
                    format!("Invalid value: {}: must be of type array", kind(other)),
                );
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn object_name(obj: &Map<String, Value>) -> String {
    let meta = obj.get("metadata").and_then(Value::as_object);
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

fn dns1123_subdomain_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Validates one object (a parsed YAML/JSON mapping) with the apiserver's and istiod's rules.
/// Every rule is checked so that one report lists every problem.
pub fn validate_value(value: &Value) -> Report {
    let mut v = V::default();
    let Value::Object(obj) = value else {
        v.err(
            "",
            format!(
                "expected a Kubernetes object (a mapping), found {}",
                kind(value)
            ),
            Check::ObjectMeta,
        );
        return Report {
            object: "<document>".to_owned(),
            errors: v.errors,
            warnings: v.warnings,
        };
    };
    let object = object_name(obj);
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(s) if ApiVersion::parse(s).is_some() => {}
        Some(s) => v.err(
            "apiVersion",
            format!("no matches for kind \"AuthorizationPolicy\" in version {s:?}"),
            Check::ObjectMeta,
        ),
        None => v.err(
            "apiVersion",
            "Required value: security.istio.io/v1 or security.istio.io/v1beta1",
            Check::ObjectMeta,
        ),
    }
    if obj.get("kind").and_then(Value::as_str) != Some(KIND) {
        v.err(
            "kind",
            "expected \"AuthorizationPolicy\"",
            Check::ObjectMeta,
        );
    }
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "apiVersion" | "kind" | "metadata" | "spec" | "status"
        ) {
            v.err("", format!("unknown field {k:?}"), Check::FieldValidation);
        }
    }
    match obj.get("metadata").and_then(Value::as_object) {
        Some(meta) => {
            match meta.get("name").and_then(Value::as_str) {
                Some(name) if dns1123_subdomain_ok(name) => {}
                Some(name) => v.err(
                    "metadata.name",
                    format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
                    Check::ObjectMeta,
                ),
                None if meta.get("generateName").is_some() => {}
                None => v.err("metadata.name", "Required value: name or generateName is required", Check::ObjectMeta),
            }
            if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
                if crate::policy::common::dns1123_label(ns).is_some() {
                    v.err(
                        "metadata.namespace",
                        format!("Invalid value: {ns:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
                        Check::ObjectMeta,
                    );
                }
            }
        }
        None => v.err(
            "metadata.name",
            "Required value: name or generateName is required",
            Check::ObjectMeta,
        ),
    }
    if let Some(spec) = obj.get("spec").and_then(|s| v.object(s, "spec")) {
        spec_rules(&mut v, spec);
    }
    Report {
        object,
        errors: v.errors,
        warnings: v.warnings,
    }
}

fn spec_rules(v: &mut V, spec: &Map<String, Value>) {
    v.unknown(
        spec,
        &[
            "selector",
            "targetRef",
            "targetRefs",
            "action",
            "provider",
            "rules",
        ],
        "spec",
    );
    // action
    let action = match spec.get("action") {
        None | Some(Value::Null) => Some(Action::Allow),
        Some(Value::String(s)) => match Action::parse(s) {
            Some(a) => Some(a),
            None => {
                v.schema(
                    "spec.action",
                    format!("Unsupported value: {s:?}: supported values: \"ALLOW\", \"DENY\", \"AUDIT\", \"CUSTOM\""),
                );
                None
            }
        },
        Some(other) => {
            v.schema(
                "spec.action",
                format!("Invalid value: {}: must be of type string", kind(other)),
            );
            None
        }
    };
    // selector
    let has_selector = spec.get("selector").is_some_and(|s| !s.is_null());
    if let Some(sel) = spec
        .get("selector")
        .and_then(|s| v.object(s, "spec.selector"))
    {
        v.unknown(sel, &["matchLabels"], "spec.selector");
        match sel.get("matchLabels") {
            None | Some(Value::Null) => v.warnings.push(Violation::new(
                "spec.selector",
                "workload selector specified without labels",
                Check::IstiodWebhook,
            )),
            Some(Value::Object(labels)) => {
                if labels.is_empty() {
                    v.warnings.push(Violation::new(
                        "spec.selector",
                        "workload selector specified without labels",
                        Check::IstiodWebhook,
                    ));
                }
                if labels.len() > crate::policy::common::MAX_SELECTOR_LABELS {
                    v.schema(
                        "spec.selector.matchLabels",
                        format!(
                            "Too many: {}: must have at most {} items",
                            labels.len(),
                            crate::policy::common::MAX_SELECTOR_LABELS
                        ),
                    );
                }
                for (k, val) in labels {
                    let path = format!("spec.selector.matchLabels[{k:?}]");
                    let Some(val) = val.as_str() else {
                        v.schema(
                            path,
                            format!("Invalid value: {}: must be of type string", kind(val)),
                        );
                        continue;
                    };
                    if val.len() > crate::policy::common::MAX_LABEL_VALUE_LEN {
                        v.schema(
                            &path,
                            format!(
                                "Too long: may not be more than {} bytes",
                                crate::policy::common::MAX_LABEL_VALUE_LEN
                            ),
                        );
                    }
                    if k.is_empty() {
                        v.err(&path, "key must not be empty", Check::CrdCel);
                        v.webhook(
                            &path,
                            format!("empty key is not supported in selector: \"={val}\""),
                        );
                    }
                    if k.contains('*') {
                        v.err(
                            &path,
                            "wildcard not allowed in label key match",
                            Check::CrdCel,
                        );
                    }
                    if val.contains('*') {
                        v.err(
                            &path,
                            "wildcard not allowed in label value match",
                            Check::CrdCel,
                        );
                    }
                    if k.contains('*') || val.contains('*') {
                        v.webhook(
                            &path,
                            format!("wildcard is not supported in selector: \"{k}={val}\""),
                        );
                    }
                }
            }
            Some(other) => v.schema(
                "spec.selector.matchLabels",
                format!("Invalid value: {}: must be of type object", kind(other)),
            ),
        }
    }
    // targetRef(s)
    let has_ref = spec.get("targetRef").is_some_and(|s| !s.is_null());
    let has_refs = spec.get("targetRefs").is_some_and(|s| !s.is_null());
    if [has_selector, has_ref, has_refs]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        v.err(
            "spec",
            "only one of targetRefs or selector can be set",
            Check::CrdCel,
        );
        v.webhook(
            "spec",
            "only one of targetRefs, targetRef or workloadSelector can be set",
        );
    }
    let mut refs: Vec<(String, &Value)> = Vec::new();
    if let Some(r) = spec.get("targetRef").filter(|r| !r.is_null()) {
        refs.push(("spec.targetRef".to_owned(), r));
    }
    match spec.get("targetRefs") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_TARGET_REFS {
                v.schema(
                    "spec.targetRefs",
                    format!(
                        "Too many: {}: must have at most {MAX_TARGET_REFS} items",
                        items.len()
                    ),
                );
            }
            for (i, r) in items.iter().enumerate() {
                refs.push((format!("spec.targetRefs[{i}]"), r));
            }
        }
        Some(other) => v.schema(
            "spec.targetRefs",
            format!("Invalid value: {}: must be of type array", kind(other)),
        ),
    }
    for (path, r) in refs {
        let Some(r) = v.object(r, &path) else {
            continue;
        };
        v.unknown(r, &["group", "kind", "name", "namespace"], &path);
        for req in ["kind", "name"] {
            if r.get(req).and_then(Value::as_str).is_none_or(str::is_empty) {
                v.schema(format!("{path}.{req}"), "Required value");
            }
        }
        target_ref_fields(&mut *v, &path, r);
        if let Some(k) = r.get("kind").and_then(Value::as_str) {
            if !k.is_empty() && !TARGET_KINDS.contains(&k) {
                v.webhook(format!("{path}.kind"), format!("targetRef kind {k:?} is not supported: use one of Gateway, GatewayClass, Service, ServiceEntry"));
            }
        }
    }
    // provider
    let provider = spec.get("provider").filter(|p| !p.is_null());
    let provider_name = provider
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(p) = provider.and_then(|p| v.object(p, "spec.provider")) {
        v.unknown(p, &["name"], "spec.provider");
    }
    let rules_present = spec.get("rules").is_some_and(|r| !r.is_null());
    if action == Some(Action::Custom) {
        if !rules_present {
            v.webhook("spec.rules", "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request");
        } else if provider_name.is_empty() {
            v.webhook("spec.provider.name", "`provider.name` must not be empty");
        }
    }
    if let (Some(_), Some(a)) = (provider, action) {
        if a != Action::Custom {
            v.webhook(
                "spec.provider",
                format!("`provider` must not be with non CUSTOM action, found {a}"),
            );
        }
    }
    if action == Some(Action::Deny) && !rules_present {
        v.webhook("spec.rules", "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request");
    }
    match spec.get("rules") {
        None | Some(Value::Null) => {}
        Some(Value::Array(rules)) => {
            if rules.len() > MAX_RULES {
                v.schema(
                    "spec.rules",
                    format!(
                        "Too many: {}: must have at most {MAX_RULES} items",
                        rules.len()
                    ),
                );
            }
            for (i, r) in rules.iter().enumerate() {
                rule(v, i, r, action);
            }
        }
        Some(other) => v.schema(
            "spec.rules",
            format!("Invalid value: {}: must be of type array", kind(other)),
        ),
    }
}

/// istiod's `CheckServiceAccount`, for `serviceAccounts`, `notServiceAccounts` and the `when`
/// key `source.serviceAccount`: at most 16 values, each `<sa>` (a service account of the
/// policy's namespace) or `<namespace>/<sa>`, neither part empty, no `*`, at most 320 bytes.
/// The first violation, in istiod's words.
fn service_accounts(key: &str, values: &[String]) -> Result<(), String> {
    if values.len() > MAX_SERVICE_ACCOUNTS {
        return Err(format!(
            "may not have more than {MAX_SERVICE_ACCOUNTS} values"
        ));
    }
    let form = "expected format 'serviceAccount' or 'namespace/serviceAccount'";
    for value in values {
        if value.is_empty() {
            return Err(format!("empty value not allowed, found in {key}"));
        }
        if value.contains('*') {
            return Err(format!("wildcard not allowed, found in {key}"));
        }
        if value.matches('/').count() > 1 {
            return Err(format!("{form}, found {value:?} in {key}"));
        }
        if value.len() > MAX_SERVICE_ACCOUNT_LEN {
            return Err(format!(
                "value cannot exceed {MAX_SERVICE_ACCOUNT_LEN} characters, found {value:?} in {key}"
            ));
        }
        if let Some((ns, sa)) = value.split_once('/') {
            if ns.is_empty() {
                return Err(format!("{form}, found empty namespace {value:?} in {key}"));
            }
            if sa.is_empty() {
                return Err(format!(
                    "{form}, found empty serviceAccount {value:?} in {key}"
                ));
            }
        }
    }
    Ok(())
}

fn check_values(v: &mut V, path: &str, field: &str, values: &[String]) {
    let go_name = {
        let mut c = field.chars();
        match c.next() {
            Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
            None => String::new(),
        }
    };
    if field.ends_with("erviceAccounts") {
        if let Err(e) = service_accounts(&go_name, values) {
            v.webhook(format!("{path}.{field}"), e);
        }
    } else if values.iter().any(String::is_empty) {
        v.webhook(
            format!("{path}.{field}"),
            format!("empty value not allowed, found in {go_name}"),
        );
    }
    if field.ends_with("pBlocks") || field.ends_with("IpBlocks") {
        for (j, ip) in values.iter().enumerate() {
            if !ip.is_empty() && Cidr::parse(ip).is_none() {
                let what = if ip.contains('/') {
                    "bad CIDR range"
                } else {
                    "bad IP address"
                };
                v.webhook(format!("{path}.{field}[{j}]"), format!("{what} ({ip})"));
            }
        }
    }
    if field == "ports" || field == "notPorts" {
        for (j, p) in values.iter().enumerate() {
            if !p.bytes().all(|b| b.is_ascii_digit())
                || p.is_empty()
                || p.parse::<u32>().map_or(true, |n| n > 65535)
            {
                v.webhook(format!("{path}.{field}[{j}]"), format!("bad port ({p})"));
            }
        }
    }
    if field == "paths" || field == "notPaths" {
        for (j, p) in values.iter().enumerate() {
            if (p.contains("{*}") || p.contains("{**}")) && unsupported_template(p) {
                v.webhook(
                    format!("{path}.{field}[{j}]"),
                    format!("invalid or unsupported path template, found in {go_name}"),
                );
            }
        }
    }
}

/// Istio's `unsupportedPathTempRegex`: named variables `{name=*}`, `{name}`, `{}`, and bare
/// `/*`, `/**`, `*/`, `**/` next to a template.
fn unsupported_template(p: &str) -> bool {
    let b = p.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for i in 0..b.len() {
        if b[i] == b'{' {
            // {word*} with only word characters (including none) before '}'
            let mut j = i + 1;
            while j < b.len() && word(b[j]) {
                j += 1;
            }
            if j < b.len() && b[j] == b'}' {
                return true;
            }
            // /{word=*} or /{word=**}
            if i > 0
                && b[i - 1] == b'/'
                && j > i + 1
                && b.get(j) == Some(&b'=')
                && b.get(j + 1) == Some(&b'*')
            {
                let k = if b.get(j + 2) == Some(&b'*') {
                    j + 3
                } else {
                    j + 2
                };
                if b.get(k) == Some(&b'}') {
                    return true;
                }
            }
        }
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            return true;
        }
        if b[i] == b'*' {
            let k = if b.get(i + 1) == Some(&b'*') {
                i + 2
            } else {
                i + 1
            };
            if b.get(k) == Some(&b'/') {
                return true;
            }
        }
    }
    false
}

/// `ValidateAttribute` for a `when` key.
fn attribute(key: &str) -> Result<(), String> {
    let map_key = |k: &str| {
        let open = k.find('[');
        match open {
            Some(o) if k.ends_with(']') && o > 0 && o + 2 < k.len() => Ok(()),
            _ => Err(format!("bad key ({k}): should have format a[b]")),
        }
    };
    match key {
        k if k.starts_with("request.headers") => map_key(k),
        "source.ip"
        | "remote.ip"
        | "destination.ip"
        | "source.namespace"
        | "source.principal"
        | "source.serviceAccount"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "destination.port"
        | "connection.sni" => Ok(()),
        k if k.starts_with("request.auth.claims") => map_key(k),
        k if k.starts_with("experimental.envoy.filters.") => map_key(k),
        "destination.namespace" => Err(format!(
            "attribute {key} is replaced by the metadata.namespace"
        )),
        k if k.starts_with("destination.labels") => Err(format!(
            "attribute {key} is replaced by the workload selector"
        )),
        "destination.name" | "destination.user" => Err(format!(
            "deprecated attribute {key}: only supported in v1alpha1"
        )),
        _ => Err(format!("unknown attribute: {key}")),
    }
}

fn when_values(key: &str, values: &[String]) -> Result<(), String> {
    if values.iter().any(String::is_empty) {
        return Err(format!("empty value not allowed, found in {key}"));
    }
    attribute(key)?;
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => {
            for ip in values {
                if Cidr::parse(ip).is_none() {
                    return Err(if ip.contains('/') {
                        format!("bad CIDR range ({ip})")
                    } else {
                        format!("bad IP address ({ip})")
                    });
                }
            }
        }
        "destination.port" => {
            for p in values {
                if p.parse::<u32>().map_or(true, |n| n > 65535) {
                    return Err(format!("bad port ({p})"));
                }
            }
        }
        "source.serviceAccount" => service_accounts(key, values)?,
        _ => {}
    }
    Ok(())
}

fn rule(v: &mut V, i: usize, r: &Value, action: Option<Action>) {
    let path = format!("spec.rules[{i}]");
    let Some(r) = (match r {
        Value::Null => {
            v.webhook(&path, format!("`rule` must not be nil, found at rule {i}"));
            None
        }
        other => v.object(other, &path),
    }) else {
        return;
    };
    v.unknown(r, &["from", "to", "when"], &path);
    let custom = action == Some(Action::Custom);
    let (mut tcp_from, mut tcp_to, mut from_exists, mut to_exists) = (false, false, false, false);
    // from
    match r.get("from") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.is_empty() {
                v.webhook(
                    format!("{path}.from"),
                    format!("`from` must not be empty, found at rule {i}"),
                );
            }
            if items.len() > MAX_RULES {
                v.schema(
                    format!("{path}.from"),
                    format!(
                        "Too many: {}: must have at most {MAX_RULES} items",
                        items.len()
                    ),
                );
            }
            for (j, f) in items.iter().enumerate() {
                let fp = format!("{path}.from[{j}]");
                let Some(f) = (if f.is_null() {
                    v.webhook(&fp, format!("`from` must not be nil, found at rule {i}"));
                    None
                } else {
                    v.object(f, &fp)
                }) else {
                    continue;
                };
                v.unknown(f, &["source"], &fp);
                let sp = format!("{fp}.source");
                let Some(src) = f
                    .get("source")
                    .filter(|s| !s.is_null())
                    .and_then(|s| v.object(s, &sp))
                else {
                    v.webhook(
                        &sp,
                        format!("`from.source` must not be nil, found at rule {i}"),
                    );
                    continue;
                };
                from_exists = true;
                v.unknown(src, SOURCE_FIELDS, &sp);
                let mut len = std::collections::HashMap::new();
                for field in SOURCE_FIELDS {
                    if let Some(vals) = v.strings(src.get(*field), &format!("{sp}.{field}")) {
                        check_values(v, &sp, field, &vals);
                        len.insert(*field, vals.len());
                        if !matches!(*field, "requestPrincipals" | "notRequestPrincipals") {
                            tcp_from = true;
                        }
                    }
                }
                // The CRD's CEL rule on Source tests presence (`has()`), not length.
                let has = |f: &str| src.get(f).is_some_and(|x| !x.is_null());
                if (has("serviceAccounts") || has("notServiceAccounts"))
                    && ["principals", "notPrincipals", "namespaces", "notNamespaces"]
                        .iter()
                        .any(|f| has(f))
                {
                    v.err(
                        &sp,
                        "Cannot set serviceAccounts with namespaces or principals",
                        Check::CrdCel,
                    );
                }
                for field in ["serviceAccounts", "notServiceAccounts"] {
                    let Some(Value::Array(items)) = src.get(field) else {
                        continue;
                    };
                    if items.len() > MAX_SERVICE_ACCOUNTS {
                        v.schema(
                            format!("{sp}.{field}"),
                            format!(
                                "Too many: {}: must have at most {MAX_SERVICE_ACCOUNTS} items",
                                items.len()
                            ),
                        );
                    }
                    for (j, item) in items.iter().enumerate() {
                        if item
                            .as_str()
                            .is_some_and(|s| s.len() > MAX_SERVICE_ACCOUNT_LEN)
                        {
                            v.schema(
                                format!("{sp}.{field}[{j}]"),
                                format!(
                                    "Too long: may not be more than {MAX_SERVICE_ACCOUNT_LEN} bytes"
                                ),
                            );
                        }
                    }
                }
                let n = |f: &str| len.get(f).copied().unwrap_or(0);
                if n("principals") + n("notPrincipals") + n("namespaces") + n("notNamespaces") > 0
                    && n("serviceAccounts") + n("notServiceAccounts") > 0
                {
                    v.webhook(&sp, format!("cannot set serviceAccounts with namespaces or principals, found at rule {i}"));
                }
                if SOURCE_FIELDS.iter().all(|f| n(f) == 0) {
                    v.webhook(
                        &sp,
                        format!("`from.source` must not be empty, found at rule {i}"),
                    );
                }
                if custom {
                    for (f, go) in [
                        ("namespaces", "From.Namespaces"),
                        ("notNamespaces", "From.NotNamespaces"),
                        ("serviceAccounts", "From.ServiceAccounts"),
                        ("notServiceAccounts", "From.NotServiceAccounts"),
                        ("principals", "From.Principals"),
                        ("notPrincipals", "From.NotPrincipals"),
                        ("requestPrincipals", "From.RequestPrincipals"),
                        ("notRequestPrincipals", "From.NotRequestPrincipals"),
                    ] {
                        if n(f) > 0 {
                            v.webhook(
                                format!("{sp}.{f}"),
                                format!("{go} is currently not supported with CUSTOM action"),
                            );
                        }
                    }
                }
            }
        }
        Some(other) => v.schema(
            format!("{path}.from"),
            format!("Invalid value: {}: must be of type array", kind(other)),
        ),
    }
    // to
    match r.get("to") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.is_empty() {
                v.webhook(
                    format!("{path}.to"),
                    format!("`to` must not be empty, found at rule {i}"),
                );
            }
            for (j, t) in items.iter().enumerate() {
                let tp = format!("{path}.to[{j}]");
                let Some(t) = (if t.is_null() {
                    v.webhook(&tp, format!("`to` must not be nil, found at rule {i}"));
                    None
                } else {
                    v.object(t, &tp)
                }) else {
                    continue;
                };
                v.unknown(t, &["operation"], &tp);
                let op_path = format!("{tp}.operation");
                let Some(op) = t
                    .get("operation")
                    .filter(|s| !s.is_null())
                    .and_then(|s| v.object(s, &op_path))
                else {
                    v.webhook(
                        &op_path,
                        format!("`to.operation` must not be nil, found at rule {i}"),
                    );
                    continue;
                };
                to_exists = true;
                v.unknown(op, OPERATION_FIELDS, &op_path);
                let mut any = false;
                for field in OPERATION_FIELDS {
                    if let Some(vals) = v.strings(op.get(*field), &format!("{op_path}.{field}")) {
                        any |= !vals.is_empty();
                        check_values(v, &op_path, field, &vals);
                        if matches!(*field, "ports" | "notPorts") {
                            tcp_to = true;
                        }
                    }
                }
                if !any {
                    v.webhook(
                        &op_path,
                        format!("`to.operation` must not be empty, found at rule {i}"),
                    );
                }
            }
        }
        Some(other) => v.schema(
            format!("{path}.to"),
            format!("Invalid value: {}: must be of type array", kind(other)),
        ),
    }
    // when
    match r.get("when") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (j, c) in items.iter().enumerate() {
                let cp = format!("{path}.when[{j}]");
                let Some(c) = (if c.is_null() {
                    if custom {
                        v.webhook(&cp, "when field cannot be nil");
                    }
                    None
                } else {
                    v.object(c, &cp)
                }) else {
                    continue;
                };
                v.unknown(c, &["key", "values", "notValues"], &cp);
                let key = match c.get("key") {
                    Some(Value::String(k)) => k.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(other) => {
                        v.schema(
                            format!("{cp}.key"),
                            format!("Invalid value: {}: must be of type string", kind(other)),
                        );
                        continue;
                    }
                };
                let values = v
                    .strings(c.get("values"), &format!("{cp}.values"))
                    .unwrap_or_default();
                let not_values = v
                    .strings(c.get("notValues"), &format!("{cp}.notValues"))
                    .unwrap_or_default();
                if custom
                    && (key == "source.namespace"
                        || key == "source.serviceAccount"
                        || key == "source.principal"
                        || key.starts_with("request.auth."))
                {
                    v.webhook(
                        format!("{cp}.key"),
                        format!("{key} is currently not supported with CUSTOM action"),
                    );
                }
                if key.is_empty() {
                    v.schema(format!("{cp}.key"), "Required value");
                    v.webhook(format!("{cp}.key"), "`key` must not be empty");
                } else if values.is_empty() && not_values.is_empty() {
                    v.webhook(
                        &cp,
                        format!(
                            "at least one of `values` or `notValues` must be set for key {key}"
                        ),
                    );
                } else {
                    if let Err(e) = when_values(&key, &values) {
                        v.webhook(
                            format!("{cp}.values"),
                            format!("invalid `value` for `key` {key}: {e}"),
                        );
                    }
                    if let Err(e) = when_values(&key, &not_values) {
                        v.webhook(
                            format!("{cp}.notValues"),
                            format!("invalid `notValue` for `key` {key}: {e}"),
                        );
                    }
                }
            }
        }
        Some(other) => v.schema(
            format!("{path}.when"),
            format!("Invalid value: {}: must be of type array", kind(other)),
        ),
    }
    if ((from_exists && !to_exists && !tcp_from) || (to_exists && !tcp_to))
        && action == Some(Action::Deny)
    {
        v.warnings.push(Violation::new(
            &path,
            "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port",
            Check::IstiodWebhook,
        ));
    }
}

/// The verdict on every AuthorizationPolicy of a text (other kinds skipped and counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCheckSummary {
    /// One report per AuthorizationPolicy, in input order.
    pub reports: Vec<Report>,
    /// Documents of other kinds.
    pub skipped: usize,
}

impl AuthorizationCheckSummary {
    /// True when there is at least one policy and none is invalid.
    pub fn all_valid(&self) -> bool {
        !self.reports.is_empty() && self.reports.iter().all(Report::is_valid)
    }
}

/// Validates every AuthorizationPolicy in a YAML/JSON text (one object, a stream, a
/// `kind: List`); documents of other kinds are skipped and counted.
pub fn check_manifests(text: &str) -> Result<AuthorizationCheckSummary, Error> {
    let docs = crate::policy::authorization::read_documents(text, "AuthorizationPolicy manifests")?;
    let mut reports = Vec::new();
    let mut skipped = 0;
    for (index, doc) in crate::policy::authorization::flatten_refs(&docs) {
        let is_policy = crate::policy::common::is_kind(&doc, KIND)
            .map_err(|reason| AuthorizationPolicyError::Document { index, reason })?;
        if is_policy {
            reports.push(validate_value(doc));
        } else {
            skipped += 1;
        }
    }
    Ok(AuthorizationCheckSummary { reports, skipped })
}

/// Validates every AuthorizationPolicy of a text and returns the warnings, one line each
/// (`namespace/name: path: warning: message [rule]`); the first invalid object is an
/// [`AuthorizationPolicyError::Invalid`] naming the object, the field and the rule.
///
/// ```
/// let err = meshtls::policy::authorization::validate_authorization_policy(r#"
/// apiVersion: security.istio.io/v1
/// kind: AuthorizationPolicy
/// metadata: {name: deny-all, namespace: foo}
/// spec: {action: DENY}
/// "#).unwrap_err();
/// assert!(err.to_string().contains("DENY action without `rules` is meaningless"), "{err}");
/// ```
pub fn validate_authorization_policy(text: &str) -> Result<Vec<String>, Error> {
    let summary = check_manifests(text)?;
    if summary.reports.is_empty() {
        return Err(AuthorizationPolicyError::Empty.into());
    }
    let mut warnings = Vec::new();
    for r in summary.reports {
        warnings.extend(r.warning_messages());
        if !r.is_valid() {
            return Err(AuthorizationPolicyError::Invalid {
                object: r.object,
                violations: r.errors,
            }
            .into());
        }
    }
    Ok(warnings)
}
