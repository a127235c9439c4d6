//! Your own X.509-SVID: a certificate chain (leaf first) and its private key, as issued by
//! [`MeshCa`](crate::ca::MeshCa) or read from files.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::error::{CaError, Error};
use crate::identity::SpiffeId;
use crate::k8s::Secret;
use crate::svid::verify::{key_matches_spki, leaf_spiffe_id};
use crate::x509::cert::CertInfo;
pub(crate) use crate::x509::pem::pem_certs;
use crate::x509::pem::{certificates_from_pem, private_key_from_pem};
use crate::x509::{fs, key, pem};
// The time codec lives in `x509::time`; re-exported for the modules that import it from here.
pub(crate) use crate::x509::time::{system_time, unix_seconds};

/// An X.509-SVID with its private key: what a workload (or a gateway) presents in mTLS.
///
/// The chain is leaf first, then intermediates, then (as Istio's CA returns it) the root. The
/// private key is PKCS#8, held in memory that is zeroized on drop, and never printed by
/// `Debug`.
///
/// ```
/// use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
/// use meshtls::{SpiffeId, TrustDomain};
///
/// let mut params = CaParams::new(TrustDomain::new("cluster.local")?);
/// params.key = KeyKind::EcP256;
/// let ca = MeshCa::create(&params)?;
/// let id = SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc")?;
/// let svid = ca.issue(&id, &IssueParams::default())?;
/// assert_eq!(svid.spiffe_id(), &id);
/// assert_eq!(svid.cert_chain_der().len(), 2); // leaf, root
/// assert!(svid.private_key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
/// assert!(!format!("{svid:?}").contains("PRIVATE"));
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Clone)]
pub struct Svid {
    certs: CertifiedChain,
    key: Zeroizing<Vec<u8>>,
}

/// The certificate half of an SVID, shared by [`Svid`] and [`crate::ca::IssuedCertificate`]:
/// the chain, the CA's roots and the leaf facts read once when it was built or issued. The
/// public accessors of both types answer from here.
#[derive(Debug, Clone)]
pub(crate) struct CertifiedChain {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) bundle: Arc<Vec<CertificateDer<'static>>>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) serial: Vec<u8>,
}

impl CertifiedChain {
    pub(crate) fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
    pub(crate) fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
    pub(crate) fn cert_chain_pem(&self) -> String {
        pem_certs(&self.chain)
    }
    pub(crate) fn trust_bundle_der(&self) -> &[CertificateDer<'static>] {
        &self.bundle
    }
    pub(crate) fn not_before(&self) -> SystemTime {
        system_time(self.not_before)
    }
    pub(crate) fn not_after(&self) -> SystemTime {
        system_time(self.not_after)
    }
    pub(crate) fn serial(&self) -> &[u8] {
        &self.serial
    }
}

impl fmt::Debug for Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Svid")
            .field("spiffe_id", &self.certs.spiffe_id.as_str())
            .field("chain_len", &self.certs.chain.len())
            .field("not_before", &self.certs.not_before)
            .field("not_after", &self.certs.not_after)
            .field("serial", &self.serial_hex())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Istio's `SECRET_GRACE_PERIOD_RATIO`: rotate once half of the lifetime has passed.
pub const ISTIO_GRACE_PERIOD_RATIO: f64 = 0.5;
/// Istio's `SECRET_GRACE_PERIOD_RATIO_JITTER`.
pub const ISTIO_GRACE_PERIOD_RATIO_JITTER: f64 = 0.01;

/// When to renew a certificate, as istio-agent decides it (`secretcache.go` `rotateTime`):
/// at `expiry - lifetime * ratio`, where ratio is `grace_ratio` plus a uniform random jitter in
/// `[-jitter, +jitter]`, clamped to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotationPolicy {
    /// The share of the lifetime kept as grace before expiry (Istio: 0.5).
    pub grace_ratio: f64,
    /// The largest random deviation of the ratio (Istio: 0.01).
    pub jitter: f64,
}

impl RotationPolicy {
    /// A policy from its two ratios, each a finite number in `[0, 1]`; anything else is
    /// refused rather than clamped (the binding and the CLI build policies from user input
    /// through this, so that one rule decides what is valid).
    ///
    /// ```
    /// use meshtls::svid::RotationPolicy;
    /// assert!(RotationPolicy::new(0.5, 0.01).is_ok());
    /// assert!(RotationPolicy::new(1.5, 0.0).is_err());
    /// assert!(RotationPolicy::new(0.5, f64::NAN).is_err());
    /// ```
    pub fn new(grace_ratio: f64, jitter: f64) -> Result<Self, CaError> {
        for (param, value) in [("grace_ratio", grace_ratio), ("jitter", jitter)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(CaError::InvalidParam {
                    param,
                    value: value.to_string(),
                    rule: "must be a number between 0 and 1".to_owned(),
                });
            }
        }
        Ok(RotationPolicy {
            grace_ratio,
            jitter,
        })
    }
}

impl Default for RotationPolicy {
    /// Istio's defaults: ratio 0.5, jitter 0.01.
    fn default() -> Self {
        RotationPolicy {
            grace_ratio: ISTIO_GRACE_PERIOD_RATIO,
            jitter: ISTIO_GRACE_PERIOD_RATIO_JITTER,
        }
    }
}

fn invalid(reason: impl Into<String>) -> CaError {
    CaError::InvalidSvid {
        reason: reason.into(),
    }
}

impl Svid {
    /// Assembles an SVID from parts the CA has just produced (no re-parsing).
    pub(crate) fn from_issued(certs: CertifiedChain, key: Zeroizing<Vec<u8>>) -> Svid {
        Svid { certs, key }
    }

    /// Builds an SVID from a DER chain (leaf first) and its private key (PKCS#8, PKCS#1 or
    /// SEC1; it is kept as PKCS#8).
    ///
    /// Checks that the leaf has exactly one URI SAN, that it is a valid SPIFFE ID with a
    /// non-root path, that the leaf is not a CA, and that the key belongs to the leaf. Keys
    /// are EC P-256/P-384 or RSA of 2048 bits and more. It does not verify the chain against
    /// a trust bundle: that is [`crate::svid`]'s verification.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        private_key: &PrivateKeyDer<'_>,
    ) -> Result<Svid, Error> {
        let Some(leaf_der) = chain.first() else {
            return Err(invalid("the certificate chain is empty").into());
        };
        let leaf = CertInfo::parse(leaf_der.as_ref()).map_err(|reason| CaError::Material {
            what: "leaf certificate".to_owned(),
            reason: format!("malformed certificate ({reason})"),
        })?;
        for (i, c) in chain.iter().enumerate().skip(1) {
            CertInfo::parse(c.as_ref()).map_err(|reason| CaError::Material {
                what: format!("certificate {} of the chain", i + 1),
                reason: format!("malformed certificate ({reason})"),
            })?;
        }
        let spiffe_id = leaf_spiffe_id(&leaf).map_err(|e| invalid(e.to_string()))?;
        if leaf.basic_constraints.is_some_and(|bc| bc.ca) {
            return Err(invalid("the leaf certificate is a ca (basicConstraints cA=true)").into());
        }
        let pkcs8 = key::to_pkcs8(private_key, "private key")?;
        // The CA's key rules (kinds and sizes) for both halves, then the shared comparison.
        key::SigningKey::from_pkcs8(&pkcs8, "private key")?;
        key::parse_spki(leaf.spki, "leaf certificate")?;
        let pkcs8_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_slice()));
        if key_matches_spki(&pkcs8_key, leaf.spki).is_err() {
            return Err(CaError::KeyMismatch {
                key: "private key".to_owned(),
                cert: "leaf certificate".to_owned(),
            }
            .into());
        }
        let serial = leaf.serial.to_vec();
        Ok(Svid {
            certs: CertifiedChain {
                spiffe_id,
                not_before: leaf.not_before,
                not_after: leaf.not_after,
                serial,
                chain,
                bundle: Arc::new(Vec::new()),
            },
            key: pkcs8,
        })
    }

    /// Builds an SVID from PEM: the chain (leaf first, `CERTIFICATE` blocks only) and the
    /// private key (`PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`). Same checks as
    /// [`Svid::from_der`].
    pub fn from_pem(cert_chain_pem: &str, private_key_pem: &str) -> Result<Svid, Error> {
        let chain = certificates_from_pem(cert_chain_pem, "certificate chain")?;
        let key = private_key_from_pem(private_key_pem, "private key")?;
        Svid::from_der(chain, &key)
    }

    /// Returns this SVID with `roots` as its trust anchors (`ca.crt` of its Secret).
    pub fn with_trust_bundle(mut self, roots: Vec<CertificateDer<'static>>) -> Svid {
        self.certs.bundle = Arc::new(roots);
        self
    }

    /// The SPIFFE ID in the leaf's URI SAN.
    pub fn spiffe_id(&self) -> &SpiffeId {
        self.certs.spiffe_id()
    }

    /// The chain, leaf first, as DER (what rustls takes).
    pub fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        self.certs.cert_chain_der()
    }

    /// The leaf certificate as DER.
    pub fn leaf_der(&self) -> &CertificateDer<'static> {
        // The constructors refuse an empty chain.
        &self.certs.chain[0]
    }

    /// The chain, leaf first, as PEM.
    pub fn cert_chain_pem(&self) -> String {
        self.certs.cert_chain_pem()
    }

    /// The trust anchors that came with this SVID (the CA's roots), possibly empty.
    pub fn trust_bundle_der(&self) -> &[CertificateDer<'static>] {
        self.certs.trust_bundle_der()
    }

    /// The trust anchors as PEM (empty string when there are none).
    pub fn trust_bundle_pem(&self) -> String {
        pem_certs(&self.certs.bundle)
    }

    /// A copy of the private key as PKCS#8 DER, for rustls. The copy is the caller's to
    /// protect.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.to_vec()))
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), zeroized on drop.
    pub fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::pem("PRIVATE KEY", &self.key))
    }

    /// Start of validity (Istio backdates it by two minutes).
    pub fn not_before(&self) -> SystemTime {
        self.certs.not_before()
    }

    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        self.certs.not_after()
    }

    /// The leaf's serial number (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.certs.serial()
    }

    /// The serial number as lower-case hex without leading zero bytes.
    pub fn serial_hex(&self) -> String {
        let start = self
            .certs
            .serial
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(self.certs.serial.len().saturating_sub(1));
        self.certs.serial[start..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether the SVID is due for renewal at `now` by Istio's rule without jitter: once half
    /// of its lifetime (NotBefore to NotAfter) has passed. Also true once it has expired.
    pub fn should_rotate(&self, now: SystemTime) -> bool {
        now >= self.rotation_time_with_ratio(ISTIO_GRACE_PERIOD_RATIO)
    }

    /// The renewal time under `policy`, drawing the jitter at random.
    pub fn rotation_time(&self, policy: &RotationPolicy) -> SystemTime {
        let mut ratio = policy.grace_ratio;
        if policy.jitter > 0.0 {
            let mut b = [0u8; 8];
            if aws_lc_rs::rand::fill(&mut b).is_ok() {
                let unit = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
                ratio += (unit * 2.0 - 1.0) * policy.jitter;
            }
        }
        self.rotation_time_with_ratio(ratio)
    }

    fn rotation_time_with_ratio(&self, ratio: f64) -> SystemTime {
        let ratio = if ratio.is_nan() {
            ISTIO_GRACE_PERIOD_RATIO
        } else {
            ratio.clamp(0.0, 1.0)
        };
        let lifetime = (self.certs.not_after - self.certs.not_before).max(0) as f64;
        let grace = (lifetime * ratio).round() as i64;
        system_time(self.certs.not_after - grace)
    }

    /// A `kubernetes.io/tls` Secret: `tls.crt` = leaf and intermediates (the self-signed root
    /// at the end of the chain is left out, as cert-manager does), `tls.key` = PKCS#8 key,
    /// `ca.crt` = the trust bundle (or the chain's root when no bundle is attached).
    pub fn to_k8s_secret(&self, name: &str, namespace: &str) -> Result<Secret, Error> {
        let (presented, root) = self.split_root();
        let mut ca = pem_certs(&self.certs.bundle);
        if ca.is_empty() {
            if let Some(r) = root {
                ca = pem_certs(std::slice::from_ref(r));
            }
        }
        let key = self.private_key_pem();
        let ca_opt = if ca.is_empty() {
            None
        } else {
            Some(ca.as_str())
        };
        Ok(Secret::tls(
            name,
            namespace,
            &pem_certs(presented),
            &key,
            ca_opt,
        )?)
    }

    /// The chain without a trailing self-issued root, and that root.
    fn split_root(&self) -> (&[CertificateDer<'static>], Option<&CertificateDer<'static>>) {
        if self.certs.chain.len() > 1 {
            if let Some(last) = self.certs.chain.last() {
                if CertInfo::parse(last.as_ref()).is_ok_and(|c| c.subject_der == c.issuer_der) {
                    return (&self.certs.chain[..self.certs.chain.len() - 1], Some(last));
                }
            }
        }
        (&self.certs.chain, None)
    }

    /// Writes istio-agent's file names into `dir`: `cert-chain.pem` (the chain, leaf first),
    /// `key.pem` (mode 0600) and `root-cert.pem` (when a trust bundle or root is known). Each
    /// file is written atomically.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        let dir = dir.as_ref();
        fs::ensure_dir(dir)?;
        let (_, root) = self.split_root();
        let mut roots = pem_certs(&self.certs.bundle);
        if roots.is_empty() {
            if let Some(r) = root {
                roots = pem_certs(std::slice::from_ref(r));
            }
        }
        let key = self.private_key_pem();
        fs::write_atomic(&dir.join("key.pem"), key.as_bytes(), fs::KEY_MODE)?;
        fs::write_atomic(
            &dir.join("cert-chain.pem"),
            self.cert_chain_pem().as_bytes(),
            fs::CERT_MODE,
        )?;
        if !roots.is_empty() {
            fs::write_atomic(&dir.join("root-cert.pem"), roots.as_bytes(), fs::CERT_MODE)?;
        }
        Ok(())
    }
}
