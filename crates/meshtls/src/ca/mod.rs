//! A mesh CA that issues X.509-SVIDs exactly as Istio's CA does.
//!
//! [`MeshCa`] creates a self-signed root with istiod's defaults (RSA 2048, ten years,
//! subject `O=<trust domain>`, CA, keyCertSign), an intermediate under a root (the
//! offline-root, per-cluster-intermediate flow of Istio's "plug in CA certificates" guide),
//! or loads Istio's plug-in layout (`ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`,
//! `root-cert.pem`) and the `kubernetes.io/tls` layout (`tls.crt`, `tls.key`, `ca.crt`),
//! checking what istiod checks.
//!
//! Workload certificates follow istiod's `genCertTemplateFromCSR` exactly: empty subject, one
//! URI SAN (the SPIFFE ID) in a critical SAN extension (plus any DNS names you ask for), KU
//! digitalSignature + keyEncipherment (critical), EKU serverAuth + clientAuth, basic
//! constraints CA:false, a random positive serial of up to 128 bits, NotBefore two minutes in
//! the past, NotAfter `now + ttl` clamped to the CA's NotAfter; a TTL over 90 days is refused,
//! and so is signing with an expired CA. The chain comes back in Istio's order: leaf,
//! intermediates, root.
//!
//! ```
//! use std::time::Duration;
//! use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
//! use meshtls::{SpiffeId, TrustDomain};
//!
//! // An offline root and a per-cluster intermediate.
//! let mut root_params = CaParams::new(TrustDomain::new("cluster.local")?);
//! root_params.key = KeyKind::EcP384;
//! let root = MeshCa::create(&root_params)?;
//! let mut cluster = CaParams::intermediate(TrustDomain::new("cluster.local")?);
//! cluster.key = KeyKind::EcP256;
//! cluster.common_name = Some("cluster-1 intermediate".to_owned());
//! let ca = root.create_intermediate(&cluster)?;
//!
//! // A client certificate for a gateway, valid for 12 hours.
//! let id = SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc")?;
//! let svid = ca.issue(&id, &IssueParams { ttl: Duration::from_secs(12 * 3600), ..Default::default() })?;
//! assert_eq!(svid.cert_chain_der().len(), 3); // leaf, intermediate, root
//! let secret = svid.to_k8s_secret("agc-mesh-client", "gateway")?;
//! assert!(secret.to_yaml()?.contains("kubernetes.io/tls"));
//! # Ok::<(), meshtls::Error>(())
//! ```

pub(crate) mod cert;
mod csr;
pub(crate) mod der;
pub(crate) mod fs;
pub(crate) mod key;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use self::cert::{CaTemplate, CertInfo, KU_KEY_CERT_SIGN, LeafTemplate};
pub use self::key::KeyKind;
use self::key::SigningKey;
use crate::error::{CaError, Error};
use crate::identity::{SpiffeId, TrustDomain};
use crate::k8s::{ConfigMap, Secret};
pub use crate::svid::own::{RotationPolicy, Svid};
use crate::svid::own::{
    certificates_from_pem, pem_certs, private_key_from_pem, system_time, unix_seconds,
};

/// Istio's default workload certificate lifetime (`DEFAULT_WORKLOAD_CERT_TTL`).
pub const DEFAULT_WORKLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
/// Istio's maximum workload certificate lifetime (`MAX_WORKLOAD_CERT_TTL`); longer requests
/// are refused, not clamped.
pub const MAX_WORKLOAD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Istio's self-signed root lifetime (`CITADEL_SELF_SIGNED_CA_CERT_TTL`, 3650 days).
pub const DEFAULT_ROOT_TTL: Duration = Duration::from_secs(3650 * 24 * 3600);
/// Lifetime of an intermediate made by [`CaParams::intermediate`] (Istio's cert tooling uses
/// 730 days for per-cluster intermediates).
pub const DEFAULT_INTERMEDIATE_TTL: Duration = Duration::from_secs(730 * 24 * 3600);
/// How far NotBefore is backdated (`ClockSkewGracePeriod`).
pub const CLOCK_SKEW_GRACE: Duration = Duration::from_secs(120);
/// Istio re-issues its self-signed root once less than this share of its lifetime is left
/// (`CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE` = 20).
pub const ROOT_ROTATION_GRACE_RATIO: f64 = 0.2;

/// How to make a CA certificate (root or intermediate). Plain data, rcgen style: start from
/// [`CaParams::new`] (istiod's self-signed root) or [`CaParams::intermediate`] and change
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaParams {
    /// The trust domain the CA serves. It becomes the default organization.
    pub trust_domain: TrustDomain,
    /// The CA's key (istiod: RSA 2048).
    pub key: KeyKind,
    /// Lifetime (istiod's root: 3650 days). An intermediate's is clamped to its issuer's.
    pub ttl: Duration,
    /// Subject `O`; the trust domain's name when `None` (istiod's choice).
    pub organization: Option<String>,
    /// Subject `CN`; istiod's root has none. An intermediate needs a subject that differs
    /// from its issuer's, which a common name gives it.
    pub common_name: Option<String>,
    /// `pathLenConstraint` of the basic constraints (none on istiod's root; 0 on an
    /// intermediate that only signs workloads).
    pub path_len: Option<u8>,
    /// Put the trust domain's SPIFFE ID (`spiffe://<td>`) in a URI SAN of the CA
    /// certificate, as the X.509-SVID standard suggests for signing certificates. istiod does
    /// not, so the default is `false`. No URI name constraints are ever added (rustls-webpki
    /// rejects them).
    pub trust_domain_san: bool,
}

impl CaParams {
    /// istiod's self-signed root: RSA 2048, 3650 days, `O=<trust domain>`, no CN.
    pub fn new(trust_domain: TrustDomain) -> Self {
        CaParams {
            trust_domain,
            key: KeyKind::Rsa2048,
            ttl: DEFAULT_ROOT_TTL,
            organization: None,
            common_name: None,
            path_len: None,
            trust_domain_san: false,
        }
    }

    /// A per-cluster intermediate: RSA 2048, 730 days, `O=<trust domain>, CN=Intermediate
    /// CA`, path length 0 (it signs workloads only).
    pub fn intermediate(trust_domain: TrustDomain) -> Self {
        CaParams {
            ttl: DEFAULT_INTERMEDIATE_TTL,
            common_name: Some("Intermediate CA".to_owned()),
            path_len: Some(0),
            ..CaParams::new(trust_domain)
        }
    }
}

impl Default for CaParams {
    /// [`CaParams::new`] for `cluster.local`, Istio's default trust domain.
    fn default() -> Self {
        CaParams::new(TrustDomain::from_validated(
            crate::identity::CLUSTER_LOCAL.to_owned(),
        ))
    }
}

/// How to issue a workload certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueParams {
    /// Requested lifetime (default 24 h; at most 90 days). NotAfter is clamped to the CA's.
    pub ttl: Duration,
    /// Kind of the fresh key pair (default P-256).
    pub key: KeyKind,
    /// Extra DNS SANs after the SPIFFE ID (default none).
    pub dns_names: Vec<String>,
}

impl Default for IssueParams {
    fn default() -> Self {
        IssueParams {
            ttl: DEFAULT_WORKLOAD_TTL,
            key: KeyKind::EcP256,
            dns_names: Vec::new(),
        }
    }
}

/// On-disk layouts of CA material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaLayout {
    /// Istio's plug-in `cacerts`: `ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`,
    /// `root-cert.pem`.
    Istio,
    /// `kubernetes.io/tls` (cert-manager's shape): `tls.crt` (signing certificate and its
    /// intermediates), `tls.key`, `ca.crt` (root).
    KubernetesTls,
}

const ISTIO_FILES: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];
const TLS_FILES: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// A certificate chain signed from a CSR, without the private key (which the requester
/// keeps). Combine it with the key through [`IssuedCertificate::into_svid`].
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    bundle: Arc<Vec<CertificateDer<'static>>>,
    not_before: i64,
    not_after: i64,
    serial: Vec<u8>,
}

impl IssuedCertificate {
    /// The SPIFFE ID put in the certificate (the caller's, never the CSR's).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
    /// The chain as istiod returns it: leaf, intermediates, root.
    pub fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
    /// The chain as PEM, leaf first.
    pub fn cert_chain_pem(&self) -> String {
        pem_certs(&self.chain)
    }
    /// The CA's roots.
    pub fn trust_bundle_der(&self) -> &[CertificateDer<'static>] {
        &self.bundle
    }
    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        system_time(self.not_before)
    }
    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        system_time(self.not_after)
    }
    /// The serial number (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }
    /// Joins the chain with the requester's private key into an [`Svid`], checking that the
    /// key belongs to the leaf.
    pub fn into_svid(
        self,
        private_key: &rustls_pki_types::PrivateKeyDer<'_>,
    ) -> Result<Svid, Error> {
        let roots = self.bundle.as_ref().clone();
        Ok(Svid::from_der(self.chain, private_key)?.with_trust_bundle(roots))
    }
}

/// A mesh CA: a signing certificate and key, the chain up to a root, and the root bundle.
///
/// `Send + Sync`: share it behind an `Arc` and issue from many threads; [`MeshCa::issue_many`]
/// does that for you.
pub struct MeshCa {
    key: SigningKey,
    signing: CertInfo,
    /// What follows a leaf in an issued chain: the signing certificate, intermediates, root.
    tail: Vec<CertificateDer<'static>>,
    roots: Arc<Vec<CertificateDer<'static>>>,
    template: LeafTemplate,
    trust_domain: Option<TrustDomain>,
    /// The earliest NotAfter along `tail`, and which certificate has it.
    valid_until: i64,
    valid_until_what: String,
}

impl fmt::Debug for MeshCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshCa")
            .field(
                "trust_domain",
                &self.trust_domain.as_ref().map(TrustDomain::as_str),
            )
            .field("key", &self.key.describe())
            .field("self_signed", &self.is_self_signed())
            .field("chain_len", &self.tail.len())
            .field("not_after", &self.signing.not_after)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

fn now_unix() -> i64 {
    unix_seconds(SystemTime::now())
}

fn check_positive(ttl: Duration) -> Result<i64, CaError> {
    if ttl.as_secs() == 0 {
        return Err(CaError::InvalidTtl {
            ttl_secs: 0,
            rule: "a lifetime must be at least one second",
        });
    }
    i64::try_from(ttl.as_secs()).map_err(|_| CaError::InvalidTtl {
        ttl_secs: ttl.as_secs(),
        rule: "a lifetime must end before the year 10000",
    })
}

fn check_workload_ttl(ttl: Duration) -> Result<i64, CaError> {
    let secs = check_positive(ttl)?;
    if ttl > MAX_WORKLOAD_TTL {
        return Err(CaError::InvalidTtl {
            ttl_secs: ttl.as_secs(),
            rule: "exceeds istio's maximum workload certificate ttl of 90 days (MAX_WORKLOAD_CERT_TTL)",
        });
    }
    Ok(secs)
}

/// Checks an extra DNS SAN: RFC 1123 host name, optionally with a leading `*.` wildcard label.
fn check_dns_name(name: &str) -> Result<(), CaError> {
    let err = |rule: &'static str| CaError::InvalidDnsName {
        name: name.to_owned(),
        rule,
    };
    if name.is_empty() {
        return Err(err("must not be empty"));
    }
    if name.len() > 253 {
        return Err(err("must be at most 253 characters"));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(err("an ip address is not a dns name"));
    }
    if name == "*" {
        return Err(err("a wildcard needs a domain after it (*.example.com)"));
    }
    for (i, label) in name.split('.').enumerate() {
        if label.is_empty() {
            return Err(err("must not have empty labels (or a trailing dot)"));
        }
        if i == 0 && label == "*" {
            continue;
        }
        if label.len() > 63 {
            return Err(err("a label must be at most 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(err(
                "labels are limited to letters, digits and '-' (a wildcard only as the whole first label)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err("a label must not start or end with '-'"));
        }
    }
    Ok(())
}

fn check_workload_id(id: &SpiffeId) -> Result<(), CaError> {
    if id.is_trust_domain_id() {
        return Err(CaError::IdentityWithoutPath {
            id: id.as_str().to_owned(),
        });
    }
    Ok(())
}

/// Reads a file into a zeroizing string.
fn read_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| Error::io("read", path, &e))
}

/// The four (or three) pieces of CA material, each with the label used in errors.
struct Material<'a> {
    ca_cert: (&'a str, String),
    ca_key: (&'a str, String),
    chain: (&'a str, String),
    roots: (&'a str, String),
    /// In the `kubernetes.io/tls` layout, `tls.crt` may carry the chain after the signing
    /// certificate.
    cert_file_may_hold_chain: bool,
}

impl MeshCa {
    /// Creates a self-signed root CA (istiod's `NewSelfSignedIstioCAOptions` with `params`).
    pub fn create(params: &CaParams) -> Result<MeshCa, Error> {
        Self::create_at(params, SystemTime::now())
    }

    /// [`MeshCa::create`] with NotBefore = `now` (istiod does not backdate CA certificates).
    pub fn create_at(params: &CaParams, now: SystemTime) -> Result<MeshCa, Error> {
        let ttl = check_positive(params.ttl)?;
        let subject = subject_of(params)?;
        let key = SigningKey::generate(params.key)?;
        let spki = key.spki();
        let not_before = unix_seconds(now);
        let uri = params.trust_domain.id();
        let template = CaTemplate {
            subject: &subject,
            spki: &spki,
            not_before,
            not_after: not_before.saturating_add(ttl),
            path_len: params.path_len,
            uri_san: params.trust_domain_san.then_some(uri.as_str()),
        };
        let der = CertificateDer::from(cert::build_ca(&template, None, &key)?);
        let signing = CertInfo::parse(der.clone(), "root certificate")?;
        Ok(MeshCa::assemble(
            key,
            signing,
            vec![der.clone()],
            vec![der],
            Some(params.trust_domain.clone()),
        ))
    }

    /// Creates an intermediate CA signed by this CA (Istio's offline root with per-cluster
    /// intermediates). Its NotAfter is clamped to this CA's; the new CA issues chains
    /// `leaf, intermediate, ..., root` and trusts this CA's roots.
    pub fn create_intermediate(&self, params: &CaParams) -> Result<MeshCa, Error> {
        self.create_intermediate_at(params, SystemTime::now())
    }

    /// [`MeshCa::create_intermediate`] at a given time.
    pub fn create_intermediate_at(
        &self,
        params: &CaParams,
        now: SystemTime,
    ) -> Result<MeshCa, Error> {
        let ttl = check_positive(params.ttl)?;
        let now = unix_seconds(now);
        self.check_not_expired(now)?;
        if self.signing.path_len == Some(0) {
            return Err(CaError::InvalidParam {
                param: "issuer",
                value: self.describe_subject(),
                rule: "its pathLenConstraint of 0 forbids signing another ca".to_owned(),
            }
            .into());
        }
        let subject = subject_of(params)?;
        if subject == self.signing.subject() {
            return Err(CaError::InvalidParam {
                param: "intermediate subject",
                value: self.describe_subject(),
                rule: "must differ from its issuer's subject (set common_name)".to_owned(),
            }
            .into());
        }
        let key = SigningKey::generate(params.key)?;
        let spki = key.spki();
        let uri = params.trust_domain.id();
        let template = CaTemplate {
            subject: &subject,
            spki: &spki,
            not_before: now,
            not_after: now.saturating_add(ttl).min(self.valid_until),
            path_len: params.path_len,
            uri_san: params.trust_domain_san.then_some(uri.as_str()),
        };
        let issuer_key_id = self.signing.key_id_for_children();
        let der = CertificateDer::from(cert::build_ca(
            &template,
            Some((self.signing.subject(), &issuer_key_id)),
            &self.key,
        )?);
        let signing = CertInfo::parse(der.clone(), "intermediate certificate")?;
        let mut tail = Vec::with_capacity(self.tail.len() + 1);
        tail.push(der);
        tail.extend(self.tail.iter().cloned());
        Ok(MeshCa::assemble(
            key,
            signing,
            tail,
            self.roots.as_ref().clone(),
            Some(params.trust_domain.clone()),
        ))
    }

    fn assemble(
        key: SigningKey,
        signing: CertInfo,
        tail: Vec<CertificateDer<'static>>,
        roots: Vec<CertificateDer<'static>>,
        trust_domain: Option<TrustDomain>,
    ) -> MeshCa {
        let template = LeafTemplate::new(&key, signing.subject(), &signing.key_id_for_children());
        let mut valid_until = signing.not_after;
        let mut valid_until_what = "the signing certificate".to_owned();
        for (i, c) in tail.iter().enumerate().skip(1) {
            if let Ok(info) = CertInfo::parse(c.clone(), "chain") {
                if info.not_after < valid_until {
                    valid_until = info.not_after;
                    valid_until_what = if i + 1 == tail.len() {
                        "the root certificate".to_owned()
                    } else {
                        format!("intermediate certificate {i} of the chain")
                    };
                }
            }
        }
        let trust_domain = trust_domain.or_else(|| match signing.uri_sans.as_slice() {
            [uri] => SpiffeId::new(uri)
                .ok()
                .filter(SpiffeId::is_trust_domain_id)
                .map(|id| id.trust_domain()),
            _ => None,
        });
        MeshCa {
            key,
            signing,
            tail,
            roots: Arc::new(roots),
            template,
            trust_domain,
            valid_until,
            valid_until_what,
        }
    }

    /// Loads CA material from a directory in Istio's plug-in layout (`ca-cert.pem`,
    /// `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`: all four must be present) or, when
    /// none of those exist, the `kubernetes.io/tls` layout (`tls.crt`, `tls.key`, `ca.crt`).
    ///
    /// Checks what istiod checks: the signing certificate is a CA, the key matches it, it
    /// chains to a certificate of the root file through the chain file, and every certificate
    /// on that path is within its validity. Each failure names the file.
    pub fn load(dir: impl AsRef<Path>) -> Result<MeshCa, Error> {
        let dir = dir.as_ref();
        std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, &e))?;
        let present = |f: &str| dir.join(f).exists();
        let istio_present: Vec<&str> = ISTIO_FILES.into_iter().filter(|f| present(f)).collect();
        let tls_present: Vec<&str> = TLS_FILES.into_iter().filter(|f| present(f)).collect();
        let missing = |files: &[&str]| CaError::MissingFiles {
            dir: dir.display().to_string(),
            missing: files
                .iter()
                .filter(|f| !present(f))
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        };
        let label = |f: &str| dir.join(f).display().to_string();
        if !istio_present.is_empty() {
            if istio_present.len() != ISTIO_FILES.len() {
                return Err(missing(&ISTIO_FILES).into());
            }
            let texts = ISTIO_FILES.map(|f| read_file(&dir.join(f)));
            let [cert, key, chain, roots] = texts;
            let (cert, key, chain, roots) = (cert?, key?, chain?, roots?);
            return MeshCa::from_material(&Material {
                ca_cert: (&cert, label("ca-cert.pem")),
                ca_key: (&key, label("ca-key.pem")),
                chain: (&chain, label("cert-chain.pem")),
                roots: (&roots, label("root-cert.pem")),
                cert_file_may_hold_chain: false,
            });
        }
        if !tls_present.is_empty() {
            if tls_present.len() != TLS_FILES.len() {
                return Err(missing(&TLS_FILES).into());
            }
            let cert = read_file(&dir.join("tls.crt"))?;
            let key = read_file(&dir.join("tls.key"))?;
            let roots = read_file(&dir.join("ca.crt"))?;
            return MeshCa::from_material(&Material {
                ca_cert: (&cert, label("tls.crt")),
                ca_key: (&key, label("tls.key")),
                chain: ("", label("tls.crt")),
                roots: (&roots, label("ca.crt")),
                cert_file_may_hold_chain: true,
            });
        }
        Err(CaError::MissingFiles {
            dir: dir.display().to_string(),
            missing: "ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem (or tls.crt, tls.key, ca.crt)"
                .to_owned(),
        }
        .into())
    }

    /// Builds a CA from the PEM contents of Istio's four plug-in files. `cert_chain_pem` may
    /// be empty when the signing certificate is issued directly by a root, and
    /// `root_cert_pem` may be empty when the signing certificate is itself the root.
    pub fn from_pem(
        ca_cert_pem: &str,
        ca_key_pem: &str,
        cert_chain_pem: &str,
        root_cert_pem: &str,
    ) -> Result<MeshCa, Error> {
        MeshCa::from_material(&Material {
            ca_cert: (ca_cert_pem, "ca-cert.pem".to_owned()),
            ca_key: (ca_key_pem, "ca-key.pem".to_owned()),
            chain: (cert_chain_pem, "cert-chain.pem".to_owned()),
            roots: (root_cert_pem, "root-cert.pem".to_owned()),
            cert_file_may_hold_chain: false,
        })
    }

    fn from_material(m: &Material<'_>) -> Result<MeshCa, Error> {
        MeshCa::from_material_at(m, now_unix())
    }

    fn from_material_at(m: &Material<'_>, now: i64) -> Result<MeshCa, Error> {
        let (cert_pem, cert_what) = (&m.ca_cert.0, m.ca_cert.1.as_str());
        let mut cert_ders = certificates_from_pem(cert_pem, cert_what)?;
        if cert_ders.len() > 1 && !m.cert_file_may_hold_chain {
            return Err(CaError::Material {
                what: cert_what.to_owned(),
                reason: format!(
                    "holds {} certificates; only the signing certificate belongs here (its chain goes in cert-chain.pem)",
                    cert_ders.len()
                ),
            }
            .into());
        }
        let mut chain_ders = cert_ders.split_off(1);
        let signing = CertInfo::parse(cert_ders.remove(0), cert_what)?;
        if !signing.is_ca {
            return Err(CaError::NotCa {
                what: cert_what.to_owned(),
                reason: "basicConstraints cA is not true".to_owned(),
            }
            .into());
        }
        if signing
            .key_usage
            .is_some_and(|ku| ku & KU_KEY_CERT_SIGN == 0)
        {
            return Err(CaError::NotCa {
                what: cert_what.to_owned(),
                reason: "its key usage lacks keyCertSign".to_owned(),
            }
            .into());
        }

        let key_what = m.ca_key.1.as_str();
        let key_der = private_key_from_pem(m.ca_key.0, key_what)?;
        let key = SigningKey::from_key_der(&key_der, key_what)?;
        let own = key.spki();
        let mine = key::parse_spki(&own, key_what)?;
        let theirs = key::parse_spki(signing.spki(), cert_what)?;
        if mine.kind != theirs.kind || mine.key != theirs.key {
            return Err(CaError::KeyMismatch {
                key: key_what.to_owned(),
                cert: cert_what.to_owned(),
            }
            .into());
        }

        let chain_what = m.chain.1.as_str();
        if !m.chain.0.trim().is_empty() {
            chain_ders.extend(certificates_from_pem(m.chain.0, chain_what)?);
        }
        // Istio's sample cert-chain.pem starts with the signing certificate itself.
        if chain_ders.first() == Some(&signing.der) {
            chain_ders.remove(0);
        }
        let roots_what = m.roots.1.as_str();
        let roots: Vec<CertificateDer<'static>> = if m.roots.0.trim().is_empty() {
            if !signing.is_self_issued() {
                return Err(CaError::Material {
                    what: roots_what.to_owned(),
                    reason: "holds no certificate, and the signing certificate is not self-signed"
                        .to_owned(),
                }
                .into());
            }
            vec![signing.der.clone()]
        } else {
            certificates_from_pem(m.roots.0, roots_what)?
        };
        let root_infos = roots
            .iter()
            .map(|r| CertInfo::parse(r.clone(), roots_what))
            .collect::<Result<Vec<_>, _>>()?;
        // The chain file may end with the root (Istio's sample does).
        while chain_ders.last().is_some_and(|c| roots.contains(c)) {
            chain_ders.pop();
        }

        let mut path: Vec<CertInfo> = vec![signing.clone()];
        for (i, der_bytes) in chain_ders.into_iter().enumerate() {
            let what = format!("certificate {} of {chain_what}", i + 1);
            let info = CertInfo::parse(der_bytes, &what)?;
            let child = path.last().ok_or(CaError::Crypto {
                action: "walking the chain",
            })?;
            child
                .check_issued_by(&info)
                .map_err(|reason| CaError::BrokenChain {
                    what: if i == 0 {
                        cert_what.to_owned()
                    } else {
                        format!("certificate {i} of {chain_what}")
                    },
                    reason: format!("{reason} ({what})"),
                })?;
            if !info.is_ca {
                return Err(CaError::NotCa {
                    what,
                    reason: "basicConstraints cA is not true".to_owned(),
                }
                .into());
            }
            path.push(info);
        }
        let last = path.last().ok_or(CaError::Crypto {
            action: "walking the chain",
        })?;
        let anchor_is_last = roots.contains(&last.der);
        if !anchor_is_last {
            let mut reasons = Vec::new();
            let mut anchor = None;
            for r in &root_infos {
                match last.check_issued_by(r) {
                    Ok(()) => {
                        anchor = Some(r.clone());
                        break;
                    }
                    Err(e) => reasons.push(e),
                }
            }
            match anchor {
                Some(a) => path.push(a),
                None => {
                    let what = if path.len() == 1 {
                        cert_what.to_owned()
                    } else {
                        format!("the last certificate of {chain_what}")
                    };
                    let reason = if last.is_self_issued() {
                        format!("it is self-signed but not in {roots_what}")
                    } else {
                        format!(
                            "no certificate of {roots_what} issued it ({})",
                            reasons.join("; ")
                        )
                    };
                    return Err(CaError::BrokenChain { what, reason }.into());
                }
            }
        }
        for (i, c) in path.iter().enumerate() {
            let what = if i == 0 {
                cert_what.to_owned()
            } else if i + 1 == path.len() && !anchor_is_last {
                format!("the root in {roots_what}")
            } else {
                format!("certificate {i} of {chain_what}")
            };
            if now < c.not_before {
                return Err(CaError::NotYetValid {
                    what,
                    not_before: c.not_before,
                }
                .into());
            }
            if now > c.not_after {
                return Err(CaError::Expired {
                    what,
                    not_after: c.not_after,
                }
                .into());
            }
        }
        let tail = path.iter().map(|c| c.der.clone()).collect();
        Ok(MeshCa::assemble(key, signing, tail, roots, None))
    }

    /// Writes the CA in Istio's plug-in layout ([`CaLayout::Istio`]).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        self.save_as(dir, CaLayout::Istio)
    }

    /// Writes the CA into `dir` (created if missing) in `layout`. Every file is written
    /// atomically (temporary file, then rename); the key file gets mode 0600.
    pub fn save_as(&self, dir: impl AsRef<Path>, layout: CaLayout) -> Result<(), Error> {
        let dir = dir.as_ref();
        fs::ensure_dir(dir)?;
        let key = self.ca_key_pem();
        let (cert_file, cert_text, key_file, extra, roots_file) = match layout {
            CaLayout::Istio => (
                "ca-cert.pem",
                self.ca_cert_pem(),
                "ca-key.pem",
                Some(("cert-chain.pem", self.cert_chain_pem())),
                "root-cert.pem",
            ),
            CaLayout::KubernetesTls => {
                let presented = if self.tail.len() > 1 {
                    &self.tail[..self.tail.len() - 1]
                } else {
                    &self.tail[..]
                };
                ("tls.crt", pem_certs(presented), "tls.key", None, "ca.crt")
            }
        };
        fs::write_atomic(&dir.join(cert_file), cert_text.as_bytes(), fs::CERT_MODE)?;
        if let Some((name, text)) = extra {
            fs::write_atomic(&dir.join(name), text.as_bytes(), fs::CERT_MODE)?;
        }
        fs::write_atomic(
            &dir.join(roots_file),
            self.root_cert_pem().as_bytes(),
            fs::CERT_MODE,
        )?;
        fs::write_atomic(&dir.join(key_file), key.as_bytes(), fs::KEY_MODE)?;
        Ok(())
    }

    /// The trust domain given at creation, or the one in the signing certificate's
    /// `spiffe://<td>` URI SAN; `None` for loaded material without one (Istio's plug-in
    /// certificates usually carry none).
    pub fn trust_domain(&self) -> Option<&TrustDomain> {
        self.trust_domain.as_ref()
    }

    /// The root bundle (`root-cert.pem`), PEM.
    pub fn root_cert_pem(&self) -> String {
        pem_certs(&self.roots)
    }

    /// The root bundle, DER.
    pub fn root_certs_der(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The signing certificate (`ca-cert.pem`), PEM.
    pub fn ca_cert_pem(&self) -> String {
        pem_certs(std::slice::from_ref(&self.signing.der))
    }

    /// The signing certificate, DER.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        &self.signing.der
    }

    /// The signing certificate's private key as PKCS#8 PEM (`ca-key.pem`).
    pub fn ca_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(der::pem("PRIVATE KEY", self.key.pkcs8()))
    }

    /// The chain from the signing certificate up to and including its root
    /// (`cert-chain.pem`), PEM.
    pub fn cert_chain_pem(&self) -> String {
        pem_certs(&self.tail)
    }

    /// The chain from the signing certificate up to and including its root, DER.
    pub fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        &self.tail
    }

    /// `ec-p256`, `rsa-2048`, ...: the signing key's kind.
    pub fn key_description(&self) -> String {
        self.key.describe()
    }

    /// Whether the signing certificate is the (self-signed) root.
    pub fn is_self_signed(&self) -> bool {
        self.tail.len() == 1 && self.signing.is_self_issued()
    }

    /// NotBefore of the signing certificate.
    pub fn not_before(&self) -> SystemTime {
        system_time(self.signing.not_before)
    }

    /// NotAfter of the signing certificate.
    pub fn not_after(&self) -> SystemTime {
        system_time(self.signing.not_after)
    }

    /// The latest NotAfter a certificate issued now can get: the earliest NotAfter along the
    /// chain (for a well-formed chain, the signing certificate's).
    pub fn valid_until(&self) -> SystemTime {
        system_time(self.valid_until)
    }

    /// Whether less than 20% of the signing certificate's lifetime is left at `now`, the
    /// point at which istiod re-issues its self-signed root.
    pub fn needs_rotation(&self, now: SystemTime) -> bool {
        let lifetime = (self.signing.not_after - self.signing.not_before).max(0) as f64;
        let grace = (lifetime * ROOT_ROTATION_GRACE_RATIO).round() as i64;
        unix_seconds(now) >= self.signing.not_after - grace
    }

    /// Re-issues a self-signed root with the same key and subject and a new validity (from
    /// `now` for `ttl`), as istiod's root rotator does: certificates issued under the old
    /// root verify against the new one and vice versa. The old root is replaced in the bundle.
    pub fn rotate_root(&self, ttl: Duration) -> Result<MeshCa, Error> {
        self.rotate_root_at(ttl, SystemTime::now())
    }

    /// [`MeshCa::rotate_root`] at a given time.
    pub fn rotate_root_at(&self, ttl: Duration, now: SystemTime) -> Result<MeshCa, Error> {
        if !self.is_self_signed() {
            return Err(CaError::Rotation {
                what: self.describe_subject(),
                reason: "only a self-signed root can be re-issued in place; an intermediate is replaced by its issuer".to_owned(),
            }
            .into());
        }
        let ttl = check_positive(ttl)?;
        let not_before = unix_seconds(now);
        let spki = self.key.spki();
        let uri_san = self
            .signing
            .uri_sans
            .first()
            .filter(|_| self.signing.uri_sans.len() == 1)
            .cloned();
        let path_len = self.signing.path_len.and_then(|n| u8::try_from(n).ok());
        let template = CaTemplate {
            subject: self.signing.subject(),
            spki: &spki,
            not_before,
            not_after: not_before.saturating_add(ttl),
            path_len,
            uri_san: uri_san.as_deref(),
        };
        let der = CertificateDer::from(cert::build_ca(&template, None, &self.key)?);
        let signing = CertInfo::parse(der.clone(), "rotated root certificate")?;
        let roots = self
            .roots
            .iter()
            .map(|r| {
                if r == &self.signing.der {
                    der.clone()
                } else {
                    r.clone()
                }
            })
            .collect();
        let key = SigningKey::from_pkcs8(self.key.pkcs8(), "ca key")?;
        Ok(MeshCa::assemble(
            key,
            signing,
            vec![der],
            roots,
            self.trust_domain.clone(),
        ))
    }

    fn describe_subject(&self) -> String {
        if self.is_self_signed() {
            "the root certificate".to_owned()
        } else {
            "the signing certificate".to_owned()
        }
    }

    fn check_not_expired(&self, now: i64) -> Result<(), CaError> {
        if now > self.valid_until {
            return Err(CaError::Expired {
                what: self.valid_until_what.clone(),
                not_after: self.valid_until,
            });
        }
        Ok(())
    }

    /// The validity of a workload certificate issued at `now` for `ttl`.
    fn workload_validity(&self, now: i64, ttl: i64) -> Result<(i64, i64), CaError> {
        self.check_not_expired(now)?;
        let grace = CLOCK_SKEW_GRACE.as_secs() as i64;
        Ok((now - grace, now.saturating_add(ttl).min(self.valid_until)))
    }

    fn sign_leaf(
        &self,
        id: &SpiffeId,
        spki: &[u8],
        validity: (i64, i64),
        dns_names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), CaError> {
        let (leaf, serial) = self.template.issue(
            &self.key,
            spki,
            validity.0,
            validity.1,
            id.as_str(),
            dns_names,
        )?;
        let mut chain = Vec::with_capacity(1 + self.tail.len());
        chain.push(CertificateDer::from(leaf));
        chain.extend(self.tail.iter().cloned());
        // The serial TLV's content, without the tag and length.
        let serial = serial.get(2..).map(<[u8]>::to_vec).unwrap_or_default();
        Ok((chain, serial))
    }

    /// Issues an X.509-SVID for `id` with a fresh key (Istio's workload profile, see the
    /// module docs).
    pub fn issue(&self, id: &SpiffeId, params: &IssueParams) -> Result<Svid, Error> {
        self.issue_at(id, params, SystemTime::now())
    }

    /// [`MeshCa::issue`] at a given time.
    pub fn issue_at(
        &self,
        id: &SpiffeId,
        params: &IssueParams,
        now: SystemTime,
    ) -> Result<Svid, Error> {
        let ttl = check_workload_ttl(params.ttl)?;
        for d in &params.dns_names {
            check_dns_name(d)?;
        }
        check_workload_id(id)?;
        let validity = self.workload_validity(unix_seconds(now), ttl)?;
        Ok(self.issue_checked(id, params, validity)?)
    }

    fn issue_checked(
        &self,
        id: &SpiffeId,
        params: &IssueParams,
        validity: (i64, i64),
    ) -> Result<Svid, CaError> {
        let fresh = key::generate(params.key)?;
        let (chain, serial) = self.sign_leaf(id, &fresh.spki, validity, &params.dns_names)?;
        Ok(Svid::from_issued(
            id.clone(),
            chain,
            Arc::clone(&self.roots),
            fresh.pkcs8,
            validity.0,
            validity.1,
            serial,
        ))
    }

    /// Issues one SVID per identity on every available core (`std::thread::scope`), all
    /// with the same parameters. Every identity is checked before any key is generated.
    pub fn issue_many(&self, ids: &[SpiffeId], params: &IssueParams) -> Result<Vec<Svid>, Error> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        self.issue_many_on(ids, params, threads)
    }

    /// [`MeshCa::issue_many`] on at most `threads` threads (1 = the calling thread only).
    pub fn issue_many_on(
        &self,
        ids: &[SpiffeId],
        params: &IssueParams,
        threads: usize,
    ) -> Result<Vec<Svid>, Error> {
        let ttl = check_workload_ttl(params.ttl)?;
        for d in &params.dns_names {
            check_dns_name(d)?;
        }
        for id in ids {
            check_workload_id(id)?;
        }
        let validity = self.workload_validity(now_unix(), ttl)?;
        let threads = threads.clamp(1, ids.len().max(1));
        if threads == 1 {
            return ids
                .iter()
                .map(|id| {
                    self.issue_checked(id, params, validity)
                        .map_err(Error::from)
                })
                .collect();
        }
        // Workers (the calling thread among them) claim small blocks of identities from a
        // shared counter, so that a core slowed by other load simply does fewer of them.
        const BLOCK: usize = 4;
        let next = AtomicUsize::new(0);
        let work = || -> Result<Vec<(usize, Svid)>, CaError> {
            let mut done = Vec::with_capacity(ids.len() / threads + BLOCK);
            loop {
                let start = next.fetch_add(BLOCK, Ordering::Relaxed);
                if start >= ids.len() {
                    return Ok(done);
                }
                for (i, id) in ids.iter().enumerate().skip(start).take(BLOCK) {
                    done.push((i, self.issue_checked(id, params, validity)?));
                }
            }
        };
        let parts: Vec<Result<Vec<(usize, Svid)>, CaError>> = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut parts = vec![work()];
            for h in helpers {
                parts.push(h.join().unwrap_or(Err(CaError::Crypto {
                    action: "issuing on a worker thread",
                })));
            }
            parts
        });
        let mut slots: Vec<Option<Svid>> = (0..ids.len()).map(|_| None).collect();
        for part in parts {
            for (i, svid) in part? {
                slots[i] = Some(svid);
            }
        }
        slots
            .into_iter()
            .map(|s| {
                s.ok_or(Error::Ca(CaError::Crypto {
                    action: "collecting issued certificates",
                }))
            })
            .collect()
    }

    /// Signs a PEM CSR as istiod does: the CSR's signature must verify and its key must be
    /// RSA of at least 2048 bits or ECDSA on P-256/P-384; its subject and requested SANs are
    /// ignored and the certificate names `id`, the identity the caller authenticated.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        id: &SpiffeId,
        ttl: Duration,
    ) -> Result<IssuedCertificate, Error> {
        let csr =
            rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
                .map_err(|e| CaError::Csr {
                    reason: format!("no pem certificate request found ({e})"),
                })?;
        self.sign_csr_der_at(csr.as_ref(), id, ttl, SystemTime::now())
    }

    /// [`MeshCa::sign_csr`] for a DER CSR.
    pub fn sign_csr_der(
        &self,
        csr_der: &[u8],
        id: &SpiffeId,
        ttl: Duration,
    ) -> Result<IssuedCertificate, Error> {
        self.sign_csr_der_at(csr_der, id, ttl, SystemTime::now())
    }

    /// [`MeshCa::sign_csr_der`] at a given time.
    pub fn sign_csr_der_at(
        &self,
        csr_der: &[u8],
        id: &SpiffeId,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<IssuedCertificate, Error> {
        let ttl = check_workload_ttl(ttl)?;
        check_workload_id(id)?;
        let validity = self.workload_validity(unix_seconds(now), ttl)?;
        let spki = csr::verified_public_key(csr_der)?;
        let (chain, serial) = self.sign_leaf(id, spki, validity, &[])?;
        Ok(IssuedCertificate {
            spiffe_id: id.clone(),
            chain,
            bundle: Arc::clone(&self.roots),
            not_before: validity.0,
            not_after: validity.1,
            serial,
        })
    }

    /// Istio's `cacerts` Secret holding this CA (for istiod in `namespace`).
    pub fn to_cacerts_secret(&self, namespace: &str) -> Result<Secret, Error> {
        let key = self.ca_key_pem();
        Ok(Secret::istio_cacerts(
            namespace,
            &self.ca_cert_pem(),
            &key,
            &self.cert_chain_pem(),
            &self.root_cert_pem(),
        )?)
    }

    /// The `istio-ca-root-cert` ConfigMap for `namespace`.
    pub fn root_cert_configmap(&self, namespace: &str) -> Result<ConfigMap, Error> {
        Ok(ConfigMap::istio_ca_root_cert(
            namespace,
            &self.root_cert_pem(),
        )?)
    }
}

fn subject_of(params: &CaParams) -> Result<Vec<u8>, CaError> {
    let org = params
        .organization
        .as_deref()
        .unwrap_or(params.trust_domain.as_str());
    if org.is_empty() {
        return Err(CaError::InvalidParam {
            param: "organization",
            value: String::new(),
            rule: "must not be empty".to_owned(),
        });
    }
    if let Some(cn) = &params.common_name {
        if cn.is_empty() {
            return Err(CaError::InvalidParam {
                param: "common name",
                value: String::new(),
                rule: "must not be empty (use None for no common name)".to_owned(),
            });
        }
    }
    Ok(cert::name(org, params.common_name.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for ok in ["a", "gw.example.com", "*.example.com", "x-1.y"] {
            check_dns_name(ok).unwrap();
        }
        for bad in [
            "", "a..b", "a.", "-a", "a-", "a_b", "*", "a.*.b", "10.0.0.1", "::1",
        ] {
            assert!(check_dns_name(bad).is_err(), "{bad:?}");
        }
    }
}
