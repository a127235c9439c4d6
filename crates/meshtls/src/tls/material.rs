//! The workload's own certificate and the trust bundles, replaceable while serving.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::bundle::BundleSet;
use crate::error::{Error, TlsError};
use crate::identity::SpiffeId;
use crate::svid::Svid;
use crate::svid::SvidVerifier;

/// One generation of the own certificate.
struct Generation {
    certified: Arc<CertifiedKey>,
    spiffe_id: SpiffeId,
}

/// The workload's own X.509-SVID (certificate chain and private key) and the trust bundles it
/// verifies peers with, shared by every config built from it and replaceable at any time.
///
/// Cloning is cheap and shares the slot: a [`TlsMaterial::set_svid_der`] or
/// [`TlsMaterial::set_bundles`] on any clone is seen by the next handshake of every
/// [`ServerConfig`](rustls::ServerConfig) and [`ClientConfig`](rustls::ClientConfig) built
/// from it. Established connections keep the keys they negotiated.
///
/// Peers are verified with an [`SvidVerifier`] over the bundles, which remembers chains that
/// verified (until they expire or their trust domain's roots change), so a returning peer costs
/// a hash lookup instead of a path validation.
#[derive(Clone)]
pub struct TlsMaterial {
    slot: Arc<RwLock<Arc<Generation>>>,
    verifier: Arc<SvidVerifier>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("TlsMaterial")
            .field("spiffe_id", &current.spiffe_id)
            .field("chain_len", &current.certified.cert.len())
            .finish_non_exhaustive()
    }
}

fn load(chain: Vec<CertificateDer<'static>>, key: &PrivateKeyDer<'_>) -> Result<Generation, Error> {
    let leaf = chain.first().ok_or_else(|| TlsError::OwnCertificate {
        reason: "the certificate chain is empty".to_owned(),
    })?;
    let spiffe_id = super::peer::spiffe_id_of_cert(leaf)?;
    // The key is only borrowed, so no copy outlives the caller's zeroizing buffer; aws-lc
    // keeps its own parsed copy and cleanses it when the signing key is dropped.
    let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(key).map_err(|e| {
        TlsError::OwnCertificate {
            reason: format!("private key for {spiffe_id}: {e}"),
        }
    })?;
    let certified = CertifiedKey::new(chain, key);
    if let Err(e) = certified.keys_match() {
        return Err(TlsError::OwnCertificate {
            reason: format!("the private key does not match the leaf of {spiffe_id}: {e}"),
        }
        .into());
    }
    Ok(Generation {
        certified: Arc::new(certified),
        spiffe_id,
    })
}

impl TlsMaterial {
    /// Material from the workload's own [`Svid`] (e.g. from [`MeshCa::issue`](crate::MeshCa::issue))
    /// and the bundles peers are verified with.
    ///
    /// ```
    /// use meshtls::ca::{CaParams, IssueParams, KeyKind};
    /// use meshtls::{BundleSet, MeshCa, SpiffeId, TrustBundle, TrustDomain};
    ///
    /// let td = TrustDomain::new("cluster.local")?;
    /// let ca = MeshCa::create(&CaParams { key: KeyKind::EcP256, ..CaParams::new(td.clone()) })?;
    /// let id = SpiffeId::new("spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")?;
    /// let svid = ca.issue(&id, &IssueParams::default())?;
    /// let bundles = BundleSet::from_bundles([TrustBundle::new(td, ca.root_certs_der().to_vec())?])?;
    /// let material = meshtls::tls::TlsMaterial::new(&svid, bundles)?;
    /// assert_eq!(material.spiffe_id(), id);
    /// # Ok::<(), meshtls::Error>(())
    /// ```
    pub fn new(svid: &Svid, bundles: BundleSet) -> Result<Self, Error> {
        let key = Zeroizing::new(svid.private_key_der());
        let generation = load(svid.cert_chain_der().to_vec(), &key)?;
        Ok(Self::with_generation(generation, bundles))
    }

    fn with_generation(generation: Generation, bundles: BundleSet) -> Self {
        TlsMaterial {
            slot: Arc::new(RwLock::new(Arc::new(generation))),
            verifier: Arc::new(SvidVerifier::new(bundles)),
        }
    }

    /// Material from a DER certificate chain (leaf first) and a PKCS#8 DER private key.
    ///
    /// The leaf must carry exactly one URI SAN holding a SPIFFE ID and match the key.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        pkcs8_key: &[u8],
        bundles: BundleSet,
    ) -> Result<Self, Error> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_key));
        Ok(Self::with_generation(load(chain, &key)?, bundles))
    }

    /// Sets how many verified peer chains are remembered (default
    /// [`DEFAULT_CACHE_CAPACITY`](crate::svid::DEFAULT_CACHE_CAPACITY); 0 verifies every
    /// handshake in full). Call it before cloning the material or building configs from it:
    /// clones made earlier keep the previous verifier.
    pub fn with_verification_cache(mut self, capacity: usize) -> Self {
        self.verifier = Arc::new(SvidVerifier::with_capacity(
            (*self.verifier.bundles()).clone(),
            capacity,
        ));
        self
    }

    /// Material from PEM text: the chain (only `CERTIFICATE` blocks, leaf first) and one
    /// private key (PKCS#8, PKCS#1 or SEC1), read as [`Svid::from_pem`] reads them.
    pub fn from_pem(chain_pem: &str, key_pem: &str, bundles: BundleSet) -> Result<Self, Error> {
        let (chain, key) = read_pem(chain_pem, key_pem)?;
        Ok(Self::with_generation(load(chain, &key)?, bundles))
    }

    fn current(&self) -> Arc<Generation> {
        match self.slot.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer never panics while holding the lock (it only swaps an Arc), but a
            // poisoned lock still holds a complete generation.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the own certificate chain and key; the next handshake presents them.
    pub fn set_svid_der(
        &self,
        chain: Vec<CertificateDer<'static>>,
        pkcs8_key: &[u8],
    ) -> Result<(), Error> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_key));
        self.swap(load(chain, &key)?);
        Ok(())
    }

    /// Replaces the own certificate with a renewed [`Svid`]; the next handshake presents it.
    pub fn set_svid(&self, svid: &Svid) -> Result<(), Error> {
        let key = Zeroizing::new(svid.private_key_der());
        self.swap(load(svid.cert_chain_der().to_vec(), &key)?);
        Ok(())
    }

    fn swap(&self, generation: Generation) {
        let next = Arc::new(generation);
        match self.slot.write() {
            Ok(mut g) => *g = next,
            // Writers only swap an Arc, so a poisoned slot still holds a whole generation.
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// [`TlsMaterial::set_svid_der`] from PEM text.
    pub fn set_svid_pem(&self, chain_pem: &str, key_pem: &str) -> Result<(), Error> {
        let (chain, key) = read_pem(chain_pem, key_pem)?;
        self.swap(load(chain, &key)?);
        Ok(())
    }

    /// Replaces the trust bundles; the next peer verification uses them (cached chains of a
    /// trust domain whose roots changed are verified again).
    pub fn set_bundles(&self, bundles: BundleSet) {
        self.verifier.set_bundles(bundles);
    }

    /// The SPIFFE ID of the current own certificate.
    pub fn spiffe_id(&self) -> SpiffeId {
        self.current().spiffe_id.clone()
    }

    /// The current trust bundles.
    pub fn bundles(&self) -> Arc<BundleSet> {
        self.verifier.bundles()
    }

    /// The verifier (bundles and verification cache) peers are checked with.
    pub fn verifier(&self) -> &SvidVerifier {
        &self.verifier
    }

    /// The current own certificate chain, leaf first.
    pub fn cert_chain(&self) -> Vec<CertificateDer<'static>> {
        self.current().certified.cert.clone()
    }

    pub(crate) fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current().certified)
    }
}

/// The chain and key PEM, with the same readers (and errors) as [`Svid::from_pem`].
fn read_pem(
    chain_pem: &str,
    key_pem: &str,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        Zeroizing<PrivateKeyDer<'static>>,
    ),
    Error,
> {
    let chain = crate::x509::pem::certificates_from_pem(chain_pem, "certificate chain")?;
    let key = crate::x509::pem::private_key_from_pem(key_pem, "private key")?;
    Ok((chain, key))
}

/// Presents the material's current certificate on the server side.
#[derive(Debug)]
pub(crate) struct MaterialResolver(pub(crate) TlsMaterial);

impl ResolvesServerCert for MaterialResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }
}

impl ResolvesClientCert for MaterialResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
