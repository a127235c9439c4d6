//! Istio's PeerAuthentication: read, validated and resolved as istiod does.
//!
//! - [`PeerAuthentication`] is the object in its Kubernetes wire shape (`security.istio.io/v1`
//!   and `v1beta1`), reading YAML and JSON and writing them back unchanged.
//! - [`validate_value`] / [`validate_peer_authentication`] check an object with both of the
//!   cluster's layers: the apiserver (the CRD's schema and CEL rules, strict field validation,
//!   object metadata) and istiod's webhook. Errors and warnings are kept apart; every message
//!   names the object (`namespace/name`), the field path and the rule.
//! - [`PolicySet`] answers "which mTLS mode applies to this workload on this port?" with a
//!   [`Decision`]: the mode, the deciding policy and its [`Level`], and (from
//!   [`PolicySet::explain`]) why every other candidate lost.
//!
//! # Resolution
//!
//! For a workload in namespace `ns` with labels `L`, on port `p`:
//!
//! 1. The root namespace is `meshConfig.rootNamespace` (default `istio-system`).
//! 2. Policies are ordered by `metadata.creationTimestamp`, oldest first; ties go to the
//!    smaller name, then the smaller namespace. Policies without a timestamp (manifests not
//!    yet applied) sort after every timestamped one, then by name and namespace: applied now,
//!    they would be the newest.
//! 3. A policy without a selector, or with an empty `matchLabels`, is namespace-wide. Only the
//!    oldest namespace-wide policy of each namespace counts; in the root namespace it is the
//!    mesh-wide policy.
//! 4. Candidates come from `ns` and the root namespace. A selector matches when each of its
//!    labels is in `L` with the same value (a subset match).
//! 5. Policies with a selector in the root namespace are ignored, even for workloads in the
//!    root namespace. Among workload policies in `ns` the oldest match wins: there is no "most
//!    specific selector" ranking.
//! 6. Start from PERMISSIVE; the mesh, then the namespace, then the workload policy replace the
//!    mode when theirs is not UNSET (an absent `mtls` is UNSET).
//! 7. Only the winning workload policy's `portLevelMtls` applies: an entry for `p` with a mode
//!    other than UNSET replaces the mode; an UNSET or `{}` entry keeps it.
//! 8. No policy at all means PERMISSIVE.
//!
//! # Other kinds and a missing namespace
//!
//! Every reader here ([`validate_peer_authentication`], [`check_manifests`] — `meshtls policy
//! check` —, [`PolicySet::from_yaml`] / [`PolicySet::from_json_values`] — `meshtls policy
//! resolve` — and the Python functions on top) applies the same two rules, so that one file
//! gets one verdict:
//!
//! - **Lists stand for their items.** A document whose `kind` ends in `List` and that has an
//!   `items` sequence is read as its items, lists inside lists too, as kubectl expands them; a
//!   `*List` without an `items` sequence is an error. Items are named by their path in errors
//!   (`2.1` is the first item of the second document, `2.1.3` an item of a list inside it).
//!   AuthorizationPolicy readers apply the same rule (one implementation for both).
//! - **Other kinds are skipped and counted.** Real inputs are `kubectl get -A -o yaml` lists,
//!   Helm renders and kustomize output that mix PeerAuthentications with ConfigMaps, Services
//!   and so on; refusing them would make every such file unusable, and `kubectl apply`
//!   accepts them too. A document without `kind` is not a Kubernetes object and is an error
//!   (a typo'd or truncated manifest must not pass silently), and a text with no
//!   PeerAuthentication at all is an error for the validators ([`PolicyError::Empty`]) while a
//!   policy set may be empty (no policy means PERMISSIVE everywhere).
//! - **A missing `metadata.namespace` is never guessed.** On a cluster, `kubectl apply` fills
//!   it in (from `-n` or the context) before Istio's apiserver schema and webhook see the
//!   object, and nothing those checks decide depends on which namespace it is: so the
//!   validators accept such a manifest, as Istio does (Istio's own test manifests omit it).
//!   Resolution does depend on it (the root namespace makes a policy mesh-wide), and meshtls
//!   does not pretend to know the kubectl context: [`PolicySet`] refuses the policy with
//!   [`PolicyError::MissingNamespace`], naming it. Add the namespace to the manifest (what
//!   `kubectl get -o yaml` prints always has it).
//!
//! Malformed text gets the same message from all of them (`cannot parse PeerAuthentication
//! manifests: ...`), and JSON input is read by the same JSON reader everywhere.
//!
//! ```
//! use meshtls::policy::peer::{Level, MtlsMode, PolicySet};
//!
//! let set = PolicySet::from_yaml(r#"
//! apiVersion: security.istio.io/v1
//! kind: PeerAuthentication
//! metadata: {name: default, namespace: istio-system, creationTimestamp: "2024-01-01T00:00:00Z"}
//! spec: {mtls: {mode: STRICT}}
//! ---
//! apiVersion: security.istio.io/v1
//! kind: PeerAuthentication
//! metadata: {name: legacy, namespace: shop, creationTimestamp: "2024-02-01T00:00:00Z"}
//! spec:
//!   selector: {matchLabels: {app: legacy}}
//!   portLevelMtls: {"8080": {mode: PERMISSIVE}}
//! "#, "istio-system")?;
//!
//! let labels = [("app", "legacy"), ("version", "v1")];
//! let d = set.resolve("shop", &labels, Some(8080));
//! assert_eq!((d.mode(), d.level()), (MtlsMode::Permissive, Level::Port));
//! assert_eq!(d.policy().map(|p| p.as_str()), Some("shop/legacy"));
//!
//! let d = set.explain("shop", &labels, Some(9090));
//! assert_eq!((d.mode(), d.level()), (MtlsMode::Strict, Level::Mesh));
//! assert!(d.explanation().iter().any(|l| l.contains("no portLevelMtls entry for 9090")));
//! # Ok::<(), meshtls::Error>(())
//! ```

mod explain;
mod model;
mod set;
mod validate;

pub use crate::error::{PolicyError, Rule, Violation};
pub use crate::policy::common::{
    ApiVersion, Labels, MAX_LABEL_VALUE_LEN, MAX_SELECTOR_LABELS, PolicyName, Report,
};
pub use model::{
    GROUP, KIND, MtlsMode, MutualTls, ObjectMeta, PeerAuthentication, PeerAuthenticationSpec,
    WorkloadSelector,
};
pub use set::{
    CompactDecision, DEFAULT_ROOT_NAMESPACE, Decision, Level, PolicySet, PolicySetBuilder,
};
pub use validate::{
    CheckSummary, PORT_RANGE, check_manifests, validate_documents, validate_peer_authentication,
    validate_value,
};
