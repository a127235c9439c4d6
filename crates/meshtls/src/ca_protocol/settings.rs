//! The server's options as a YAML/JSON document (`meshtls ca serve --config FILE`), read
//! through [`crate::manifest`] and applied over a [`ServerConfig`].
//!
//! ```yaml
//! clusterId: cluster-east
//! extraDnsNames: [localhost]          # added to istiod's names; dnsNames replaces them
//! minTtl: 10m
//! defaultTtl: 24h
//! maxTtl: 90d
//! strictCsr: false
//! trustedNodeAccounts:
//!   - account: istio-system/ztunnel   # no mayImpersonate: any identity of the trust domain
//!   - account: istio-system/node-agent
//!     mayImpersonate: [shop/web, spiffe://cluster.local/ns/shop/sa/db]
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::server::{NodeAccount, ServerConfig, parse_account};
use crate::error::{CaProtocolError, Error};
use crate::identity::TrustDomain;

/// One `trustedNodeAccounts` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeAccountSettings {
    /// `namespace/serviceaccount` or a `spiffe://` ID.
    pub account: String,
    /// The identities it may request (`ns/sa` or `spiffe://`); absent: any identity of the
    /// trust domain.
    pub may_impersonate: Option<Vec<String>>,
}

impl NodeAccountSettings {
    /// An entry for `account` that may impersonate `may_impersonate` (`None`: any identity).
    pub fn new(account: String, may_impersonate: Option<Vec<String>>) -> NodeAccountSettings {
        NodeAccountSettings {
            account,
            may_impersonate,
        }
    }

    /// The [`NodeAccount`] this entry names in `trust_domain`.
    pub fn to_node_account(&self, trust_domain: &TrustDomain) -> Result<NodeAccount, Error> {
        let account = parse_account(&self.account, trust_domain)?;
        Ok(match &self.may_impersonate {
            None => NodeAccount::any(account),
            Some(ids) => NodeAccount::new(
                account,
                ids.iter()
                    .map(|i| parse_account(i, trust_domain))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// The server options of a configuration file; every field is optional and overrides the
/// default of [`ServerConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSettings {
    /// This server's cluster ID (`clusterid` metadata naming another one is refused).
    pub cluster_id: Option<String>,
    /// The serving certificate's DNS names, replacing istiod's.
    pub dns_names: Option<Vec<String>>,
    /// DNS names added to the serving certificate's.
    #[serde(default)]
    pub extra_dns_names: Vec<String>,
    /// The lifetime when a request asks for none (`24h`, `90m`, `1h30m`, `45s`, `90d`).
    pub default_ttl: Option<String>,
    /// The longest lifetime granted.
    pub max_ttl: Option<String>,
    /// The shortest lifetime granted.
    pub min_ttl: Option<String>,
    /// istio-csr's strict CSR checks.
    pub strict_csr: Option<bool>,
    /// Node agents allowed to use `ImpersonatedIdentity`.
    #[serde(default)]
    pub trusted_node_accounts: Vec<NodeAccountSettings>,
}

impl ServerSettings {
    /// Reads a YAML or JSON document.
    pub fn parse(text: &str) -> Result<ServerSettings, Error> {
        Ok(crate::manifest::parse(text, "ca server config")?)
    }

    /// Applies these settings over `config`; node accounts are named in `trust_domain` and
    /// added to those already in `config`.
    pub fn apply(
        &self,
        config: &mut ServerConfig,
        trust_domain: &TrustDomain,
    ) -> Result<(), Error> {
        if let Some(c) = &self.cluster_id {
            config.cluster_id = c.clone();
        }
        if let Some(names) = &self.dns_names {
            config.dns_names = names.clone();
        }
        config.add_dns_names(self.extra_dns_names.iter().cloned());
        for (text, field, what) in [
            (&self.default_ttl, &mut config.default_ttl, "defaultTtl"),
            (&self.max_ttl, &mut config.max_ttl, "maxTtl"),
            (&self.min_ttl, &mut config.min_ttl, "minTtl"),
        ] {
            if let Some(text) = text {
                *field = parse_duration(text, what)?;
            }
        }
        if let Some(strict) = self.strict_csr {
            config.strict_csr = strict;
        }
        for n in &self.trusted_node_accounts {
            config
                .trusted_node_accounts
                .push(n.to_node_account(trust_domain)?);
        }
        Ok(())
    }
}

/// A duration as Go and the CLI write it: `24h`, `90m`, `1h30m`, `45s`, `90d`.
pub fn parse_duration(text: &str, what: &'static str) -> Result<Duration, Error> {
    let bad = || CaProtocolError::Config {
        what,
        value: text.to_owned(),
        rule: "expected a duration such as 24h, 90m, 1h30m, 45s or 90d".to_owned(),
    };
    let mut total: u64 = 0;
    let mut digits = 0usize;
    let mut n: u64 = 0;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            n = n
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d)))
                .ok_or_else(bad)?;
            digits += 1;
            continue;
        }
        let unit: u64 = match c {
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad().into()),
        };
        if digits == 0 {
            return Err(bad().into());
        }
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        n = 0;
        digits = 0;
    }
    if digits != 0 || text.is_empty() {
        return Err(bad().into());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("1h30m", "t").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("90d", "t").unwrap(),
            Duration::from_secs(90 * 86400)
        );
        for bad in ["", "10", "h", "1x", "99999999999999999999s"] {
            let e = parse_duration(bad, "minTtl").unwrap_err().to_string();
            assert!(e.contains("minTtl") && e.contains(bad), "{e}");
        }
    }
}
