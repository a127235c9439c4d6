//! The reconcile decision: mesh config + desired Secret + the Secret as it is + the clock →
//! what to do. Pure: no I/O, no randomness, no clock of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::bundle::{BundleSet, TrustBundle};
use crate::error::{ControllerError, Error};
use crate::identity::{IstioIdentity, SpiffeId};
use crate::k8s::{ObjectMeta, Secret, SecretBytes};
use crate::mesh::MeshConfig;
use crate::svid::own::{system_time, unix_seconds};
use crate::svid::{RotationPolicy, Svid, verify_svid};
use crate::x509::pem::{parse_pem_certificates, pem_certs};

/// Annotation: the SPIFFE ID of the certificate in `tls.crt`.
pub const ANNOTATION_IDENTITY: &str = "meshtls.io/identity";
/// Annotation: the mesh trust domain the certificate was issued for.
pub const ANNOTATION_TRUST_DOMAIN: &str = "meshtls.io/trust-domain";
/// Annotation: the mesh's trust-domain aliases, comma-separated (empty when none).
pub const ANNOTATION_TRUST_DOMAIN_ALIASES: &str = "meshtls.io/trust-domain-aliases";
/// Annotation: the certificate's NotAfter, RFC 3339 UTC.
pub const ANNOTATION_NOT_AFTER: &str = "meshtls.io/not-after";
/// Annotation: where the certificate came from (e.g. `istiod:istiod.istio-system.svc:15012`,
/// `cacerts:istio-system/cacerts`).
pub const ANNOTATION_SOURCE: &str = "meshtls.io/source";
/// Label on every Secret the controller writes.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "meshtls-controller";

/// The annotations the controller owns, in a fixed order.
pub const ANNOTATIONS: [&str; 5] = [
    ANNOTATION_IDENTITY,
    ANNOTATION_TRUST_DOMAIN,
    ANNOTATION_TRUST_DOMAIN_ALIASES,
    ANNOTATION_NOT_AFTER,
    ANNOTATION_SOURCE,
];

/// Istio's default workload certificate lifetime (`DEFAULT_WORKLOAD_CERT_TTL`, 24 h).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Istio's largest workload certificate lifetime (`MAX_WORKLOAD_CERT_TTL`, 90 days).
pub const MAX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// What the controller keeps: which Secret, for which workload identity, how long the
/// certificates live and when they are renewed, and the name of the source they come from.
///
/// The identity is `spiffe://<mesh trust domain>/ns/<identity namespace>/sa/<service
/// account>`: the trust domain comes from the mesh config at every decision, so a trust
/// domain change in the `istio` ConfigMap re-issues at once.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretSpec {
    meta: ObjectMeta,
    identity_namespace: String,
    service_account: String,
    ttl: Duration,
    rotation: RotationPolicy,
    source: String,
}

fn setting(setting: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> Error {
    ControllerError::InvalidSetting {
        setting,
        value: crate::error::quote(&value.to_string()),
        rule: rule.into(),
    }
    .into()
}

impl SecretSpec {
    /// A spec for Secret `namespace/name` holding the certificate of service account
    /// `identity_namespace/service_account`, from the source named `source`, with Istio's
    /// 24-hour TTL and rotation point.
    ///
    /// ```
    /// use meshtls::controller::SecretSpec;
    /// let spec = SecretSpec::new("alb-gateway-client-certificate-istio", "alb", "alb", "alb-gateway", "cacerts:istio-system/cacerts")?;
    /// assert_eq!(spec.secret_name(), "alb-gateway-client-certificate-istio");
    /// assert!(SecretSpec::new("Bad_Name", "alb", "alb", "gw", "x").is_err());
    /// # Ok::<(), meshtls::Error>(())
    /// ```
    pub fn new(
        name: &str,
        namespace: &str,
        identity_namespace: &str,
        service_account: &str,
        source: &str,
    ) -> Result<Self, Error> {
        let meta = ObjectMeta::new(name, namespace)?;
        // The same check as the identity itself (one SPIFFE path segment each).
        IstioIdentity::new(
            crate::identity::TrustDomain::new("cluster.local")?,
            identity_namespace,
            service_account,
        )?;
        if source.is_empty() || source.chars().any(|c| c.is_control()) {
            return Err(setting(
                "source",
                source,
                "must be non-empty text without control characters",
            ));
        }
        Ok(SecretSpec {
            meta,
            identity_namespace: identity_namespace.to_owned(),
            service_account: service_account.to_owned(),
            ttl: DEFAULT_TTL,
            rotation: RotationPolicy::default(),
            source: source.to_owned(),
        })
    }

    /// The certificate lifetime to ask for: more than a minute, at most 90 days (Istio's cap).
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self, Error> {
        if ttl <= Duration::from_secs(60) || ttl > MAX_TTL {
            return Err(setting(
                "ttl",
                format!("{}s", ttl.as_secs()),
                "must be more than 60 s and at most 90 days",
            ));
        }
        self.ttl = ttl;
        Ok(self)
    }

    /// When to renew (default: Istio's, half the lifetime, jitter 1 %). The jitter is drawn
    /// from the certificate's serial number, so every replica computes the same point.
    pub fn with_rotation(mut self, rotation: RotationPolicy) -> Self {
        self.rotation = rotation;
        self
    }

    /// The Secret's name.
    pub fn secret_name(&self) -> &str {
        self.meta.name()
    }

    /// The Secret's namespace.
    pub fn secret_namespace(&self) -> &str {
        self.meta.namespace()
    }

    /// The namespace of the identity.
    pub fn identity_namespace(&self) -> &str {
        &self.identity_namespace
    }

    /// The service account of the identity.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The certificate lifetime asked for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The rotation policy.
    pub fn rotation(&self) -> RotationPolicy {
        self.rotation
    }

    /// The source name recorded in [`ANNOTATION_SOURCE`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The identity in the mesh's current trust domain.
    pub fn identity(&self, mesh: &MeshConfig) -> Result<SpiffeId, Error> {
        Ok(IstioIdentity::new(
            mesh.trust_domain().clone(),
            &self.identity_namespace,
            &self.service_account,
        )?
        .spiffe_id())
    }

    fn object(&self) -> String {
        format!("{}/{}", self.meta.namespace(), self.meta.name())
    }
}

/// A Secret as read from the API server (only what the decision looks at).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObservedSecret {
    /// `type`.
    pub secret_type: String,
    /// `data`, decoded.
    pub data: BTreeMap<String, Vec<u8>>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: BTreeMap<&str, usize> = self
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        f.debug_struct("ObservedSecret")
            .field("secret_type", &self.secret_type)
            .field("data_sizes", &sizes)
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// What the Secret must hold: `kubernetes.io/tls` with `tls.crt` (leaf and intermediates),
/// `tls.key`, `ca.crt` (the mesh roots) and the [`ANNOTATIONS`].
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredSecret {
    meta: ObjectMeta,
    data: BTreeMap<String, SecretBytes>,
    annotations: BTreeMap<String, String>,
    not_after: SystemTime,
}

impl fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DesiredSecret")
            .field("name", &self.meta.name())
            .field("namespace", &self.meta.namespace())
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("annotations", &self.annotations)
            .finish()
    }
}

impl DesiredSecret {
    /// The Secret's name.
    pub fn name(&self) -> &str {
        self.meta.name()
    }

    /// The Secret's namespace.
    pub fn namespace(&self) -> &str {
        self.meta.namespace()
    }

    /// Always `kubernetes.io/tls`.
    pub fn secret_type(&self) -> &str {
        Secret::TYPE_TLS
    }

    /// `tls.crt`, `tls.key`, `ca.crt`.
    pub fn data(&self) -> &BTreeMap<String, SecretBytes> {
        &self.data
    }

    /// The annotations the controller owns.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    /// The labels the controller sets.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned())])
    }

    /// The certificate's NotAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Whether `observed` already holds this content (type, the three keys, the annotations
    /// the controller owns). Other keys and annotations are someone else's and ignored.
    pub fn is_held_by(&self, observed: &ObservedSecret) -> bool {
        observed.secret_type == Secret::TYPE_TLS
            && self
                .data
                .iter()
                .all(|(k, v)| observed.data.get(k).map(Vec::as_slice) == Some(v.as_bytes()))
            && self
                .annotations
                .iter()
                .all(|(k, v)| observed.annotations.get(k) == Some(v))
    }

    /// The object for a server-side apply: `apiVersion`, `kind`, `metadata` (name,
    /// namespace, labels, annotations), `type` and `data` (base64), as JSON.
    pub fn to_apply_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        let data: serde_json::Map<String, serde_json::Value> = self
            .data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::Value::String(
                        base64::engine::general_purpose::STANDARD.encode(v.as_bytes()),
                    ),
                )
            })
            .collect();
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.meta.name(),
                "namespace": self.meta.namespace(),
                "labels": self.labels(),
                "annotations": self.annotations,
            },
            "type": Secret::TYPE_TLS,
            "data": data,
        })
    }
}

/// Why the controller acts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The Secret does not exist.
    Missing,
    /// The Secret exists with another `type` (the type is immutable: it is replaced).
    WrongType {
        /// The type it has.
        found: String,
    },
    /// `tls.crt`/`tls.key` are absent or unusable (edited by hand, truncated, mismatched).
    Unreadable {
        /// What is wrong.
        reason: String,
    },
    /// The certificate is for another identity (the trust domain changed, or the spec did).
    IdentityChanged {
        /// The identity in the Secret.
        from: String,
        /// The identity wanted now.
        to: String,
    },
    /// The certificate has expired.
    Expired,
    /// The certificate does not chain to the mesh roots (the CA changed).
    NotSignedByMeshRoots {
        /// Why verification failed.
        reason: String,
    },
    /// The rotation point has passed.
    RotationDue,
    /// The certificate stays; `ca.crt` or the annotations changed (an alias or a
    /// `caCertificates` root was added or removed, or someone edited them).
    MetadataChanged,
}

impl Reason {
    /// A short stable name: `missing`, `wrong-type`, `unreadable`, `identity-changed`,
    /// `expired`, `not-signed-by-mesh-roots`, `rotation-due`, `metadata-changed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::WrongType { .. } => "wrong-type",
            Reason::Unreadable { .. } => "unreadable",
            Reason::IdentityChanged { .. } => "identity-changed",
            Reason::Expired => "expired",
            Reason::NotSignedByMeshRoots { .. } => "not-signed-by-mesh-roots",
            Reason::RotationDue => "rotation-due",
            Reason::MetadataChanged => "metadata-changed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("the secret does not exist"),
            Reason::WrongType { found } => {
                write!(f, "the secret has type {found:?}, not kubernetes.io/tls")
            }
            Reason::Unreadable { reason } => {
                write!(f, "the secret's certificate is unusable: {reason}")
            }
            Reason::IdentityChanged { from, to } => {
                write!(f, "the certificate is for {from}, the identity is now {to}")
            }
            Reason::Expired => f.write_str("the certificate has expired"),
            Reason::NotSignedByMeshRoots { reason } => {
                write!(
                    f,
                    "the certificate does not chain to the mesh roots: {reason}"
                )
            }
            Reason::RotationDue => f.write_str("the rotation point has passed"),
            Reason::MetadataChanged => f.write_str("ca.crt or the annotations are out of date"),
        }
    }
}

/// What the controller must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Nothing: the Secret is as it must be. Look again at `recheck_at` (the rotation point).
    Nothing {
        /// When the decision may change by the clock alone.
        recheck_at: SystemTime,
    },
    /// Get a new certificate for `identity` from the source, then call [`complete`].
    Issue {
        /// The identity to ask for.
        identity: SpiffeId,
        /// Why.
        reason: Reason,
        /// The Secret must be deleted before it is written (its type is wrong).
        replace: bool,
    },
    /// Write `secret` (the certificate stays, `ca.crt` or annotations change), or, after
    /// [`complete`], the new certificate.
    Write {
        /// The content.
        secret: DesiredSecret,
        /// Why.
        reason: Reason,
        /// The Secret must be deleted before it is written (its type is wrong).
        replace: bool,
        /// When to look again (the new certificate's rotation point).
        recheck_at: SystemTime,
    },
}

impl Action {
    /// `nothing`, `issue` or `write`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Nothing { .. } => "nothing",
            Action::Issue { .. } => "issue",
            Action::Write { .. } => "write",
        }
    }
}

/// Everything one decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The mesh config from the `istio` (or `istio-<rev>`) ConfigMap.
    pub mesh: &'a MeshConfig,
    /// The Secret to keep.
    pub spec: &'a SecretSpec,
    /// The roots of the certificate source (the CA's root; istiod's `istio-ca-root-cert`).
    /// Empty when not known yet: then the chain is not checked against them and `ca.crt`
    /// keeps what the Secret holds.
    pub source_roots: &'a [CertificateDer<'static>],
    /// The Secret as it is, or `None` when it does not exist.
    pub current: Option<&'a ObservedSecret>,
    /// The time of the decision.
    pub now: SystemTime,
}

/// Decides what the Secret must become.
///
/// In order: a missing Secret, a wrong type, an unreadable or mismatched certificate and key,
/// another identity (a trust-domain change), an expired certificate, a chain that does not
/// lead to the source's roots and a passed rotation point each ask for a new certificate
/// ([`Action::Issue`]); otherwise, when `ca.crt` (the source's roots and every
/// `caCertificates[].pem` of the mesh) or the annotations (identity, trust domain, aliases,
/// not-after, source) differ, the certificate is kept and the Secret rewritten
/// ([`Action::Write`]); otherwise [`Action::Nothing`] until the rotation point.
pub fn decide(inputs: &Inputs<'_>) -> Result<Action, Error> {
    let identity = inputs.spec.identity(inputs.mesh)?;
    let issue = |reason: Reason, replace: bool| Action::Issue {
        identity: identity.clone(),
        reason,
        replace,
    };
    let Some(current) = inputs.current else {
        return Ok(issue(Reason::Missing, false));
    };
    if current.secret_type != Secret::TYPE_TLS {
        let found = current.secret_type.clone();
        return Ok(issue(Reason::WrongType { found }, true));
    }
    let svid = match svid_of(current) {
        Ok(svid) => svid,
        Err(reason) => return Ok(issue(Reason::Unreadable { reason }, false)),
    };
    if svid.spiffe_id() != &identity {
        return Ok(issue(
            Reason::IdentityChanged {
                from: svid.spiffe_id().to_string(),
                to: identity.to_string(),
            },
            false,
        ));
    }
    if inputs.now >= svid.not_after() {
        return Ok(issue(Reason::Expired, false));
    }
    if !inputs.source_roots.is_empty() {
        if let Err(e) = chains_to(&svid, &identity, inputs.source_roots, inputs.now) {
            let reason = e.to_string();
            return Ok(issue(Reason::NotSignedByMeshRoots { reason }, false));
        }
    }
    let rotate_at = rotation_point(&svid, &inputs.spec.rotation);
    if inputs.now >= rotate_at {
        return Ok(issue(Reason::RotationDue, false));
    }
    // The certificate stays: keep the exact bytes of tls.crt and tls.key.
    let ca = match mesh_roots_pem(inputs.mesh, inputs.source_roots, &[])? {
        Some(ca) => ca,
        None => String::from_utf8_lossy(current.data.get("ca.crt").map_or(&[][..], Vec::as_slice))
            .into_owned(),
    };
    let source = current
        .annotations
        .get(ANNOTATION_SOURCE)
        .filter(|s| !s.is_empty())
        .map_or(inputs.spec.source.as_str(), String::as_str);
    let desired = desired_secret(
        inputs.spec,
        inputs.mesh,
        &svid,
        current.data.get("tls.crt").cloned().unwrap_or_default(),
        current.data.get("tls.key").cloned().unwrap_or_default(),
        ca,
        source,
    );
    if desired.is_held_by(current) {
        Ok(Action::Nothing {
            recheck_at: rotate_at,
        })
    } else {
        Ok(Action::Write {
            secret: desired,
            reason: Reason::MetadataChanged,
            replace: false,
            recheck_at: rotate_at,
        })
    }
}

/// Turns the certificate the source issued after [`Action::Issue`] into the Secret to write.
///
/// The certificate must be for the identity [`decide`] asked for, valid now, and chain to the
/// source's roots (`inputs.source_roots`, or the root at the end of the chain the source
/// returned when those are unknown); otherwise it is refused with
/// [`ControllerError::UnfitCertificate`] and the Secret is left as it is.
pub fn complete(inputs: &Inputs<'_>, reason: Reason, issued: &Svid) -> Result<Action, Error> {
    let identity = inputs.spec.identity(inputs.mesh)?;
    let unfit = |why: String| -> Error {
        ControllerError::UnfitCertificate {
            secret: inputs.spec.object(),
            got: issued.spiffe_id().to_string(),
            reason: why,
        }
        .into()
    };
    if issued.spiffe_id() != &identity {
        return Err(unfit(format!("the identity asked for is {identity}")));
    }
    if inputs.now >= issued.not_after() {
        return Err(unfit("it has already expired".to_owned()));
    }
    // The roots: the source's, else what came with the certificate.
    let mut roots: Vec<CertificateDer<'static>> = inputs.source_roots.to_vec();
    if roots.is_empty() {
        roots = issued.trust_bundle_der().to_vec();
    }
    let (presented, chain_root) = split_root(issued.cert_chain_der());
    if roots.is_empty() {
        if let Some(root) = chain_root {
            roots.push(root.clone());
        }
    }
    if roots.is_empty() {
        return Err(unfit(
            "no root is known: the source gave neither a root nor a trust bundle".to_owned(),
        ));
    }
    if let Err(e) = chains_to(issued, &identity, &roots, inputs.now) {
        return Err(unfit(format!("it does not chain to the mesh roots: {e}")));
    }
    let ca = mesh_roots_pem(inputs.mesh, &roots, &[])?.unwrap_or_default();
    let key = issued.private_key_pem();
    let desired = desired_secret(
        inputs.spec,
        inputs.mesh,
        issued,
        pem_certs(presented).into_bytes(),
        key.as_bytes().to_vec(),
        ca,
        &inputs.spec.source,
    );
    let replace = inputs
        .current
        .is_some_and(|c| c.secret_type != Secret::TYPE_TLS);
    Ok(Action::Write {
        secret: desired,
        reason,
        replace,
        recheck_at: rotation_point(issued, &inputs.spec.rotation),
    })
}

/// What to do after the source or the API server failed: nothing is written (a valid
/// certificate is never replaced by nothing), and the next attempt comes after a capped
/// exponential backoff: 1 s, 2 s, 4 s ... up to `cap`, but never later than the current
/// certificate's rotation point when that is still ahead (so a long outage does not let a
/// valid certificate run out unattended).
pub fn after_failure(inputs: &Inputs<'_>, attempt: u32, cap: Duration) -> Action {
    let delay = backoff(attempt, cap);
    let mut at = inputs.now + delay;
    if let Some(svid) = inputs.current.and_then(|c| svid_of(c).ok()) {
        let rotate_at = rotation_point(&svid, &inputs.spec.rotation);
        if rotate_at > inputs.now && rotate_at < at {
            at = rotate_at;
        }
    }
    Action::Nothing { recheck_at: at }
}

/// The capped exponential backoff of [`after_failure`]: `min(2^attempt s, cap)`, at least 1 s.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let secs = 1u64.checked_shl(attempt.min(32)).unwrap_or(u64::MAX);
    Duration::from_secs(secs)
        .min(cap)
        .max(Duration::from_secs(1))
}

/// Whether `observed` holds a certificate for `identity` that is valid at `now` (what
/// `/readyz` reports).
pub fn holds_valid_certificate(
    observed: &ObservedSecret,
    identity: &SpiffeId,
    now: SystemTime,
) -> bool {
    svid_of(observed)
        .is_ok_and(|s| s.spiffe_id() == identity && s.not_before() <= now && now < s.not_after())
}

/// The rotation point of `svid` under `policy`: `not_after - lifetime * ratio`, with the
/// jitter in `[-jitter, +jitter]` drawn from a digest of the serial number, so that the point
/// is the same on every replica and across restarts.
pub fn rotation_point(svid: &Svid, policy: &RotationPolicy) -> SystemTime {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, svid.serial());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest.as_ref()[..8]);
    let unit = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    let ratio = (policy.grace_ratio + (unit * 2.0 - 1.0) * policy.jitter).clamp(0.0, 1.0);
    let nb = unix_seconds(svid.not_before());
    let na = unix_seconds(svid.not_after());
    let lifetime = (na - nb).max(0) as f64;
    system_time(na - (lifetime * ratio).round() as i64)
}

fn svid_of(current: &ObservedSecret) -> Result<Svid, String> {
    let text = |key: &str| -> Result<&str, String> {
        let bytes = current
            .data
            .get(key)
            .ok_or_else(|| format!("{key} is missing"))?;
        std::str::from_utf8(bytes).map_err(|_| format!("{key} is not UTF-8 PEM text"))
    };
    let crt = text("tls.crt")?;
    let key = text("tls.key")?;
    Svid::from_pem(crt, key).map_err(|e| e.to_string())
}

fn chains_to(
    svid: &Svid,
    identity: &SpiffeId,
    roots: &[CertificateDer<'static>],
    now: SystemTime,
) -> Result<(), Error> {
    let bundle = TrustBundle::new(identity.trust_domain(), roots.iter().cloned())?;
    let bundles = BundleSet::new().with_bundle(bundle)?;
    let (presented, _) = split_root(svid.cert_chain_der());
    let secs = u64::try_from(unix_seconds(now)).unwrap_or(0);
    verify_svid(
        presented,
        &bundles,
        UnixTime::since_unix_epoch(Duration::from_secs(secs)),
    )?;
    Ok(())
}

/// The chain without a trailing self-issued root, and that root.
fn split_root<'a>(
    chain: &'a [CertificateDer<'static>],
) -> (
    &'a [CertificateDer<'static>],
    Option<&'a CertificateDer<'static>>,
) {
    if let [rest @ .., last] = chain {
        if !rest.is_empty()
            && crate::x509::cert::CertInfo::parse(last.as_ref())
                .is_ok_and(|c| c.subject_der == c.issuer_der)
        {
            return (rest, Some(last));
        }
    }
    (chain, None)
}

/// `ca.crt`: the source's roots, then every `caCertificates[].pem`, then `extra`, each
/// certificate once, in that order; `None` when there is none at all.
fn mesh_roots_pem(
    mesh: &MeshConfig,
    source_roots: &[CertificateDer<'static>],
    extra: &[CertificateDer<'static>],
) -> Result<Option<String>, Error> {
    let mut all: Vec<CertificateDer<'static>> = Vec::new();
    let mut push = |c: CertificateDer<'static>| {
        if !all.iter().any(|x| x.as_ref() == c.as_ref()) {
            all.push(c);
        }
    };
    for c in source_roots {
        push(c.clone());
    }
    for (i, pem) in mesh.ca_certificate_pems().iter().enumerate() {
        let certs = parse_pem_certificates(pem).map_err(|reason| ControllerError::BadObject {
            object: format!("mesh config caCertificates[{i}].pem"),
            reason,
        })?;
        for c in certs {
            push(c);
        }
    }
    for c in extra {
        push(c.clone());
    }
    Ok((!all.is_empty()).then(|| pem_certs(&all)))
}

fn desired_secret(
    spec: &SecretSpec,
    mesh: &MeshConfig,
    svid: &Svid,
    tls_crt: Vec<u8>,
    tls_key: Vec<u8>,
    ca_crt: String,
    source: &str,
) -> DesiredSecret {
    let mut data = BTreeMap::new();
    data.insert("tls.crt".to_owned(), SecretBytes::new(tls_crt));
    data.insert("tls.key".to_owned(), SecretBytes::new(tls_key));
    data.insert("ca.crt".to_owned(), SecretBytes::new(ca_crt.into_bytes()));
    let aliases: Vec<String> = mesh
        .trust_domain_aliases()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let annotations = BTreeMap::from([
        (ANNOTATION_IDENTITY.to_owned(), svid.spiffe_id().to_string()),
        (
            ANNOTATION_TRUST_DOMAIN.to_owned(),
            mesh.trust_domain().to_string(),
        ),
        (
            ANNOTATION_TRUST_DOMAIN_ALIASES.to_owned(),
            aliases.join(","),
        ),
        (
            ANNOTATION_NOT_AFTER.to_owned(),
            crate::x509::time::fmt_time(unix_seconds(svid.not_after())),
        ),
        (ANNOTATION_SOURCE.to_owned(), source.to_owned()),
    ]);
    DesiredSecret {
        meta: spec.meta.clone(),
        data,
        annotations,
        not_after: svid.not_after(),
    }
}
