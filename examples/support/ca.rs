//! TEMPORARY mesh CA for the demo until `meshtls::ca::MeshCa` lands: rcgen, Istio plug-in
//! file layout.

use std::path::Path;

use meshtls::tls::TlsMaterial;
use meshtls::{BundleSet, TrustBundle};
use meshtls::{SpiffeId, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub struct Ca {
    pub trust_domain: TrustDomain,
    root_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

impl Ca {
    pub fn create(trust_domain: &str) -> Res<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::OrganizationName, trust_domain);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            trust_domain: TrustDomain::new(trust_domain)?,
            root_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn save(&self, dir: &Path) -> Res<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("root-cert.pem"), &self.root_pem)?;
        std::fs::write(dir.join("ca-cert.pem"), &self.root_pem)?;
        std::fs::write(dir.join("cert-chain.pem"), &self.root_pem)?;
        std::fs::write(dir.join("ca-key.pem"), self.issuer.key().serialize_pem())?;
        std::fs::write(dir.join("trust-domain"), self.trust_domain.as_str())?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Res<Self> {
        let root_pem = std::fs::read_to_string(dir.join("root-cert.pem"))?;
        let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca-key.pem"))?)?;
        let td = std::fs::read_to_string(dir.join("trust-domain"))?;
        Ok(Ca {
            trust_domain: TrustDomain::new(td.trim())?,
            issuer: Issuer::from_ca_cert_pem(&root_pem, key)?,
            root_pem,
        })
    }

    pub fn root(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.root_pem.as_bytes())
            .unwrap_or_else(|_| CertificateDer::from(Vec::new()))
    }

    pub fn bundle(&self) -> Res<TrustBundle> {
        Ok(TrustBundle::new(self.trust_domain.clone(), [self.root()])?)
    }

    pub fn bundles(&self) -> Res<BundleSet> {
        Ok(BundleSet::from_bundles([self.bundle()?])?)
    }

    /// Chain PEM (leaf, root) and PKCS#8 key PEM.
    pub fn issue_pem(&self, id: &SpiffeId) -> Res<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((
            format!("{}{}", cert.pem(), self.root_pem),
            key.serialize_pem(),
        ))
    }

    pub fn material(&self, id: &SpiffeId, bundles: BundleSet) -> Res<TlsMaterial> {
        let (chain, key) = self.issue_pem(id)?;
        Ok(TlsMaterial::from_pem(&chain, &key, bundles)?)
    }
}
