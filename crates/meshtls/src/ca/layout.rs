//! Istio's plug-in layout and the `kubernetes.io/tls` layout: loading with istiod's checks,
//! saving atomically.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

use super::cert::CaCert;
use super::{CaLayout, MeshCa, now_unix};
use crate::error::{CaError, Error};
use crate::identity::TrustDomains;
use crate::identity::{SpiffeId, TrustDomain};
use crate::x509::fs;
use crate::x509::key::{self, SigningKey};
use crate::x509::pem::{certificates_from_pem, pem_certs, private_key_from_pem};

const ISTIO_FILES: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];
const TLS_FILES: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// Reads a PEM file into a zeroizing string (non-UTF-8 content is a typed error).
fn read_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    fs::read_text(path)
}

/// Which trust domain a loaded CA issues for. Istio's plug-in certificates usually carry no
/// `spiffe://<td>` URI SAN, so the trust domain comes from the mesh config or the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaTrust {
    /// This trust domain, no aliases. When the signing certificate has a `spiffe://<td>` URI
    /// SAN, it must name the same trust domain.
    TrustDomain(TrustDomain),
    /// The mesh's trust domain and its aliases ([`crate::MeshConfig::trust_domains`]); the
    /// certificate's URI SAN, if any, must name the primary.
    Mesh(TrustDomains),
    /// The trust domain in the signing certificate's `spiffe://<td>` URI SAN; loading fails
    /// with [`CaError::NoTrustDomain`] when it has none.
    FromCertificate,
}

impl From<&TrustDomain> for CaTrust {
    fn from(td: &TrustDomain) -> Self {
        CaTrust::TrustDomain(td.clone())
    }
}

impl From<TrustDomain> for CaTrust {
    fn from(td: TrustDomain) -> Self {
        CaTrust::TrustDomain(td)
    }
}

impl From<TrustDomains> for CaTrust {
    fn from(tds: TrustDomains) -> Self {
        CaTrust::Mesh(tds)
    }
}

/// The trust domain of a CA certificate's single `spiffe://<td>` URI SAN.
fn certificate_trust_domain(signing: &CaCert) -> Option<TrustDomain> {
    match signing.uri_sans.as_slice() {
        [uri] => SpiffeId::new(uri)
            .ok()
            .filter(SpiffeId::is_trust_domain_id)
            .map(|id| id.trust_domain()),
        _ => None,
    }
}

/// Decides the loaded CA's trust domains (see [`CaTrust`]).
fn resolve_trust(trust: &CaTrust, signing: &CaCert, what: &str) -> Result<TrustDomains, CaError> {
    let own = certificate_trust_domain(signing);
    let wanted = match trust {
        CaTrust::TrustDomain(td) => TrustDomains::new(td.clone(), []),
        CaTrust::Mesh(tds) => tds.clone(),
        CaTrust::FromCertificate => {
            return own
                .map(|td| TrustDomains::new(td, []))
                .ok_or_else(|| CaError::NoTrustDomain {
                    what: what.to_owned(),
                });
        }
    };
    if let Some(own) = own {
        if &own != wanted.primary() {
            return Err(CaError::TrustDomainConflict {
                what: what.to_owned(),
                in_certificate: own.to_string(),
                given: wanted.primary().to_string(),
            });
        }
    }
    Ok(wanted)
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
    trust: &'a CaTrust,
}

impl MeshCa {
    /// Loads CA material from a directory in Istio's plug-in layout (`ca-cert.pem`,
    /// `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`: all four must be present) or, when
    /// none of those exist, the `kubernetes.io/tls` layout (`tls.crt`, `tls.key`, `ca.crt`).
    ///
    /// Checks what istiod checks: the signing certificate is a CA, the key matches it, it
    /// chains to a certificate of the root file through the chain file, and every certificate
    /// on that path is within its validity. Each failure names the file; a file that is not
    /// UTF-8 text is a [`CaError::Material`] naming it.
    ///
    /// The CA issues for `trust_domain` only (see [`MeshCa::load_with`] for aliases or the
    /// certificate's own URI SAN); a signing certificate whose `spiffe://<td>` URI SAN names
    /// another trust domain is refused.
    pub fn load(dir: impl AsRef<Path>, trust_domain: &TrustDomain) -> Result<MeshCa, Error> {
        MeshCa::load_with(dir, &CaTrust::from(trust_domain))
    }

    /// [`MeshCa::load`] with the trust domain chosen by `trust` (a mesh config's trust domain
    /// and aliases, or the certificate's URI SAN).
    pub fn load_with(dir: impl AsRef<Path>, trust: &CaTrust) -> Result<MeshCa, Error> {
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
                trust,
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
                trust,
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
    /// `root_cert_pem` may be empty when the signing certificate is itself the root. The
    /// trust domain is chosen as for [`MeshCa::load_with`] (a [`TrustDomain`] converts).
    pub fn from_pem(
        ca_cert_pem: &str,
        ca_key_pem: &str,
        cert_chain_pem: &str,
        root_cert_pem: &str,
        trust: impl Into<CaTrust>,
    ) -> Result<MeshCa, Error> {
        let trust = trust.into();
        MeshCa::from_material(&Material {
            ca_cert: (ca_cert_pem, "ca-cert.pem".to_owned()),
            ca_key: (ca_key_pem, "ca-key.pem".to_owned()),
            chain: (cert_chain_pem, "cert-chain.pem".to_owned()),
            roots: (root_cert_pem, "root-cert.pem".to_owned()),
            cert_file_may_hold_chain: false,
            trust: &trust,
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
        let signing = CaCert::parse(cert_ders.remove(0), cert_what)?;
        if !signing.is_ca {
            return Err(CaError::NotCa {
                what: cert_what.to_owned(),
                reason: "basicConstraints cA is not true".to_owned(),
            }
            .into());
        }
        if !signing.may_sign_certificates() {
            return Err(CaError::NotCa {
                what: cert_what.to_owned(),
                reason: "its key usage lacks keyCertSign".to_owned(),
            }
            .into());
        }
        let trust_domains = resolve_trust(m.trust, &signing, cert_what)?;

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
            .map(|r| CaCert::parse(r.clone(), roots_what))
            .collect::<Result<Vec<_>, _>>()?;
        // The chain file may end with the root (Istio's sample does).
        while chain_ders.last().is_some_and(|c| roots.contains(c)) {
            chain_ders.pop();
        }

        let mut path: Vec<CaCert> = vec![signing.clone()];
        for (i, der_bytes) in chain_ders.into_iter().enumerate() {
            let what = format!("certificate {} of {chain_what}", i + 1);
            let info = CaCert::parse(der_bytes, &what)?;
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
            // What the CA issues must verify against its own roots: every certificate of the
            // path may sign, and the one it ends at is a trust anchor by the rules
            // verification applies (crate::bundle::anchor_problem).
            if !c.may_sign_certificates() {
                return Err(CaError::NotCa {
                    what,
                    reason: "its key usage lacks keyCertSign".to_owned(),
                }
                .into());
            }
            if i + 1 == path.len() {
                if let Some(reason) = crate::bundle::anchor_problem_of_der(c.der.as_ref()) {
                    return Err(CaError::NotCa { what, reason }.into());
                }
            }
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
        Ok(MeshCa::assemble(key, signing, tail, roots, trust_domains))
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
}
