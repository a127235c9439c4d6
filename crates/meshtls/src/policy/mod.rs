//! Istio's security policies, each in a module of its own, and what they share:
//!
//! - [`peer`]: PeerAuthentication (which mTLS mode a workload's port takes): read, validated
//!   and resolved as istiod does. Its items are re-exported here (`policy::PolicySet` is
//!   `policy::peer::PolicySet`).
//! - [`authorization`]: AuthorizationPolicy (who may call what): read, validated and evaluated
//!   as the sidecar and ztunnel do.
//! - [`destination_rule`]: the parts of a DestinationRule that decide what a client sidecar
//!   sends, for the path check ([`crate::path`]).
//!
//! Both policy kinds read manifests with one rule for `kind: List` and for documents of other
//! kinds (see [`peer`'s documentation](peer#other-kinds-and-a-missing-namespace)), implemented
//! once for both.
//!
//! ```
//! use meshtls::policy::{Level, MtlsMode, PolicySet};
//!
//! let set = PolicySet::from_yaml(r#"
//! apiVersion: security.istio.io/v1
//! kind: PeerAuthentication
//! metadata: {name: default, namespace: istio-system}
//! spec: {mtls: {mode: STRICT}}
//! "#, "istio-system")?;
//! let d = set.resolve("shop", &[("app", "web")], Some(8080));
//! assert_eq!((d.mode(), d.level()), (MtlsMode::Strict, Level::Mesh));
//! # Ok::<(), meshtls::Error>(())
//! ```

pub(crate) mod common;

pub mod authorization;
pub mod destination_rule;
pub mod peer;

pub use peer::{
    ApiVersion, CheckSummary, CompactDecision, DEFAULT_ROOT_NAMESPACE, Decision, GROUP, KIND,
    Labels, Level, MAX_LABEL_VALUE_LEN, MAX_SELECTOR_LABELS, MtlsMode, MutualTls, ObjectMeta,
    PORT_RANGE, PeerAuthentication, PeerAuthenticationSpec, PolicyError, PolicyName, PolicySet,
    PolicySetBuilder, Report, Rule, Violation, WorkloadSelector, check_manifests,
    validate_documents, validate_peer_authentication, validate_value,
};
