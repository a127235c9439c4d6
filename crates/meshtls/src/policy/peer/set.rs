//! `PolicySet`: policies read once, ordered and indexed, resolved per workload.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use serde_json::Value;

use crate::error::{Error, PolicyError, Rule, Violation};
use crate::manifest::{self, Node};

use super::model::{MtlsMode, PeerAuthentication, object_ref, parse_timestamp};
use super::validate::is_peer_authentication;
use crate::policy::common::{Labels, PolicyName, dns1123_label, for_each_object};

/// Istio's default root namespace (`meshConfig.rootNamespace`).
pub const DEFAULT_ROOT_NAMESPACE: &str = crate::mesh::DEFAULT_ROOT_NAMESPACE;

/// Which level of policy decided a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// A workload policy (one with a selector) in the workload's namespace.
    Workload,
    /// A `portLevelMtls` entry of the winning workload policy.
    Port,
    /// The namespace-wide policy of the workload's namespace.
    Namespace,
    /// The mesh-wide policy (namespace-wide in the root namespace).
    Mesh,
    /// No policy set a mode: Istio's default, PERMISSIVE.
    Default,
}

impl Level {
    /// Every level.
    pub const ALL: [Level; 5] = [
        Level::Workload,
        Level::Port,
        Level::Namespace,
        Level::Mesh,
        Level::Default,
    ];

    /// `workload`, `port`, `namespace`, `mesh` or `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Workload => "workload",
            Level::Port => "port",
            Level::Namespace => "namespace",
            Level::Mesh => "mesh",
            Level::Default => "default",
        }
    }

    /// Parses [`Level::as_str`]'s spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effective mTLS mode for a workload (and port), with where it came from.
///
/// Two decisions are equal when mode, level and policy are: the explanation is commentary and
/// is not compared (a `resolve` and an `explain` of the same workload are equal).
#[derive(Debug, Clone)]
pub struct Decision {
    pub(crate) mode: MtlsMode,
    pub(crate) level: Level,
    pub(crate) policy: Option<PolicyName>,
    pub(crate) explanation: Vec<String>,
}

impl Decision {
    /// A decision from its parts (for tests and for rebuilding one from storage).
    /// `mode` must not be UNSET: resolution never produces it.
    pub fn new(
        mode: MtlsMode,
        level: Level,
        policy: Option<PolicyName>,
        explanation: Vec<String>,
    ) -> Result<Self, PolicyError> {
        if mode == MtlsMode::Unset {
            return Err(PolicyError::Mode(
                "UNSET (a decision always has a mode)".to_owned(),
            ));
        }
        if policy.is_none() != (level == Level::Default) {
            return Err(PolicyError::Level(format!(
                "{level} with policy {:?}: only the default level has no policy",
                policy.as_ref().map(PolicyName::as_str)
            )));
        }
        Ok(Decision {
            mode,
            level,
            policy,
            explanation,
        })
    }

    /// The effective mode: never UNSET.
    pub fn mode(&self) -> MtlsMode {
        self.mode
    }

    /// The level of the policy that decided.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The deciding policy; `None` when no policy set a mode (level `Default`).
    pub fn policy(&self) -> Option<&PolicyName> {
        self.policy.as_ref()
    }

    /// Why: one line per policy considered (used, overridden or ignored) and per step. Empty
    /// for [`PolicySet::resolve`]; filled by [`PolicySet::explain`].
    pub fn explanation(&self) -> &[String] {
        &self.explanation
    }
}

impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        (self.mode, self.level, &self.policy) == (other.mode, other.level, &other.policy)
    }
}

impl Eq for Decision {}

impl std::hash::Hash for Decision {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.mode, self.level, &self.policy).hash(state);
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            Some(p) => write!(f, "{} ({} level, {p})", self.mode, self.level),
            None => write!(f, "{} (default: no policy sets a mode)", self.mode),
        }
    }
}

/// What [`PolicySet::resolve_compact`] returns: a [`Decision`] whose policy is its position
/// in the set, without the explanation. Two compact decisions are equal when they are of the
/// same set and equal; [`PolicySet::decision`] turns one into a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompactDecision {
    mode: MtlsMode,
    level: Level,
    policy: Option<u32>,
}

impl CompactDecision {
    /// The effective mode: never UNSET.
    pub fn mode(&self) -> MtlsMode {
        self.mode
    }

    /// The level of the policy that decided.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The deciding policy's position in its set (oldest first); `None` at level `Default`.
    pub fn policy_index(&self) -> Option<usize> {
        self.policy.map(|i| i as usize)
    }
}

/// A creation time, as seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Created {
    secs: i64,
    nanos: u32,
}

impl Created {
    fn from_nanos(n: i128) -> Option<Self> {
        let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
        let nanos = u32::try_from(n.rem_euclid(1_000_000_000)).ok()?;
        Some(Created { secs, nanos })
    }

    pub(crate) fn nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// A selector's `matchLabels`, sorted by key, in one buffer (keys and values back to back)
/// so that checking a policy against a workload touches two allocations, not one per string.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    text: Box<str>,
    /// `(key end, value end)` in `text`; each key starts where the previous value ends.
    ends: Box<[(u32, u32)]>,
}

impl Selector {
    /// `None` when the labels' text reaches 4 GiB (offsets are `u32`).
    fn new<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (k, v) in pairs {
            text.push_str(k);
            let a = u32::try_from(text.len()).ok()?;
            text.push_str(v);
            ends.push((a, u32::try_from(text.len()).ok()?));
        }
        Some(Selector {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `(key, value)` pairs, sorted by key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0usize;
        self.ends.iter().map(move |&(k, v)| {
            let (k, v) = (k as usize, v as usize);
            let pair = (
                self.text.get(start..k).unwrap_or(""),
                self.text.get(k..v).unwrap_or(""),
            );
            start = v;
            pair
        })
    }

    fn heap_bytes(&self) -> usize {
        self.text.len() + self.ends.len() * std::mem::size_of::<(u32, u32)>()
    }
}

/// One policy as the index keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) name: PolicyName,
    pub(crate) ns: u32,
    pub(crate) created: Option<Created>,
    /// `spec.mtls.mode`, UNSET when absent.
    pub(crate) mode: MtlsMode,
    pub(crate) mtls_present: bool,
    /// `matchLabels`, sorted by key; empty for a namespace-wide policy.
    pub(crate) selector: Selector,
    pub(crate) selector_present: bool,
    /// `portLevelMtls`, sorted by port; `None` for a `{}` entry.
    pub(crate) ports: Box<[(u32, Option<MtlsMode>)]>,
}

impl Stored {
    pub(crate) fn is_namespace_wide(&self) -> bool {
        self.selector.is_empty()
    }

    #[inline]
    pub(crate) fn selects<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.selector
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v))
    }

    /// The port entry, if any: `Some(None)` for an entry of `{}`.
    #[inline]
    pub(crate) fn port_entry(&self, port: u16) -> Option<Option<MtlsMode>> {
        let port = u32::from(port);
        self.ports
            .binary_search_by_key(&port, |(p, _)| *p)
            .ok()
            .and_then(|i| self.ports.get(i))
            .map(|(_, m)| *m)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct NamespaceInfo {
    pub(crate) name: Box<str>,
    /// The oldest namespace-wide policy (step 3): the namespace level, or the mesh level in
    /// the root namespace.
    pub(crate) wide: Option<u32>,
    pub(crate) has_selectors: bool,
    /// This namespace's policies, oldest first, as a range of `PolicySet::members`.
    pub(crate) members: (u32, u32),
}

/// A set of PeerAuthentications, read once and indexed so that resolving a workload's mode
/// looks only at the policies that can apply to it.
///
/// Resolution follows istiod exactly (see the [module docs](crate::policy)). Building sorts the
/// policies by `metadata.creationTimestamp` (ties by name, then namespace), keeps the oldest
/// namespace-wide policy of each namespace, and indexes workload policies by one of their
/// selector's `key=value` pairs (the rarest in their namespace). A query then costs one hash
/// lookup for the namespace and one per workload label, whatever the number of policies.
///
/// Policies without a `creationTimestamp` (manifests not yet applied) sort after every
/// timestamped policy, then by name and namespace: a policy you are about to apply will be the
/// newest one in the cluster.
#[derive(Debug, Clone)]
pub struct PolicySet {
    root: Box<str>,
    /// Oldest first (step 2), so an index into this is also the age rank.
    pub(crate) policies: Vec<Stored>,
    pub(crate) namespaces: Vec<NamespaceInfo>,
    namespace_ids: HashMap<Box<str>, u32>,
    pub(crate) members: Vec<u32>,
    root_id: Option<u32>,
    hasher: foldhash::fast::RandomState,
    /// `hash(namespace id, key, value)` → range of `postings`.
    by_pair: HashMap<u64, (u32, u32), foldhash::fast::RandomState>,
    postings: Vec<u32>,
    skipped: usize,
}

/// Builds a [`PolicySet`] from documents handed over one at a time, exactly as
/// [`PolicySet::from_json_values`] reads a vector of them (documents numbered from 1 in
/// errors, `kind: List` expanded, other kinds skipped and counted): a reader can convert a
/// document, hand it over and drop it before converting the next, instead of holding every
/// document's value tree at once. [`push_document`](Self::push_document) takes any document
/// tree ([`Node`]), so a source can be read in place without building JSON values at all.
///
/// ```
/// use meshtls::policy::PolicySetBuilder;
///
/// let mut builder = PolicySetBuilder::default();
/// builder.push_json(serde_json::json!({
///     "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
///     "metadata": {"name": "default", "namespace": "shop"},
///     "spec": {"mtls": {"mode": "STRICT"}},
/// }))?;
/// builder.push_document(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"}))?;
/// let set = builder.build("istio-system")?;
/// assert_eq!((set.len(), set.skipped_documents()), (1, 1));
/// # Ok::<(), meshtls::policy::PolicyError>(())
/// ```
#[derive(Debug, Default)]
pub struct PolicySetBuilder {
    policies: Vec<PeerAuthentication>,
    skipped: usize,
    documents: usize,
}

impl PolicySetBuilder {
    /// A builder with room for `documents` policies.
    pub fn with_capacity(documents: usize) -> Self {
        PolicySetBuilder {
            policies: Vec::with_capacity(documents),
            ..Default::default()
        }
    }

    /// Reads the next document (an object, or a `kind: List` of them). An error names the
    /// document by its number, as [`PolicySet::from_json_values`] does.
    pub fn push_json(&mut self, doc: Value) -> Result<(), PolicyError> {
        self.push_document(&doc)
    }

    /// [`push_json`](Self::push_json) for any document tree: the same reader, rules and
    /// errors, without a JSON value in between.
    pub fn push_document<N: Node>(&mut self, doc: N) -> Result<(), PolicyError> {
        self.documents += 1;
        for_each_object(doc, self.documents, &mut |index, obj| {
            self.read_one(&obj, index)
        })
    }

    fn read_one<N: Node, I: fmt::Display + Copy>(
        &mut self,
        doc: &N,
        index: I,
    ) -> Result<(), PolicyError> {
        if !is_peer_authentication(doc, index)? {
            self.skipped += 1;
            return Ok(());
        }
        let pa = PeerAuthentication::read_node(doc).map_err(|e| match e {
            PolicyError::Document { reason, .. } => PolicyError::Document {
                index: index.to_string(),
                reason,
            },
            PolicyError::NotPeerAuthentication { kind, .. } => PolicyError::NotPeerAuthentication {
                index: index.to_string(),
                kind,
            },
            other => other,
        })?;
        self.policies.push(pa);
        Ok(())
    }

    /// Indexes the policies read so far (see [`PolicySet::new`] for the rules and errors).
    pub fn build(self, root_namespace: &str) -> Result<PolicySet, PolicyError> {
        let mut set = PolicySet::new(self.policies, root_namespace)?;
        set.skipped = self.skipped;
        Ok(set)
    }
}

impl PolicySet {
    /// Reads every PeerAuthentication from YAML or JSON text: one object, a multi-document
    /// stream, or a `kind: List` as `kubectl get peerauthentications -A -o yaml` prints.
    /// Documents of other kinds are skipped and counted ([`PolicySet::skipped_documents`]).
    ///
    /// Fields a policy does not need (`managedFields`, annotations, `status`) are skipped
    /// while reading. A field of `spec` with the wrong type, an unknown field, an unknown mode
    /// or a non-numeric port is an error naming the object; Istio's semantic rules (checked
    /// by [`validate_value`](crate::policy::validate_value)) are not applied, because
    /// resolution has defined behaviour for such policies.
    pub fn from_yaml(text: &str, root_namespace: &str) -> Result<Self, Error> {
        let docs = manifest::parse_documents(text, super::validate::MANIFEST_WHAT)?;
        Ok(Self::from_json_values(docs, root_namespace)?)
    }

    /// Reads PeerAuthentications from parsed JSON values (objects or lists), skipping other
    /// kinds, as [`PolicySet::from_yaml`] does. [`PolicySetBuilder`] does the same one
    /// document at a time.
    pub fn from_json_values(values: Vec<Value>, root_namespace: &str) -> Result<Self, PolicyError> {
        let mut builder = PolicySetBuilder::with_capacity(values.len());
        for doc in values {
            builder.push_json(doc)?;
        }
        builder.build(root_namespace)
    }

    /// [`PolicySet::from_json_values`] for documents already flattened (numbered, `kind: List`
    /// expanded), borrowed: a reader that also needs the documents for other kinds (a cluster
    /// dump) copies none of them.
    pub(crate) fn from_flat_refs<'a>(
        docs: impl IntoIterator<Item = (String, &'a Value)>,
        root_namespace: &str,
    ) -> Result<Self, PolicyError> {
        let mut builder = PolicySetBuilder::default();
        for (index, doc) in docs {
            builder.read_one(&doc, &index)?;
        }
        builder.build(root_namespace)
    }

    /// Builds the set from policies. Every policy needs a namespace, names must be unique per
    /// namespace, and creation timestamps must be RFC 3339.
    pub fn new<I, P>(policies: I, root_namespace: &str) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = P>,
        P: Borrow<PeerAuthentication>,
    {
        if dns1123_label(root_namespace).is_some() {
            return Err(PolicyError::RootNamespace(root_namespace.to_owned()));
        }
        let policies = policies.into_iter();
        let hint = policies.size_hint().0;
        let mut staged: Vec<(Stored, Box<str>)> = Vec::with_capacity(hint);
        let mut seen: HashSet<PolicyName> = HashSet::with_capacity(hint);
        let mut namespace_ids: HashMap<Box<str>, u32> = HashMap::new();
        let mut namespaces: Vec<NamespaceInfo> = Vec::new();
        for p in policies {
            let pa: &PeerAuthentication = p.borrow();
            let meta = &pa.metadata;
            let ns = match meta.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => {
                    return Err(PolicyError::MissingNamespace {
                        name: meta.name.clone(),
                    });
                }
            };
            let name = PolicyName::new(ns, &meta.name);
            if !seen.insert(name.clone()) {
                return Err(PolicyError::Duplicate {
                    object: object_ref(Some(ns), &meta.name),
                });
            }
            let created = match &meta.creation_timestamp {
                None => None,
                Some(text) => Some(
                    parse_timestamp(text)
                        .and_then(Created::from_nanos)
                        .ok_or_else(|| {
                            PolicyError::invalid(
                                &object_ref(Some(ns), &meta.name),
                                Violation::new(
                                    "metadata.creationTimestamp",
                                    format!("Invalid value: {text:?}: not an RFC 3339 time"),
                                    Rule::ObjectMeta,
                                ),
                            )
                        })?,
                ),
            };
            let ns_id = match namespace_ids.get(ns) {
                Some(id) => *id,
                None => {
                    let id = u32::try_from(namespaces.len()).unwrap_or(u32::MAX);
                    namespace_ids.insert(ns.into(), id);
                    namespaces.push(NamespaceInfo {
                        name: ns.into(),
                        wide: None,
                        has_selectors: false,
                        members: (0, 0),
                    });
                    id
                }
            };
            let spec = &pa.spec;
            let selector = match spec.selector_labels() {
                None => Selector::default(),
                Some(l) => Selector::new(l.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .ok_or_else(|| PolicyError::Document {
                        index: name.to_string(),
                        reason: "a selector of 4 GiB or more cannot be indexed".to_owned(),
                    })?,
            };
            let ports: Box<[(u32, Option<MtlsMode>)]> = spec
                .port_level_mtls
                .as_ref()
                .map(|m| m.iter().map(|(p, t)| (*p, t.mode)).collect())
                .unwrap_or_default();
            staged.push((
                Stored {
                    name,
                    ns: ns_id,
                    created,
                    mode: spec.mode(),
                    mtls_present: spec.mtls.is_some(),
                    selector,
                    selector_present: spec.selector.is_some(),
                    ports,
                },
                meta.name.as_str().into(),
            ));
        }
        if staged.len() >= u32::MAX as usize || namespaces.len() >= u32::MAX as usize {
            return Err(PolicyError::Document {
                index: "*".to_owned(),
                reason: format!("{} policies are more than a set can index", staged.len()),
            });
        }
        // Step 2: oldest first; no timestamp sorts after every timestamp; then name, then
        // namespace (Istio's `configCompareByCreationTime`).
        staged.sort_by(|(a, an), (b, bn)| {
            let age = match (a.created, b.created) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            age.then_with(|| an.cmp(bn))
                .then_with(|| a.name.namespace().cmp(b.name.namespace()))
        });
        let policies: Vec<Stored> = staged.into_iter().map(|(s, _)| s).collect();

        // Members per namespace, oldest first, and step 3 (oldest namespace-wide wins).
        let mut counts = vec![0u32; namespaces.len()];
        for p in &policies {
            if let Some(c) = counts.get_mut(p.ns as usize) {
                *c += 1;
            }
        }
        let mut start = 0u32;
        for (info, c) in namespaces.iter_mut().zip(&counts) {
            info.members = (start, start);
            start += c;
        }
        let mut members = vec![0u32; policies.len()];
        for (idx, p) in policies.iter().enumerate() {
            if let Some(info) = namespaces.get_mut(p.ns as usize) {
                if let Some(slot) = members.get_mut(info.members.1 as usize) {
                    *slot = idx as u32;
                }
                info.members.1 += 1;
                if p.is_namespace_wide() {
                    if info.wide.is_none() {
                        info.wide = Some(idx as u32);
                    }
                } else {
                    info.has_selectors = true;
                }
            }
        }

        // The label index: each workload policy is filed under the pair of its selector that
        // is rarest in its namespace, so posting lists stay short. Every pair must be present
        // in a workload it selects, so looking up each workload label finds it.
        let hasher = foldhash::fast::RandomState::default();
        // Pairs are counted by their keyed hash (a collision could only pick another pair of
        // the same selector as the anchor, which is as correct).
        let mut hashes: Vec<u64> = Vec::new();
        let mut pair_counts: HashMap<u64, u32, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(
                policies.len(),
                foldhash::fast::RandomState::default(),
            );
        for p in &policies {
            for (k, v) in p.selector.iter() {
                let h = pair_hash(&hasher, p.ns, k, v);
                hashes.push(h);
                *pair_counts.entry(h).or_default() += 1;
            }
        }
        let mut filed: Vec<(u64, u32)> = Vec::with_capacity(policies.len());
        let mut at = 0;
        for (idx, p) in policies.iter().enumerate() {
            let own = hashes.get(at..at + p.selector.len()).unwrap_or(&[]);
            at += p.selector.len();
            let anchor = own
                .iter()
                .min_by_key(|h| pair_counts.get(h).copied().unwrap_or(0));
            if let Some(h) = anchor {
                filed.push((*h, idx as u32));
            }
        }
        filed.sort_unstable();
        let mut by_pair: HashMap<u64, (u32, u32), foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(filed.len(), foldhash::fast::RandomState::default());
        let mut postings = Vec::with_capacity(filed.len());
        for (i, (h, idx)) in filed.iter().enumerate() {
            let pos = i as u32;
            by_pair
                .entry(*h)
                .and_modify(|r| r.1 = pos + 1)
                .or_insert((pos, pos + 1));
            postings.push(*idx);
        }
        let root_id = namespace_ids.get(root_namespace).copied();
        Ok(PolicySet {
            root: root_namespace.into(),
            policies,
            namespaces,
            namespace_ids,
            members,
            root_id,
            hasher,
            by_pair,
            postings,
            skipped: 0,
        })
    }

    /// The root namespace.
    pub fn root_namespace(&self) -> &str {
        &self.root
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// True when the set holds no policy (every workload is then PERMISSIVE).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Documents of other kinds skipped while reading.
    pub fn skipped_documents(&self) -> usize {
        self.skipped
    }

    /// The policies' names, oldest first (the order resolution uses).
    pub fn policy_names(&self) -> impl Iterator<Item = &PolicyName> {
        self.policies.iter().map(|p| &p.name)
    }

    /// The effective mode for a workload in `namespace` with `labels`, on `port` (`None`
    /// for the workload-level mode, which is also what the passthrough chain uses).
    ///
    /// Costs one hash lookup for the namespace and one per label; allocates nothing. The
    /// decision's explanation is empty: use [`PolicySet::explain`] for it.
    pub fn resolve<L: Labels + ?Sized>(
        &self,
        namespace: &str,
        labels: &L,
        port: Option<u16>,
    ) -> Decision {
        self.decision(self.resolve_compact(namespace, labels, port))
    }

    /// [`resolve`](Self::resolve) as the index has the answer: the deciding policy by its
    /// position in the set ([`policy_name`](Self::policy_name) names it), so that a hot loop
    /// or a binding holds no reference to the policy's name until it needs it.
    ///
    /// ```
    /// use meshtls::policy::{Level, PolicySet};
    /// let set = PolicySet::from_yaml(r#"
    /// apiVersion: security.istio.io/v1
    /// kind: PeerAuthentication
    /// metadata: {name: default, namespace: shop}
    /// spec: {mtls: {mode: STRICT}}
    /// "#, "istio-system")?;
    /// let c = set.resolve_compact("shop", &[("app", "web")], Some(8080));
    /// assert_eq!(c.level(), Level::Namespace);
    /// assert_eq!(set.policy_name(c.policy_index().unwrap()).unwrap().as_str(), "shop/default");
    /// assert_eq!(set.decision(c), set.resolve("shop", &[("app", "web")], Some(8080)));
    /// # Ok::<(), meshtls::Error>(())
    /// ```
    pub fn resolve_compact<L: Labels + ?Sized>(
        &self,
        namespace: &str,
        labels: &L,
        port: Option<u16>,
    ) -> CompactDecision {
        let mesh = self.mesh_policy();
        let (namespace_wide, workload) = if *namespace == *self.root {
            // Step 5: selectors in the root namespace are ignored, and the root namespace's
            // namespace-wide policy is the mesh policy.
            (None, None)
        } else {
            match self.namespace_ids.get(namespace) {
                None => (None, None),
                Some(&ns) => match self.namespaces.get(ns as usize) {
                    Some(info) => (
                        info.wide,
                        if info.has_selectors {
                            self.workload_policy(ns, labels)
                        } else {
                            None
                        },
                    ),
                    None => (None, None),
                },
            }
        };
        self.compose(mesh, namespace_wide, workload, port)
    }

    pub(crate) fn mesh_policy(&self) -> Option<u32> {
        self.root_id
            .and_then(|r| self.namespaces.get(r as usize))
            .and_then(|info| info.wide)
    }

    /// Step 4 and 5 for the workload class: the oldest policy of the namespace whose selector
    /// is a subset of `labels`.
    #[inline]
    fn workload_policy<L: Labels + ?Sized>(&self, ns: u32, labels: &L) -> Option<u32> {
        let mut best = u32::MAX;
        for (k, v) in labels.pairs() {
            let Some(&(start, end)) = self.by_pair.get(&pair_hash(&self.hasher, ns, k, v)) else {
                continue;
            };
            let Some(list) = self.postings.get(start as usize..end as usize) else {
                continue;
            };
            // Oldest first: the first match of a list is that list's best.
            for &idx in list {
                if idx >= best {
                    break;
                }
                if let Some(p) = self.policies.get(idx as usize) {
                    // The hash is only a filter: check namespace and every selector pair.
                    if p.ns == ns && p.selects(labels) {
                        best = idx;
                        break;
                    }
                }
            }
        }
        (best != u32::MAX).then_some(best)
    }

    /// The policy at `index` (oldest first, as [`CompactDecision::policy_index`] gives it).
    pub fn policy_name(&self, index: usize) -> Option<&PolicyName> {
        self.policies.get(index).map(|p| &p.name)
    }

    /// The full [`Decision`] of a compact one from this set (explanation empty).
    pub fn decision(&self, compact: CompactDecision) -> Decision {
        Decision {
            mode: compact.mode,
            level: compact.level,
            policy: compact
                .policy
                .and_then(|i| self.policies.get(i as usize))
                .map(|p| p.name.clone()),
            explanation: Vec::new(),
        }
    }

    /// Steps 6 to 8.
    pub(crate) fn compose(
        &self,
        mesh: Option<u32>,
        namespace_wide: Option<u32>,
        workload: Option<u32>,
        port: Option<u16>,
    ) -> CompactDecision {
        let mut mode = MtlsMode::Permissive;
        let mut level = Level::Default;
        let mut by = None;
        for (idx, lvl) in [
            (mesh, Level::Mesh),
            (namespace_wide, Level::Namespace),
            (workload, Level::Workload),
        ] {
            if let Some(p) = idx.and_then(|i| self.policies.get(i as usize).map(|p| (i, p))) {
                if p.1.mode != MtlsMode::Unset {
                    mode = p.1.mode;
                    level = lvl;
                    by = Some(p.0);
                }
            }
        }
        if let (Some(port), Some(w)) = (port, workload) {
            if let Some(p) = self.policies.get(w as usize) {
                if let Some(Some(m)) = p.port_entry(port) {
                    if m != MtlsMode::Unset {
                        mode = m;
                        level = Level::Port;
                        by = Some(w);
                    }
                }
            }
        }
        CompactDecision {
            mode,
            level,
            policy: by,
        }
    }

    pub(crate) fn members_of(&self, namespace: &str) -> &[u32] {
        self.namespace_ids
            .get(namespace)
            .and_then(|id| self.namespaces.get(*id as usize))
            .and_then(|info| {
                self.members
                    .get(info.members.0 as usize..info.members.1 as usize)
            })
            .unwrap_or(&[])
    }

    /// An estimate of the heap memory the set holds, in bytes: every vector, boxed string and
    /// hash table counted at its capacity. Useful to size a controller's cache.
    pub fn approximate_heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let strings: usize = self
            .policies
            .iter()
            .map(|p| {
                // Arc header (two counters) plus the text.
                2 * size_of::<usize>()
                    + p.name.as_str().len()
                    + p.selector.heap_bytes()
                    + p.ports.len() * size_of::<(u32, Option<MtlsMode>)>()
            })
            .sum();
        let table = |cap: usize, entry: usize| {
            // hashbrown: buckets are the next power of two above cap * 8 / 7, one control
            // byte each.
            let buckets = (cap * 8 / 7).max(1).next_power_of_two();
            buckets * (entry + 1)
        };
        self.policies.capacity() * size_of::<Stored>()
            + strings
            + self.namespaces.capacity() * size_of::<NamespaceInfo>()
            + self.namespaces.iter().map(|n| n.name.len()).sum::<usize>() * 2
            + table(self.namespace_ids.capacity(), size_of::<(Box<str>, u32)>())
            + self.members.capacity() * size_of::<u32>()
            + table(self.by_pair.capacity(), size_of::<(u64, (u32, u32))>())
            + self.postings.capacity() * size_of::<u32>()
    }
}

#[inline]
fn pair_hash(hasher: &foldhash::fast::RandomState, ns: u32, key: &str, value: &str) -> u64 {
    hasher.hash_one((ns, key, value))
}
