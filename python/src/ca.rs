//! `MeshCa`, `Svid` and `IssuedCertificate`: argument conversion, error mapping and GIL release
//! around `meshtls::ca`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDelta, PyType};

use crate::errors::{CaError, py_err};
use crate::identity::{PySpiffeId, PyTrustDomain, SpiffeIdArg, TrustDomainArg};

/// A non-negative `timedelta` as a `Duration`; `what` names the argument in errors.
pub(crate) fn duration(td: &Bound<'_, PyDelta>, what: &str) -> PyResult<Duration> {
    let secs: f64 = td.call_method0("total_seconds")?.extract()?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(CaError::new_err(format!(
            "invalid {what} of {secs} seconds: a lifetime must not be negative"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(crate) fn key_kind(name: &str) -> PyResult<meshtls::ca::KeyKind> {
    meshtls::ca::KeyKind::parse(name).map_err(py_err)
}

/// An aware `datetime` (or `None` for now) as a `SystemTime`.
fn instant(now: Option<&Bound<'_, PyAny>>) -> PyResult<SystemTime> {
    match now {
        None => Ok(SystemTime::now()),
        Some(t) => {
            if t.getattr("tzinfo")?.is_none() {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "now must be an aware datetime (e.g. datetime.now(timezone.utc))",
                ));
            }
            t.extract()
        }
    }
}

fn to_dict(py: Python<'_>, json: meshtls::Result<String>) -> PyResult<Py<PyAny>> {
    let text = zeroize::Zeroizing::new(json.map_err(py_err)?);
    let value = py.import("json")?.call_method1("loads", (text.as_str(),))?;
    Ok(value.unbind())
}

fn serial_int<'py>(py: Python<'py>, serial: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    py.get_type::<pyo3::types::PyInt>()
        .call_method1("from_bytes", (PyBytes::new(py, serial), "big"))
}

fn der_list<'py, C: AsRef<[u8]>>(py: Python<'py>, certs: &[C]) -> Vec<Bound<'py, PyBytes>> {
    certs.iter().map(|c| PyBytes::new(py, c.as_ref())).collect()
}

/// A mesh CA issuing X.509-SVIDs with Istio's workload profile.
#[pyclass(frozen, module = "meshtls", name = "MeshCa")]
pub(crate) struct PyMeshCa {
    pub(crate) inner: Arc<meshtls::MeshCa>,
}

impl PyMeshCa {
    fn wrap(inner: meshtls::MeshCa) -> Self {
        PyMeshCa {
            inner: Arc::new(inner),
        }
    }
}

struct CaArgs<'a> {
    trust_domain: meshtls::TrustDomain,
    key: &'a str,
    ttl: &'a Bound<'a, PyDelta>,
    organization: Option<String>,
    common_name: Option<String>,
    path_len: Option<u8>,
    trust_domain_san: bool,
}

fn ca_params(a: CaArgs<'_>) -> PyResult<meshtls::ca::CaParams> {
    let mut p = meshtls::ca::CaParams::new(a.trust_domain);
    p.key = key_kind(a.key)?;
    p.ttl = duration(a.ttl, "ttl")?;
    p.organization = a.organization;
    p.common_name = a.common_name;
    p.path_len = a.path_len;
    p.trust_domain_san = a.trust_domain_san;
    Ok(p)
}

fn issue_params(
    ttl: Option<&Bound<'_, PyDelta>>,
    key: &str,
    dns_names: Vec<String>,
) -> PyResult<meshtls::ca::IssueParams> {
    Ok(meshtls::ca::IssueParams {
        ttl: match ttl {
            Some(t) => duration(t, "ttl")?,
            None => meshtls::ca::DEFAULT_WORKLOAD_TTL,
        },
        key: key_kind(key)?,
        dns_names,
    })
}

#[pymethods]
impl PyMeshCa {
    #[classmethod]
    #[pyo3(
        signature = (trust_domain = None, *, key = "rsa-2048", ttl = None, organization = None, common_name = None, trust_domain_san = false),
        text_signature = "(trust_domain='cluster.local', *, key='rsa-2048', ttl=None, organization=None, common_name=None, trust_domain_san=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn create(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        trust_domain: Option<TrustDomainArg>,
        key: &str,
        ttl: Option<&Bound<'_, PyDelta>>,
        organization: Option<String>,
        common_name: Option<String>,
        trust_domain_san: bool,
    ) -> PyResult<Self> {
        let trust_domain = match trust_domain {
            Some(t) => t.0,
            None => meshtls::TrustDomain::new(meshtls::identity::CLUSTER_LOCAL).map_err(py_err)?,
        };
        let default_ttl = PyDelta::new(py, 3650, 0, 0, false)?;
        let params = ca_params(CaArgs {
            trust_domain,
            key,
            ttl: ttl.unwrap_or(&default_ttl),
            organization,
            common_name,
            path_len: None,
            trust_domain_san,
        })?;
        let ca = py
            .detach(|| meshtls::MeshCa::create(&params))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    #[pyo3(
        signature = (trust_domain = None, *, key = "rsa-2048", ttl = None, organization = None, common_name = Some("Intermediate CA".to_owned()), path_len = Some(0), trust_domain_san = false),
        text_signature = "(self, /, trust_domain=None, *, key='rsa-2048', ttl=None, organization=None, common_name='Intermediate CA', path_len=0, trust_domain_san=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn create_intermediate(
        &self,
        py: Python<'_>,
        trust_domain: Option<TrustDomainArg>,
        key: &str,
        ttl: Option<&Bound<'_, PyDelta>>,
        organization: Option<String>,
        common_name: Option<String>,
        path_len: Option<u8>,
        trust_domain_san: bool,
    ) -> PyResult<Self> {
        let trust_domain = match (trust_domain, self.inner.trust_domain()) {
            (Some(t), _) => t.0,
            (None, Some(t)) => t.clone(),
            (None, None) => {
                return Err(CaError::new_err(
                    "this CA has no trust domain of its own: pass trust_domain",
                ));
            }
        };
        let default_ttl = PyDelta::new(py, 730, 0, 0, false)?;
        let params = ca_params(CaArgs {
            trust_domain,
            key,
            ttl: ttl.unwrap_or(&default_ttl),
            organization,
            common_name,
            path_len,
            trust_domain_san,
        })?;
        let inner = Arc::clone(&self.inner);
        let ca = py
            .detach(move || inner.create_intermediate(&params))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    #[classmethod]
    fn load(_cls: &Bound<'_, PyType>, py: Python<'_>, directory: PathBuf) -> PyResult<Self> {
        let ca = py
            .detach(|| meshtls::MeshCa::load(&directory))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    #[classmethod]
    #[pyo3(signature = (ca_cert_pem, ca_key_pem, *, cert_chain_pem = "", root_cert_pem = ""))]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        ca_cert_pem: &str,
        ca_key_pem: String,
        cert_chain_pem: &str,
        root_cert_pem: &str,
    ) -> PyResult<Self> {
        let key = zeroize::Zeroizing::new(ca_key_pem);
        let ca = py
            .detach(|| meshtls::MeshCa::from_pem(ca_cert_pem, &key, cert_chain_pem, root_cert_pem))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    #[pyo3(signature = (directory, *, layout = "istio"))]
    fn save(&self, py: Python<'_>, directory: PathBuf, layout: &str) -> PyResult<()> {
        let layout = match layout {
            "istio" => meshtls::ca::CaLayout::Istio,
            "kubernetes-tls" => meshtls::ca::CaLayout::KubernetesTls,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown layout {other:?}: expected 'istio' or 'kubernetes-tls'"
                )));
            }
        };
        py.detach(|| self.inner.save_as(&directory, layout))
            .map_err(py_err)
    }

    #[getter]
    fn root_cert_pem(&self) -> String {
        self.inner.root_cert_pem()
    }

    #[getter]
    fn ca_cert_pem(&self) -> String {
        self.inner.ca_cert_pem()
    }

    #[getter]
    fn ca_key_pem(&self) -> String {
        self.inner.ca_key_pem().to_string()
    }

    #[getter]
    fn cert_chain_pem(&self) -> String {
        self.inner.cert_chain_pem()
    }

    #[getter]
    fn trust_domain(&self) -> Option<PyTrustDomain> {
        self.inner
            .trust_domain()
            .map(|t| PyTrustDomain { inner: t.clone() })
    }

    #[getter]
    fn key(&self) -> String {
        self.inner.key_description()
    }

    #[getter]
    fn is_self_signed(&self) -> bool {
        self.inner.is_self_signed()
    }

    #[getter]
    fn not_before(&self) -> SystemTime {
        self.inner.not_before()
    }

    #[getter]
    fn not_after(&self) -> SystemTime {
        self.inner.not_after()
    }

    #[pyo3(signature = (identity, *, ttl = None, key = "ec-p256", dns_names = Vec::new()))]
    fn issue(
        &self,
        py: Python<'_>,
        identity: SpiffeIdArg,
        ttl: Option<&Bound<'_, PyDelta>>,
        key: &str,
        dns_names: Vec<String>,
    ) -> PyResult<PySvid> {
        let params = issue_params(ttl, key, dns_names)?;
        let svid = py
            .detach(|| self.inner.issue(&identity.0, &params))
            .map_err(py_err)?;
        Ok(PySvid { inner: svid })
    }

    #[pyo3(signature = (identities, *, ttl = None, key = "ec-p256", dns_names = Vec::new(), threads = None))]
    fn issue_many(
        &self,
        py: Python<'_>,
        identities: Vec<SpiffeIdArg>,
        ttl: Option<&Bound<'_, PyDelta>>,
        key: &str,
        dns_names: Vec<String>,
        threads: Option<usize>,
    ) -> PyResult<Vec<PySvid>> {
        let params = issue_params(ttl, key, dns_names)?;
        let ids: Vec<meshtls::SpiffeId> = identities.into_iter().map(|i| i.0).collect();
        let svids = py
            .detach(|| match threads {
                Some(n) => self.inner.issue_many_on(&ids, &params, n.max(1)),
                None => self.inner.issue_many(&ids, &params),
            })
            .map_err(py_err)?;
        Ok(svids.into_iter().map(|inner| PySvid { inner }).collect())
    }

    #[pyo3(signature = (csr_pem, identity, *, ttl = None))]
    fn sign_csr(
        &self,
        py: Python<'_>,
        csr_pem: String,
        identity: SpiffeIdArg,
        ttl: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<PyIssuedCertificate> {
        let ttl = match ttl {
            Some(t) => duration(t, "ttl")?,
            None => meshtls::ca::DEFAULT_WORKLOAD_TTL,
        };
        let issued = py
            .detach(|| self.inner.sign_csr(&csr_pem, &identity.0, ttl))
            .map_err(py_err)?;
        Ok(PyIssuedCertificate { inner: issued })
    }

    #[pyo3(signature = (*, ttl = None))]
    fn rotate_root(&self, py: Python<'_>, ttl: Option<&Bound<'_, PyDelta>>) -> PyResult<Self> {
        let ttl = match ttl {
            Some(t) => duration(t, "ttl")?,
            None => meshtls::ca::DEFAULT_ROOT_TTL,
        };
        let ca = py.detach(|| self.inner.rotate_root(ttl)).map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    #[pyo3(signature = (now = None))]
    fn needs_rotation(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        Ok(self.inner.needs_rotation(instant(now)?))
    }

    #[pyo3(signature = (namespace = "istio-system"))]
    fn to_cacerts_secret(&self, py: Python<'_>, namespace: &str) -> PyResult<Py<PyAny>> {
        let json = self
            .inner
            .to_cacerts_secret(namespace)
            .and_then(|s| s.to_json());
        to_dict(py, json)
    }

    fn root_cert_configmap(&self, py: Python<'_>, namespace: &str) -> PyResult<Py<PyAny>> {
        let json = self
            .inner
            .root_cert_configmap(namespace)
            .and_then(|c| c.to_json());
        to_dict(py, json)
    }

    fn __repr__(&self) -> String {
        let td = match self.inner.trust_domain() {
            Some(t) => format!("'{t}'"),
            None => "None".to_owned(),
        };
        format!(
            "<MeshCa trust_domain={td} key='{}' self_signed={} chain_len={}>",
            self.inner.key_description(),
            if self.inner.is_self_signed() {
                "True"
            } else {
                "False"
            },
            self.inner.cert_chain_der().len()
        )
    }
}

/// An X.509-SVID with its private key.
#[pyclass(frozen, module = "meshtls", name = "Svid")]
pub(crate) struct PySvid {
    pub(crate) inner: meshtls::Svid,
}

#[pymethods]
impl PySvid {
    #[classmethod]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        cert_chain_pem: &str,
        private_key_pem: String,
    ) -> PyResult<Self> {
        let key = zeroize::Zeroizing::new(private_key_pem);
        let inner = meshtls::Svid::from_pem(cert_chain_pem, &key).map_err(py_err)?;
        Ok(PySvid { inner })
    }

    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    #[getter]
    fn cert_chain_pem(&self) -> String {
        self.inner.cert_chain_pem()
    }

    #[getter]
    fn cert_chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        der_list(py, self.inner.cert_chain_der())
    }

    #[getter]
    fn private_key_pem(&self) -> String {
        self.inner.private_key_pem().to_string()
    }

    #[getter]
    fn private_key_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut key = self.inner.private_key_der();
        let bytes = PyBytes::new(py, key.secret_der());
        zeroize::Zeroize::zeroize(&mut key);
        bytes
    }

    #[getter]
    fn trust_bundle_pem(&self) -> String {
        self.inner.trust_bundle_pem()
    }

    #[getter]
    fn not_before(&self) -> SystemTime {
        self.inner.not_before()
    }

    #[getter]
    fn not_after(&self) -> SystemTime {
        self.inner.not_after()
    }

    #[getter]
    fn serial_number<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serial_int(py, self.inner.serial())
    }

    #[pyo3(signature = (now = None))]
    fn should_rotate(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        Ok(self.inner.should_rotate(instant(now)?))
    }

    #[pyo3(signature = (*, grace_ratio = 0.5, jitter = 0.0))]
    fn rotation_time(&self, grace_ratio: f64, jitter: f64) -> PyResult<SystemTime> {
        if !(0.0..=1.0).contains(&grace_ratio) || !(0.0..=1.0).contains(&jitter) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "grace_ratio ({grace_ratio}) and jitter ({jitter}) must lie in [0, 1]"
            )));
        }
        Ok(self.inner.rotation_time(&meshtls::ca::RotationPolicy {
            grace_ratio,
            jitter,
        }))
    }

    fn to_k8s_secret(&self, py: Python<'_>, name: &str, namespace: &str) -> PyResult<Py<PyAny>> {
        let json = self
            .inner
            .to_k8s_secret(name, namespace)
            .and_then(|s| s.to_json());
        to_dict(py, json)
    }

    fn save(&self, py: Python<'_>, directory: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&directory)).map_err(py_err)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Svid spiffe_id='{}' serial={} chain_len={}>",
            self.inner.spiffe_id().as_str(),
            self.inner.serial_hex(),
            self.inner.cert_chain_der().len()
        )
    }
}

/// A certificate chain signed from a CSR (the requester keeps the key).
#[pyclass(frozen, module = "meshtls", name = "IssuedCertificate")]
pub(crate) struct PyIssuedCertificate {
    inner: meshtls::ca::IssuedCertificate,
}

#[pymethods]
impl PyIssuedCertificate {
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    #[getter]
    fn cert_chain_pem(&self) -> String {
        self.inner.cert_chain_pem()
    }

    #[getter]
    fn cert_chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        der_list(py, self.inner.cert_chain_der())
    }

    #[getter]
    fn not_before(&self) -> SystemTime {
        self.inner.not_before()
    }

    #[getter]
    fn not_after(&self) -> SystemTime {
        self.inner.not_after()
    }

    #[getter]
    fn serial_number<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serial_int(py, self.inner.serial())
    }

    fn with_private_key(&self, private_key_pem: String) -> PyResult<PySvid> {
        let key = zeroize::Zeroizing::new(private_key_pem);
        let svid = meshtls::Svid::from_pem(&self.inner.cert_chain_pem(), &key)
            .map_err(py_err)?
            .with_trust_bundle(self.inner.trust_bundle_der().to_vec());
        Ok(PySvid { inner: svid })
    }

    fn __repr__(&self) -> String {
        format!(
            "<IssuedCertificate spiffe_id='{}' chain_len={}>",
            self.inner.spiffe_id().as_str(),
            self.inner.cert_chain_der().len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMeshCa>()?;
    m.add_class::<PySvid>()?;
    m.add_class::<PyIssuedCertificate>()?;
    Ok(())
}
