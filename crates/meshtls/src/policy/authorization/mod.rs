//! Istio's AuthorizationPolicy: read, validated and evaluated offline as a sidecar's RBAC
//! filter would.
//!
//! - [`AuthorizationPolicy`] is the object in its wire shape (`security.istio.io/v1` and
//!   `v1beta1`, one schema).
//! - [`validate_value`] / [`validate_authorization_policy`] / [`check_manifests`] check objects
//!   as a cluster does: the apiserver (CRD schema, strict fields, metadata), then istiod's
//!   webhook `ValidateAuthorizationPolicy`. Errors and warnings are kept apart; each names the
//!   object, the field path and the rule.
//! - [`AuthorizationPolicySet`] answers "is this [`Request`] to this workload allowed?" with a
//!   [`Verdict`]: the deciding [`Step`] (policy and rule) and, from
//!   [`AuthorizationPolicySet::explain`], why each candidate policy did or did not match.
//!
//! For the whole path (mTLS mode, trust domain, then authorization) see [`crate::path`].
//!
//! # Evaluation
//!
//! Candidates are the policies of the workload's namespace and of the root namespace
//! (`meshConfig.rootNamespace`, whose policies apply mesh-wide; a selector there selects in
//! every namespace). A selector matches by subset; no selector selects every workload.
//! Policies with `targetRef`/`targetRefs` bind to gateways and waypoints, not sidecars, and
//! policies annotated `istio.io/dry-run: "true"` are never enforced: both are only explained.
//!
//! 1. CUSTOM policies that match: the external authorizer (`provider.name`) decides; when
//!    nothing after it denies, the verdict is [`Step::External`].
//! 2. A matching DENY policy denies.
//! 3. No ALLOW policy applies to the workload: allowed.
//! 4. A matching ALLOW policy allows.
//! 5. Otherwise denied. AUDIT policies never change the decision.
//!
//! A policy without `rules` never matches (an ALLOW policy `spec: {}` allows nothing); the
//! rule `{}` matches everything. A rule matches when one `from` matches (or there is none),
//! one `to` matches (or none) and every `when` holds; inside a source or operation the
//! fields are ANDed, the values of a field ORed, and `not*` fields exclude. Strings match
//! exactly, by prefix `abc*`, by suffix `*abc` or by presence `*`; hosts ignore case.
//! `principals` compare with the peer's SPIFFE ID without `spiffe://` and are expanded with
//! the mesh's trust domain and aliases as istiod's `ReplaceTrustDomainAliases` does (a
//! principal in `cluster.local`, in any of them, or in a `*suffix`/`prefix*` pattern of one
//! of them stands for all of them; see [`crate::identity::expand_principals`]); `namespaces`
//! match `.*/ns/<ns>/.*` and `serviceAccounts` (and the `when` key `source.serviceAccount`)
//! `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` on the peer's identity, a value without `/`
//! naming a service account of the policy's own namespace; so plaintext callers match none
//! of them (and pass every `not*` of them).
//!
//! On TCP traffic (a [`Request`] without HTTP attributes) the HTTP-only fields (`hosts`,
//! `methods`, `paths`, `requestPrincipals`, `request.headers`, `request.auth.*`) cannot be
//! evaluated: an ALLOW rule using them never matches (allow less); in a DENY, AUDIT or
//! CUSTOM rule they are dropped and the rest of the rule decides (deny more).
//!
//! # Ambient pods (ztunnel)
//!
//! A pod in ambient mode has no sidecar: ztunnel enforces the policies istiod converts for it
//! (`pilot/pkg/serviceregistry/ambient/authorization.go`), and
//! [`AuthorizationPolicySet::check_in`] / [`AuthorizationPolicySet::explain_in`] with
//! [`DataPlane::Ambient`] evaluate them as ztunnel does:
//!
//! - only `principals`, `namespaces`, `serviceAccounts`, `ipBlocks`, `ports` (and their
//!   `not*` forms) and the `when` keys `source.ip`, `source.namespace`, `source.principal`,
//!   `destination.ip`, `destination.port` are evaluated, whatever the traffic;
//! - an ALLOW rule with any other field never matches; in a DENY rule the other fields are
//!   dropped, but a `from`/`to` entry left with nothing is an empty match, which ztunnel never
//!   matches, and a `when` on another key never holds — so where a sidecar denies more, ztunnel
//!   denies less (a waypoint enforces HTTP rules);
//! - principals are compared as written (istiod expands no trust-domain alias for ztunnel),
//!   namespaces as strings on the peer's Istio identity;
//! - CUSTOM and AUDIT policies and policies bound by `targetRefs` (to a waypoint) are not
//!   ztunnel's: the explanation says where they are decided.
//!
//! [`crate::path`] picks the data plane from the pod's and its namespace's
//! `istio.io/dataplane-mode` label.
//!
//! # Cost
//!
//! [`AuthorizationPolicySet::new`] compiles every policy once into a few flat arrays (one
//! string arena; values pre-split into exact, prefix, suffix and presence; principals
//! expanded with the trust domains, long exact lists hashed; CIDRs and ports parsed), laid out
//! per namespace in evaluation order. [`AuthorizationPolicySet::check`] is one hash lookup for
//! the namespace plus the root namespace's policies, looks each selector label up once,
//! evaluates DENY before ALLOW and CUSTOM only when the answer would be allow, and allocates
//! nothing; its verdict carries no explanation. [`AuthorizationPolicySet::explain`] reaches
//! the same step from the same arrays and writes the lines, so ask for it when a person reads
//! the answer.
//!
//! ```
//! use meshtls::MeshConfig;
//! use meshtls::policy::authorization::{AuthorizationPolicySet, Request, Step};
//!
//! let set = AuthorizationPolicySet::from_yaml(r#"
//! apiVersion: security.istio.io/v1
//! kind: AuthorizationPolicy
//! metadata: {name: allow-gateway, namespace: demo}
//! spec:
//!   selector: {matchLabels: {app: api}}
//!   rules:
//!   - from: [{source: {principals: ["cluster.local/ns/azure-alb-system/sa/alb-controller"]}}]
//!     to: [{operation: {methods: [GET], paths: ["/api/*"]}}]
//! "#, &MeshConfig::default())?;
//!
//! let gateway = meshtls::SpiffeId::new("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")?;
//! let labels = [("app", "api")];
//! let ok = set.check("demo", &labels, &Request::tcp(8080).with_peer(&gateway).with_http("GET", "/api/x"));
//! assert!(ok.allowed());
//! assert_eq!(ok.step().policy().map(|p| p.as_str()), Some("demo/allow-gateway"));
//!
//! let other = meshtls::SpiffeId::new("spiffe://cluster.local/ns/shop/sa/web")?;
//! let no = set.explain("demo", &labels, &Request::tcp(8080).with_peer(&other).with_http("GET", "/api/x"));
//! assert_eq!(no.step(), &Step::NoAllowMatched);
//! assert!(no.explanation().iter().any(|l| l.contains("matches none of")), "{:?}", no.explanation());
//! # Ok::<(), meshtls::Error>(())
//! ```

mod compiled;
mod model;
mod request;
mod set;
mod validate;

pub(crate) use super::common::flatten_refs;

/// Reads documents: JSON (what `kubectl get -o json` prints, possibly several objects in a
/// row) with the JSON parser where the YAML reader would read it alike, anything else with
/// the YAML reader and its limits ([`crate::manifest::parse_documents`]).
pub(crate) fn read_documents(
    text: &str,
    what: &'static str,
) -> Result<Vec<serde_json::Value>, crate::error::ManifestError> {
    crate::manifest::parse_documents(text, what)
}

pub use crate::error::AuthorizationPolicyError;
pub use model::{
    Action, ApiVersion, AuthorizationPolicy, AuthorizationPolicySpec, Condition,
    DRY_RUN_ANNOTATION, From, GROUP, KIND, Metadata, Operation, Provider, Rule, Selector, Source,
    TargetRef, To,
};
pub use request::{HttpRequest, Request, principal_of};
pub use set::{AuthorizationPolicySet, DataPlane, Step, Verdict};
pub use validate::{
    AuthorizationCheckSummary, MAX_RULES, MAX_SERVICE_ACCOUNT_LEN, MAX_SERVICE_ACCOUNTS,
    MAX_TARGET_REFS, check_manifests, validate_authorization_policy, validate_value,
};
