//! Istio's mesh config, as stored in the `istio` ConfigMap under the `mesh` key.
//!
//! Only the fields meshtls needs are read; unknown fields are ignored (the mesh config has
//! dozens), but a known field with the wrong type is an error that names the field.

use serde::Deserialize;

use crate::error::{Error, MeshConfigError};
use crate::identity::{TrustDomain, dedup_in_order};
use crate::manifest;

/// Istio's default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
/// Istio's default root namespace.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// `meshMTLS.minProtocolVersion` (Istio's `TLSProtocol` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsProtocolVersion {
    /// `TLS_AUTO` (the default): TLS 1.2 for mesh mTLS.
    #[default]
    Auto,
    /// `TLSV1_0`.
    V1_0,
    /// `TLSV1_1`.
    V1_1,
    /// `TLSV1_2`.
    V1_2,
    /// `TLSV1_3`.
    V1_3,
}

impl TlsProtocolVersion {
    /// Parses Istio's spelling (`TLS_AUTO`, `TLSV1_2`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "TLS_AUTO" => Self::Auto,
            "TLSV1_0" => Self::V1_0,
            "TLSV1_1" => Self::V1_1,
            "TLSV1_2" => Self::V1_2,
            "TLSV1_3" => Self::V1_3,
            _ => return None,
        })
    }

    /// Istio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "TLS_AUTO",
            Self::V1_0 => "TLSV1_0",
            Self::V1_1 => "TLSV1_1",
            Self::V1_2 => "TLSV1_2",
            Self::V1_3 => "TLSV1_3",
        }
    }

    /// True when inbound mesh mTLS must be TLS 1.3 only (Istio's `GetMinTLSVersion`: only
    /// `TLSV1_3` raises the minimum; every other value means TLS 1.2).
    pub fn requires_tls13(self) -> bool {
        self == Self::V1_3
    }
}

/// The trust domain and its aliases; defined in [`crate::identity`], re-exported here beside
/// the mesh config that holds them.
pub use crate::identity::TrustDomains;

/// The parts of Istio's `MeshConfig` that decide identity and mTLS.
///
/// ```
/// let mesh = meshtls::MeshConfig::from_yaml("trustDomainAliases: [old.example]\n")?;
/// assert_eq!(mesh.trust_domain().as_str(), "cluster.local");
/// assert_eq!(mesh.root_namespace(), "istio-system");
/// # Ok::<(), meshtls::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    trust_domain: TrustDomain,
    trust_domain_aliases: Vec<TrustDomain>,
    root_namespace: String,
    min_protocol_version: TlsProtocolVersion,
    cipher_suites: Vec<String>,
    ca_certificate_trust_domains: Vec<Vec<TrustDomain>>,
    ca_certificate_pems: Vec<String>,
    enable_auto_mtls: bool,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            trust_domain: TrustDomain::from_validated(DEFAULT_TRUST_DOMAIN.to_owned()),
            trust_domain_aliases: Vec::new(),
            root_namespace: DEFAULT_ROOT_NAMESPACE.to_owned(),
            min_protocol_version: TlsProtocolVersion::Auto,
            cipher_suites: Vec::new(),
            ca_certificate_trust_domains: Vec::new(),
            ca_certificate_pems: Vec::new(),
            enable_auto_mtls: true,
        }
    }
}

/// The wire shape; every field optional so that layers can be merged.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMesh {
    trust_domain: Option<String>,
    trust_domain_aliases: Option<Vec<Option<String>>>,
    root_namespace: Option<String>,
    #[serde(rename = "meshMTLS")]
    mesh_mtls: Option<RawMeshMtls>,
    ca_certificates: Option<Vec<RawCaCertificate>>,
    enable_auto_mtls: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeshMtls {
    min_protocol_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCaCertificate {
    trust_domains: Option<Vec<Option<String>>>,
    pem: Option<String>,
}

fn field_err(field: impl Into<String>, reason: impl Into<String>) -> MeshConfigError {
    MeshConfigError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

fn parse_td(field: String, text: &str) -> Result<TrustDomain, MeshConfigError> {
    TrustDomain::new(text).map_err(|e| field_err(field, e.to_string()))
}

/// Drops empty entries (Istio does), validates the rest.
fn parse_td_list(
    field: &str,
    list: Vec<Option<String>>,
) -> Result<Vec<TrustDomain>, MeshConfigError> {
    let mut out = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        match item.as_deref() {
            None | Some("") => continue,
            Some(text) => out.push(parse_td(format!("{field}[{i}]"), text)?),
        }
    }
    Ok(out)
}

impl MeshConfig {
    /// Reads the `istio` ConfigMap manifest (the `mesh` key of `data` is parsed) or a bare
    /// `mesh` document. An empty document gives Istio's defaults.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let mut config = MeshConfig::default();
        config.apply_yaml(text)?;
        Ok(config)
    }

    /// Reads several layers in order, later ones overriding earlier ones, as Istio's
    /// `ApplyMeshConfig`: each field a layer sets replaces the earlier value, except
    /// `trustDomainAliases`, which are unioned and sorted.
    pub fn from_layers<S: AsRef<str>>(layers: &[S]) -> Result<Self, Error> {
        let mut config = MeshConfig::default();
        for layer in layers {
            config.apply_yaml(layer.as_ref())?;
        }
        Ok(config)
    }

    /// Applies one more layer on top of this config (see [`MeshConfig::from_layers`]).
    pub fn apply_yaml(&mut self, text: &str) -> Result<(), Error> {
        let raw = Self::raw_from_yaml(text)?;
        self.apply(raw)?;
        Ok(())
    }

    fn raw_from_yaml(text: &str) -> Result<RawMesh, Error> {
        let value =
            manifest::parse_value_within(text, "mesh config", manifest::MAX_MESH_CONFIG_NODES)?;
        let value = match value {
            serde_json::Value::Null => return Ok(RawMesh::default()),
            serde_json::Value::Object(ref map)
                if map.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap") =>
            {
                let name = map
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .to_owned();
                let mesh = map.get("data").and_then(|d| d.get("mesh"));
                match mesh {
                    Some(serde_json::Value::String(text)) => manifest::parse_value_within(
                        text,
                        "mesh config",
                        manifest::MAX_MESH_CONFIG_NODES,
                    )?,
                    Some(_) => return Err(field_err("data.mesh", "expected a string").into()),
                    None => return Err(MeshConfigError::MissingMeshKey { name }.into()),
                }
            }
            other => other,
        };
        if value.is_null() {
            return Ok(RawMesh::default());
        }
        if !value.is_object() {
            return Err(field_err("(document)", "expected a mapping").into());
        }
        serde_json::from_value(value).map_err(|e| field_err("(document)", e.to_string()).into())
    }

    fn apply(&mut self, raw: RawMesh) -> Result<(), MeshConfigError> {
        if let Some(td) = raw.trust_domain {
            if td.is_empty() {
                return Err(field_err(
                    "trustDomain",
                    "is empty; meshtls does not guess a trust domain (omit the field for cluster.local)",
                ));
            }
            self.trust_domain = parse_td("trustDomain".into(), &td)?;
        }
        if let Some(aliases) = raw.trust_domain_aliases {
            let mut merged = parse_td_list("trustDomainAliases", aliases)?;
            merged.append(&mut self.trust_domain_aliases);
            merged.sort();
            merged.dedup();
            self.trust_domain_aliases = merged;
        }
        if let Some(ns) = raw.root_namespace {
            if ns.is_empty() {
                return Err(field_err("rootNamespace", "is empty"));
            }
            self.root_namespace = ns;
        }
        if let Some(mtls) = raw.mesh_mtls {
            if let Some(v) = mtls.min_protocol_version {
                self.min_protocol_version = TlsProtocolVersion::parse(&v).ok_or_else(|| {
                    field_err(
                        "meshMTLS.minProtocolVersion",
                        format!("{v:?} is not one of TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3"),
                    )
                })?;
            }
            if let Some(c) = mtls.cipher_suites {
                self.cipher_suites = c;
            }
        }
        if let Some(cas) = raw.ca_certificates {
            let mut all = Vec::with_capacity(cas.len());
            let mut pems = Vec::new();
            for (i, ca) in cas.into_iter().enumerate() {
                all.push(parse_td_list(
                    &format!("caCertificates[{i}].trustDomains"),
                    ca.trust_domains.unwrap_or_default(),
                )?);
                // Kept as text: only the controller reads it (and names this entry when it
                // cannot); a path check never needs it.
                if let Some(pem) = ca.pem.filter(|p| !p.trim().is_empty()) {
                    pems.push(pem);
                }
            }
            self.ca_certificate_trust_domains = all;
            self.ca_certificate_pems = pems;
        }
        if let Some(auto) = raw.enable_auto_mtls {
            self.enable_auto_mtls = auto;
        }
        Ok(())
    }

    /// `trustDomain` (default `cluster.local`).
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// `trustDomainAliases`, sorted and without duplicates.
    pub fn trust_domain_aliases(&self) -> &[TrustDomain] {
        &self.trust_domain_aliases
    }

    /// The trust domain and its aliases.
    pub fn trust_domains(&self) -> TrustDomains {
        TrustDomains::new(
            self.trust_domain.clone(),
            self.trust_domain_aliases.iter().cloned(),
        )
    }

    /// `rootNamespace` (default `istio-system`).
    pub fn root_namespace(&self) -> &str {
        &self.root_namespace
    }

    /// `meshMTLS.minProtocolVersion` (default `TLS_AUTO`).
    pub fn min_protocol_version(&self) -> TlsProtocolVersion {
        self.min_protocol_version
    }

    /// `meshMTLS.cipherSuites` (empty: Istio's default list).
    pub fn cipher_suites(&self) -> &[String] {
        &self.cipher_suites
    }

    /// `caCertificates[].trustDomains`, one list per entry.
    pub fn ca_certificate_trust_domains(&self) -> &[Vec<TrustDomain>] {
        &self.ca_certificate_trust_domains
    }

    /// `caCertificates[].pem`: the extra root certificates the mesh trusts (each entry's PEM
    /// text, entries without one left out), e.g. the roots of trust-domain aliases during a
    /// migration. The controller puts them into a gateway's `ca.crt`.
    pub fn ca_certificate_pems(&self) -> &[String] {
        &self.ca_certificate_pems
    }

    /// `enableAutoMtls` (default true).
    pub fn enable_auto_mtls(&self) -> bool {
        self.enable_auto_mtls
    }

    /// The trust domains a sidecar accepts on inbound mTLS, in Istio's order
    /// (`TrustDomainsForValidation`): the trust domain, the aliases, then every
    /// `caCertificates[].trustDomains` entry, with duplicates dropped.
    pub fn trust_domains_for_validation(&self) -> Vec<TrustDomain> {
        let all = std::iter::once(&self.trust_domain)
            .chain(self.trust_domain_aliases.iter())
            .chain(self.ca_certificate_trust_domains.iter().flatten());
        dedup_in_order(all.cloned())
    }
}
