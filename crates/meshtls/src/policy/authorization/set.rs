//! `AuthorizationPolicySet`: policies read once, compiled and indexed per namespace, evaluated
//! per request in Istio's order.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use serde_json::Value;

use crate::error::{AuthorizationPolicyError, Error};
use crate::mesh::{MeshConfig, TrustDomains};
use crate::policy::{Labels, PolicyName};

use super::compiled::{Compiled, compile};
use super::model::{Action, AuthorizationPolicy, KIND};
use super::request::Request;

/// The step of Istio's order that decided a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// A CUSTOM policy matched and nothing after it denies: the external authorizer decides
    /// (the request goes through if it allows).
    External {
        /// The CUSTOM policy.
        policy: PolicyName,
        /// Its matching rule (0-based).
        rule: usize,
        /// `provider.name`.
        provider: String,
    },
    /// A DENY policy matched: denied.
    Denied {
        /// The DENY policy.
        policy: PolicyName,
        /// Its matching rule (0-based).
        rule: usize,
    },
    /// No ALLOW policy applies to the workload: allowed.
    NoAllowPolicy,
    /// An ALLOW policy matched: allowed.
    Allowed {
        /// The ALLOW policy.
        policy: PolicyName,
        /// Its matching rule (0-based).
        rule: usize,
    },
    /// ALLOW policies apply and none matched: denied.
    NoAllowMatched,
}

impl Step {
    /// `external`, `denied`, `no-allow-policy`, `allowed`, `no-allow-matched`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::External { .. } => "external",
            Step::Denied { .. } => "denied",
            Step::NoAllowPolicy => "no-allow-policy",
            Step::Allowed { .. } => "allowed",
            Step::NoAllowMatched => "no-allow-matched",
        }
    }

    /// The deciding policy, if one decided.
    pub fn policy(&self) -> Option<&PolicyName> {
        match self {
            Step::External { policy, .. }
            | Step::Denied { policy, .. }
            | Step::Allowed { policy, .. } => Some(policy),
            Step::NoAllowPolicy | Step::NoAllowMatched => None,
        }
    }

    /// The deciding rule (0-based), if a policy decided.
    pub fn rule(&self) -> Option<usize> {
        match self {
            Step::External { rule, .. }
            | Step::Denied { rule, .. }
            | Step::Allowed { rule, .. } => Some(*rule),
            Step::NoAllowPolicy | Step::NoAllowMatched => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::External {
                policy,
                rule,
                provider,
            } => write!(
                f,
                "decided by the external authorizer `{provider}` (CUSTOM policy {policy} rule {rule} matched); allowed if it allows"
            ),
            Step::Denied { policy, rule } => {
                write!(f, "denied by DENY policy {policy} rule {rule}")
            }
            Step::NoAllowPolicy => f.write_str("allowed: no ALLOW policy applies to the workload"),
            Step::Allowed { policy, rule } => {
                write!(f, "allowed by ALLOW policy {policy} rule {rule}")
            }
            Step::NoAllowMatched => {
                f.write_str("denied: ALLOW policies apply to the workload and none matched")
            }
        }
    }
}

/// The answer for one request: the deciding step and (from
/// [`AuthorizationPolicySet::explain`]) why every candidate policy did or did not match.
///
/// Two verdicts are equal when their steps are: the explanation is commentary.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub(crate) step: Step,
    pub(crate) explanation: Vec<String>,
}

impl Verdict {
    /// A verdict from its parts (for tests and for rebuilding one from storage).
    pub fn new(step: Step, explanation: Vec<String>) -> Self {
        Verdict { step, explanation }
    }

    /// True when the sidecar lets the request through without asking anyone else.
    pub fn allowed(&self) -> bool {
        matches!(self.step, Step::NoAllowPolicy | Step::Allowed { .. })
    }

    /// The deciding step.
    pub fn step(&self) -> &Step {
        &self.step
    }

    /// One sentence: the step that decided.
    pub fn reason(&self) -> String {
        self.step.to_string()
    }

    /// One line per candidate policy and per step; empty from [`AuthorizationPolicySet::check`].
    pub fn explanation(&self) -> &[String] {
        &self.explanation
    }
}

impl PartialEq for Verdict {
    fn eq(&self, other: &Self) -> bool {
        self.step == other.step
    }
}

impl Eq for Verdict {}

impl std::hash::Hash for Verdict {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.step.hash(state);
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.step.fmt(f)
    }
}

/// A fast string hasher for the namespace table (a multiply-rotate word hash, seeded per set
/// from the standard library's random keys). Namespace names come from the cluster's own
/// configuration; lookups happen once per request.
#[derive(Debug, Clone)]
struct Seeded(u64);

impl Seeded {
    fn new() -> Self {
        Seeded(RandomState::new().hash_one(0x6d65_7368_746c_7321_u64) | 1)
    }
}

impl BuildHasher for Seeded {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.0)
    }
}

#[derive(Debug)]
struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            if let Some(dst) = b.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The enforced policies of one namespace, by action, in (name) order.
#[derive(Debug, Clone, Default)]
struct Group {
    custom: Vec<u32>,
    deny: Vec<u32>,
    allow: Vec<u32>,
    audit: Vec<u32>,
    /// Every policy of the namespace (including dry-run and targetRef ones), for explain.
    all: Vec<u32>,
}

/// A set of AuthorizationPolicies, compiled once (string patterns parsed, principals expanded
/// with the mesh's trust domain and aliases, CIDRs and ports parsed) and indexed by namespace
/// and action, so that a request looks only at the enforced policies of its workload's
/// namespace and the root namespace.
///
/// Evaluation follows Istio's order (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct AuthorizationPolicySet {
    root: Box<str>,
    trust_domains: TrustDomains,
    policies: Vec<Compiled>,
    /// Every namespace but the root one.
    groups: HashMap<Box<str>, Group, Seeded>,
    /// The root namespace's policies, consulted for every workload.
    root_group: Group,
    skipped: usize,
}

impl AuthorizationPolicySet {
    /// Reads every AuthorizationPolicy from YAML or JSON text: one object, a multi-document
    /// stream, or a `kind: List` as `kubectl get authorizationpolicies -A -o yaml` prints.
    /// Documents of other kinds are skipped and counted
    /// ([`AuthorizationPolicySet::skipped_documents`]).
    pub fn from_yaml(text: &str, mesh: &MeshConfig) -> Result<Self, Error> {
        let docs =
            crate::policy::authorization::read_documents(text, "AuthorizationPolicy manifests")?;
        Ok(Self::from_json_values(docs, mesh)?)
    }

    /// Reads AuthorizationPolicies from parsed JSON values (objects or lists), skipping other
    /// kinds, as [`AuthorizationPolicySet::from_yaml`] does.
    pub fn from_json_values(
        values: Vec<Value>,
        mesh: &MeshConfig,
    ) -> Result<Self, AuthorizationPolicyError> {
        let mut policies = Vec::new();
        let mut skipped = 0;
        for (index, doc) in crate::policy::validate::flatten(values) {
            match doc.get("kind") {
                Some(Value::String(k)) if k == KIND => {
                    policies.push(AuthorizationPolicy::from_value(&doc, &index)?);
                }
                Some(Value::String(k)) if !k.ends_with("List") => skipped += 1,
                Some(Value::String(k)) => {
                    return Err(AuthorizationPolicyError::Document {
                        index,
                        reason: format!("is a {k} without an items list"),
                    });
                }
                _ => {
                    return Err(AuthorizationPolicyError::Document {
                        index,
                        reason: "has no kind: not a Kubernetes object".to_owned(),
                    });
                }
            }
        }
        let mut set = Self::new(&policies, mesh)?;
        set.skipped = skipped;
        Ok(set)
    }

    /// Builds the set from policy objects. `mesh` gives the root namespace and the trust
    /// domains principals are expanded with.
    pub fn new(
        policies: &[AuthorizationPolicy],
        mesh: &MeshConfig,
    ) -> Result<Self, AuthorizationPolicyError> {
        let root = mesh.root_namespace();
        let trust_domains = mesh.trust_domains();
        let mut compiled = Vec::with_capacity(policies.len());
        for p in policies {
            let ns = p
                .metadata
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| AuthorizationPolicyError::MissingNamespace {
                    kind: KIND,
                    name: p.metadata.name.clone(),
                })?;
            compiled.push(compile(p, ns, &trust_domains)?);
        }
        compiled.sort_by(|a, b| {
            (a.name.namespace(), a.name.name()).cmp(&(b.name.namespace(), b.name.name()))
        });
        for w in compiled.windows(2) {
            if let [a, b] = w {
                if a.name == b.name {
                    return Err(AuthorizationPolicyError::Duplicate {
                        kind: KIND,
                        object: a.name.to_string(),
                    });
                }
            }
        }
        let mut groups: HashMap<Box<str>, Group, Seeded> = HashMap::with_hasher(Seeded::new());
        let mut root_group = Group::default();
        for (i, p) in compiled.iter().enumerate() {
            let i = i as u32;
            let g = if p.name.namespace() == root {
                &mut root_group
            } else {
                groups.entry(p.name.namespace().into()).or_default()
            };
            g.all.push(i);
            if p.dry_run || p.target_refs {
                continue;
            }
            match p.action {
                Action::Custom => g.custom.push(i),
                Action::Deny => g.deny.push(i),
                Action::Allow => g.allow.push(i),
                Action::Audit => g.audit.push(i),
            }
        }
        Ok(AuthorizationPolicySet {
            root: root.into(),
            trust_domains,
            policies: compiled,
            groups,
            root_group,
            skipped: 0,
        })
    }

    /// The root namespace.
    pub fn root_namespace(&self) -> &str {
        &self.root
    }

    /// The trust domain and aliases principals were expanded with.
    pub fn trust_domains(&self) -> &TrustDomains {
        &self.trust_domains
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// True when the set holds no policy (every request is then allowed).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Documents of other kinds skipped while reading.
    pub fn skipped_documents(&self) -> usize {
        self.skipped
    }

    /// The policies' names, by namespace then name.
    pub fn policy_names(&self) -> impl Iterator<Item = &PolicyName> {
        self.policies.iter().map(|p| &p.name)
    }

    fn groups_for(&self, namespace: &str) -> [Option<&Group>; 2] {
        let root = Some(&self.root_group).filter(|g| !g.all.is_empty());
        if namespace == &*self.root {
            [root, None]
        } else {
            [self.groups.get(namespace), root]
        }
    }

    /// The decision for `request` to a workload in `namespace` with `labels`, in Istio's
    /// order. Costs one hash lookup per namespace and the rules of the applicable policies;
    /// the verdict's explanation is empty (see [`AuthorizationPolicySet::explain`]).
    pub fn check<L: Labels + ?Sized>(
        &self,
        namespace: &str,
        labels: &L,
        request: &Request,
    ) -> Verdict {
        let groups = self.groups_for(namespace);
        let policy = |i: &u32| self.policies.get(*i as usize);
        let first = |pick: fn(&Group) -> &Vec<u32>| -> Option<(&Compiled, usize)> {
            for g in groups.iter().flatten() {
                for p in pick(g).iter().filter_map(policy) {
                    if p.selects(labels) {
                        if let Some(r) = p.first_match(request) {
                            return Some((p, r));
                        }
                    }
                }
            }
            None
        };
        let custom = first(|g| &g.custom);
        let step = if let Some((p, r)) = first(|g| &g.deny) {
            Step::Denied {
                policy: p.name.clone(),
                rule: r,
            }
        } else {
            let mut applies = false;
            let mut allowed = None;
            'outer: for g in groups.iter().flatten() {
                for p in g.allow.iter().filter_map(policy) {
                    if p.selects(labels) {
                        applies = true;
                        if let Some(r) = p.first_match(request) {
                            allowed = Some((p, r));
                            break 'outer;
                        }
                    }
                }
            }
            match (applies, allowed) {
                (_, Some((p, r))) => Step::Allowed {
                    policy: p.name.clone(),
                    rule: r,
                },
                (false, None) => Step::NoAllowPolicy,
                (true, None) => Step::NoAllowMatched,
            }
        };
        let step = match (custom, &step) {
            (Some((p, r)), Step::Allowed { .. } | Step::NoAllowPolicy) => Step::External {
                policy: p.name.clone(),
                rule: r,
                provider: p.provider.as_deref().unwrap_or("").to_owned(),
            },
            _ => step,
        };
        Verdict {
            step,
            explanation: Vec::new(),
        }
    }

    /// The same decision as [`AuthorizationPolicySet::check`], reached by walking every policy
    /// of the workload's namespace and the root namespace, with one line per policy: whether
    /// it applies to the workload, which rule matched or why each rule did not, and the step
    /// that decided. This is the offline answer to "why does my pod refuse this caller?".
    pub fn explain<L: Labels + ?Sized>(
        &self,
        namespace: &str,
        labels: &L,
        request: &Request,
    ) -> Verdict {
        let mut lines = vec![format!("request: {}", request.describe())];
        let groups = self.groups_for(namespace);
        if groups.iter().all(Option::is_none) {
            lines.push(format!(
                "no AuthorizationPolicy in namespace {namespace} or the root namespace {}",
                self.root
            ));
        }
        // (action order, policy, matching rule)
        let mut custom: Option<(&Compiled, usize)> = None;
        let mut deny: Option<(&Compiled, usize)> = None;
        let mut allow: Option<(&Compiled, usize)> = None;
        let mut allow_applies = false;
        let mut per_action: Vec<(u8, String)> = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            let Some(g) = g else { continue };
            for p in g.all.iter().filter_map(|i| self.policies.get(*i as usize)) {
                let scope = if gi == 1 {
                    format!("mesh-wide from root namespace {}", self.root)
                } else {
                    "in the workload's namespace".to_owned()
                };
                let head = format!("{} {} ({scope})", p.action, p.name);
                let order = match p.action {
                    Action::Custom => 0,
                    Action::Deny => 1,
                    Action::Allow => 2,
                    Action::Audit => 3,
                };
                if p.target_refs {
                    per_action.push((order, format!(
                        "{head}: does not apply: targetRef/targetRefs bind it to gateways, waypoints or services, not to sidecars")));
                    continue;
                }
                if !p.selects(labels) {
                    per_action.push((
                        order,
                        format!(
                            "{head}: does not apply: selector {} does not match the workload's labels",
                            p.selector_text()
                        ),
                    ));
                    continue;
                }
                let selected = if p.selector.is_empty() {
                    "applies to every workload".to_owned()
                } else {
                    format!("applies (selector {})", p.selector_text())
                };
                let dry = if p.dry_run {
                    " [dry run (istio.io/dry-run): evaluated in shadow mode, never enforced]"
                } else {
                    ""
                };
                let Some(rules) = &p.rules else {
                    let what = if p.action == Action::Allow {
                        "has no rules: it matches nothing (ALLOW with no rules allows nothing)"
                    } else {
                        "has no rules: it matches nothing"
                    };
                    per_action.push((order, format!("{head}: {selected}{dry}; {what}")));
                    if p.action == Action::Allow && !p.dry_run {
                        allow_applies = true;
                    }
                    continue;
                };
                if p.action == Action::Allow && !p.dry_run {
                    allow_applies = true;
                }
                let mut outcomes = Vec::new();
                let mut matched = None;
                for (ri, r) in rules.iter().enumerate() {
                    let (ok, why) = r.explain(request, p.action);
                    if ok {
                        matched = Some(ri);
                        outcomes.push(format!("rule {ri} matches: {why}"));
                        break;
                    }
                    outcomes.push(format!("rule {ri} does not match: {why}"));
                }
                if rules.is_empty() {
                    outcomes.push("an empty rules list matches nothing".to_owned());
                }
                per_action.push((
                    order,
                    format!("{head}: {selected}{dry}; {}", outcomes.join("; ")),
                ));
                if let (Some(ri), false) = (matched, p.dry_run) {
                    let slot = match p.action {
                        Action::Custom => &mut custom,
                        Action::Deny => &mut deny,
                        Action::Allow => &mut allow,
                        Action::Audit => {
                            per_action.push((3, format!("{}: the request would be audited (AUDIT never changes the decision)", p.name)));
                            continue;
                        }
                    };
                    if slot.is_none() {
                        *slot = Some((p, ri));
                    }
                }
            }
        }
        per_action.sort_by_key(|(o, _)| *o);
        lines.extend(per_action.into_iter().map(|(_, l)| l));
        let mut step = if let Some((p, r)) = deny {
            Step::Denied {
                policy: p.name.clone(),
                rule: r,
            }
        } else if let Some((p, r)) = allow {
            Step::Allowed {
                policy: p.name.clone(),
                rule: r,
            }
        } else if allow_applies {
            Step::NoAllowMatched
        } else {
            Step::NoAllowPolicy
        };
        if let Some((p, r)) = custom {
            let provider = p.provider.as_deref().unwrap_or("").to_owned();
            if matches!(step, Step::Allowed { .. } | Step::NoAllowPolicy) {
                lines.push(format!(
                    "1. CUSTOM: {} rule {r} matched: the external authorizer `{provider}` is asked and sees {}",
                    p.name,
                    request.describe()
                ));
                lines.push(format!("   if it allows: {step}"));
                step = Step::External {
                    policy: p.name.clone(),
                    rule: r,
                    provider,
                };
            } else {
                lines.push(format!(
                    "1. CUSTOM: {} rule {r} matched: the external authorizer `{provider}` is asked, but the request is denied whatever it says",
                    p.name
                ));
            }
        } else {
            lines.push("1. CUSTOM: no CUSTOM policy matches".to_owned());
        }
        match &step {
            Step::Denied { policy, rule } => {
                lines.push(format!("2. DENY: {policy} rule {rule} matches: denied"))
            }
            _ => {
                lines.push("2. DENY: no DENY policy matches".to_owned());
                if allow_applies {
                    match allow {
                        Some((p, r)) => lines.push(format!(
                            "3. ALLOW policies apply; 4. {} rule {r} matches: allowed",
                            p.name
                        )),
                        None => lines
                            .push("3. ALLOW policies apply; 4. none matches; 5. denied".to_owned()),
                    }
                } else {
                    lines.push("3. no ALLOW policy applies to the workload: allowed".to_owned());
                }
            }
        }
        lines.push(format!("decision: {step}"));
        Verdict {
            step,
            explanation: lines,
        }
    }
}
