//! Certificate signing requests for an SVID: a PKCS#10 request for a SPIFFE ID, with a key
//! generated locally that never leaves the process (what istio-agent and ztunnel send to
//! istiod).
//!
//! The request carries an empty subject and one URI SAN, the SPIFFE ID (plus any DNS names you
//! ask for), as Istio's agents build theirs. istiod ignores every name in it and signs the
//! identity it authenticated; cert-manager's istio-csr insists that the URI SAN equals the
//! caller's identity and that nothing else is asked for, which this request satisfies when no
//! DNS names are added.
//!
//! ```
//! use std::time::Duration;
//! use meshtls::{Csr, CsrParams, MeshCa, SpiffeId};
//! use meshtls::ca::{CaParams, KeyKind};
//!
//! let id = SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc")?;
//! let csr = Csr::new(&id, &CsrParams { key: KeyKind::EcP256, ..Default::default() })?;
//! assert!(csr.pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
//!
//! let ca = MeshCa::create(&CaParams::default())?;
//! let issued = ca.sign_csr(&csr.pem(), &id, Duration::from_secs(3600))?;
//! let svid = csr.into_svid(issued.cert_chain_der().to_vec())?;
//! assert_eq!(svid.spiffe_id(), &id);
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::fmt;

use rustls_pki_types::{
    CertificateDer, CertificateSigningRequestDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use zeroize::Zeroizing;

use crate::error::{CaError, Error};
use crate::identity::SpiffeId;
use crate::svid::own::Svid;
use crate::x509::key::KeyKind;
use crate::x509::pem;

/// What goes into a [`Csr`] besides the SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrParams {
    /// The kind of key to generate (default `ec-p256`; Istio's agents default to RSA 2048).
    pub key: KeyKind,
    /// DNS names to request beside the URI SAN (default none; istio-csr refuses any).
    pub dns_names: Vec<String>,
}

impl Default for CsrParams {
    fn default() -> Self {
        CsrParams {
            key: KeyKind::EcP256,
            dns_names: Vec::new(),
        }
    }
}

impl CsrParams {
    /// Parameters with a given key kind and no DNS names.
    pub fn with_key(key: KeyKind) -> Self {
        CsrParams {
            key,
            ..Default::default()
        }
    }
}

/// A PKCS#10 request for an X.509-SVID and the private key it was made with.
///
/// The key is zeroized on drop and never shown by `Debug`.
pub struct Csr {
    id: SpiffeId,
    key_kind: KeyKind,
    der: CertificateSigningRequestDer<'static>,
    spki: Vec<u8>,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Csr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csr")
            .field("spiffe_id", &self.id.as_str())
            .field("key", &self.key_kind.name())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

fn crypto(action: &'static str) -> impl Fn(rcgen::Error) -> CaError {
    move |_| CaError::Crypto { action }
}

impl Csr {
    /// Generates a key of `params.key` and a request for `id` signed with it.
    ///
    /// `id` must be a workload ID (with a path); DNS names must be valid host names.
    pub fn new(id: &SpiffeId, params: &CsrParams) -> Result<Csr, Error> {
        if id.is_trust_domain_id() {
            return Err(CaError::IdentityWithoutPath { id: id.to_string() }.into());
        }
        let key = crate::x509::key::generate(params.key)?;
        let alg = match params.key {
            KeyKind::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_RSA_SHA256,
        };
        let pkcs8 = PrivatePkcs8KeyDer::from(key.pkcs8.as_slice());
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, alg)
            .map_err(crypto("loading the generated key"))?;

        let mut cp = rcgen::CertificateParams::default();
        cp.distinguished_name = rcgen::DistinguishedName::new();
        let uri =
            rcgen::string::Ia5String::try_from(id.as_str()).map_err(|_| CaError::InvalidParam {
                param: "spiffe id",
                value: id.to_string(),
                rule: "must be ascii".to_owned(),
            })?;
        cp.subject_alt_names.push(rcgen::SanType::URI(uri));
        for name in &params.dns_names {
            let dns = rcgen::string::Ia5String::try_from(name.as_str()).map_err(|_| {
                CaError::InvalidDnsName {
                    name: name.clone(),
                    rule: "must be an ascii host name",
                }
            })?;
            if name.is_empty()
                || name.len() > 253
                || !name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
                })
            {
                return Err(CaError::InvalidDnsName {
                    name: name.clone(),
                    rule: "must be a host name of dot-separated labels (letters, digits, '-')",
                }
                .into());
            }
            cp.subject_alt_names.push(rcgen::SanType::DnsName(dns));
        }
        let request = cp
            .serialize_request(&pair)
            .map_err(crypto("building a certificate signing request"))?;
        Ok(Csr {
            id: id.clone(),
            key_kind: params.key,
            der: CertificateSigningRequestDer::from(request.der().as_ref().to_vec()),
            spki: key.spki,
            pkcs8: key.pkcs8,
        })
    }

    /// The SPIFFE ID requested.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// The kind of the generated key.
    pub fn key_kind(&self) -> KeyKind {
        self.key_kind
    }

    /// The request, DER.
    pub fn der(&self) -> &CertificateSigningRequestDer<'static> {
        &self.der
    }

    /// The request, PEM (`CERTIFICATE REQUEST`), as Istio's protocol carries it.
    pub fn pem(&self) -> String {
        pem::pem("CERTIFICATE REQUEST", self.der.as_ref())
    }

    /// The public key's `SubjectPublicKeyInfo`, DER.
    pub fn public_key_spki(&self) -> &[u8] {
        &self.spki
    }

    /// The private key, PKCS#8 DER.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()))
    }

    /// The private key, PKCS#8 PEM.
    pub fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::pem("PRIVATE KEY", &self.pkcs8))
    }

    /// Pairs the key with the chain the CA returned (leaf first) into an [`Svid`], checking
    /// that the leaf carries exactly this request's SPIFFE ID and this key.
    pub fn into_svid(self, chain: Vec<CertificateDer<'static>>) -> Result<Svid, Error> {
        let svid = Svid::from_der(chain, &self.private_key_der())?;
        if svid.spiffe_id() != &self.id {
            return Err(CaError::InvalidSvid {
                reason: format!(
                    "the leaf names {} but {} was requested",
                    svid.spiffe_id(),
                    self.id
                ),
            }
            .into());
        }
        Ok(svid)
    }
}
