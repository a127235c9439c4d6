//! Issuance: fresh-key SVIDs (one, or many on every core) and CSR signing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;

use super::params::{check_dns_name, check_workload_id, check_workload_ttl};
use super::{CLOCK_SKEW_GRACE, IssueParams, MeshCa, csr, now_unix};
use crate::error::{CaError, Error};
use crate::identity::SpiffeId;
use crate::svid::own::{CertifiedChain, Svid};
use crate::x509::key;
use crate::x509::time::unix_seconds;

/// A certificate chain signed from a CSR, without the private key (which the requester
/// keeps). Combine it with the key through [`IssuedCertificate::into_svid`].
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    certs: CertifiedChain,
}

impl IssuedCertificate {
    /// The SPIFFE ID put in the certificate (the caller's, never the CSR's).
    pub fn spiffe_id(&self) -> &SpiffeId {
        self.certs.spiffe_id()
    }
    /// The chain as istiod returns it: leaf, intermediates, root.
    pub fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        self.certs.cert_chain_der()
    }
    /// The chain as PEM, leaf first.
    pub fn cert_chain_pem(&self) -> String {
        self.certs.cert_chain_pem()
    }
    /// The CA's roots.
    pub fn trust_bundle_der(&self) -> &[CertificateDer<'static>] {
        self.certs.trust_bundle_der()
    }
    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        self.certs.not_before()
    }
    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        self.certs.not_after()
    }
    /// The serial number (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.certs.serial()
    }
    /// Joins the chain with the requester's private key into an [`Svid`], checking that the
    /// key belongs to the leaf.
    pub fn into_svid(
        self,
        private_key: &rustls_pki_types::PrivateKeyDer<'_>,
    ) -> Result<Svid, Error> {
        let roots = self.certs.bundle.as_ref().clone();
        Ok(Svid::from_der(self.certs.chain, private_key)?.with_trust_bundle(roots))
    }
}

impl MeshCa {
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
    ) -> Result<CertifiedChain, CaError> {
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
        Ok(CertifiedChain {
            spiffe_id: id.clone(),
            chain,
            bundle: Arc::clone(&self.roots),
            not_before: validity.0,
            not_after: validity.1,
            serial,
        })
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
        self.check_trust_domain(id)?;
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
        let certs = self.sign_leaf(id, &fresh.spki, validity, &params.dns_names)?;
        Ok(Svid::from_issued(certs, fresh.pkcs8))
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
            self.check_trust_domain(id)?;
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
            crate::x509::pem::csr_from_pem(csr_pem).map_err(|reason| CaError::Csr { reason })?;
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
        self.check_trust_domain(id)?;
        let validity = self.workload_validity(unix_seconds(now), ttl)?;
        let spki = csr::verified_public_key(csr_der)?;
        let certs = self.sign_leaf(id, spki, validity, &[])?;
        Ok(IssuedCertificate { certs })
    }
}
