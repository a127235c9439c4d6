//! Kubernetes objects that carry mesh certificates, as serde structs that render to the YAML or
//! JSON `kubectl apply` takes:
//!
//! - [`Secret::tls`]: a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`), what a
//!   gateway mounts as its client certificate and trust anchor;
//! - [`Secret::istio_cacerts`]: Istio's plug-in CA Secret `cacerts` (`ca-cert.pem`,
//!   `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`);
//! - [`ConfigMap::istio_ca_root_cert`]: the `istio-ca-root-cert` ConfigMap (`root-cert.pem`)
//!   that istiod publishes in every namespace.
//!
//! Secret values are held in zeroizing buffers and `Debug` prints only their sizes.
//!
//! ```
//! use meshtls::k8s::ConfigMap;
//! let root = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
//! let cm = ConfigMap::istio_ca_root_cert("shop", root)?;
//! let yaml = cm.to_yaml()?;
//! assert!(yaml.contains("name: istio-ca-root-cert"));
//! assert!(yaml.contains("root-cert.pem"));
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{CaError, Error};

/// `metadata` of an object: name, namespace and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    name: String,
    namespace: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// Checks `name` (a DNS-1123 subdomain) and `namespace` (a DNS-1123 label).
    pub fn new(name: &str, namespace: &str) -> Result<Self, CaError> {
        check_name(name, "name", 253, true)?;
        check_name(namespace, "namespace", 63, false)?;
        Ok(ObjectMeta {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: BTreeMap::new(),
        })
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The object's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
}

fn check_name(value: &str, field: &'static str, max: usize, dots: bool) -> Result<(), CaError> {
    let err = |rule: &'static str| CaError::InvalidObjectName {
        field,
        value: value.to_owned(),
        rule,
    };
    if value.is_empty() {
        return Err(err("must not be empty"));
    }
    if value.len() > max {
        return Err(if dots {
            err("must be at most 253 characters")
        } else {
            err("must be at most 63 characters")
        });
    }
    let ok_char =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.');
    if !value.bytes().all(ok_char) {
        return Err(if dots {
            err("must consist of lower case alphanumeric characters, '-' or '.'")
        } else {
            err("must consist of lower case alphanumeric characters or '-'")
        });
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(value.bytes().next()) || !alnum(value.bytes().last()) {
        return Err(err("must start and end with an alphanumeric character"));
    }
    if dots
        && value
            .split('.')
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(err(
            "each dot-separated part must start and end with an alphanumeric character",
        ));
    }
    Ok(())
}

/// The bytes of one Secret key: base64 in the manifest, zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*self.0));
        s.serialize_str(&text)
    }
}

/// A Kubernetes Secret (`v1`), with its values under `data` (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    #[serde(rename = "type")]
    secret_type: String,
    data: BTreeMap<String, SecretBytes>,
}

impl Secret {
    /// Secret type of TLS key pairs.
    pub const TYPE_TLS: &'static str = "kubernetes.io/tls";
    /// Secret type of arbitrary data (Istio's `cacerts`).
    pub const TYPE_OPAQUE: &'static str = "Opaque";

    /// A `kubernetes.io/tls` Secret: `tls.crt` (the certificate chain, leaf first), `tls.key`
    /// (the private key) and, when given, `ca.crt` (the trust anchors).
    pub fn tls(
        name: &str,
        namespace: &str,
        cert_chain_pem: &str,
        private_key_pem: &str,
        ca_pem: Option<&str>,
    ) -> Result<Self, CaError> {
        let mut data = BTreeMap::new();
        data.insert(
            "tls.crt".to_owned(),
            SecretBytes::new(cert_chain_pem.as_bytes().to_vec()),
        );
        data.insert(
            "tls.key".to_owned(),
            SecretBytes::new(private_key_pem.as_bytes().to_vec()),
        );
        if let Some(ca) = ca_pem {
            data.insert(
                "ca.crt".to_owned(),
                SecretBytes::new(ca.as_bytes().to_vec()),
            );
        }
        Ok(Secret {
            api_version: "v1",
            kind: "Secret",
            metadata: ObjectMeta::new(name, namespace)?,
            secret_type: Secret::TYPE_TLS.to_owned(),
            data,
        })
    }

    /// Istio's plug-in CA Secret: name `cacerts`, type `Opaque`, keys `ca-cert.pem`,
    /// `ca-key.pem`, `cert-chain.pem`, `root-cert.pem` (istiod reads it in its own namespace,
    /// `istio-system` by default).
    pub fn istio_cacerts(
        namespace: &str,
        ca_cert_pem: &str,
        ca_key_pem: &str,
        cert_chain_pem: &str,
        root_cert_pem: &str,
    ) -> Result<Self, CaError> {
        let mut data = BTreeMap::new();
        for (k, v) in [
            ("ca-cert.pem", ca_cert_pem),
            ("ca-key.pem", ca_key_pem),
            ("cert-chain.pem", cert_chain_pem),
            ("root-cert.pem", root_cert_pem),
        ] {
            data.insert(k.to_owned(), SecretBytes::new(v.as_bytes().to_vec()));
        }
        Ok(Secret {
            api_version: "v1",
            kind: "Secret",
            metadata: ObjectMeta::new("cacerts", namespace)?,
            secret_type: Secret::TYPE_OPAQUE.to_owned(),
            data,
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// The Secret's `type`.
    pub fn secret_type(&self) -> &str {
        &self.secret_type
    }

    /// The values, by key.
    pub fn data(&self) -> &BTreeMap<String, SecretBytes> {
        &self.data
    }

    /// One value's bytes.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(SecretBytes::as_bytes)
    }

    /// The manifest as YAML.
    pub fn to_yaml(&self) -> Result<String, Error> {
        Ok(crate::manifest::to_yaml(self)?)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(crate::manifest::to_json(self)?)
    }
}

/// A Kubernetes ConfigMap (`v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    data: BTreeMap<String, String>,
}

impl ConfigMap {
    /// The ConfigMap istiod publishes to every namespace: `istio-ca-root-cert` with the mesh
    /// root under `root-cert.pem` (`PILOT_CA_CERT_CONFIGMAP`).
    pub fn istio_ca_root_cert(namespace: &str, root_cert_pem: &str) -> Result<Self, CaError> {
        let mut data = BTreeMap::new();
        data.insert("root-cert.pem".to_owned(), root_cert_pem.to_owned());
        Ok(ConfigMap {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: ObjectMeta::new("istio-ca-root-cert", namespace)?,
            data,
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// The values, by key.
    pub fn data(&self) -> &BTreeMap<String, String> {
        &self.data
    }

    /// The manifest as YAML.
    pub fn to_yaml(&self) -> Result<String, Error> {
        Ok(crate::manifest::to_yaml(self)?)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(crate::manifest::to_json(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_1123() {
        assert!(ObjectMeta::new("gw-client.v1", "shop").is_ok());
        for bad in ["", "Gw", "-a", "a-", "a..b", "a_b", &"a".repeat(254)] {
            assert!(ObjectMeta::new(bad, "shop").is_err(), "{bad:?}");
        }
        for bad in ["a.b", "Shop", &"a".repeat(64)] {
            assert!(ObjectMeta::new("x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_secret_values() {
        let s = Secret::tls("x", "y", "CHAIN", "TOPSECRETKEY", None).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("TOPSECRETKEY"));
        assert!(dbg.contains("<12 bytes>"));
    }
}
