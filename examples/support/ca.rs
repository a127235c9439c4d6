//! The demo's mesh CA: meshtls's `MeshCa`, saved in Istio's plug-in layout (`ca-cert.pem`,
//! `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`) so separate processes can share it.

use std::path::Path;
use std::sync::Arc;

use meshtls::ca::{CaParams, IssueParams};
use meshtls::tls::TlsMaterial;
use meshtls::{BundleSet, MeshCa, SpiffeId, TrustBundle, TrustDomain};

pub struct Ca {
    pub trust_domain: TrustDomain,
    ca: Arc<MeshCa>,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

impl Ca {
    /// istiod's self-signed root: RSA 2048, `O=<trust domain>`.
    pub fn create(trust_domain: &str) -> Res<Self> {
        let td = TrustDomain::new(trust_domain)?;
        Ok(Ca {
            ca: Arc::new(MeshCa::create(&CaParams::new(td.clone()))?),
            trust_domain: td,
        })
    }

    pub fn save(&self, dir: &Path) -> Res<()> {
        Ok(self.ca.save(dir)?)
    }

    /// The plug-in files do not name the trust domain (istiod's root has no URI SAN), so the
    /// caller says which one the CA serves.
    pub fn load(dir: &Path, trust_domain: &str) -> Res<Self> {
        let trust_domain = TrustDomain::new(trust_domain)?;
        let ca = MeshCa::load(dir, &trust_domain)?;
        Ok(Ca {
            trust_domain,
            ca: Arc::new(ca),
        })
    }

    /// The CA itself, shared (the CA protocol server signs with it).
    #[allow(dead_code)]
    pub fn shared(&self) -> Arc<MeshCa> {
        Arc::clone(&self.ca)
    }

    pub fn bundle(&self) -> Res<TrustBundle> {
        Ok(TrustBundle::new(
            self.trust_domain.clone(),
            self.ca.root_certs_der().to_vec(),
        )?)
    }

    pub fn bundles(&self) -> Res<BundleSet> {
        Ok(BundleSet::from_bundles([self.bundle()?])?)
    }

    /// Issues an SVID for `id` (Istio's workload profile) and wraps it with `bundles`.
    pub fn material(&self, id: &SpiffeId, bundles: BundleSet) -> Res<TlsMaterial> {
        let svid = self.ca.issue(id, &IssueParams::default())?;
        Ok(TlsMaterial::new(&svid, bundles)?)
    }
}
