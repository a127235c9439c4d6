//! The path check: will this caller get through to that pod, and if not, why?
//!
//! A [`Mesh`] holds what a cluster dump shows (`kubectl get
//! peerauthentications,authorizationpolicies,destinationrules -A -o json` plus the `istio`
//! ConfigMap) and answers [`Mesh::check`] for a [`Caller`] and a [`Destination`] in the order a
//! connection meets the checks:
//!
//! 1. **Transport.** An outside caller with a certificate (a gateway) sends mTLS; a mesh
//!    workload sends what its sidecar is told to: the DestinationRule's `tls.mode` for the
//!    service (port-level first; DISABLE → plaintext, ISTIO_MUTUAL → mesh mTLS, SIMPLE/MUTUAL →
//!    TLS of its own; a `tls` without `mode` is the proto's default, DISABLE), else auto mTLS
//!    (`enableAutoMtls`, default on): mesh mTLS to a pod with a sidecar unless the destination
//!    namespace's mode is DISABLE (istiod's `BestEffortInferServiceMTLSMode` reads only the
//!    namespace and mesh levels); a plaintext client sends plaintext. The DestinationRule is
//!    the caller namespace's, else the service namespace's, else the root namespace's, each
//!    only when its `exportTo` (default: everywhere) reaches the caller's namespace; within
//!    a namespace an exact host beats the longest matching wildcard.
//!
//!    Simplifications, each of which can make the answer differ from a live mesh:
//!    `portLevelSettings` are matched against [`Destination::port`] (Istio matches the
//!    *Service* port; give the Service port when it differs from the container port);
//!    subsets and their traffic policies are not applied (they need a VirtualService route);
//!    several DestinationRules for one host are not merged (the most specific one is used);
//!    rules with a `workloadSelector` are not used (the caller's labels are not known);
//!    `meshConfig.defaultDestinationRuleExportTo` is not read; headless / passthrough
//!    services (where istiod looks at every endpoint) are treated like any other; a pod
//!    without the `security.istio.io/tlsMode` label is assumed to have a sidecar (injected
//!    pods carry `istio`; Istio itself treats a missing label as no sidecar) and the
//!    explanation says so.
//! 2. **mTLS mode** of the destination port (PeerAuthentication, [`crate::policy::PolicySet`]):
//!    STRICT refuses plaintext; DISABLE does not terminate mTLS (the TLS bytes reach an app that
//!    speaks none); PERMISSIVE takes both.
//! 3. **Trust domain.** An mTLS client's SPIFFE ID must be in the mesh trust domain, an alias or
//!    a `caCertificates` trust domain (`TrustDomainsForValidation`).
//! 4. **Authorization**: the AuthorizationPolicies ([`crate::policy::authorization`]).
//!
//! # Ambient pods
//!
//! A pod in ambient mode (labelled `istio.io/dataplane-mode: ambient`, or in a namespace so
//! labelled and not itself labelled `none`, and without a sidecar; see [`Mesh::data_plane`])
//! is reached through ztunnel, and the walk follows ztunnel's rules instead
//! ([`PathCheck::data_plane`] says which applied):
//!
//! 1. **Transport.** Only HBONE (TLS 1.3 to port 15008, HTTP/2 `CONNECT` to the pod's port)
//!    carries an identity: a [`Caller::Hbone`], or a mesh workload whose sidecar tunnels to
//!    ambient endpoints. TLS sent straight to the pod's port reaches ztunnel as plain TCP.
//! 2. **Mode.** STRICT is istiod's `istio_converted_static_strict` DENY of traffic without a
//!    peer identity; DISABLE is not supported in ambient mode and acts as PERMISSIVE. Under
//!    PERMISSIVE, plaintext passes and TLS to the app's port reaches an app that speaks none
//!    ([`AmbientRefusal::NotTunnelled`]).
//! 3. **Identity.** ztunnel's handshake takes only an Istio identity
//!    `spiffe://<td>/ns/<ns>/sa/<sa>` in the destination's own trust domain: no aliases, no
//!    `caCertificates` trust domains.
//! 4. **Authorization** at L4, as [`DataPlane::Ambient`] describes.
//!
//! The seed case: the Application Gateway for Containers identity to a STRICT namespace.
//!
//! ```
//! use meshtls::path::{Caller, Destination, Mesh, PathStep};
//!
//! let dump = r#"{"apiVersion": "v1", "kind": "List", "items": [
//!   {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
//!    "metadata": {"name": "default", "namespace": "demo"}, "spec": {"mtls": {"mode": "STRICT"}}},
//!   {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
//!    "metadata": {"name": "api-callers", "namespace": "demo"},
//!    "spec": {"selector": {"matchLabels": {"app": "api"}},
//!             "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]}]}}
//! ]}"#;
//! let mesh = Mesh::from_dump(dump, None)?;
//! let gateway = Caller::external("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")?;
//! let to_api = Destination::new("demo", [("app", "api")], 8080);
//!
//! // An ALLOW policy applies and does not name the gateway: refused by authorization.
//! let r = mesh.check(&gateway, &to_api);
//! assert!(!r.allowed());
//! assert_eq!(r.step().kind(), "no-allow-matched");
//!
//! // Name the gateway in the policy and it gets through.
//! let fixed = dump.replace("cluster.local/ns/shop/sa/web", "cluster.local/ns/azure-alb-system/sa/alb-controller");
//! let r = Mesh::from_dump(&fixed, None)?.check(&gateway, &to_api);
//! assert!(r.allowed(), "{}", r.explanation().join("\n"));
//!
//! // A plaintext client never reaches authorization: STRICT refuses it.
//! let r = mesh.check(&Caller::Plaintext, &to_api);
//! assert!(matches!(r.step(), PathStep::Mode { .. }));
//!
//! // The same namespace in ambient mode: the gateway must speak HBONE, and ztunnel
//! // evaluates the policy at L4.
//! let ambient = mesh.with_namespace_labels("demo", [("istio.io/dataplane-mode", "ambient")]);
//! let r = ambient.check(&gateway, &to_api);
//! assert_eq!(r.data_plane(), meshtls::policy::authorization::DataPlane::Ambient);
//! assert_eq!(r.step().kind(), "mode"); // mTLS outside HBONE carries no identity to ztunnel
//! let hbone = Caller::hbone("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")?;
//! assert_eq!(ambient.check(&hbone, &to_api).step().kind(), "no-allow-matched");
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::error::{AuthorizationPolicyError, Error};
use crate::identity::{SpiffeId, TrustDomain};
use crate::mesh::MeshConfig;
use crate::policy::authorization::{AuthorizationPolicySet, DataPlane, Request, Step, Verdict};
use crate::policy::{Decision, MtlsMode, PolicyName, PolicySet};

/// The label a sidecar-injected pod carries (`security.istio.io/tlsMode: istio`), which auto
/// mTLS uses to pick mesh mTLS.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// The label that puts a namespace or a pod in ambient mode (`ambient`) or, on a pod, takes
/// it out (`none`).
pub const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";

pub use crate::policy::destination_rule::{ClientTlsMode, DESTINATION_RULE_KIND, DestinationRule};

/// Who calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Caller {
    /// An identity outside the mesh presenting a certificate with this SPIFFE ID: a gateway
    /// such as Application Gateway for Containers. It sends mTLS.
    External(SpiffeId),
    /// A mesh workload with a sidecar, in `namespace`: its DestinationRule or auto mTLS decides
    /// whether it sends mTLS (with its own SPIFFE ID) or plaintext.
    Workload {
        /// The workload's SPIFFE ID.
        id: SpiffeId,
        /// The workload's namespace (DestinationRules there are consulted first).
        namespace: String,
    },
    /// A client without TLS.
    Plaintext,
    /// An identity outside the mesh that speaks HBONE (TLS 1.3, HTTP/2 `CONNECT` to port
    /// 15008), as ztunnel does: how an ambient pod is reached with an identity. To a pod with
    /// a sidecar it is the same as [`Caller::External`] would be on port 15008, which
    /// sidecars do not serve: the path check answers for it only towards ambient pods.
    Hbone(SpiffeId),
}

impl Caller {
    /// An outside caller with a certificate for `spiffe_id`.
    pub fn external(spiffe_id: &str) -> Result<Self, Error> {
        Ok(Caller::External(SpiffeId::new(spiffe_id)?))
    }

    /// An outside caller speaking HBONE with a certificate for `spiffe_id`.
    pub fn hbone(spiffe_id: &str) -> Result<Self, Error> {
        Ok(Caller::Hbone(SpiffeId::new(spiffe_id)?))
    }

    /// A mesh workload; its namespace is read from an Istio-form ID (`ns/<ns>/sa/<sa>`).
    pub fn workload(spiffe_id: &str) -> Result<Self, Error> {
        let id = SpiffeId::new(spiffe_id)?;
        let istio = crate::IstioIdentity::from_spiffe_id(&id)?;
        Ok(Caller::Workload {
            namespace: istio.namespace().to_owned(),
            id,
        })
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::External(id) => write!(f, "outside caller {id} (presents a certificate)"),
            Caller::Workload { id, .. } => write!(f, "mesh workload {id}"),
            Caller::Plaintext => f.write_str("plaintext client"),
            Caller::Hbone(id) => write!(f, "outside caller {id} speaking HBONE"),
        }
    }
}

/// Where the call goes: a workload (namespace, pod labels), its port, optionally the Service
/// name (for DestinationRule lookup), and what else the request carries for authorization
/// (IPs, SNI, the HTTP request, a JWT's principal and claims).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The workload's namespace.
    pub namespace: String,
    /// The pod's labels.
    pub labels: Vec<(String, String)>,
    /// The workload (container) port.
    pub port: u16,
    /// The Service name, which DestinationRules name by `host`.
    pub service: Option<String>,
    /// The request's attributes for authorization. Its `port` and `principal` are not read:
    /// the path check sets them from [`Destination::port`] and from what the caller sends.
    pub request: Request,
}

impl Destination {
    /// A workload port.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        namespace: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        port: u16,
    ) -> Self {
        Destination {
            namespace: namespace.to_owned(),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
            port,
            service: None,
            request: Request::tcp(port),
        }
    }

    /// The Service in front of the workload.
    pub fn with_service(mut self, name: &str) -> Self {
        self.service = Some(name.to_owned());
        self
    }

    /// An HTTP request (method and path) instead of a TCP connection.
    pub fn with_http(mut self, method: &str, path: &str) -> Self {
        self.request = self.request.with_http(method, path);
        self
    }

    /// The request's other attributes (IPs, SNI, HTTP, JWT), built on
    /// [`Request`]'s methods; its port and principal are left to the path check.
    pub fn with_request(mut self, request: Request) -> Self {
        self.request = request;
        self
    }
}

/// What goes on the wire from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Mesh mTLS with the caller's SPIFFE ID.
    Mtls,
    /// TLS originated by the client itself (DestinationRule SIMPLE or MUTUAL).
    Tls,
    /// No TLS.
    Plaintext,
    /// HBONE: mTLS 1.3 to port 15008 and an HTTP/2 `CONNECT` to the pod's port, as ztunnel
    /// speaks to ambient pods.
    Hbone,
}

impl Transport {
    /// `mtls`, `tls`, `plaintext` or `hbone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Mtls => "mtls",
            Transport::Tls => "tls",
            Transport::Plaintext => "plaintext",
            Transport::Hbone => "hbone",
        }
    }
}

/// Why ztunnel refuses a caller before authorization (ambient pods).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AmbientRefusal {
    /// The HBONE client's certificate carries no Istio identity
    /// (`spiffe://<td>/ns/<ns>/sa/<sa>`): ztunnel's handshake refuses it.
    NotIstioIdentity {
        /// The caller's SPIFFE ID.
        id: String,
    },
    /// The HBONE client's trust domain is not the destination's own: ztunnel accepts only
    /// that one (no trust-domain aliases).
    TrustDomain {
        /// The caller's trust domain.
        trust_domain: String,
        /// The destination's (the mesh's) trust domain.
        expected: String,
    },
    /// HBONE to a pod that is not in ambient mode: its sidecar does not serve HBONE on
    /// port 15008 (that takes the sidecar's opt-in HBONE support, which the path check does
    /// not assume).
    NotAmbient,
    /// TLS sent straight to the pod's port: ztunnel terminates mTLS only inside HBONE, so
    /// the TLS bytes reach the app, which speaks none, as plain TCP.
    NotTunnelled {
        /// What the caller sent.
        transport: Transport,
    },
}

impl fmt::Display for AmbientRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmbientRefusal::NotIstioIdentity { id } => write!(
                f,
                "refused by ztunnel's handshake: {id} is not an Istio identity spiffe://<td>/ns/<ns>/sa/<sa>"
            ),
            AmbientRefusal::TrustDomain {
                trust_domain,
                expected,
            } => write!(
                f,
                "refused by ztunnel's handshake: trust domain {trust_domain} is not the destination's own ({expected}); ztunnel applies no trust-domain aliases"
            ),
            AmbientRefusal::NotAmbient => f.write_str(
                "refused: the pod is not in ambient mode (no istio.io/dataplane-mode=ambient on it or its namespace, or it has a sidecar): nothing takes HBONE on port 15008 for it",
            ),
            AmbientRefusal::NotTunnelled { transport } => write!(
                f,
                "refused: the pod is in ambient mode and ztunnel terminates mTLS only inside HBONE (port 15008); a {} connection to the app's port reaches the app as plain TCP",
                transport.as_str()
            ),
        }
    }
}

/// The step of the path that decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathStep {
    /// The port's mTLS mode refused the transport (plaintext to STRICT, mTLS to DISABLE).
    Mode {
        /// The port's mode.
        mode: MtlsMode,
        /// The PeerAuthentication that set it (`None`: Istio's default).
        policy: Option<PolicyName>,
        /// What the caller sent.
        transport: Transport,
        /// Who enforced it: the sidecar (no filter chain) or ztunnel (istiod's
        /// `istio_converted_static_strict` DENY of unauthenticated traffic).
        data_plane: DataPlane,
    },
    /// The client originates TLS of its own (DestinationRule SIMPLE/MUTUAL), which the sidecar
    /// does not terminate as mesh mTLS.
    ClientTls {
        /// The DestinationRule.
        rule: PolicyName,
        /// Its mode.
        mode: ClientTlsMode,
    },
    /// The caller's trust domain is not one the sidecar accepts.
    TrustDomain {
        /// The caller's trust domain.
        trust_domain: String,
    },
    /// Authorization decided (allowed or not).
    Authorization(Step),
    /// ztunnel refused the caller before authorization (ambient pods).
    Ambient(AmbientRefusal),
}

impl PathStep {
    /// `mode`, `client-tls`, `trust-domain`, or the authorization step's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PathStep::Mode { .. } => "mode",
            PathStep::ClientTls { .. } => "client-tls",
            PathStep::TrustDomain { .. } => "trust-domain",
            PathStep::Authorization(s) => s.kind(),
            PathStep::Ambient(AmbientRefusal::NotIstioIdentity { .. }) => "hbone-identity",
            PathStep::Ambient(AmbientRefusal::TrustDomain { .. }) => "hbone-trust-domain",
            PathStep::Ambient(AmbientRefusal::NotTunnelled { .. }) => "not-tunnelled",
            PathStep::Ambient(AmbientRefusal::NotAmbient) => "not-ambient",
        }
    }
}

impl fmt::Display for PathStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathStep::Mode {
                mode,
                policy,
                transport,
                data_plane,
            } => {
                let by = policy.as_ref().map_or("Istio's default".to_owned(), |p| {
                    format!("PeerAuthentication {p}")
                });
                if *data_plane == DataPlane::Ambient {
                    return write!(
                        f,
                        "refused by mTLS mode {mode} ({by}): ztunnel denies traffic without a peer identity (istio_converted_static_strict); a {} connection outside HBONE carries none",
                        transport.as_str()
                    );
                }
                match (mode, transport) {
                    (MtlsMode::Strict, _) => write!(
                        f,
                        "refused by mTLS mode STRICT ({by}): a {} connection finds no filter chain",
                        transport.as_str()
                    ),
                    _ => write!(
                        f,
                        "refused by mTLS mode {mode} ({by}): the sidecar does not terminate mTLS, the TLS bytes reach the app"
                    ),
                }
            }
            PathStep::ClientTls { rule, mode } => write!(
                f,
                "refused: DestinationRule {rule} sets tls.mode {mode}, TLS the sidecar does not terminate as mesh mTLS"
            ),
            PathStep::TrustDomain { trust_domain } => write!(
                f,
                "refused: trust domain {trust_domain} is not accepted (not the mesh trust domain, an alias or a caCertificates trust domain)"
            ),
            PathStep::Authorization(s) => s.fmt(f),
            PathStep::Ambient(r) => r.fmt(f),
        }
    }
}

/// The answer of [`Mesh::check`].
#[derive(Debug, Clone)]
pub struct PathCheck {
    allowed: bool,
    step: PathStep,
    data_plane: DataPlane,
    transport: Transport,
    mode: Decision,
    verdict: Option<Verdict>,
    explanation: Vec<String>,
}

impl PathCheck {
    /// The answer, with the result line closing the explanation.
    fn finish(
        allowed: bool,
        step: PathStep,
        data_plane: DataPlane,
        transport: Transport,
        mode: &Decision,
        verdict: Option<Verdict>,
        mut explanation: Vec<String>,
    ) -> Self {
        explanation.push(format!(
            "result: {} — {step}",
            if allowed { "allowed" } else { "refused" }
        ));
        PathCheck {
            allowed,
            step,
            data_plane,
            transport,
            mode: mode.clone(),
            verdict,
            explanation,
        }
    }

    /// True when the call gets through to the app.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
    /// The step that decided.
    pub fn step(&self) -> &PathStep {
        &self.step
    }
    /// One sentence: the deciding step.
    pub fn reason(&self) -> String {
        self.step.to_string()
    }
    /// What the caller sends.
    pub fn transport(&self) -> Transport {
        self.transport
    }
    /// Who decided at the pod: its sidecar, or ztunnel (ambient mode).
    pub fn data_plane(&self) -> DataPlane {
        self.data_plane
    }
    /// The destination port's mTLS mode, with its policy.
    pub fn mode(&self) -> &Decision {
        &self.mode
    }
    /// The authorization verdict, when the call got that far.
    pub fn authorization(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }
    /// Every step, one line each.
    pub fn explanation(&self) -> &[String] {
        &self.explanation
    }
}

/// What a cluster dump shows: mesh config, PeerAuthentications, AuthorizationPolicies and
/// DestinationRules.
#[derive(Debug, Clone)]
pub struct Mesh {
    config: MeshConfig,
    /// `TrustDomainsForValidation` of `config`, computed once.
    accepted: Vec<TrustDomain>,
    peer: PolicySet,
    authz: AuthorizationPolicySet,
    destination_rules: Vec<DestinationRule>,
    /// `destination_rules` indices by namespace.
    rules_by_namespace: HashMap<String, Vec<usize>>,
    /// The `istio.io/dataplane-mode` label of each Namespace object in the dump.
    dataplane_modes: HashMap<String, String>,
    skipped: usize,
}

fn index_rules(rules: &[DestinationRule]) -> HashMap<String, Vec<usize>> {
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, d) in rules.iter().enumerate() {
        out.entry(d.name.namespace().to_owned())
            .or_default()
            .push(i);
    }
    out
}

impl Mesh {
    /// A mesh from its parts.
    pub fn new(
        config: MeshConfig,
        peer: PolicySet,
        authz: AuthorizationPolicySet,
        destination_rules: Vec<DestinationRule>,
    ) -> Self {
        Mesh {
            accepted: config.trust_domains_for_validation(),
            config,
            peer,
            authz,
            rules_by_namespace: index_rules(&destination_rules),
            destination_rules,
            dataplane_modes: HashMap::new(),
            skipped: 0,
        }
    }

    /// Records a namespace's labels (what a `Namespace` object in a dump gives): its
    /// `istio.io/dataplane-mode` decides whether its pods are in ambient mode.
    pub fn with_namespace_labels<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        namespace: &str,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        match labels
            .into_iter()
            .find(|(k, _)| k.as_ref() == DATAPLANE_MODE_LABEL)
        {
            Some((_, v)) => {
                self.dataplane_modes
                    .insert(namespace.to_owned(), v.as_ref().to_owned());
            }
            None => {
                self.dataplane_modes.remove(namespace);
            }
        }
        self
    }

    /// Who enforces policy at `to`'s pod. Ambient (ztunnel) when the pod is labelled
    /// `istio.io/dataplane-mode: ambient`, or its namespace is and the pod is not labelled
    /// `none`, unless the pod has a sidecar (`security.istio.io/tlsMode: istio`: Istio's CNI
    /// leaves such pods out of ambient); the sidecar otherwise.
    pub fn data_plane(&self, to: &Destination) -> DataPlane {
        let label = |k: &str| {
            to.labels
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if label(TLS_MODE_LABEL) == Some("istio") {
            return DataPlane::Sidecar;
        }
        let ambient = match label(DATAPLANE_MODE_LABEL) {
            Some("ambient") => true,
            Some("none") => false,
            _ => self
                .dataplane_modes
                .get(&to.namespace)
                .is_some_and(|m| m == "ambient"),
        };
        if ambient {
            DataPlane::Ambient
        } else {
            DataPlane::Sidecar
        }
    }

    /// Reads a cluster dump (YAML or JSON; a `kind: List` as `kubectl get
    /// namespaces,peerauthentications,authorizationpolicies,destinationrules -A -o json`
    /// prints, or a stream). `mesh_config` is the `istio` ConfigMap (or its `mesh` document);
    /// without it, an `istio` ConfigMap in the dump is used, else Istio's defaults. Namespace
    /// objects give their `istio.io/dataplane-mode` label ([`Mesh::data_plane`]); other kinds
    /// are skipped.
    pub fn from_dump(dump: &str, mesh_config: Option<&str>) -> Result<Self, Error> {
        let config = match mesh_config {
            Some(text) => Some(MeshConfig::from_yaml(text)?),
            None => None,
        };
        Self::from_dump_with(dump, config)
    }

    /// [`Mesh::from_dump`] with the mesh config already read (`None`: an `istio` ConfigMap in
    /// the dump, else Istio's defaults).
    pub fn from_dump_with(dump: &str, mesh_config: Option<MeshConfig>) -> Result<Self, Error> {
        let docs = crate::policy::authorization::read_documents(dump, "cluster dump")?;
        let flat = crate::policy::authorization::flatten_refs(&docs);
        let config = match mesh_config {
            Some(config) => config,
            None => {
                let cm = flat.iter().find(|(_, d)| {
                    d.get("kind").and_then(Value::as_str) == Some("ConfigMap")
                        && d.get("metadata")
                            .and_then(|m| m.get("name"))
                            .and_then(Value::as_str)
                            == Some("istio")
                });
                match cm {
                    Some((_, d)) => MeshConfig::from_yaml(&d.to_string())?,
                    None => MeshConfig::default(),
                }
            }
        };
        let peer = PolicySet::from_flat_refs(flat.iter().cloned(), config.root_namespace())?;
        let authz = AuthorizationPolicySet::from_flat_refs(flat.iter().cloned(), &config)?;
        let mut destination_rules = Vec::new();
        let mut dataplane_modes = HashMap::new();
        let mut skipped = 0;
        for (index, d) in &flat {
            match d.get("kind").and_then(Value::as_str) {
                Some(DESTINATION_RULE_KIND) => {
                    destination_rules.push(DestinationRule::from_value(d, index)?)
                }
                Some("Namespace") => {
                    let meta = d.get("metadata");
                    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
                    let mode = meta
                        .and_then(|m| m.get("labels"))
                        .and_then(|l| l.get(DATAPLANE_MODE_LABEL))
                        .and_then(Value::as_str);
                    match (name, mode) {
                        (Some(n), Some(m)) => {
                            dataplane_modes.insert(n.to_owned(), m.to_owned());
                        }
                        (Some(_), None) => {}
                        (None, _) => {
                            return Err(AuthorizationPolicyError::Document {
                                index: index.clone(),
                                reason: "is a Namespace without metadata.name".to_owned(),
                            }
                            .into());
                        }
                    }
                }
                Some("PeerAuthentication" | "AuthorizationPolicy") => {}
                _ => skipped += 1,
            }
        }
        Ok(Mesh {
            accepted: config.trust_domains_for_validation(),
            config,
            peer,
            authz,
            rules_by_namespace: index_rules(&destination_rules),
            destination_rules,
            dataplane_modes,
            skipped,
        })
    }

    /// The mesh config.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }
    /// The trust domains the destination's sidecar accepts from an mTLS caller
    /// (`TrustDomainsForValidation`: the trust domain, the aliases, then the
    /// `caCertificates` trust domains), computed once when the mesh was built.
    pub fn accepted_trust_domains(&self) -> &[TrustDomain] {
        &self.accepted
    }
    /// The PeerAuthentications.
    pub fn peer_authentications(&self) -> &PolicySet {
        &self.peer
    }
    /// The AuthorizationPolicies.
    pub fn authorization_policies(&self) -> &AuthorizationPolicySet {
        &self.authz
    }
    /// The DestinationRules.
    pub fn destination_rules(&self) -> &[DestinationRule] {
        &self.destination_rules
    }
    /// Documents of kinds the path check does not read.
    pub fn skipped_documents(&self) -> usize {
        self.skipped
    }

    /// The DestinationRule a client sidecar in `caller_ns` uses for `service.namespace`:
    /// its own namespace's first, then the service's, then the root namespace's (istiod's
    /// `PushContext.destinationRule`), each only when exported to the caller's namespace; an
    /// exact host beats a wildcard, a longer wildcard a shorter one. Rules with a
    /// `workloadSelector` are left out (the caller's labels are not known).
    fn destination_rule(
        &self,
        caller_ns: &str,
        fqdn: &str,
        dest_ns: &str,
    ) -> Option<&DestinationRule> {
        for ns in [caller_ns, dest_ns, self.config.root_namespace()] {
            let best = self
                .rules_by_namespace
                .get(ns)
                .into_iter()
                .flatten()
                .filter_map(|i| self.destination_rules.get(*i))
                .filter(|d| d.visible_to(caller_ns) && !d.workload_selector)
                .map(|d| (d.host_match(fqdn), d))
                .filter(|(m, _)| *m > 0)
                .max_by_key(|(m, _)| *m);
            if let Some((_, d)) = best {
                return Some(d);
            }
        }
        None
    }

    /// Walks the path for `caller` to `to`: transport, mTLS mode, trust domain, authorization,
    /// as the pod's data plane ([`Mesh::data_plane`]) enforces them: its sidecar, or ztunnel
    /// for a pod in ambient mode (HBONE, L4 authorization; see [`DataPlane::Ambient`]).
    pub fn check(&self, caller: &Caller, to: &Destination) -> PathCheck {
        match self.data_plane(to) {
            DataPlane::Sidecar => self.check_sidecar(caller, to),
            DataPlane::Ambient => self.check_ambient(caller, to),
        }
    }

    /// The first explanation line: who calls what.
    fn headline(caller: &Caller, to: &Destination) -> String {
        format!(
            "caller: {caller}; destination: namespace {} labels {{{}}} port {}{}",
            to.namespace,
            to.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            to.port,
            to.service
                .as_deref()
                .map(|s| format!(" service {s}"))
                .unwrap_or_default()
        )
    }

    /// The authorization request: `to`'s attributes, its port, the peer's identity.
    fn request(to: &Destination, id: Option<&SpiffeId>) -> Request {
        let mut req = to.request.clone();
        req.port = to.port;
        req.principal = None;
        match id {
            Some(id) => req.with_peer(id),
            None => req,
        }
    }

    fn check_sidecar(&self, caller: &Caller, to: &Destination) -> PathCheck {
        let labels = &to.labels;
        let mut lines = vec![
            Self::headline(caller, to),
            "data plane: the pod's sidecar".to_owned(),
        ];
        let mode = self.peer.explain(&to.namespace, labels, Some(to.port));
        let decided_by = match mode.policy() {
            Some(p) => format!("{} level, {p}", mode.level()),
            None => "Istio's default: no PeerAuthentication sets a mode".to_owned(),
        };
        // 1. transport
        let mut client_tls: Option<(PolicyName, ClientTlsMode)> = None;
        let (transport, id) = match caller {
            Caller::External(id) => {
                lines.push(format!(
                    "1. transport: mTLS with the caller's certificate ({id}), chained to the mesh root"
                ));
                (Transport::Mtls, Some(id))
            }
            Caller::Plaintext => {
                lines.push("1. transport: plaintext".to_owned());
                (Transport::Plaintext, None)
            }
            Caller::Hbone(id) => {
                lines.push(format!(
                    "1. transport: HBONE with {id} to port 15008 of the pod"
                ));
                return PathCheck::finish(
                    false,
                    PathStep::Ambient(AmbientRefusal::NotAmbient),
                    DataPlane::Sidecar,
                    Transport::Hbone,
                    &mode,
                    None,
                    lines,
                );
            }
            Caller::Workload { id, namespace } => {
                let dr = to.service.as_deref().and_then(|svc| {
                    let fqdn = format!("{svc}.{}.svc.cluster.local", to.namespace);
                    self.destination_rule(namespace, &fqdn, &to.namespace)
                });
                let dr_mode = dr.and_then(|d| d.mode_for(to.port).map(|m| (d, m)));
                match dr_mode {
                    Some((d, m)) => {
                        lines.push(format!(
                            "1. transport: DestinationRule {} (host {}) sets tls.mode {m}",
                            d.name, d.host
                        ));
                        match m {
                            ClientTlsMode::IstioMutual => (Transport::Mtls, Some(id)),
                            ClientTlsMode::Disable => (Transport::Plaintext, None),
                            ClientTlsMode::Simple | ClientTlsMode::Mutual => {
                                client_tls = Some((d.name.clone(), m));
                                (Transport::Tls, None)
                            }
                        }
                    }
                    None => {
                        if to.service.is_none() {
                            lines.push("   no service given: DestinationRules (which name services) are not consulted".to_owned());
                        } else if let Some(d) = dr {
                            lines.push(format!(
                                "   DestinationRule {} sets no tls.mode for this port",
                                d.name
                            ));
                        }
                        let ns_mode = self
                            .peer
                            .resolve(&to.namespace, &[] as &[(&str, &str)], None)
                            .mode();
                        let sidecar = labels
                            .iter()
                            .find(|(k, _)| k == TLS_MODE_LABEL)
                            .is_none_or(|(_, v)| v == "istio");
                        if !self.config.enable_auto_mtls() {
                            lines.push("1. transport: plaintext (no DestinationRule TLS and enableAutoMtls is off)".to_owned());
                            (Transport::Plaintext, None)
                        } else if ns_mode == MtlsMode::Disable {
                            lines.push(format!(
                                "1. transport: plaintext (auto mTLS: namespace {} is DISABLE)",
                                to.namespace
                            ));
                            (Transport::Plaintext, None)
                        } else if !sidecar {
                            lines.push(format!("1. transport: plaintext (auto mTLS: the pod is not labelled {TLS_MODE_LABEL}=istio)"));
                            (Transport::Plaintext, None)
                        } else {
                            lines.push(format!(
                                "1. transport: mesh mTLS with {id} (auto mTLS: no DestinationRule TLS, the pod has a sidecar{})",
                                if labels.iter().any(|(k, _)| k == TLS_MODE_LABEL) { "" } else { " — assumed: sidecar-injected pods carry security.istio.io/tlsMode=istio" }
                            ));
                            (Transport::Mtls, Some(id))
                        }
                    }
                }
            }
        };
        // 2. mode
        lines.push(format!(
            "2. mTLS mode of port {}: {} ({decided_by})",
            to.port,
            mode.mode()
        ));
        for l in mode.explanation() {
            lines.push(format!("   PeerAuthentication: {l}"));
        }
        let refuse_mode = matches!(
            (mode.mode(), transport),
            (MtlsMode::Strict, Transport::Plaintext) | (MtlsMode::Disable, Transport::Mtls)
        );
        let finish = |allowed: bool, step: PathStep, verdict: Option<Verdict>, lines| {
            PathCheck::finish(
                allowed,
                step,
                DataPlane::Sidecar,
                transport,
                &mode,
                verdict,
                lines,
            )
        };
        if refuse_mode {
            let step = PathStep::Mode {
                mode: mode.mode(),
                policy: mode.policy().cloned(),
                transport,
                data_plane: DataPlane::Sidecar,
            };
            return finish(false, step, None, lines);
        }
        if let Some((rule, m)) = client_tls {
            if mode.mode() == MtlsMode::Strict {
                lines.push("   STRICT requires a client certificate from the mesh CA".to_owned());
            } else {
                lines.push(
                    "   the sidecar passes TLS without an Istio ALPN through to the app as raw TCP"
                        .to_owned(),
                );
            }
            return finish(false, PathStep::ClientTls { rule, mode: m }, None, lines);
        }
        // 3. trust domain
        if let Some(id) = id {
            let accepted = &self.accepted;
            let td = id.trust_domain();
            let names: Vec<&str> = accepted.iter().map(|t| t.as_str()).collect();
            if !accepted.contains(&td) {
                lines.push(format!(
                    "3. trust domain {td}: not in the accepted list [{}]",
                    names.join(", ")
                ));
                return finish(
                    false,
                    PathStep::TrustDomain {
                        trust_domain: td.to_string(),
                    },
                    None,
                    lines,
                );
            }
            lines.push(format!(
                "3. trust domain {td}: accepted ([{}])",
                names.join(", ")
            ));
            if mode.mode() == MtlsMode::Permissive && matches!(caller, Caller::External(_)) {
                lines.push("   note: under PERMISSIVE the mTLS chain is chosen only when the client offers an Istio ALPN (istio-http/1.1, istio-h2, istio); without one the TLS bytes pass through to the app".to_owned());
            }
        } else {
            lines.push(
                "3. trust domain: no client certificate (plaintext accepted under ".to_owned()
                    + mode.mode().as_str()
                    + ")",
            );
        }
        // 4. authorization
        let req = Self::request(to, id);
        let verdict = self.authz.explain(&to.namespace, labels, &req);
        lines.push(format!("4. authorization: {}", verdict.step()));
        for l in verdict.explanation() {
            lines.push(format!("   {l}"));
        }
        let allowed = verdict.allowed();
        let step = PathStep::Authorization(verdict.step().clone());
        finish(allowed, step, Some(verdict), lines)
    }

    /// The path to a pod in ambient mode, as ztunnel decides it: only HBONE carries an
    /// identity; a STRICT port denies traffic without one; ztunnel's handshake takes only
    /// Istio identities of the destination's own trust domain; authorization at L4
    /// ([`DataPlane::Ambient`]).
    fn check_ambient(&self, caller: &Caller, to: &Destination) -> PathCheck {
        let labels = &to.labels;
        let why_ambient = if labels
            .iter()
            .any(|(k, v)| k == DATAPLANE_MODE_LABEL && v == "ambient")
        {
            format!("the pod is labelled {DATAPLANE_MODE_LABEL}=ambient")
        } else {
            format!(
                "namespace {} is labelled {DATAPLANE_MODE_LABEL}=ambient",
                to.namespace
            )
        };
        let mut lines = vec![
            Self::headline(caller, to),
            format!("data plane: ztunnel (ambient mode: {why_ambient})"),
        ];
        let mode = self.peer.explain(&to.namespace, labels, Some(to.port));
        // 1. transport
        let (transport, id) = match caller {
            Caller::Hbone(id) => {
                lines.push(format!(
                    "1. transport: HBONE with {id} (mTLS 1.3 to port 15008, CONNECT to port {})",
                    to.port
                ));
                (Transport::Hbone, Some(id))
            }
            Caller::External(id) => {
                lines.push(format!(
                    "1. transport: mTLS with {id} straight to port {} (not HBONE)",
                    to.port
                ));
                (Transport::Mtls, None)
            }
            Caller::Plaintext => {
                lines.push("1. transport: plaintext".to_owned());
                (Transport::Plaintext, None)
            }
            Caller::Workload { id, namespace } => {
                let dr = to.service.as_deref().and_then(|svc| {
                    let fqdn = format!("{svc}.{}.svc.cluster.local", to.namespace);
                    self.destination_rule(namespace, &fqdn, &to.namespace)
                });
                match dr.and_then(|d| d.mode_for(to.port).map(|m| (d, m))) {
                    Some((d, ClientTlsMode::Disable)) => {
                        lines.push(format!(
                            "1. transport: plaintext (DestinationRule {} sets tls.mode DISABLE)",
                            d.name
                        ));
                        (Transport::Plaintext, None)
                    }
                    Some((d, m @ (ClientTlsMode::Simple | ClientTlsMode::Mutual))) => {
                        lines.push(format!(
                            "1. transport: TLS of the client's own (DestinationRule {} sets tls.mode {m})",
                            d.name
                        ));
                        (Transport::Tls, None)
                    }
                    Some((d, ClientTlsMode::IstioMutual)) => {
                        lines.push(format!(
                            "1. transport: HBONE with {id} (DestinationRule {} sets ISTIO_MUTUAL; the caller's sidecar tunnels to ambient endpoints)",
                            d.name
                        ));
                        (Transport::Hbone, Some(id))
                    }
                    None if !self.config.enable_auto_mtls() => {
                        lines.push("1. transport: plaintext (no DestinationRule TLS and enableAutoMtls is off)".to_owned());
                        (Transport::Plaintext, None)
                    }
                    None => {
                        lines.push(format!(
                            "1. transport: HBONE with {id} (auto mTLS: the caller's sidecar tunnels to ambient endpoints)"
                        ));
                        (Transport::Hbone, Some(id))
                    }
                }
            }
        };
        // 2. mode
        let effective = match mode.mode() {
            MtlsMode::Strict => MtlsMode::Strict,
            _ => MtlsMode::Permissive,
        };
        lines.push(format!(
            "2. mTLS mode of port {}: {}{} ({})",
            to.port,
            mode.mode(),
            if mode.mode() == MtlsMode::Disable {
                ", which ambient mode does not support: PERMISSIVE"
            } else {
                ""
            },
            match mode.policy() {
                Some(p) => format!("{} level, {p}", mode.level()),
                None => "Istio's default: no PeerAuthentication sets a mode".to_owned(),
            }
        ));
        for l in mode.explanation() {
            lines.push(format!("   PeerAuthentication: {l}"));
        }
        let finish = |allowed: bool, step: PathStep, verdict: Option<Verdict>, lines| {
            PathCheck::finish(
                allowed,
                step,
                DataPlane::Ambient,
                transport,
                &mode,
                verdict,
                lines,
            )
        };
        if transport != Transport::Hbone {
            if effective == MtlsMode::Strict {
                let step = PathStep::Mode {
                    mode: MtlsMode::Strict,
                    policy: mode.policy().cloned(),
                    transport,
                    data_plane: DataPlane::Ambient,
                };
                return finish(false, step, None, lines);
            }
            if matches!(transport, Transport::Mtls | Transport::Tls) {
                let step = PathStep::Ambient(AmbientRefusal::NotTunnelled { transport });
                return finish(false, step, None, lines);
            }
        }
        // 3. identity in ztunnel's handshake
        if let Some(id) = id {
            let own = self.config.trust_domain();
            if crate::IstioIdentity::from_spiffe_id(id).is_err() {
                lines.push(format!("3. identity {id}: not an Istio identity"));
                let step =
                    PathStep::Ambient(AmbientRefusal::NotIstioIdentity { id: id.to_string() });
                return finish(false, step, None, lines);
            }
            let td = id.trust_domain();
            if td != *own {
                lines.push(format!(
                    "3. trust domain {td}: not the destination's own ({own}; ztunnel applies no aliases)"
                ));
                let step = PathStep::Ambient(AmbientRefusal::TrustDomain {
                    trust_domain: td.to_string(),
                    expected: own.to_string(),
                });
                return finish(false, step, None, lines);
            }
            lines.push(format!(
                "3. identity {id}: an Istio identity in the destination's trust domain {own}"
            ));
        } else {
            lines.push(
                "3. identity: none (plaintext accepted under PERMISSIVE; ztunnel sees no peer)"
                    .to_owned(),
            );
        }
        // 4. authorization at ztunnel
        let req = Self::request(to, id);
        let verdict = self
            .authz
            .explain_in(DataPlane::Ambient, &to.namespace, labels, &req);
        lines.push(format!("4. authorization (ztunnel): {}", verdict.step()));
        for l in verdict.explanation() {
            lines.push(format!("   {l}"));
        }
        let allowed = verdict.allowed();
        let step = PathStep::Authorization(verdict.step().clone());
        finish(allowed, step, Some(verdict), lines)
    }
}
