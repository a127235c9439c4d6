//! TEMPORARY stand-ins for `bundle::BundleSet`, `authz::Authorizer` and `svid::verify_svid`,
//! which other branches deliver. Deleted when they land; nothing here is public API.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::error::{AuthzError, Error, SvidError};
use crate::identity::{SpiffeId, TrustDomain};

#[derive(Debug, Clone, Default)]
pub struct BundleSet {
    map: BTreeMap<String, Vec<CertificateDer<'static>>>,
}

impl BundleSet {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, td: &TrustDomain, roots: Vec<CertificateDer<'static>>) {
        self.map
            .entry(td.as_str().to_owned())
            .or_default()
            .extend(roots);
    }
    pub fn get(&self, td: &TrustDomain) -> Option<&[CertificateDer<'static>]> {
        self.map.get(td.as_str()).map(Vec::as_slice)
    }
}

pub trait Authorizer: Send + Sync + fmt::Debug {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AnyPeer;

impl Authorizer for AnyPeer {
    fn authorize(&self, _peer: &SpiffeId) -> Result<(), AuthzError> {
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct ExactIds(pub Vec<SpiffeId>);

impl Authorizer for ExactIds {
    fn authorize(&self, peer: &SpiffeId) -> Result<(), AuthzError> {
        if self.0.contains(peer) {
            Ok(())
        } else {
            Err(AuthzError::Denied(format!(
                "{peer} is not one of {:?}",
                self.0.iter().map(|i| i.as_str()).collect::<Vec<_>>()
            )))
        }
    }
}

#[derive(Debug, Clone)]
pub struct VerifiedSvid {
    id: SpiffeId,
}

impl VerifiedSvid {
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }
}

pub fn verify_svid(
    chain: &[CertificateDer<'_>],
    bundles: &BundleSet,
    now: UnixTime,
) -> Result<VerifiedSvid, Error> {
    let leaf = chain
        .first()
        .ok_or_else(|| SvidError::Invalid("empty certificates chain".into()))?;
    let id = super::peer::spiffe_id_of_cert(leaf)?;
    let td = id.trust_domain();
    let roots = bundles
        .get(&td)
        .ok_or_else(|| SvidError::Invalid(format!("no bundle for trust domain {td}")))?;
    let anchors: Vec<_> = roots
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(r).ok())
        .collect();
    let ee = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| SvidError::Invalid(format!("leaf: {e}")))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| SvidError::Invalid(format!("chain of {id}: {e}")))?;
    Ok(VerifiedSvid { id })
}
