//! `AuthorizationPolicySet`: policies read once, compiled and indexed per namespace, evaluated
//! per request in Istio's order.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::error::{AuthorizationPolicyError, Error};
use crate::identity::TrustDomains;
use crate::mesh::MeshConfig;
use crate::policy::common::{Labels, PolicyName};

use super::compiled::{Ctx, PolicyCode, Program, Span};
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

/// A namespace's policies: a run of [`Program::policies`] ordered CUSTOM, DENY, ALLOW,
/// AUDIT (each by name), then the ones never enforced (dry run, `targetRef`s).
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    /// The namespace, in the arena.
    name: Span,
    start: u32,
    custom_end: u32,
    deny_end: u32,
    allow_end: u32,
    /// Into `by_name`: the group's policies by name.
    by_name: Span,
}

impl Group {
    fn custom(&self) -> std::ops::Range<usize> {
        self.start as usize..self.custom_end as usize
    }
    fn deny(&self) -> std::ops::Range<usize> {
        self.custom_end as usize..self.deny_end as usize
    }
    fn allow(&self) -> std::ops::Range<usize> {
        self.deny_end as usize..self.allow_end as usize
    }
}

/// Label values looked up once per check and selector key (the first [`SLOTS`] keys of a
/// namespace's selectors; the rest are looked up each time).
const SLOTS: usize = 8;

struct LabelCache<'l> {
    values: [Option<Option<&'l str>>; SLOTS],
}

impl<'l> LabelCache<'l> {
    fn new() -> Self {
        LabelCache {
            values: [None; SLOTS],
        }
    }
}

/// Where a policy sorts inside its namespace: by action in evaluation order, the policies
/// that are never enforced last.
fn class(p: &AuthorizationPolicy) -> u8 {
    if p.is_dry_run() || p.spec.has_target_refs() {
        return 4;
    }
    match p.spec.action() {
        Action::Custom => 0,
        Action::Deny => 1,
        Action::Allow => 2,
        Action::Audit => 3,
    }
}

/// Who enforces AuthorizationPolicy for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataPlane {
    /// The pod's Istio sidecar (Envoy's RBAC filter): every attribute; on TCP traffic an
    /// ALLOW rule with HTTP-only fields never matches and a DENY rule drops them (denies
    /// more).
    #[default]
    Sidecar,
    /// ztunnel, for a pod in ambient mode, as istiod converts policies for it
    /// (`pilot/pkg/serviceregistry/ambient/authorization.go`): only `principals`,
    /// `namespaces`, `serviceAccounts`, `ipBlocks`, `ports` and the `when` keys `source.ip`,
    /// `source.namespace`, `source.principal`, `destination.ip`, `destination.port` are
    /// evaluated; an ALLOW rule with any other field never matches; in a DENY rule the other
    /// fields are dropped, an entry left empty and a `when` on another key never match (the
    /// opposite of the sidecar). Principals are compared as written (no trust-domain alias
    /// expansion), namespaces as strings on the peer's Istio identity. CUSTOM and AUDIT
    /// policies and policies with `targetRefs` (waypoints) are not ztunnel's.
    Ambient,
}

impl DataPlane {
    /// `sidecar` or `ambient`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPlane::Sidecar => "sidecar",
            DataPlane::Ambient => "ambient",
        }
    }
}

impl fmt::Display for DataPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of AuthorizationPolicies, compiled once (string patterns pre-split, principals
/// expanded with the mesh's trust domain and aliases, CIDRs and ports parsed) into flat
/// arrays and indexed by namespace and action, so that a request looks only at the enforced
/// policies of its workload's namespace and the root namespace, allocating nothing.
///
/// Evaluation follows Istio's order (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct AuthorizationPolicySet {
    root: Box<str>,
    trust_domains: TrustDomains,
    prog: Program,
    /// One per namespace with policies (the root namespace's included), by name.
    groups: Vec<Group>,
    /// Policy indices by (namespace, name).
    by_name: Vec<u32>,
    /// Namespace → index into `groups`.
    by_namespace: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    root_group: Option<u32>,
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
        Self::from_flat_refs(crate::policy::authorization::flatten_refs(&values), mesh)
    }

    /// [`AuthorizationPolicySet::from_json_values`] for documents already flattened
    /// (numbered, `kind: List` expanded), borrowed: a reader that also needs the documents for
    /// other kinds (a cluster dump) copies none of them.
    pub(crate) fn from_flat_refs<'a>(
        docs: impl IntoIterator<Item = (String, &'a Value)>,
        mesh: &MeshConfig,
    ) -> Result<Self, AuthorizationPolicyError> {
        let mut policies = Vec::new();
        let mut skipped = 0;
        for (index, doc) in docs {
            let is_policy = crate::policy::common::is_kind(&doc, KIND).map_err(|reason| {
                AuthorizationPolicyError::Document {
                    index: index.clone(),
                    reason,
                }
            })?;
            if is_policy {
                policies.push(AuthorizationPolicy::from_value(doc, &index)?);
            } else {
                skipped += 1;
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
        let mut sorted: Vec<(&str, u8, &AuthorizationPolicy)> = Vec::with_capacity(policies.len());
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
            sorted.push((ns, class(p), p));
        }
        {
            let mut names: Vec<(&str, &str)> = sorted
                .iter()
                .map(|(ns, _, p)| (*ns, p.metadata.name.as_str()))
                .collect();
            names.sort_unstable();
            for w in names.windows(2) {
                if let [a, b] = w {
                    if a == b {
                        return Err(AuthorizationPolicyError::Duplicate {
                            kind: KIND,
                            object: format!("{}/{}", a.0, a.1),
                        });
                    }
                }
            }
        }
        // Evaluation order, so that a namespace's policies, rules and strings are adjacent.
        sorted.sort_by(|a, b| (a.0, a.1, &a.2.metadata.name).cmp(&(b.0, b.1, &b.2.metadata.name)));
        let mut prog = Program::default();
        let mut groups: Vec<Group> = Vec::new();
        let mut by_name: Vec<u32> = Vec::with_capacity(sorted.len());
        let mut i = 0;
        while i < sorted.len() {
            let ns = sorted.get(i).map_or("", |s| s.0);
            let end = sorted[i..]
                .iter()
                .position(|s| s.0 != ns)
                .map_or(sorted.len(), |n| i + n);
            let name = prog
                .push_name(ns)
                .map_err(|reason| AuthorizationPolicyError::Limit {
                    object: ns.to_owned(),
                    reason,
                })?;
            let start = prog.policies.len() as u32;
            let mut bounds = [start; 4];
            let mut keys: Vec<String> = Vec::new();
            for (_, cls, p) in sorted.get(i..end).unwrap_or(&[]) {
                prog.compile(p, ns, &trust_domains, |k| {
                    match keys.iter().position(|have| have == k) {
                        Some(at) => at as u32,
                        None => {
                            keys.push(k.to_owned());
                            (keys.len() - 1) as u32
                        }
                    }
                })?;
                let after = prog.policies.len() as u32;
                for (c, b) in bounds.iter_mut().enumerate() {
                    if usize::from(*cls) <= c {
                        *b = after;
                    }
                }
            }
            let stop = prog.policies.len() as u32;
            let first_name = by_name.len();
            let mut order: Vec<u32> = (start..stop).collect();
            order.sort_by(|a, b| {
                let name = |x: &u32| prog.cold.get(*x as usize).map(|c| c.name.name());
                name(a).cmp(&name(b))
            });
            by_name.extend(order);
            groups.push(Group {
                name,
                start,
                custom_end: bounds[0],
                deny_end: bounds[1],
                allow_end: bounds[2],
                by_name: Span {
                    start: first_name as u32,
                    len: (by_name.len() - first_name) as u32,
                },
            });
            i = end;
        }
        prog.finish();
        let mut root_group = None;
        let mut by_namespace =
            HashMap::with_capacity_and_hasher(groups.len(), foldhash::fast::RandomState::default());
        for (gi, g) in groups.iter().enumerate() {
            let name = prog.s(g.name);
            if name == root {
                root_group = Some(gi as u32);
            }
            by_namespace.insert(name.into(), gi as u32);
        }
        Ok(AuthorizationPolicySet {
            root: root.into(),
            trust_domains,
            prog,
            groups,
            by_name,
            by_namespace,
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
        self.prog.policies.len()
    }

    /// True when the set holds no policy (every request is then allowed).
    pub fn is_empty(&self) -> bool {
        self.prog.policies.is_empty()
    }

    /// Documents of other kinds skipped while reading.
    pub fn skipped_documents(&self) -> usize {
        self.skipped
    }

    /// The policies' names, by namespace then name.
    pub fn policy_names(&self) -> impl Iterator<Item = &PolicyName> {
        self.by_name
            .iter()
            .filter_map(|i| self.prog.cold.get(*i as usize))
            .map(|c| &c.name)
    }

    fn group(&self, namespace: &str) -> Option<&Group> {
        let gi = *self.by_namespace.get(namespace)?;
        self.groups.get(gi as usize)
    }

    fn groups_for(&self, namespace: &str) -> [Option<&Group>; 2] {
        let root = self.root_group.and_then(|g| self.groups.get(g as usize));
        if namespace == &*self.root {
            [root, None]
        } else {
            [self.group(namespace), root]
        }
    }

    /// The policy selects the workload: every `matchLabels` pair is among its labels.
    #[inline]
    fn selects<'l, L: Labels + ?Sized>(
        &self,
        p: &PolicyCode,
        labels: &'l L,
        cache: &mut LabelCache<'l>,
    ) -> bool {
        self.prog
            .sel
            .get(p.selector.range())
            .unwrap_or(&[])
            .iter()
            .all(|pair| {
                let have = match cache.values.get_mut(pair.slot as usize) {
                    Some(Some(v)) => *v,
                    Some(slot) => {
                        let v = labels.label(self.prog.sel_s(pair.key));
                        *slot = Some(v);
                        v
                    }
                    None => labels.label(self.prog.sel_s(pair.key)),
                };
                have == Some(self.prog.sel_s(pair.value))
            })
    }

    /// The first policy in `pick`'s range of each group (the workload's namespace, then the
    /// root namespace) that selects the workload and matches; `applies` tells whether any
    /// selected it.
    #[inline]
    fn first<'l, L: Labels + ?Sized>(
        &self,
        groups: &[Option<&Group>; 2],
        caches: &mut [LabelCache<'l>; 2],
        labels: &'l L,
        ctx: &Ctx<'_>,
        pick: fn(&Group) -> std::ops::Range<usize>,
        applies: &mut bool,
    ) -> Option<(usize, usize)> {
        for (g, cache) in groups.iter().zip(caches.iter_mut()) {
            let Some(g) = g else { continue };
            let range = pick(g);
            let start = range.start;
            let policies = self.prog.policies.get(range).unwrap_or(&[]);
            for (k, p) in policies.iter().enumerate() {
                if self.selects(p, labels, cache) {
                    *applies = true;
                    if let Some(r) = self.prog.first_match(p, ctx) {
                        return Some((start + k, r));
                    }
                }
            }
        }
        None
    }

    fn name_of(&self, policy: usize) -> PolicyName {
        self.prog
            .cold
            .get(policy)
            .map_or_else(|| PolicyName::new("", ""), |c| c.name.clone())
    }

    /// The decision for `request` to a workload in `namespace` with `labels`, in Istio's
    /// order. Costs one hash lookup per namespace and the rules of the applicable policies,
    /// and allocates nothing; the verdict's explanation is empty (see
    /// [`AuthorizationPolicySet::explain`], which reaches the same step and says why).
    pub fn check<L: Labels + ?Sized>(
        &self,
        namespace: &str,
        labels: &L,
        request: &Request,
    ) -> Verdict {
        self.check_in(DataPlane::Sidecar, namespace, labels, request)
    }

    /// [`AuthorizationPolicySet::check`] as `plane` enforces it: a sidecar (Envoy's RBAC
    /// filter), or ztunnel for a pod in ambient mode (L4 only; see [`DataPlane::Ambient`]).
    pub fn check_in<L: Labels + ?Sized>(
        &self,
        plane: DataPlane,
        namespace: &str,
        labels: &L,
        request: &Request,
    ) -> Verdict {
        let ambient = plane == DataPlane::Ambient;
        let groups = self.groups_for(namespace);
        let ctx = if ambient {
            Ctx::ambient(request)
        } else {
            Ctx::new(request)
        };
        let mut caches = [LabelCache::new(), LabelCache::new()];
        let mut ignored = false;
        let step = if let Some((p, rule)) = self.first(
            &groups,
            &mut caches,
            labels,
            &ctx,
            Group::deny,
            &mut ignored,
        ) {
            Step::Denied {
                policy: self.name_of(p),
                rule,
            }
        } else {
            let mut applies = false;
            match self.first(
                &groups,
                &mut caches,
                labels,
                &ctx,
                Group::allow,
                &mut applies,
            ) {
                Some((p, rule)) => Step::Allowed {
                    policy: self.name_of(p),
                    rule,
                },
                None if applies => Step::NoAllowMatched,
                None => Step::NoAllowPolicy,
            }
        };
        let step = match step {
            // ztunnel has no CUSTOM action (istiod does not send those policies to it).
            Step::Allowed { .. } | Step::NoAllowPolicy if !ambient => {
                match self.first(
                    &groups,
                    &mut caches,
                    labels,
                    &ctx,
                    Group::custom,
                    &mut ignored,
                ) {
                    Some((p, rule)) => Step::External {
                        policy: self.name_of(p),
                        rule,
                        provider: self
                            .prog
                            .cold
                            .get(p)
                            .and_then(|c| c.provider.as_deref())
                            .unwrap_or("")
                            .to_owned(),
                    },
                    None => step,
                }
            }
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
        self.explain_in(DataPlane::Sidecar, namespace, labels, request)
    }

    /// [`AuthorizationPolicySet::explain`] as `plane` enforces it.
    pub fn explain_in<L: Labels + ?Sized>(
        &self,
        plane: DataPlane,
        namespace: &str,
        labels: &L,
        request: &Request,
    ) -> Verdict {
        let ambient = plane == DataPlane::Ambient;
        let prog = &self.prog;
        let mut lines = vec![format!("request: {}", request.describe())];
        if ambient {
            lines.push(
                "enforced by ztunnel (ambient mode): L4 attributes only, principals as written (no trust-domain aliases)"
                    .to_owned(),
            );
        }
        let groups = self.groups_for(namespace);
        if groups.iter().all(Option::is_none) {
            lines.push(format!(
                "no AuthorizationPolicy in namespace {namespace} or the root namespace {}",
                self.root
            ));
        }
        // (policy index, matching rule)
        let mut custom: Option<(usize, usize)> = None;
        let mut deny: Option<(usize, usize)> = None;
        let mut allow: Option<(usize, usize)> = None;
        let mut allow_applies = false;
        let mut per_action: Vec<(u8, String)> = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            let Some(g) = g else { continue };
            let mut cache = LabelCache::new();
            for &pi in self.by_name.get(g.by_name.range()).unwrap_or(&[]) {
                let pi = pi as usize;
                let (Some(p), Some(cold)) = (prog.policies.get(pi), prog.cold.get(pi)) else {
                    continue;
                };
                let scope = if gi == 1 {
                    format!("mesh-wide from root namespace {}", self.root)
                } else {
                    "in the workload's namespace".to_owned()
                };
                let head = format!("{} {} ({scope})", p.action, cold.name);
                let order = match p.action {
                    Action::Custom => 0,
                    Action::Deny => 1,
                    Action::Allow => 2,
                    Action::Audit => 3,
                };
                if cold.target_refs {
                    let line = if ambient {
                        format!(
                            "{head}: decided at the waypoint: targetRef/targetRefs bind it to a waypoint (or gateway), which enforces it before ztunnel delivers; ztunnel does not evaluate it"
                        )
                    } else {
                        format!(
                            "{head}: does not apply: targetRef/targetRefs bind it to gateways, waypoints or services, not to sidecars"
                        )
                    };
                    per_action.push((order, line));
                    continue;
                }
                if ambient && matches!(p.action, Action::Custom | Action::Audit) {
                    per_action.push((order, format!(
                        "{head}: not enforced by ztunnel: istiod does not send {} policies to ztunnel (a waypoint enforces them)", p.action)));
                    continue;
                }
                if !self.selects(p, labels, &mut cache) {
                    per_action.push((
                        order,
                        format!(
                            "{head}: does not apply: selector {} does not match the workload's labels",
                            prog.selector_text(p)
                        ),
                    ));
                    continue;
                }
                let selected = if p.selector.is_empty() {
                    "applies to every workload".to_owned()
                } else {
                    format!("applies (selector {})", prog.selector_text(p))
                };
                let dry = if cold.dry_run {
                    " [dry run (istio.io/dry-run): evaluated in shadow mode, never enforced]"
                } else {
                    ""
                };
                let Some(rules) = p.rules else {
                    let what = if p.action == Action::Allow {
                        "has no rules: it matches nothing (ALLOW with no rules allows nothing)"
                    } else {
                        "has no rules: it matches nothing"
                    };
                    per_action.push((order, format!("{head}: {selected}{dry}; {what}")));
                    if p.action == Action::Allow && !cold.dry_run {
                        allow_applies = true;
                    }
                    continue;
                };
                if p.action == Action::Allow && !cold.dry_run {
                    allow_applies = true;
                }
                let rules = prog.rules.get(rules.range()).unwrap_or(&[]);
                let mut outcomes = Vec::new();
                let mut matched = None;
                for (ri, r) in rules.iter().enumerate() {
                    let (ok, why) = prog.explain_rule(r, request, p.action, ambient);
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
                if let (Some(ri), false) = (matched, cold.dry_run) {
                    let slot = match p.action {
                        Action::Custom => &mut custom,
                        Action::Deny => &mut deny,
                        Action::Allow => &mut allow,
                        Action::Audit => {
                            per_action.push((3, format!("{}: the request would be audited (AUDIT never changes the decision)", cold.name)));
                            continue;
                        }
                    };
                    if slot.is_none() {
                        *slot = Some((pi, ri));
                    }
                }
            }
        }
        per_action.sort_by_key(|(o, _)| *o);
        lines.extend(per_action.into_iter().map(|(_, l)| l));
        let mut step = if let Some((p, r)) = deny {
            Step::Denied {
                policy: self.name_of(p),
                rule: r,
            }
        } else if let Some((p, r)) = allow {
            Step::Allowed {
                policy: self.name_of(p),
                rule: r,
            }
        } else if allow_applies {
            Step::NoAllowMatched
        } else {
            Step::NoAllowPolicy
        };
        if let Some((p, r)) = custom {
            let name = self.name_of(p);
            let provider = prog
                .cold
                .get(p)
                .and_then(|c| c.provider.as_deref())
                .unwrap_or("")
                .to_owned();
            if matches!(step, Step::Allowed { .. } | Step::NoAllowPolicy) {
                lines.push(format!(
                    "1. CUSTOM: {name} rule {r} matched: the external authorizer `{provider}` is asked and sees {}",
                    request.describe()
                ));
                lines.push(format!("   if it allows: {step}"));
                step = Step::External {
                    policy: name,
                    rule: r,
                    provider,
                };
            } else {
                lines.push(format!(
                    "1. CUSTOM: {name} rule {r} matched: the external authorizer `{provider}` is asked, but the request is denied whatever it says"
                ));
            }
        } else if ambient {
            lines.push("1. CUSTOM: not evaluated by ztunnel".to_owned());
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
                            self.name_of(p)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn set(yaml: &str, mesh: &str) -> AuthorizationPolicySet {
        let mesh = MeshConfig::from_yaml(mesh).unwrap();
        AuthorizationPolicySet::from_yaml(yaml, &mesh).unwrap()
    }

    fn allowed(s: &AuthorizationPolicySet, principal: Option<&str>) -> bool {
        let mut r = Request::tcp(80);
        if let Some(p) = principal {
            r = r.with_principal(p);
        }
        let fast = s.check("demo", &[("app", "api")], &r);
        let slow = s.explain("demo", &[("app", "api")], &r);
        assert_eq!(fast, slow, "check and explain disagree for {principal:?}");
        fast.allowed()
    }

    /// Long exact principal lists go through the hash table (after alias expansion), next
    /// to the wildcard values of the same field; `notPrincipals` too.
    #[test]
    fn hashed_principals_match_like_the_list() {
        let many: Vec<String> = (0..12)
            .map(|i| format!("\"cluster.local/ns/shop/sa/web-{i}\""))
            .collect();
        let yaml = format!(
            r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-many, namespace: demo}}
spec:
  rules:
  - from: [{{source: {{principals: [{}, "*/ns/batch/sa/cron", "foreign.example/ns/x/sa/*"]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-many, namespace: demo}}
spec:
  action: DENY
  rules:
  - from: [{{source: {{notPrincipals: [{}, "*"]}}}}, {{source: {{principals: [{}]}}}}]
"#,
            many.join(", "),
            many.join(", "),
            (100..110)
                .map(|i| format!("\"old.example/ns/shop/sa/web-{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let s = set(
            &yaml,
            "trustDomain: td.example\ntrustDomainAliases: [old.example]\n",
        );
        assert!(
            s.prog.checks.iter().filter(|c| c.hashed > 0).count() >= 3,
            "the long lists are hashed"
        );
        // `cluster.local` in a policy stands for the mesh's trust domains, not for itself.
        assert!(!allowed(&s, Some("cluster.local/ns/shop/sa/web-0")));
        for td in ["td.example", "old.example"] {
            for i in [0, 5, 11] {
                let p = format!("{td}/ns/shop/sa/web-{i}");
                assert!(allowed(&s, Some(&p)), "{p}");
            }
            assert!(!allowed(&s, Some(&format!("{td}/ns/shop/sa/web-12"))));
            assert!(!allowed(&s, Some(&format!("{td}/ns/shop/sa/web-1x"))));
            // The DENY's second source: listed in an alias, expanded to every trust domain.
            assert!(!allowed(&s, Some(&format!("{td}/ns/shop/sa/web-105"))));
        }
        assert!(allowed(&s, Some("any.where/ns/batch/sa/cron")));
        assert!(allowed(&s, Some("foreign.example/ns/x/sa/y")));
        assert!(!allowed(&s, Some("other.example/ns/shop/sa/web-1")));
        // A plaintext caller matches `notPrincipals: ["*", ...]` and is denied.
        assert!(!allowed(&s, None));
        let r = Request::tcp(80).with_principal("td.example/ns/shop/sa/web-3");
        let why = s.explain("demo", &[("app", "api")], &r);
        assert!(
            why.explanation()
                .iter()
                .any(|l| l.contains("\"old.example/ns/shop/sa/web-3\"")),
            "the explanation lists the expanded values: {:?}",
            why.explanation()
        );
    }

    /// More selector keys in one namespace than the per-check label cache holds: the keys
    /// past it are looked up each time, with the same answers.
    #[test]
    fn selectors_beyond_the_label_cache() {
        let mut yaml = String::new();
        for i in 0..(SLOTS + 4) {
            yaml.push_str(&format!(
                "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p{i:02}, namespace: demo}}\nspec:\n  selector: {{matchLabels: {{k{i}: v, app: api}}}}\n  action: DENY\n  rules: [{{}}]\n"
            ));
        }
        let s = set(&yaml, "trustDomain: cluster.local\n");
        for i in 0..(SLOTS + 4) {
            let key = format!("k{i}");
            let labels = [(key.as_str(), "v"), ("app", "api")];
            let v = s.check("demo", &labels, &Request::tcp(80));
            assert_eq!(
                v.step().policy().map(|p| p.to_string()),
                Some(format!("demo/p{i:02}")),
                "{key}"
            );
            assert_eq!(v, s.explain("demo", &labels, &Request::tcp(80)));
            let wrong = [(key.as_str(), "w"), ("app", "api")];
            assert!(
                s.check("demo", &wrong, &Request::tcp(80)).allowed(),
                "{key}=w"
            );
        }
    }

    /// The namespace table finds every namespace and nothing else.
    #[test]
    fn namespace_lookup() {
        let mut yaml = String::new();
        for i in 0..300 {
            yaml.push_str(&format!(
                "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: deny, namespace: ns-{i}}}\nspec:\n  action: DENY\n  rules: [{{}}]\n"
            ));
        }
        let s = set(&yaml, "trustDomain: cluster.local\n");
        let labels: [(&str, &str); 0] = [];
        for i in 0..300 {
            let v = s.check(&format!("ns-{i}"), &labels, &Request::tcp(80));
            assert_eq!(v.step().kind(), "denied", "ns-{i}");
        }
        for other in ["ns-300", "ns-", "", "NS-1", "istio-system"] {
            assert!(
                s.check(other, &labels, &Request::tcp(80)).allowed(),
                "{other}"
            );
        }
    }
}
