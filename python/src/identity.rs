//! `TrustDomain`, `SpiffeId`, `IstioIdentity`, `MeshConfig` and the principal helpers.

use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use crate::args::{Str, Text, strings};
use crate::errors::py_err;

/// A SPIFFE trust domain, such as ``cluster.local``: strictly parsed by the SPIFFE grammar
/// (lower-case letters, digits, ``.``, ``-``, ``_``; at most 255 bytes).
///
/// Immutable; compares, orders and hashes by name; ``str()`` gives the name and ``repr()``
/// evaluates back; pickles.
///
/// Args:
///     name: the trust domain name (no scheme, no path).
///
/// Raises:
///     InvalidSpiffeIdError: the name breaks the grammar (the message says which rule).
///
/// Example::
///
///     >>> TrustDomain("cluster.local").id()
///     SpiffeId("spiffe://cluster.local")
#[pyclass(frozen, eq, ord, hash, module = "meshtls", name = "TrustDomain")]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PyTrustDomain {
    pub(crate) inner: meshtls::TrustDomain,
}

#[pymethods]
impl PyTrustDomain {
    #[new]
    fn new(name: Text<'_>) -> PyResult<Self> {
        let inner = meshtls::TrustDomain::new(&name).map_err(py_err)?;
        Ok(PyTrustDomain { inner })
    }

    /// Parses as rust-spiffe and py-spiffe do: ASCII case is folded and, for an ID-shaped
    /// input, only the authority is kept (``spiffe://Example.org/x`` gives ``example.org``).
    /// Use it only for interop with lenient peers, and store the canonical result.
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: the name is invalid even after folding.
    #[classmethod]
    fn parse_lenient(_cls: &Bound<'_, PyType>, name: Text<'_>) -> PyResult<Self> {
        let inner = meshtls::TrustDomain::parse_lenient(&name).map_err(py_err)?;
        Ok(PyTrustDomain { inner })
    }

    /// The canonical name, e.g. ``"cluster.local"``.
    #[getter]
    fn name(&self) -> &str {
        self.inner.as_str()
    }

    /// The trust domain's own SPIFFE ID, ``spiffe://<name>`` (the ID of its bundle).
    fn id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.id(),
        }
    }

    /// The name.
    fn __str__(&self) -> &str {
        self.inner.as_str()
    }

    /// ``TrustDomain("cluster.local")``.
    fn __repr__(&self) -> String {
        format!("TrustDomain({:?})", self.inner.as_str())
    }

    /// Pickle support: ``(TrustDomain, (name,))``.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let name = slf.get().inner.as_str().to_owned();
        Ok((slf.get_type(), PyTuple::new(slf.py(), [name])?))
    }
}

/// A SPIFFE ID, such as ``spiffe://cluster.local/ns/shop/sa/web``, strictly parsed by the
/// SPIFFE standard (go-spiffe's verdict, plus the 255-byte trust domain cap): lower-case
/// scheme and trust domain, no port, user info, query or fragment, no empty, ``.`` or ``..``
/// path segment, no trailing ``/``.
///
/// Immutable; compares, orders and hashes by its text; ``str()`` gives the canonical text and
/// ``repr()`` evaluates back; pickles.
///
/// Args:
///     text: the ID.
///
/// Raises:
///     InvalidSpiffeIdError: the text breaks the grammar (the message says which rule).
///
/// Example::
///
///     >>> sid = SpiffeId("spiffe://cluster.local/ns/shop/sa/web")
///     >>> sid.trust_domain, sid.path
///     (TrustDomain("cluster.local"), '/ns/shop/sa/web')
#[pyclass(frozen, eq, ord, hash, module = "meshtls", name = "SpiffeId")]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PySpiffeId {
    pub(crate) inner: meshtls::SpiffeId,
}

#[pymethods]
impl PySpiffeId {
    #[new]
    fn new(text: Text<'_>) -> PyResult<Self> {
        let inner = meshtls::SpiffeId::new(&text).map_err(py_err)?;
        Ok(PySpiffeId { inner })
    }

    /// Parses as rust-spiffe and py-spiffe do: scheme and trust domain case-insensitively
    /// (ASCII), the path as it is. The result is canonical and round-trips through
    /// ``SpiffeId()``. Never used implicitly.
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: the text is invalid even after folding.
    #[classmethod]
    fn parse_lenient(_cls: &Bound<'_, PyType>, text: Text<'_>) -> PyResult<Self> {
        let inner = meshtls::SpiffeId::parse_lenient(&text).map_err(py_err)?;
        Ok(PySpiffeId { inner })
    }

    /// Istio's workload identity ``spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>``.
    ///
    /// Args:
    ///     trust_domain: a :class:`TrustDomain` or its name.
    ///     namespace: the Kubernetes namespace.
    ///     service_account: the Kubernetes service account.
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: a bad trust domain, or a part that is not a valid path
    ///         segment.
    ///     IdentityError: an empty part.
    ///
    /// Example::
    ///
    ///     >>> SpiffeId.for_workload("cluster.local", "shop", "web")
    ///     SpiffeId("spiffe://cluster.local/ns/shop/sa/web")
    #[classmethod]
    fn for_workload(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        namespace: Text<'_>,
        service_account: Text<'_>,
    ) -> PyResult<Self> {
        let istio = meshtls::IstioIdentity::new(trust_domain.0, &namespace, &service_account)
            .map_err(py_err)?;
        Ok(PySpiffeId {
            inner: istio.spiffe_id(),
        })
    }

    /// The trust domain (a :class:`TrustDomain`).
    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain(),
        }
    }

    /// The path, with its leading ``/``; ``""`` for a trust domain's own ID.
    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    /// The path's segments: ``["ns", "shop", "sa", "web"]``; ``[]`` for no path.
    #[getter]
    fn segments(&self) -> Vec<String> {
        self.inner.segments().map(str::to_owned).collect()
    }

    /// Whether the ID belongs to ``trust_domain`` (a :class:`TrustDomain` or its name).
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: ``trust_domain`` is not a valid name.
    fn is_member_of(&self, trust_domain: TrustDomainArg) -> bool {
        self.inner.is_member_of(&trust_domain.0)
    }

    /// The canonical text.
    fn __str__(&self) -> &str {
        self.inner.as_str()
    }

    /// ``SpiffeId("spiffe://...")``.
    fn __repr__(&self) -> String {
        format!("SpiffeId({:?})", self.inner.as_str())
    }

    /// Pickle support: ``(SpiffeId, (text,))``.
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
        let text: Text<'_> = ob.extract()?;
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
        let text: Text<'_> = ob.extract()?;
        Ok(SpiffeIdArg(meshtls::SpiffeId::new(&text).map_err(py_err)?))
    }
}

/// An Istio workload identity: trust domain, namespace and service account, the parts of
/// ``spiffe://<td>/ns/<ns>/sa/<sa>`` and of the AuthorizationPolicy principal
/// ``<td>/ns/<ns>/sa/<sa>``.
///
/// Immutable; compares, orders and hashes by its parts; pickles.
///
/// Args:
///     trust_domain: a :class:`TrustDomain` or its name.
///     namespace: the Kubernetes namespace.
///     service_account: the Kubernetes service account.
///
/// Raises:
///     InvalidSpiffeIdError: a bad trust domain or path segment.
///     IdentityError: an empty part.
///
/// Example::
///
///     >>> IstioIdentity.from_spiffe_id("spiffe://cluster.local/ns/shop/sa/web").namespace
///     'shop'
#[pyclass(frozen, eq, ord, hash, module = "meshtls", name = "IstioIdentity")]
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PyIstioIdentity {
    inner: meshtls::IstioIdentity,
}

#[pymethods]
impl PyIstioIdentity {
    #[new]
    fn new(
        trust_domain: TrustDomainArg,
        namespace: Text<'_>,
        service_account: Text<'_>,
    ) -> PyResult<Self> {
        let inner = meshtls::IstioIdentity::new(trust_domain.0, &namespace, &service_account)
            .map_err(py_err)?;
        Ok(PyIstioIdentity { inner })
    }

    /// Reads the Istio form ``spiffe://<td>/ns/<ns>/sa/<sa>`` back.
    ///
    /// Args:
    ///     id: a :class:`SpiffeId` or its text.
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: the text is not a SPIFFE ID.
    ///     IdentityError: the ID does not have exactly that shape.
    #[classmethod]
    fn from_spiffe_id(_cls: &Bound<'_, PyType>, id: SpiffeIdArg) -> PyResult<Self> {
        let inner = meshtls::IstioIdentity::from_spiffe_id(&id.0).map_err(py_err)?;
        Ok(PyIstioIdentity { inner })
    }

    /// Parses an AuthorizationPolicy principal, ``<td>/ns/<ns>/sa/<sa>`` (no scheme).
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: a bad trust domain or segment.
    ///     IdentityError: not that shape.
    #[classmethod]
    fn from_principal(_cls: &Bound<'_, PyType>, principal: Text<'_>) -> PyResult<Self> {
        let inner = meshtls::IstioIdentity::from_principal(&principal).map_err(py_err)?;
        Ok(PyIstioIdentity { inner })
    }

    /// The trust domain (a :class:`TrustDomain`).
    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    /// The Kubernetes namespace.
    #[getter]
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }

    /// The Kubernetes service account.
    #[getter]
    fn service_account(&self) -> &str {
        self.inner.service_account()
    }

    /// The SPIFFE ID ``spiffe://<td>/ns/<ns>/sa/<sa>``.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id(),
        }
    }

    /// The AuthorizationPolicy principal ``<td>/ns/<ns>/sa/<sa>``.
    #[getter]
    fn principal(&self) -> String {
        self.inner.principal()
    }

    /// The SPIFFE ID's text.
    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    /// ``IstioIdentity("cluster.local", "shop", "web")``.
    fn __repr__(&self) -> String {
        format!(
            "IstioIdentity({:?}, {:?}, {:?})",
            self.inner.trust_domain().as_str(),
            self.inner.namespace(),
            self.inner.service_account()
        )
    }

    /// Pickle support: ``(IstioIdentity, (trust_domain, namespace, service_account))``.
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

/// Whether a SPIFFE ID matches an AuthorizationPolicy principal pattern, as Envoy's RBAC
/// filter matches it: exact, ``*`` (any authenticated peer), a prefix ``td/ns/shop/*`` or a
/// suffix ``*/sa/web``; the pattern is compared with the ID without its ``spiffe://``.
///
/// Args:
///     pattern: the principal pattern.
///     id: a :class:`SpiffeId` or its text.
///
/// Raises:
///     IdentityError: the pattern is malformed (a ``*`` anywhere but alone, first or last).
///     InvalidSpiffeIdError: ``id`` is not a SPIFFE ID.
///
/// Example::
///
///     >>> principal_matches("cluster.local/ns/shop/*", "spiffe://cluster.local/ns/shop/sa/web")
///     True
#[pyfunction]
fn principal_matches(pattern: Text<'_>, id: SpiffeIdArg) -> PyResult<bool> {
    let p = meshtls::PrincipalPattern::parse(&pattern).map_err(py_err)?;
    Ok(p.matches(&id.0))
}

/// Istio's ``ReplaceTrustDomainAliases``, as istiod applies it to AuthorizationPolicy
/// principals: a principal ``<td>/ns/<ns>/sa/<sa>`` whose trust domain is one of
/// ``trust_domains`` (or literally ``cluster.local``) becomes one principal per trust domain,
/// in order and without duplicates; any other principal (or one with trust domain ``*``) is
/// kept as it is.
///
/// Args:
///     principals: AuthorizationPolicy principals.
///     trust_domains: the mesh's trust domain and its aliases (:class:`TrustDomain` or names).
///
/// Raises:
///     InvalidSpiffeIdError: a trust domain name is invalid.
///
/// Example::
///
///     >>> expand_principals(["cluster.local/ns/a/sa/b"], ["prod.example", "old.example"])
///     ['prod.example/ns/a/sa/b', 'old.example/ns/a/sa/b']
#[pyfunction]
fn expand_principals(
    principals: Vec<Str>,
    trust_domains: Vec<TrustDomainArg>,
) -> PyResult<Vec<String>> {
    let principals = strings(principals);
    let tds: Vec<meshtls::TrustDomain> = trust_domains.into_iter().map(|t| t.0).collect();
    meshtls::identity::expand_principals(&principals, &tds).map_err(py_err)
}

/// Istio's ``ExpandWithTrustDomains``: the input IDs first, then for each ID one copy per
/// alias with the trust domain replaced; duplicates dropped. With no aliases the input comes
/// back unchanged.
///
/// Args:
///     ids: SPIFFE IDs (:class:`SpiffeId` or text).
///     aliases: the trust domains to expand with.
///
/// Raises:
///     InvalidSpiffeIdError: an ID or a trust domain is invalid.
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

/// Istio's mesh config (``meshConfig``): the trust domain and its aliases, the root
/// namespace, the mesh's minimum TLS version and the ``caCertificates`` trust domains.
///
/// Build one with :meth:`from_yaml` (the ``istio`` ConfigMap or its ``mesh`` document) or
/// :meth:`from_layers`. Immutable; ``==`` compares the effective config; pickles.
///
/// Example::
///
///     >>> mesh = MeshConfig.from_yaml("trustDomain: cluster.local\ntrustDomainAliases: [old.td]")
///     >>> [str(t) for t in mesh.trust_domains_for_validation()]
///     ['cluster.local', 'old.td']
#[pyclass(frozen, eq, module = "meshtls", name = "MeshConfig")]
#[derive(Clone, PartialEq)]
pub(crate) struct PyMeshConfig {
    pub(crate) inner: meshtls::MeshConfig,
    source: Vec<String>,
}

#[pymethods]
impl PyMeshConfig {
    /// Reads the ``istio`` ConfigMap manifest (its ``mesh`` key) or the bare ``mesh``
    /// document, YAML or JSON. Unset fields take Istio's defaults.
    ///
    /// Raises:
    ///     ManifestError: not YAML/JSON, or a size/depth limit broken.
    ///     MeshConfigError: a field of the wrong type or value (with its name).
    #[classmethod]
    fn from_yaml(_cls: &Bound<'_, PyType>, text: Text<'_>) -> PyResult<Self> {
        let inner = meshtls::MeshConfig::from_yaml(&text).map_err(py_err)?;
        Ok(PyMeshConfig {
            inner,
            source: vec![text.0.to_owned()],
        })
    }

    /// Merges mesh config documents as istiod does with its defaults, the ConfigMap and
    /// overrides: later layers win field by field.
    ///
    /// Args:
    ///     layers: YAML/JSON documents, lowest priority first.
    ///
    /// Raises:
    ///     ManifestError: a layer is not YAML/JSON.
    ///     MeshConfigError: a field of the wrong type or value.
    #[classmethod]
    fn from_layers(_cls: &Bound<'_, PyType>, layers: Vec<Str>) -> PyResult<Self> {
        let layers = strings(layers);
        let inner = meshtls::MeshConfig::from_layers(&layers).map_err(py_err)?;
        Ok(PyMeshConfig {
            inner,
            source: layers,
        })
    }

    /// ``trustDomain`` (default ``cluster.local``).
    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    /// ``trustDomainAliases``, in order, without duplicates.
    #[getter]
    fn trust_domain_aliases(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domain_aliases()
            .iter()
            .map(|t| PyTrustDomain { inner: t.clone() })
            .collect()
    }

    /// ``rootNamespace`` (default ``istio-system``).
    #[getter]
    fn root_namespace(&self) -> &str {
        self.inner.root_namespace()
    }

    /// ``meshMTLS.minProtocolVersion``: ``"TLSV1_2"`` (the default) or ``"TLSV1_3"``.
    #[getter]
    fn min_protocol_version(&self) -> &'static str {
        self.inner.min_protocol_version().as_str()
    }

    /// ``enableAutoMtls`` (default ``True``).
    #[getter]
    fn enable_auto_mtls(&self) -> bool {
        self.inner.enable_auto_mtls()
    }

    /// The ``trustDomains`` of each ``caCertificates`` entry.
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

    /// The trust domains a peer may belong to: the trust domain, then its aliases (what
    /// Istio's ``TrustDomainsForValidation`` returns).
    fn trust_domains_for_validation(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domains_for_validation()
            .into_iter()
            .map(|inner| PyTrustDomain { inner })
            .collect()
    }

    /// :func:`expand_principals` with this mesh's trust domain and aliases.
    fn expand_principals(&self, principals: Vec<Str>) -> PyResult<Vec<String>> {
        let principals = strings(principals);
        self.inner
            .trust_domains()
            .expand_principals(&principals)
            .map_err(py_err)
    }

    /// ``<MeshConfig trust_domain=... aliases=[...] root_namespace=...>``.
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

    /// Pickle support: rebuilt with :meth:`from_layers` from the source documents.
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
