//! `TrustDomain`, `SpiffeId`, `IstioIdentity`, `MeshConfig` and the principal helpers.

use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use crate::errors::py_err;

/// A SPIFFE trust domain (strict grammar).
#[pyclass(frozen, eq, ord, hash, module = "meshtls", name = "TrustDomain")]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PyTrustDomain {
    pub(crate) inner: meshtls::TrustDomain,
}

#[pymethods]
impl PyTrustDomain {
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        let inner = meshtls::TrustDomain::new(name).map_err(py_err)?;
        Ok(PyTrustDomain { inner })
    }

    #[classmethod]
    fn parse_lenient(_cls: &Bound<'_, PyType>, name: &str) -> PyResult<Self> {
        let inner = meshtls::TrustDomain::parse_lenient(name).map_err(py_err)?;
        Ok(PyTrustDomain { inner })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.as_str()
    }

    fn id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.id(),
        }
    }

    fn __str__(&self) -> &str {
        self.inner.as_str()
    }

    fn __repr__(&self) -> String {
        format!("TrustDomain({:?})", self.inner.as_str())
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let name = slf.get().inner.as_str().to_owned();
        Ok((slf.get_type(), PyTuple::new(slf.py(), [name])?))
    }
}

/// A SPIFFE ID (strict grammar).
#[pyclass(frozen, eq, ord, hash, module = "meshtls", name = "SpiffeId")]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PySpiffeId {
    pub(crate) inner: meshtls::SpiffeId,
}

#[pymethods]
impl PySpiffeId {
    #[new]
    fn new(text: &str) -> PyResult<Self> {
        let inner = meshtls::SpiffeId::new(text).map_err(py_err)?;
        Ok(PySpiffeId { inner })
    }

    #[classmethod]
    fn parse_lenient(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Self> {
        let inner = meshtls::SpiffeId::parse_lenient(text).map_err(py_err)?;
        Ok(PySpiffeId { inner })
    }

    #[classmethod]
    fn for_workload(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        namespace: &str,
        service_account: &str,
    ) -> PyResult<Self> {
        let istio = meshtls::IstioIdentity::new(trust_domain.0, namespace, service_account)
            .map_err(py_err)?;
        Ok(PySpiffeId {
            inner: istio.spiffe_id(),
        })
    }

    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain(),
        }
    }

    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    #[getter]
    fn segments(&self) -> Vec<String> {
        self.inner.segments().map(str::to_owned).collect()
    }

    fn is_member_of(&self, trust_domain: TrustDomainArg) -> bool {
        self.inner.is_member_of(&trust_domain.0)
    }

    fn __str__(&self) -> &str {
        self.inner.as_str()
    }

    fn __repr__(&self) -> String {
        format!("SpiffeId({:?})", self.inner.as_str())
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let text = slf.get().inner.as_str().to_owned();
        Ok((slf.get_type(), PyTuple::new(slf.py(), [text])?))
    }
}

/// Accepts a `TrustDomain` or its text.
pub(crate) struct TrustDomainArg(pub(crate) meshtls::TrustDomain);

impl<'a, 'py> FromPyObject<'a, 'py> for TrustDomainArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(td) = ob.cast::<PyTrustDomain>() {
            return Ok(TrustDomainArg(td.get().inner.clone()));
        }
        let text: String = ob.extract()?;
        Ok(TrustDomainArg(
            meshtls::TrustDomain::new(&text).map_err(py_err)?,
        ))
    }
}

/// Accepts a `SpiffeId` or its text.
pub(crate) struct SpiffeIdArg(pub(crate) meshtls::SpiffeId);

impl<'a, 'py> FromPyObject<'a, 'py> for SpiffeIdArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(id) = ob.cast::<PySpiffeId>() {
            return Ok(SpiffeIdArg(id.get().inner.clone()));
        }
        let text: String = ob.extract()?;
        Ok(SpiffeIdArg(meshtls::SpiffeId::new(&text).map_err(py_err)?))
    }
}

/// An Istio workload identity.
#[pyclass(frozen, eq, ord, hash, module = "meshtls", name = "IstioIdentity")]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PyIstioIdentity {
    inner: meshtls::IstioIdentity,
}

#[pymethods]
impl PyIstioIdentity {
    #[new]
    fn new(trust_domain: TrustDomainArg, namespace: &str, service_account: &str) -> PyResult<Self> {
        let inner = meshtls::IstioIdentity::new(trust_domain.0, namespace, service_account)
            .map_err(py_err)?;
        Ok(PyIstioIdentity { inner })
    }

    #[classmethod]
    fn from_spiffe_id(_cls: &Bound<'_, PyType>, id: SpiffeIdArg) -> PyResult<Self> {
        let inner = meshtls::IstioIdentity::from_spiffe_id(&id.0).map_err(py_err)?;
        Ok(PyIstioIdentity { inner })
    }

    #[classmethod]
    fn from_principal(_cls: &Bound<'_, PyType>, principal: &str) -> PyResult<Self> {
        let inner = meshtls::IstioIdentity::from_principal(principal).map_err(py_err)?;
        Ok(PyIstioIdentity { inner })
    }

    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    #[getter]
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }

    #[getter]
    fn service_account(&self) -> &str {
        self.inner.service_account()
    }

    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id(),
        }
    }

    #[getter]
    fn principal(&self) -> String {
        self.inner.principal()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "IstioIdentity({:?}, {:?}, {:?})",
            self.inner.trust_domain().as_str(),
            self.inner.namespace(),
            self.inner.service_account()
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let i = &slf.get().inner;
        let args = [
            i.trust_domain().as_str().to_owned(),
            i.namespace().to_owned(),
            i.service_account().to_owned(),
        ];
        Ok((slf.get_type(), PyTuple::new(slf.py(), args)?))
    }
}

/// Matches a SPIFFE ID against an Istio principal pattern.
#[pyfunction]
fn principal_matches(pattern: &str, id: SpiffeIdArg) -> PyResult<bool> {
    let p = meshtls::PrincipalPattern::parse(pattern).map_err(py_err)?;
    Ok(p.matches(&id.0))
}

/// Istio's `ReplaceTrustDomainAliases`.
#[pyfunction]
fn expand_principals(
    principals: Vec<String>,
    trust_domains: Vec<TrustDomainArg>,
) -> PyResult<Vec<String>> {
    let tds: Vec<meshtls::TrustDomain> = trust_domains.into_iter().map(|t| t.0).collect();
    meshtls::identity::expand_principals(&principals, &tds).map_err(py_err)
}

/// Istio's `ExpandWithTrustDomains`.
#[pyfunction]
fn expand_spiffe_ids(
    ids: Vec<SpiffeIdArg>,
    aliases: Vec<TrustDomainArg>,
) -> PyResult<Vec<PySpiffeId>> {
    let ids: Vec<meshtls::SpiffeId> = ids.into_iter().map(|i| i.0).collect();
    let aliases: Vec<meshtls::TrustDomain> = aliases.into_iter().map(|t| t.0).collect();
    Ok(meshtls::identity::expand_spiffe_ids(&ids, &aliases)
        .map_err(py_err)?
        .into_iter()
        .map(|inner| PySpiffeId { inner })
        .collect())
}

/// Istio's mesh config.
#[pyclass(frozen, eq, module = "meshtls", name = "MeshConfig")]
#[derive(Clone, PartialEq)]
pub(crate) struct PyMeshConfig {
    pub(crate) inner: meshtls::MeshConfig,
    source: Vec<String>,
}

#[pymethods]
impl PyMeshConfig {
    #[classmethod]
    fn from_yaml(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Self> {
        let inner = meshtls::MeshConfig::from_yaml(text).map_err(py_err)?;
        Ok(PyMeshConfig {
            inner,
            source: vec![text.to_owned()],
        })
    }

    #[classmethod]
    fn from_layers(_cls: &Bound<'_, PyType>, layers: Vec<String>) -> PyResult<Self> {
        let inner = meshtls::MeshConfig::from_layers(&layers).map_err(py_err)?;
        Ok(PyMeshConfig {
            inner,
            source: layers,
        })
    }

    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    #[getter]
    fn trust_domain_aliases(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domain_aliases()
            .iter()
            .map(|t| PyTrustDomain { inner: t.clone() })
            .collect()
    }

    #[getter]
    fn root_namespace(&self) -> &str {
        self.inner.root_namespace()
    }

    #[getter]
    fn min_protocol_version(&self) -> &'static str {
        self.inner.min_protocol_version().as_str()
    }

    #[getter]
    fn enable_auto_mtls(&self) -> bool {
        self.inner.enable_auto_mtls()
    }

    #[getter]
    fn ca_certificate_trust_domains(&self) -> Vec<Vec<PyTrustDomain>> {
        self.inner
            .ca_certificate_trust_domains()
            .iter()
            .map(|l| {
                l.iter()
                    .map(|t| PyTrustDomain { inner: t.clone() })
                    .collect()
            })
            .collect()
    }

    fn trust_domains_for_validation(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domains_for_validation()
            .into_iter()
            .map(|inner| PyTrustDomain { inner })
            .collect()
    }

    fn expand_principals(&self, principals: Vec<String>) -> PyResult<Vec<String>> {
        self.inner
            .trust_domains()
            .expand_principals(&principals)
            .map_err(py_err)
    }

    fn __repr__(&self) -> String {
        format!(
            "<MeshConfig trust_domain={:?} aliases={:?} root_namespace={:?}>",
            self.inner.trust_domain().as_str(),
            self.inner
                .trust_domain_aliases()
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>(),
            self.inner.root_namespace()
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let layers = slf.get().source.clone();
        let ctor = slf.get_type().getattr("from_layers")?;
        Ok((ctor, PyTuple::new(slf.py(), [layers])?))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTrustDomain>()?;
    m.add_class::<PySpiffeId>()?;
    m.add_class::<PyIstioIdentity>()?;
    m.add_class::<PyMeshConfig>()?;
    m.add_function(wrap_pyfunction!(principal_matches, m)?)?;
    m.add_function(wrap_pyfunction!(expand_principals, m)?)?;
    m.add_function(wrap_pyfunction!(expand_spiffe_ids, m)?)?;
    Ok(())
}
