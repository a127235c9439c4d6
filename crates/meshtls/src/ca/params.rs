//! The parameter structs and the rules they are checked against.

use std::time::Duration;

use super::KeyKind;
use crate::error::CaError;
use crate::identity::{SpiffeId, TrustDomain};

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

pub(super) fn check_positive(ttl: Duration) -> Result<i64, CaError> {
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

pub(super) fn check_workload_ttl(ttl: Duration) -> Result<i64, CaError> {
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
pub(super) fn check_dns_name(name: &str) -> Result<(), CaError> {
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

pub(super) fn check_workload_id(id: &SpiffeId) -> Result<(), CaError> {
    if id.is_trust_domain_id() {
        return Err(CaError::IdentityWithoutPath {
            id: id.as_str().to_owned(),
        });
    }
    Ok(())
}

pub(super) fn subject_of(params: &CaParams) -> Result<Vec<u8>, CaError> {
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
    Ok(crate::x509::name::name(org, params.common_name.as_deref()))
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
