//! `TrustBundle`, `BundleSet`, `verify_svid`, `SvidVerifier`, `VerifiedSvid`, `Authorizer`,
//! `check_private_key`, `inspect_certificate`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtls::authz::{self, Authorizer};
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::error::{AuthzError, SvidError};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDict, PyList, PyString, PyTuple, PyType, PyTzInfo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::errors::{py_err, to_py};
use crate::identity::{PyMeshConfig, PySpiffeId, PyTrustDomain, SpiffeIdArg, TrustDomainArg};

// ---- arguments ------------------------------------------------------------------------------

/// A chain: PEM text (leaf first) or a sequence of DER `bytes`.
struct ChainArg(Vec<CertificateDer<'static>>);

impl<'a, 'py> FromPyObject<'a, 'py> for ChainArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if ob.is_instance_of::<PyString>() {
            let pem: String = ob.extract()?;
            return meshtls::svid::parse_pem_chain(&pem)
                .map(ChainArg)
                .map_err(py_err);
        }
        if ob.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "chain must be PEM text (str) or a list of DER certificates (bytes), not one bytes object",
            ));
        }
        let items: Vec<Vec<u8>> = ob.extract().map_err(|_| {
            PyTypeError::new_err(
                "chain must be PEM text (str) or a list of DER certificates (bytes)",
            )
        })?;
        Ok(ChainArg(
            items.into_iter().map(CertificateDer::from).collect(),
        ))
    }
}

/// A `BundleSet`, or a mapping of trust-domain name to PEM roots.
struct BundlesArg(Arc<BundleSet>);

impl<'a, 'py> FromPyObject<'a, 'py> for BundlesArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(set) = ob.cast::<PyBundleSet>() {
            return Ok(BundlesArg(Arc::clone(&set.get().inner)));
        }
        if ob.is_none() {
            // go-spiffe's "bundleSource is required" (svid-cases A2): a verification failure.
            return Err(crate::errors::SvidError::new_err(
                "no trust bundles given: bundles is required (a BundleSet or a dict mapping trust-domain names to PEM roots)",
            ));
        }
        if let Ok(dict) = ob.cast::<PyDict>() {
            let mut pairs: Vec<(String, String)> = Vec::with_capacity(dict.len());
            for (k, v) in dict.iter() {
                let name = match k.cast::<PyTrustDomain>() {
                    Ok(td) => td.get().inner.as_str().to_owned(),
                    Err(_) => k.extract::<String>().map_err(|_| {
                        PyTypeError::new_err(
                            "bundle dict keys must be trust-domain names (str or TrustDomain)",
                        )
                    })?,
                };
                let pem: String = v.extract().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "the roots of trust domain {name:?} must be PEM text (str)"
                    ))
                })?;
                pairs.push((name, pem));
            }
            return BundleSet::from_pem_map(pairs)
                .map(|s| BundlesArg(Arc::new(s)))
                .map_err(py_err);
        }
        Err(PyTypeError::new_err(
            "bundles must be a BundleSet or a dict mapping trust-domain names to PEM roots",
        ))
    }
}

/// `now`: an aware datetime, or the current time when `None`.
fn unix_time(now: Option<&Bound<'_, PyAny>>) -> PyResult<UnixTime> {
    let Some(now) = now else {
        return Ok(UnixTime::now());
    };
    if !now.is_instance_of::<PyDateTime>() {
        return Err(PyTypeError::new_err("now must be a datetime"));
    }
    if now.call_method0("utcoffset")?.is_none() {
        return Err(PyValueError::new_err(
            "now must be a timezone-aware datetime (e.g. datetime.now(timezone.utc))",
        ));
    }
    let t: SystemTime = now.extract()?;
    let since = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PyValueError::new_err("now must not be before 1970-01-01T00:00:00Z"))?;
    Ok(UnixTime::since_unix_epoch(since))
}

fn datetime_utc(py: Python<'_>, t: UnixTime) -> PyResult<Bound<'_, PyDateTime>> {
    let utc = PyTzInfo::utc(py)?;
    PyDateTime::from_timestamp(py, t.as_secs() as f64, Some(&utc))
}

fn to_tds(list: Vec<TrustDomainArg>) -> Vec<meshtls::TrustDomain> {
    list.into_iter().map(|t| t.0).collect()
}

// ---- TrustBundle ----------------------------------------------------------------------------

/// The X.509 roots of one trust domain.
#[pyclass(frozen, module = "meshtls", name = "TrustBundle")]
#[derive(Clone)]
pub(crate) struct PyTrustBundle {
    pub(crate) inner: TrustBundle,
}

#[pymethods]
impl PyTrustBundle {
    #[new]
    #[pyo3(signature = (trust_domain, roots = Vec::new(), sequence = None, refresh_hint = None))]
    fn new(
        trust_domain: TrustDomainArg,
        roots: Vec<Vec<u8>>,
        sequence: Option<u64>,
        refresh_hint: Option<Duration>,
    ) -> PyResult<Self> {
        let mut inner =
            TrustBundle::new(trust_domain.0, roots.into_iter().map(CertificateDer::from))
                .map_err(py_err)?;
        if let Some(seq) = sequence {
            inner = inner.with_sequence(seq);
        }
        if let Some(hint) = refresh_hint {
            inner = inner.with_refresh_hint(hint);
        }
        Ok(PyTrustBundle { inner })
    }

    #[classmethod]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        pem: &str,
    ) -> PyResult<Self> {
        let inner = TrustBundle::from_pem(trust_domain.0, pem).map_err(py_err)?;
        Ok(PyTrustBundle { inner })
    }

    #[classmethod]
    fn from_spiffe_json(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        text: &str,
    ) -> PyResult<Self> {
        let inner = TrustBundle::from_spiffe_json(trust_domain.0, text).map_err(py_err)?;
        Ok(PyTrustBundle { inner })
    }

    fn to_pem(&self) -> String {
        self.inner.to_pem()
    }

    fn to_spiffe_json(&self) -> PyResult<String> {
        self.inner.to_spiffe_json().map_err(py_err)
    }

    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    #[getter]
    fn roots<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .roots()
            .iter()
            .map(|r| PyBytes::new(py, r.as_ref()))
            .collect()
    }

    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.inner.sequence()
    }

    #[getter]
    fn refresh_hint(&self) -> Option<Duration> {
        self.inner.refresh_hint()
    }

    fn with_sequence(&self, sequence: u64) -> Self {
        PyTrustBundle {
            inner: self.inner.with_sequence(sequence),
        }
    }

    fn with_refresh_hint(&self, refresh_hint: Duration) -> Self {
        PyTrustBundle {
            inner: self.inner.with_refresh_hint(refresh_hint),
        }
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyTrustBundle>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.trust_domain().hash(&mut h);
        for r in self.inner.roots() {
            r.as_ref().hash(&mut h);
        }
        self.inner.sequence().hash(&mut h);
        self.inner.refresh_hint().hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        format!(
            "<TrustBundle {} roots={} sequence={}>",
            self.inner.trust_domain(),
            self.inner.len(),
            self.inner
                .sequence()
                .map_or_else(|| "None".to_owned(), |s| s.to_string())
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let b = &slf.get().inner;
        let roots = PyList::new(py, b.roots().iter().map(|r| PyBytes::new(py, r.as_ref())))?;
        let args = (
            b.trust_domain().as_str(),
            roots,
            b.sequence(),
            b.refresh_hint(),
        )
            .into_pyobject(py)?;
        Ok((slf.get_type(), args))
    }
}

// ---- BundleSet ------------------------------------------------------------------------------

/// Bundles of several trust domains, plus trust-domain aliases.
#[pyclass(frozen, module = "meshtls", name = "BundleSet")]
#[derive(Clone)]
pub(crate) struct PyBundleSet {
    pub(crate) inner: Arc<BundleSet>,
}

impl PyBundleSet {
    fn wrap(inner: BundleSet) -> Self {
        PyBundleSet {
            inner: Arc::new(inner),
        }
    }
}

#[pymethods]
impl PyBundleSet {
    #[new]
    #[pyo3(signature = (bundles = Vec::new(), aliases = None))]
    fn new(
        bundles: Vec<PyRef<'_, PyTrustBundle>>,
        aliases: Option<Vec<(TrustDomainArg, TrustDomainArg)>>,
    ) -> PyResult<Self> {
        let mut set =
            BundleSet::from_bundles(bundles.iter().map(|b| b.inner.clone())).map_err(py_err)?;
        for (alias, primary) in aliases.unwrap_or_default() {
            set = set.with_aliases(&primary.0, [alias.0]).map_err(py_err)?;
        }
        Ok(Self::wrap(set))
    }

    #[classmethod]
    fn from_pem_map(_cls: &Bound<'_, PyType>, mapping: &Bound<'_, PyAny>) -> PyResult<Self> {
        let BundlesArg(set) = mapping.extract()?;
        Ok(PyBundleSet { inner: set })
    }

    #[classmethod]
    fn from_spiffe_json(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Self> {
        Ok(Self::wrap(
            BundleSet::from_spiffe_json(text).map_err(py_err)?,
        ))
    }

    fn to_spiffe_json(&self) -> PyResult<String> {
        self.inner.to_spiffe_json().map_err(py_err)
    }

    fn to_pem_map(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.to_pem_map()
    }

    fn with_bundle(&self, bundle: PyRef<'_, PyTrustBundle>) -> PyResult<Self> {
        let set = (*self.inner)
            .clone()
            .with_bundle(bundle.inner.clone())
            .map_err(py_err)?;
        Ok(Self::wrap(set))
    }

    fn with_aliases(
        &self,
        trust_domain: TrustDomainArg,
        aliases: Vec<TrustDomainArg>,
    ) -> PyResult<Self> {
        let set = (*self.inner)
            .clone()
            .with_aliases(&trust_domain.0, to_tds(aliases))
            .map_err(py_err)?;
        Ok(Self::wrap(set))
    }

    fn with_mesh_aliases(&self, mesh: PyRef<'_, PyMeshConfig>) -> PyResult<Self> {
        let set = (*self.inner)
            .clone()
            .with_mesh_aliases(&mesh.inner.trust_domains())
            .map_err(py_err)?;
        Ok(Self::wrap(set))
    }

    fn get(&self, trust_domain: TrustDomainArg) -> Option<PyTrustBundle> {
        self.inner
            .get(&trust_domain.0)
            .map(|b| PyTrustBundle { inner: b.clone() })
    }

    fn bundle_for(&self, trust_domain: TrustDomainArg) -> Option<PyTrustBundle> {
        self.inner
            .bundle_for(&trust_domain.0)
            .map(|b| PyTrustBundle { inner: b.clone() })
    }

    #[getter]
    fn trust_domains(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domains()
            .map(|t| PyTrustDomain { inner: t.clone() })
            .collect()
    }

    #[getter]
    fn bundles(&self) -> Vec<PyTrustBundle> {
        self.inner
            .bundles()
            .map(|b| PyTrustBundle { inner: b.clone() })
            .collect()
    }

    #[getter]
    fn aliases(&self) -> Vec<(PyTrustDomain, PyTrustDomain)> {
        self.inner
            .aliases()
            .map(|(a, p)| {
                (
                    PyTrustDomain { inner: a.clone() },
                    PyTrustDomain { inner: p.clone() },
                )
            })
            .collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, trust_domain: TrustDomainArg) -> bool {
        self.inner.bundle_for(&trust_domain.0).is_some()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyBundleSet>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }

    fn __repr__(&self) -> String {
        let tds: Vec<&str> = self.inner.trust_domains().map(|t| t.as_str()).collect();
        let aliases: Vec<String> = self
            .inner
            .aliases()
            .map(|(a, p)| format!("{a}->{p}"))
            .collect();
        format!("<BundleSet {tds:?} aliases={aliases:?}>")
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let set = &slf.get().inner;
        let bundles = PyList::new(
            py,
            set.bundles().map(|b| PyTrustBundle { inner: b.clone() }),
        )?;
        let aliases = PyList::new(
            py,
            set.aliases()
                .map(|(a, p)| (a.as_str().to_owned(), p.as_str().to_owned())),
        )?;
        Ok((slf.get_type(), (bundles, aliases).into_pyobject(py)?))
    }
}

// ---- Authorizer -----------------------------------------------------------------------------

/// A Python callable `fn(SpiffeId) -> bool` as an authorizer.
struct CallableAuthorizer {
    func: Py<PyAny>,
    description: String,
}

impl fmt::Debug for CallableAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallableAuthorizer")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Authorizer for CallableAuthorizer {
    fn authorize(&self, peer: &meshtls::SpiffeId) -> Result<(), AuthzError> {
        Python::attach(|py| {
            let arg = PySpiffeId {
                inner: peer.clone(),
            };
            let verdict = self
                .func
                .call1(py, (arg,))
                .and_then(|v| v.bind(py).is_truthy());
            match verdict {
                Ok(true) => Ok(()),
                Ok(false) => Err(AuthzError::Denied {
                    presented: peer.to_string(),
                    expected: self.description.clone(),
                }),
                Err(e) => Err(AuthzError::Denied {
                    presented: peer.to_string(),
                    expected: format!("{} (the callable raised {e})", self.description),
                }),
            }
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Decides whether a verified peer may talk to you.
#[pyclass(frozen, module = "meshtls", name = "Authorizer")]
#[derive(Clone)]
pub(crate) struct PyAuthorizer {
    pub(crate) inner: Arc<dyn Authorizer>,
}

/// An `Authorizer` or a callable `fn(SpiffeId) -> bool`.
struct AuthorizerArg(Arc<dyn Authorizer>);

impl<'a, 'py> FromPyObject<'a, 'py> for AuthorizerArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(a) = ob.cast::<PyAuthorizer>() {
            return Ok(AuthorizerArg(Arc::clone(&a.get().inner)));
        }
        if ob.is_callable() {
            return Ok(AuthorizerArg(callable(ob.to_owned().unbind(), None)?));
        }
        Err(PyTypeError::new_err(
            "expected an Authorizer or a callable taking a SpiffeId and returning a bool",
        ))
    }
}

fn callable(func: Py<PyAny>, description: Option<String>) -> PyResult<Arc<dyn Authorizer>> {
    let description = match description {
        Some(d) => d,
        None => Python::attach(|py| -> PyResult<String> {
            let f = func.bind(py);
            let name = match f.getattr("__qualname__") {
                Ok(n) => n.extract::<String>()?,
                Err(_) => f.repr()?.extract::<String>()?,
            };
            Ok(format!("a peer accepted by {name}()"))
        })?,
    };
    Ok(Arc::new(CallableAuthorizer { func, description }))
}

impl PyAuthorizer {
    fn wrap(inner: Arc<dyn Authorizer>) -> Self {
        PyAuthorizer { inner }
    }
}

#[pymethods]
impl PyAuthorizer {
    #[staticmethod]
    fn any() -> Self {
        Self::wrap(authz::any())
    }

    #[staticmethod]
    fn id(id: SpiffeIdArg) -> Self {
        Self::wrap(authz::id(id.0))
    }

    #[staticmethod]
    fn one_of(ids: Vec<SpiffeIdArg>) -> Self {
        Self::wrap(authz::one_of(ids.into_iter().map(|i| i.0)))
    }

    #[staticmethod]
    fn member_of(trust_domains: Vec<TrustDomainArg>) -> Self {
        Self::wrap(authz::member_of(to_tds(trust_domains)))
    }

    #[staticmethod]
    fn member_of_mesh(mesh: PyRef<'_, PyMeshConfig>) -> Self {
        Self::wrap(authz::member_of_mesh(&mesh.inner.trust_domains()))
    }

    #[staticmethod]
    #[pyo3(signature = (namespaces, *, trust_domains))]
    fn namespace(namespaces: Vec<String>, trust_domains: Vec<TrustDomainArg>) -> PyResult<Self> {
        let tds = to_tds(trust_domains);
        Ok(Self::wrap(
            authz::namespace(tds, &namespaces).map_err(py_err)?,
        ))
    }

    #[staticmethod]
    #[pyo3(signature = (namespace, service_account, *, trust_domains))]
    fn service_account(
        namespace: &str,
        service_account: &str,
        trust_domains: Vec<TrustDomainArg>,
    ) -> PyResult<Self> {
        let tds = to_tds(trust_domains);
        Ok(Self::wrap(
            authz::service_account(tds, namespace, service_account).map_err(py_err)?,
        ))
    }

    #[staticmethod]
    #[pyo3(signature = (principals, *, trust_domains = Vec::new()))]
    fn principals(principals: Vec<String>, trust_domains: Vec<TrustDomainArg>) -> PyResult<Self> {
        let tds = to_tds(trust_domains);
        Ok(Self::wrap(
            authz::principals(&principals, &tds).map_err(py_err)?,
        ))
    }

    #[staticmethod]
    fn all_of(authorizers: Vec<AuthorizerArg>) -> PyResult<Self> {
        let members = authorizers.into_iter().map(|a| a.0).collect();
        Ok(Self::wrap(authz::all_of(members).map_err(py_err)?))
    }

    #[staticmethod]
    fn any_of(authorizers: Vec<AuthorizerArg>) -> PyResult<Self> {
        let members = authorizers.into_iter().map(|a| a.0).collect();
        Ok(Self::wrap(authz::any_of(members).map_err(py_err)?))
    }

    #[staticmethod]
    fn not_(authorizer: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(authz::not(authorizer.0).map_err(py_err)?))
    }

    #[staticmethod]
    #[pyo3(signature = (func, *, description = None))]
    fn from_callable(func: &Bound<'_, PyAny>, description: Option<String>) -> PyResult<Self> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err("func must be callable"));
        }
        Ok(Self::wrap(callable(func.clone().unbind(), description)?))
    }

    /// Raises `AuthorizationError` when `peer` is refused.
    fn authorize(&self, peer: SpiffeIdArg) -> PyResult<()> {
        self.inner.authorize(&peer.0).map_err(py_err)
    }

    fn allows(&self, peer: SpiffeIdArg) -> bool {
        self.inner.allows(&peer.0)
    }

    #[getter]
    fn description(&self) -> String {
        self.inner.describe()
    }

    fn __and__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::all_of(vec![Arc::clone(&self.inner), other.0]).map_err(py_err)?,
        ))
    }

    fn __or__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::any_of(vec![Arc::clone(&self.inner), other.0]).map_err(py_err)?,
        ))
    }

    fn __rand__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::all_of(vec![other.0, Arc::clone(&self.inner)]).map_err(py_err)?,
        ))
    }

    fn __ror__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::any_of(vec![other.0, Arc::clone(&self.inner)]).map_err(py_err)?,
        ))
    }

    fn __invert__(&self) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::not(Arc::clone(&self.inner)).map_err(py_err)?,
        ))
    }

    fn __repr__(&self) -> String {
        format!("<Authorizer: {}>", self.inner.describe())
    }
}

// ---- verification ---------------------------------------------------------------------------

/// A peer whose chain verified.
#[pyclass(frozen, module = "meshtls", name = "VerifiedSvid")]
pub(crate) struct PyVerifiedSvid {
    inner: meshtls::svid::VerifiedSvid,
}

#[pymethods]
impl PyVerifiedSvid {
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .chain()
            .iter()
            .map(|c| PyBytes::new(py, c.as_ref()))
            .collect()
    }

    #[getter]
    fn bundle_trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.bundle_trust_domain().clone(),
        }
    }

    #[getter]
    fn valid_from<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDateTime>> {
        datetime_utc(py, self.inner.valid_from())
    }

    #[getter]
    fn valid_until<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDateTime>> {
        datetime_utc(py, self.inner.valid_until())
    }

    fn __repr__(&self) -> String {
        format!(
            "<VerifiedSvid {} via {} ({} certificates)>",
            self.inner.spiffe_id(),
            self.inner.bundle_trust_domain(),
            self.inner.chain().len()
        )
    }
}

fn authorize_after(
    verified: &meshtls::svid::VerifiedSvid,
    authorizer: Option<AuthorizerArg>,
) -> PyResult<()> {
    match authorizer {
        Some(a) => a.0.authorize_verified(verified).map_err(py_err),
        None => Ok(()),
    }
}

/// Verifies a peer's X.509-SVID chain and returns its SPIFFE ID.
#[pyfunction]
#[pyo3(signature = (chain, bundles, *, now = None, authorizer = None))]
fn verify_svid(
    py: Python<'_>,
    chain: ChainArg,
    bundles: BundlesArg,
    now: Option<&Bound<'_, PyAny>>,
    authorizer: Option<AuthorizerArg>,
) -> PyResult<PySpiffeId> {
    let now = unix_time(now)?;
    let set = bundles.0;
    let verified = py
        .detach(|| meshtls::svid::verify_svid(&chain.0, &set, now))
        .map_err(to_py)?;
    authorize_after(&verified, authorizer)?;
    Ok(PySpiffeId {
        inner: verified.spiffe_id().clone(),
    })
}

/// Verification with a cache for peers that come back.
#[pyclass(frozen, module = "meshtls", name = "SvidVerifier")]
pub(crate) struct PySvidVerifier {
    inner: Arc<meshtls::svid::SvidVerifier>,
    authorizer: Option<Arc<dyn Authorizer>>,
}

#[pymethods]
impl PySvidVerifier {
    #[new]
    #[pyo3(signature = (bundles, *, authorizer = None, cache_size = 1024))]
    fn new(bundles: BundlesArg, authorizer: Option<AuthorizerArg>, cache_size: usize) -> Self {
        let set = Arc::try_unwrap(bundles.0).unwrap_or_else(|shared| (*shared).clone());
        PySvidVerifier {
            inner: Arc::new(meshtls::svid::SvidVerifier::with_capacity(set, cache_size)),
            authorizer: authorizer.map(|a| a.0),
        }
    }

    /// Verifies (and authorizes, when the verifier has an authorizer) a peer chain.
    #[pyo3(signature = (chain, *, now = None))]
    fn verify(
        &self,
        py: Python<'_>,
        chain: ChainArg,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyVerifiedSvid> {
        let now = unix_time(now)?;
        let verifier = Arc::clone(&self.inner);
        let verified = py
            .detach(|| verifier.verify(&chain.0, now))
            .map_err(to_py)?;
        if let Some(a) = &self.authorizer {
            a.authorize_verified(&verified).map_err(py_err)?;
        }
        Ok(PyVerifiedSvid { inner: verified })
    }

    fn set_bundles(&self, bundles: BundlesArg) {
        let set = Arc::try_unwrap(bundles.0).unwrap_or_else(|shared| (*shared).clone());
        self.inner.set_bundles(set);
    }

    #[getter]
    fn bundles(&self) -> PyBundleSet {
        PyBundleSet {
            inner: self.inner.bundles(),
        }
    }

    #[getter]
    fn cache_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("hits", stats.hits)?;
        d.set_item("misses", stats.misses)?;
        d.set_item("entries", stats.entries)?;
        Ok(d)
    }

    fn clear_cache(&self) {
        self.inner.clear_cache();
    }

    fn __repr__(&self) -> String {
        let stats = self.inner.stats();
        format!(
            "<SvidVerifier trust_domains={:?} cached={}>",
            self.inner
                .bundles()
                .trust_domains()
                .map(|t| t.as_str().to_owned())
                .collect::<Vec<_>>(),
            stats.entries
        )
    }
}

/// A leaf certificate: PEM text (the first block is used) or DER bytes.
fn leaf_of(ob: &Bound<'_, PyAny>) -> PyResult<CertificateDer<'static>> {
    if ob.is_instance_of::<PyString>() {
        let text: String = ob.extract()?;
        let chain = meshtls::svid::parse_pem_chain(&text).map_err(py_err)?;
        return chain
            .into_iter()
            .next()
            .ok_or_else(|| py_err(SvidError::EmptyChain));
    }
    if let Ok(b) = ob.cast::<PyBytes>() {
        return Ok(CertificateDer::from(b.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(
        "certificate must be PEM text (str) or DER (bytes)",
    ))
}

/// Raises `SvidError` unless the private key (PEM) belongs to the leaf certificate.
#[pyfunction]
fn check_private_key(certificate: &Bound<'_, PyAny>, private_key_pem: &str) -> PyResult<()> {
    use zeroize::Zeroize as _;
    let leaf = leaf_of(certificate)?;
    let mut key = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(|e| {
        py_err(SvidError::KeyMismatch {
            reason: format!("cannot read the private key PEM: {e}"),
        })
    })?;
    let verdict = meshtls::svid::check_private_key(&leaf, &key).map_err(to_py);
    key.zeroize();
    verdict
}

/// The SVID-relevant fields of a certificate, as a dict.
#[pyfunction]
#[pyo3(signature = (certificate, *, now = None))]
fn inspect_certificate<'py>(
    py: Python<'py>,
    certificate: &Bound<'py, PyAny>,
    now: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let leaf = leaf_of(certificate)?;
    let now = unix_time(now)?;
    let summary = meshtls::svid::inspect_certificate(&leaf, now).map_err(py_err)?;
    let json = serde_json::to_string(&summary)
        .map_err(|e| PyValueError::new_err(format!("cannot render the summary: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTrustBundle>()?;
    m.add_class::<PyBundleSet>()?;
    m.add_class::<PyAuthorizer>()?;
    m.add_class::<PyVerifiedSvid>()?;
    m.add_class::<PySvidVerifier>()?;
    m.add_function(wrap_pyfunction!(verify_svid, m)?)?;
    m.add_function(wrap_pyfunction!(check_private_key, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_certificate, m)?)?;
    Ok(())
}
