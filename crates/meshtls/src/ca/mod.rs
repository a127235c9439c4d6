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

mod cert;
pub(crate) mod csr;
mod issue;
mod layout;
mod params;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

use self::cert::{CaCert, CaTemplate, LeafTemplate};
pub use self::issue::IssuedCertificate;
pub use self::layout::CaTrust;
pub use self::params::{
    CLOCK_SKEW_GRACE, CaLayout, CaParams, DEFAULT_INTERMEDIATE_TTL, DEFAULT_ROOT_TTL,
    DEFAULT_WORKLOAD_TTL, IssueParams, MAX_WORKLOAD_TTL, ROOT_ROTATION_GRACE_RATIO,
};
use self::params::{check_positive, subject_of};
use crate::error::{CaError, Error};
use crate::identity::TrustDomains;
use crate::identity::{SpiffeId, TrustDomain};
use crate::k8s::{ConfigMap, Secret};
pub use crate::x509::key::KeyKind;
use crate::x509::key::SigningKey;
use crate::x509::pem::{self, pem_certs};
use crate::x509::time::{system_time, unix_seconds};

/// A mesh CA: a signing certificate and key, the chain up to a root, and the root bundle.
///
/// `Send + Sync`: share it behind an `Arc` and issue from many threads; [`MeshCa::issue_many`]
/// does that for you.
pub struct MeshCa {
    key: SigningKey,
    signing: CaCert,
    /// What follows a leaf in an issued chain: the signing certificate, intermediates, root.
    tail: Vec<CertificateDer<'static>>,
    roots: Arc<Vec<CertificateDer<'static>>>,
    template: LeafTemplate,
    /// The trust domain it issues for, and its aliases.
    trust_domains: TrustDomains,
    /// The earliest NotAfter along `tail`, and which certificate has it.
    valid_until: i64,
    valid_until_what: String,
}

impl fmt::Debug for MeshCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshCa")
            .field(
                "trust_domains",
                &self
                    .trust_domains
                    .all()
                    .iter()
                    .map(TrustDomain::as_str)
                    .collect::<Vec<_>>(),
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
        let not_before = unix_seconds(now);
        let uri = params.trust_domain.id();
        let template = CaTemplate {
            subject: &subject,
            key: &key,
            not_before,
            not_after: not_before.saturating_add(ttl),
            path_len: params.path_len,
            uri_san: params.trust_domain_san.then_some(uri.as_str()),
        };
        let der = CertificateDer::from(cert::build_ca(&template, None, &key)?);
        let signing = CaCert::parse(der.clone(), "root certificate")?;
        Ok(MeshCa::assemble(
            key,
            signing,
            vec![der.clone()],
            vec![der],
            TrustDomains::new(params.trust_domain.clone(), []),
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
        let uri = params.trust_domain.id();
        let template = CaTemplate {
            subject: &subject,
            key: &key,
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
        let signing = CaCert::parse(der.clone(), "intermediate certificate")?;
        let mut tail = Vec::with_capacity(self.tail.len() + 1);
        tail.push(der);
        tail.extend(self.tail.iter().cloned());
        Ok(MeshCa::assemble(
            key,
            signing,
            tail,
            self.roots.as_ref().clone(),
            TrustDomains::new(params.trust_domain.clone(), []),
        ))
    }

    fn assemble(
        key: SigningKey,
        signing: CaCert,
        tail: Vec<CertificateDer<'static>>,
        roots: Vec<CertificateDer<'static>>,
        trust_domains: TrustDomains,
    ) -> MeshCa {
        let template = LeafTemplate::new(&key, signing.subject(), &signing.key_id_for_children());
        let mut valid_until = signing.not_after;
        let mut valid_until_what = "the signing certificate".to_owned();
        for (i, c) in tail.iter().enumerate().skip(1) {
            if let Ok(info) = CaCert::parse(c.clone(), "chain") {
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
        MeshCa {
            key,
            signing,
            tail,
            roots: Arc::new(roots),
            template,
            trust_domains,
            valid_until,
            valid_until_what,
        }
    }

    /// The trust domain the CA issues for: the one given at creation or loading, or the one in
    /// the signing certificate's `spiffe://<td>` URI SAN ([`CaTrust::FromCertificate`]).
    pub fn trust_domain(&self) -> &TrustDomain {
        self.trust_domains.primary()
    }

    /// The trust domain and its aliases: identities of any of them may be issued.
    pub fn trust_domains(&self) -> &TrustDomains {
        &self.trust_domains
    }

    /// The same CA, also issuing for `aliases` (Istio's `trustDomainAliases`).
    pub fn with_trust_domain_aliases<I>(mut self, aliases: I) -> MeshCa
    where
        I: IntoIterator<Item = TrustDomain>,
    {
        let primary = self.trust_domains.primary().clone();
        let mut all: Vec<TrustDomain> = self.trust_domains.aliases().to_vec();
        all.extend(aliases);
        self.trust_domains = TrustDomains::new(primary, all);
        self
    }

    /// Refuses an identity outside the CA's trust domain and its aliases.
    pub(crate) fn check_trust_domain(&self, id: &SpiffeId) -> Result<(), CaError> {
        let td = id.trust_domain();
        if self.trust_domains.contains(&td) {
            return Ok(());
        }
        let aliases = self.trust_domains.aliases();
        Err(CaError::ForeignTrustDomain {
            id: id.to_string(),
            trust_domain: td.to_string(),
            ca_trust_domain: self.trust_domains.primary().to_string(),
            aliases: aliases
                .iter()
                .map(TrustDomain::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        })
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
        Zeroizing::new(pem::pem("PRIVATE KEY", self.key.pkcs8()))
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
        let uri_san = self
            .signing
            .uri_sans
            .first()
            .filter(|_| self.signing.uri_sans.len() == 1)
            .cloned();
        let path_len = self.signing.path_len.and_then(|n| u8::try_from(n).ok());
        let template = CaTemplate {
            subject: self.signing.subject(),
            key: &self.key,
            not_before,
            not_after: not_before.saturating_add(ttl),
            path_len,
            uri_san: uri_san.as_deref(),
        };
        let der = CertificateDer::from(cert::build_ca(&template, None, &self.key)?);
        let signing = CaCert::parse(der.clone(), "rotated root certificate")?;
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
            self.trust_domains.clone(),
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
