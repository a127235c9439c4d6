//! Istio's DestinationRule, the parts that decide what a client sidecar sends (its
//! `trafficPolicy.tls.mode`, port-level settings, `exportTo`): what the path check
//! ([`crate::path`]) reads to pick the transport of a call.

use std::fmt;

use serde_json::Value;

use crate::error::AuthorizationPolicyError;
use crate::policy::PolicyName;

/// The kind of a DestinationRule.
pub const DESTINATION_RULE_KIND: &str = "DestinationRule";
const NETWORKING_GROUP: &str = "networking.istio.io";

/// `trafficPolicy.tls.mode` of a DestinationRule (`ClientTLSSettings.TLSmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientTlsMode {
    /// Plaintext.
    Disable,
    /// TLS without a client certificate.
    Simple,
    /// TLS with the certificates the DestinationRule names.
    Mutual,
    /// Istio's mesh mTLS with the workload's own certificate.
    IstioMutual,
}

impl ClientTlsMode {
    /// Parses Istio's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "DISABLE" => Self::Disable,
            "SIMPLE" => Self::Simple,
            "MUTUAL" => Self::Mutual,
            "ISTIO_MUTUAL" => Self::IstioMutual,
            _ => return None,
        })
    }

    /// Istio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "DISABLE",
            Self::Simple => "SIMPLE",
            Self::Mutual => "MUTUAL",
            Self::IstioMutual => "ISTIO_MUTUAL",
        }
    }
}

impl fmt::Display for ClientTlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a DestinationRule that decide what a client sidecar sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRule {
    /// `namespace/name`.
    pub name: PolicyName,
    /// `spec.host` as written (short name, FQDN or wildcard).
    pub host: String,
    /// `spec.trafficPolicy.tls.mode`.
    pub tls_mode: Option<ClientTlsMode>,
    /// `spec.trafficPolicy.portLevelSettings[]`: `(port.number, tls.mode)`.
    pub port_tls: Vec<(u32, ClientTlsMode)>,
    /// `spec.exportTo` (`None`: every namespace, Istio's default): `*` every namespace, `.`
    /// the DestinationRule's own, `~` none, else namespace names.
    pub export_to: Option<Vec<String>>,
    /// `spec.workloadSelector` is set: the rule binds only to the client workloads it
    /// selects, which [`Caller`](crate::path::Caller) does not describe (such rules are not used).
    pub workload_selector: bool,
}

impl DestinationRule {
    /// Reads one DestinationRule from a generic JSON value (`networking.istio.io`
    /// v1/v1beta1/v1alpha3); fields meshtls does not need are ignored.
    pub fn from_value(value: &Value, index: &str) -> Result<Self, AuthorizationPolicyError> {
        let doc = |reason: String| AuthorizationPolicyError::Document {
            index: index.to_owned(),
            reason,
        };
        let meta = value.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| doc("DestinationRule has no metadata.name".into()))?;
        let ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| AuthorizationPolicyError::MissingNamespace {
                kind: DESTINATION_RULE_KIND,
                name: name.to_owned(),
            })?;
        let object = format!("{ns}/{name}");
        let api = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(
            api,
            "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3"
        ) {
            return Err(AuthorizationPolicyError::ApiVersion {
                kind: DESTINATION_RULE_KIND,
                group: NETWORKING_GROUP,
                object,
                api_version: api.to_owned(),
            });
        }
        let spec = value.get("spec");
        let host = spec
            .and_then(|s| s.get("host"))
            .and_then(Value::as_str)
            .ok_or_else(|| doc(format!("DestinationRule {object}: spec.host is required")))?;
        let mode = |tls: Option<&Value>,
                    path: &str|
         -> Result<Option<ClientTlsMode>, AuthorizationPolicyError> {
            // `tls` set without `mode`: the proto's default, DISABLE (istiod's
            // buildUpstreamTLSSettings uses any non-nil tls as written).
            let tls = tls.filter(|t| !t.is_null());
            match tls.and_then(|t| t.get("mode")) {
                None | Some(Value::Null) if tls.is_some() => Ok(Some(ClientTlsMode::Disable)),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(m)) => ClientTlsMode::parse(m).map(Some).ok_or_else(|| {
                    doc(format!(
                        "DestinationRule {object}: {path}.mode {m:?} is not one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL"
                    ))
                }),
                Some(other) => Err(doc(format!("DestinationRule {object}: {path}.mode must be a string, found {other}"))),
            }
        };
        let tp = spec.and_then(|s| s.get("trafficPolicy"));
        let tls_mode = mode(tp.and_then(|t| t.get("tls")), "spec.trafficPolicy.tls")?;
        let mut port_tls = Vec::new();
        if let Some(Value::Array(items)) = tp.and_then(|t| t.get("portLevelSettings")) {
            for (i, item) in items.iter().enumerate() {
                let path = format!("spec.trafficPolicy.portLevelSettings[{i}].tls");
                if let (Some(port), Some(m)) = (
                    item.get("port")
                        .and_then(|p| p.get("number"))
                        .and_then(Value::as_u64),
                    mode(item.get("tls"), &path)?,
                ) {
                    port_tls.push((u32::try_from(port).unwrap_or(u32::MAX), m));
                }
            }
        }
        let export_to = match spec.and_then(|s| s.get("exportTo")) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_owned).ok_or_else(|| {
                            doc(format!(
                                "DestinationRule {object}: spec.exportTo entries must be strings, found {i}"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => {
                return Err(doc(format!(
                    "DestinationRule {object}: spec.exportTo must be a list, found {other}"
                )));
            }
        };
        let workload_selector = spec
            .and_then(|s| s.get("workloadSelector"))
            .is_some_and(|w| !w.is_null());
        Ok(DestinationRule {
            name: PolicyName::new(ns, name),
            host: host.to_owned(),
            tls_mode,
            port_tls,
            export_to,
            workload_selector,
        })
    }

    /// True when a client sidecar in `namespace` sees the rule (`exportTo`).
    pub fn visible_to(&self, namespace: &str) -> bool {
        match &self.export_to {
            None => true,
            Some(list) if list.is_empty() => true,
            Some(list) => list.iter().any(|e| {
                e == "*" || e == namespace || (e == "." && self.name.namespace() == namespace)
            }),
        }
    }

    /// How well `spec.host` names `service.namespace.svc.<domain>`: `u32::MAX` exact, a
    /// wildcard by the length of its suffix (the most specific wins, as istiod's
    /// `MostSpecificHostMatch`), 0 not.
    pub(crate) fn host_match(&self, fqdn: &str) -> u32 {
        let host = self.host.as_str();
        let exact = if host.contains('.') || host == "*" {
            host == fqdn
                || fqdn
                    .strip_suffix(".svc.cluster.local")
                    .is_some_and(|s| s == host)
        } else {
            // A short name is relative to the DestinationRule's namespace.
            fqdn.strip_prefix(host)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|r| r.strip_prefix(self.name.namespace()))
                == Some(".svc.cluster.local")
        };
        if exact {
            return u32::MAX;
        }
        let score = |n: usize| u32::try_from(n).unwrap_or(u32::MAX - 1).saturating_add(1);
        match host.strip_prefix('*') {
            // `*x` short: `*x.<namespace>.svc.cluster.local`.
            Some(suffix) if !host.contains('.') && host != "*" => {
                let tail = format!(".{}.svc.cluster.local", self.name.namespace());
                match fqdn.strip_suffix(tail.as_str()) {
                    Some(h) if h.ends_with(suffix) => score(suffix.len() + tail.len()),
                    _ => 0,
                }
            }
            Some(suffix) if fqdn.ends_with(suffix) => score(suffix.len()),
            _ => 0,
        }
    }

    /// The TLS mode for `port` (the port-level setting first).
    pub fn mode_for(&self, port: u16) -> Option<ClientTlsMode> {
        self.port_tls
            .iter()
            .find(|(p, _)| *p == u32::from(port))
            .map(|(_, m)| *m)
            .or(self.tls_mode)
    }
}
