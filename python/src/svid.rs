//! `TrustBundle`, `BundleSet`, `verify_svid`, `SvidVerifier`, `VerifiedSvid`, `Authorizer`,
//! `check_private_key`, `inspect_certificate`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use meshtls::authz::{self, Authorizer};
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::error::{AuthzError, SvidError};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDict, PyList, PyString, PyTuple, PyType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::args::{Str, Text, duration_arg, int_arg, strings, unix_now_arg, unix_to_datetime};
use crate::errors::{py_err, to_py};
use crate::identity::{PyMeshConfig, PySpiffeId, PyTrustDomain, SpiffeIdArg, TrustDomainArg};

// ---- arguments ------------------------------------------------------------------------------

/// A chain: PEM text (leaf first) or a sequence of DER `bytes`.
pub(crate) struct ChainArg(pub(crate) Vec<CertificateDer<'static>>);

impl<'a, 'py> FromPyObject<'a, 'py> for ChainArg {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if ob.is_instance_of::<PyString>() {
            let pem: Text<'_> = ob.extract()?;
            return meshtls::svid::parse_pem_chain(&pem)
                .map(ChainArg)
                .map_err(py_err);
        }
        if ob.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "chain must be PEM text (str) or a list of DER certificates (bytes), not one bytes object",
            ));
        }
        // The common case, a list (or tuple) of bytes: one copy of each certificate, no
        // per-byte sequence protocol. Anything else takes the general conversion below.
        let direct = if let Ok(list) = ob.cast::<PyList>() {
            bytes_items(list.iter())
        } else if let Ok(tuple) = ob.cast::<PyTuple>() {
            bytes_items(tuple.iter())
        } else {
            None
        };
        if let Some(chain) = direct {
            return Ok(ChainArg(chain));
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

/// The certificates of a sequence whose items are all `bytes`; `None` if one is not.
fn bytes_items<'py>(
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> Option<Vec<CertificateDer<'static>>> {
    let mut chain = Vec::with_capacity(items.len());
    for item in items {
        let der = item.cast::<PyBytes>().ok()?;
        chain.push(CertificateDer::from(der.as_bytes().to_vec()));
    }
    Some(chain)
}

/// A `BundleSet`, or a mapping of trust-domain name to PEM roots.
pub(crate) struct BundlesArg(pub(crate) Arc<BundleSet>);

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

/// A SPIFFE bundle sequence number.
fn sequence_arg(ob: &Bound<'_, PyAny>) -> PyResult<u64> {
    int_arg(ob, "sequence", "must be between 0 and 2**64-1")
}

fn to_tds(list: Vec<TrustDomainArg>) -> Vec<meshtls::TrustDomain> {
    list.into_iter().map(|t| t.0).collect()
}

// ---- TrustBundle ----------------------------------------------------------------------------

/// The X.509 roots of one trust domain (SPIFFE's X.509 bundle), with the SPIFFE bundle
/// metadata ``sequence`` and ``refresh_hint``.
///
/// Immutable (``with_*`` return new bundles); ``==``/``hash`` compare trust domain, roots and
/// metadata; pickles. Roots are RFC 5280 trust anchors and are accepted as Envoy, Go and
/// OpenSSL accept them (Istio's sample root has no KeyUsage).
///
/// Args:
///     trust_domain: a :class:`TrustDomain` or its name.
///     roots: DER certificates.
///     sequence: the SPIFFE bundle sequence number (0 to 2**64-1), or ``None``.
///     refresh_hint: the SPIFFE bundle refresh hint (a non-negative ``timedelta``), or ``None``.
///
/// Raises:
///     BundleError: a root is not a certificate (or too many roots).
///     InvalidArgumentError: ``sequence`` or ``refresh_hint`` out of range.
///
/// Example::
///
///     >>> b = TrustBundle.from_pem("cluster.local", ca.root_cert_pem)
///     >>> len(b), str(b.trust_domain)
///     (1, 'cluster.local')
#[pyclass(frozen, module = "meshtls", name = "TrustBundle")]
#[derive(Clone)]
pub(crate) struct PyTrustBundle {
    pub(crate) inner: TrustBundle,
}

#[pymethods]
impl PyTrustBundle {
    #[new]
    #[pyo3(
        signature = (trust_domain, roots = Vec::new(), sequence = None, refresh_hint = None),
        text_signature = "(trust_domain, roots=(), sequence=None, refresh_hint=None)"
    )]
    fn new(
        trust_domain: TrustDomainArg,
        roots: Vec<Vec<u8>>,
        sequence: Option<&Bound<'_, PyAny>>,
        refresh_hint: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let sequence = sequence.map(sequence_arg).transpose()?;
        let refresh_hint = refresh_hint
            .map(|h| duration_arg(h, "refresh_hint"))
            .transpose()?;
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

    /// Reads the roots of ``trust_domain`` from PEM text (CERTIFICATE blocks only).
    ///
    /// Raises:
    ///     BundleError: no certificate, a block of another type, or a certificate that cannot be read.
    #[classmethod]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        pem: Text<'_>,
    ) -> PyResult<Self> {
        let inner = TrustBundle::from_pem(trust_domain.0, &pem).map_err(py_err)?;
        Ok(PyTrustBundle { inner })
    }

    /// Reads a SPIFFE bundle (JWKS JSON, ``x509-svid`` keys) for ``trust_domain``; JWT keys
    /// are ignored.
    ///
    /// Raises:
    ///     BundleError: not a SPIFFE bundle, or a key that breaks the SPIFFE bundle format.
    #[classmethod]
    fn from_spiffe_json(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        text: Text<'_>,
    ) -> PyResult<Self> {
        let inner = TrustBundle::from_spiffe_json(trust_domain.0, &text).map_err(py_err)?;
        Ok(PyTrustBundle { inner })
    }

    /// The roots as PEM text, one CERTIFICATE block each.
    fn to_pem(&self) -> String {
        self.inner.to_pem()
    }

    /// The bundle as SPIFFE bundle JSON (JWKS with ``x509-svid`` keys, sequence and refresh hint).
    fn to_spiffe_json(&self) -> PyResult<String> {
        self.inner.to_spiffe_json().map_err(py_err)
    }

    /// The trust domain (a :class:`TrustDomain`).
    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    /// The roots as DER ``bytes``, in order.
    #[getter]
    fn roots<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .roots()
            .iter()
            .map(|r| PyBytes::new(py, r.as_ref()))
            .collect()
    }

    /// The SPIFFE bundle sequence number, or ``None``.
    #[getter]
    fn sequence(&self) -> Option<u64> {
        self.inner.sequence()
    }

    /// The SPIFFE bundle refresh hint (a ``timedelta``), or ``None``.
    #[getter]
    fn refresh_hint(&self) -> Option<Duration> {
        self.inner.refresh_hint()
    }

    /// A copy with ``sequence`` set (an int from 0 to 2**64-1).
    ///
    /// Raises:
    ///     InvalidArgumentError: ``sequence`` out of range.
    fn with_sequence(&self, sequence: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyTrustBundle {
            inner: self.inner.with_sequence(sequence_arg(sequence)?),
        })
    }

    /// A copy with ``refresh_hint`` set (a non-negative ``timedelta``).
    ///
    /// Raises:
    ///     InvalidArgumentError: a negative or unrepresentable ``refresh_hint``.
    fn with_refresh_hint(&self, refresh_hint: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyTrustBundle {
            inner: self
                .inner
                .with_refresh_hint(duration_arg(refresh_hint, "refresh_hint")?),
        })
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

/// Trust bundles of several trust domains, kept apart (an SVID is verified only with the
/// bundle of its own trust domain), plus trust-domain aliases (an alias is verified with its
/// primary's bundle, as Istio's ``trustDomainAliases``).
///
/// Immutable (``with_*`` return new sets); ``==`` compares content; pickles.
///
/// Args:
///     bundles: :class:`TrustBundle` objects, one per trust domain.
///     aliases: ``(alias, primary)`` pairs, or ``None``.
///
/// Raises:
///     BundleError: two bundles for one trust domain, or an alias that has a bundle of its
///         own, names itself, or chains.
///
/// Example::
///
///     >>> bundles = BundleSet.from_pem_map({"cluster.local": ca.root_cert_pem})
///     >>> "cluster.local" in bundles
///     True
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
    #[pyo3(
        signature = (bundles = Vec::new(), aliases = None),
        text_signature = "(bundles=(), aliases=None)"
    )]
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

    /// Reads a mapping of trust-domain name (or :class:`TrustDomain`) to PEM roots.
    ///
    /// Raises:
    ///     BundleError: PEM that holds no certificate, or something else than certificates.
    ///     InvalidSpiffeIdError: a key is not a trust domain name.
    ///     TypeError: not a dict of str to str.
    #[classmethod]
    fn from_pem_map(_cls: &Bound<'_, PyType>, mapping: &Bound<'_, PyAny>) -> PyResult<Self> {
        let BundlesArg(set) = mapping.extract()?;
        Ok(PyBundleSet { inner: set })
    }

    /// Reads a SPIFFE bundle map: a JSON object of trust-domain name to SPIFFE bundle.
    ///
    /// Raises:
    ///     BundleError: not such a map, or a bundle in it that is malformed.
    ///     InvalidSpiffeIdError: a key is not a trust domain name.
    #[classmethod]
    fn from_spiffe_json(_cls: &Bound<'_, PyType>, text: Text<'_>) -> PyResult<Self> {
        Ok(Self::wrap(
            BundleSet::from_spiffe_json(&text).map_err(py_err)?,
        ))
    }

    /// The set as a SPIFFE bundle map (JSON object of trust-domain name to SPIFFE bundle).
    fn to_spiffe_json(&self) -> PyResult<String> {
        self.inner.to_spiffe_json().map_err(py_err)
    }

    /// The bundles as a dict of trust-domain name to PEM roots.
    fn to_pem_map(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.to_pem_map()
    }

    /// A copy with ``bundle`` added.
    ///
    /// Raises:
    ///     BundleError: the set already has a bundle for that trust domain, or it is an alias.
    fn with_bundle(&self, bundle: PyRef<'_, PyTrustBundle>) -> PyResult<Self> {
        let set = (*self.inner)
            .clone()
            .with_bundle(bundle.inner.clone())
            .map_err(py_err)?;
        Ok(Self::wrap(set))
    }

    /// A copy where SVIDs of each of ``aliases`` are verified with ``trust_domain``'s bundle.
    ///
    /// Raises:
    ///     BundleError: an alias has a bundle of its own, is ``trust_domain`` itself or already
    ///         aliases another trust domain, or ``trust_domain`` is itself an alias.
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

    /// A copy with the mesh's ``trustDomainAliases`` registered as aliases of its trust domain.
    ///
    /// Raises:
    ///     BundleError: as for :meth:`with_aliases`.
    fn with_mesh_aliases(&self, mesh: PyRef<'_, PyMeshConfig>) -> PyResult<Self> {
        let set = (*self.inner)
            .clone()
            .with_mesh_aliases(&mesh.inner.trust_domains())
            .map_err(py_err)?;
        Ok(Self::wrap(set))
    }

    /// The bundle registered for exactly ``trust_domain`` (aliases not followed), or ``None``.
    fn get(&self, trust_domain: TrustDomainArg) -> Option<PyTrustBundle> {
        self.inner
            .get(&trust_domain.0)
            .map(|b| PyTrustBundle { inner: b.clone() })
    }

    /// The bundle that verifies SVIDs of ``trust_domain``: its own, or its alias target's;
    /// ``None`` if there is none.
    fn bundle_for(&self, trust_domain: TrustDomainArg) -> Option<PyTrustBundle> {
        self.inner
            .bundle_for(&trust_domain.0)
            .map(|b| PyTrustBundle { inner: b.clone() })
    }

    /// The trust domains that have a bundle, sorted.
    #[getter]
    fn trust_domains(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domains()
            .map(|t| PyTrustDomain { inner: t.clone() })
            .collect()
    }

    /// The bundles, sorted by trust domain.
    #[getter]
    fn bundles(&self) -> Vec<PyTrustBundle> {
        self.inner
            .bundles()
            .map(|b| PyTrustBundle { inner: b.clone() })
            .collect()
    }

    /// The ``(alias, primary)`` pairs.
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

    /// Whether SVIDs of ``trust_domain`` can be verified (own bundle or alias).
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

/// Decides whether a verified peer (its SPIFFE ID) may talk to you. Build one with the
/// static constructors and combine them with ``&``, ``|`` and ``~`` (or :meth:`all_of`,
/// :meth:`any_of`, :meth:`not_`); a plain callable ``fn(SpiffeId) -> bool`` is accepted
/// wherever an authorizer is.
///
/// Example::
///
///     >>> a = Authorizer.namespace(["shop"], trust_domains=["cluster.local"]) & ~Authorizer.id(
///     ...     "spiffe://cluster.local/ns/shop/sa/legacy")
///     >>> a.allows("spiffe://cluster.local/ns/shop/sa/web")
///     True
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
    /// Any verified peer (SPIFFE's ``AuthorizeAny``).
    #[staticmethod]
    fn any() -> Self {
        Self::wrap(authz::any())
    }

    /// Exactly this SPIFFE ID (a :class:`SpiffeId` or text).
    #[staticmethod]
    fn id(id: SpiffeIdArg) -> Self {
        Self::wrap(authz::id(id.0))
    }

    /// Any of these SPIFFE IDs.
    #[staticmethod]
    fn one_of(ids: Vec<SpiffeIdArg>) -> Self {
        Self::wrap(authz::one_of(ids.into_iter().map(|i| i.0)))
    }

    /// Any peer of one of these trust domains.
    #[staticmethod]
    fn member_of(trust_domains: Vec<TrustDomainArg>) -> Self {
        Self::wrap(authz::member_of(to_tds(trust_domains)))
    }

    /// Any peer of the mesh's trust domain or one of its aliases.
    #[staticmethod]
    fn member_of_mesh(mesh: PyRef<'_, PyMeshConfig>) -> Self {
        Self::wrap(authz::member_of_mesh(&mesh.inner.trust_domains()))
    }

    /// Istio workloads (``/ns/<ns>/sa/<sa>``) of these namespaces, in these trust domains.
    ///
    /// Raises:
    ///     IdentityError: an empty or invalid namespace.
    #[staticmethod]
    #[pyo3(signature = (namespaces, *, trust_domains))]
    fn namespace(namespaces: Vec<Str>, trust_domains: Vec<TrustDomainArg>) -> PyResult<Self> {
        let namespaces = strings(namespaces);
        let tds = to_tds(trust_domains);
        Ok(Self::wrap(
            authz::namespace(tds, &namespaces).map_err(py_err)?,
        ))
    }

    /// The Istio workload ``/ns/<namespace>/sa/<service_account>`` in these trust domains.
    ///
    /// Raises:
    ///     IdentityError: an empty or invalid part.
    #[staticmethod]
    #[pyo3(signature = (namespace, service_account, *, trust_domains))]
    fn service_account(
        namespace: Text<'_>,
        service_account: Text<'_>,
        trust_domains: Vec<TrustDomainArg>,
    ) -> PyResult<Self> {
        let tds = to_tds(trust_domains);
        Ok(Self::wrap(
            authz::service_account(tds, &namespace, &service_account).map_err(py_err)?,
        ))
    }

    /// AuthorizationPolicy ``principals`` (exact, ``*``, ``prefix*``, ``*suffix``), expanded
    /// with ``trust_domains`` as istiod does (:func:`expand_principals`).
    ///
    /// Raises:
    ///     IdentityError: a malformed pattern.
    #[staticmethod]
    #[pyo3(signature = (principals, *, trust_domains = Vec::new()), text_signature = "(principals, *, trust_domains=())")]
    fn principals(principals: Vec<Str>, trust_domains: Vec<TrustDomainArg>) -> PyResult<Self> {
        let principals = strings(principals);
        let tds = to_tds(trust_domains);
        Ok(Self::wrap(
            authz::principals(&principals, &tds).map_err(py_err)?,
        ))
    }

    /// Peers that every one of ``authorizers`` allows (``&``).
    #[staticmethod]
    fn all_of(authorizers: Vec<AuthorizerArg>) -> PyResult<Self> {
        let members = authorizers.into_iter().map(|a| a.0).collect();
        Ok(Self::wrap(authz::all_of(members).map_err(py_err)?))
    }

    /// Peers that at least one of ``authorizers`` allows (``|``).
    #[staticmethod]
    fn any_of(authorizers: Vec<AuthorizerArg>) -> PyResult<Self> {
        let members = authorizers.into_iter().map(|a| a.0).collect();
        Ok(Self::wrap(authz::any_of(members).map_err(py_err)?))
    }

    /// Peers that ``authorizer`` refuses (``~``).
    #[staticmethod]
    fn not_(authorizer: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(authz::not(authorizer.0).map_err(py_err)?))
    }

    /// A callable ``fn(SpiffeId) -> bool`` as an authorizer; ``description`` is what a refusal
    /// says was expected (default: the callable's name). A callable that raises refuses.
    ///
    /// Raises:
    ///     TypeError: ``func`` is not callable.
    #[staticmethod]
    #[pyo3(signature = (func, *, description = None))]
    fn from_callable(func: &Bound<'_, PyAny>, description: Option<Str>) -> PyResult<Self> {
        let description = description.map(|d| d.0);
        if !func.is_callable() {
            return Err(PyTypeError::new_err("func must be callable"));
        }
        Ok(Self::wrap(callable(func.clone().unbind(), description)?))
    }

    /// Raises `AuthorizationError` when `peer` is refused.
    /// Returns ``None`` when ``peer`` is allowed.
    ///
    /// Raises:
    ///     AuthorizationError: the peer is refused (the message says what was expected).
    ///     InvalidSpiffeIdError: ``peer`` is not a SPIFFE ID.
    fn authorize(&self, peer: SpiffeIdArg) -> PyResult<()> {
        self.inner.authorize(&peer.0).map_err(py_err)
    }

    /// Whether ``peer`` (a :class:`SpiffeId` or text) is allowed.
    ///
    /// Raises:
    ///     InvalidSpiffeIdError: ``peer`` is not a SPIFFE ID.
    fn allows(&self, peer: SpiffeIdArg) -> bool {
        self.inner.allows(&peer.0)
    }

    /// What the authorizer allows, in words (used in refusals).
    #[getter]
    fn description(&self) -> String {
        self.inner.describe()
    }

    /// ``a & b``: :meth:`all_of`.
    fn __and__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::all_of(vec![Arc::clone(&self.inner), other.0]).map_err(py_err)?,
        ))
    }

    /// ``a | b``: :meth:`any_of`.
    fn __or__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::any_of(vec![Arc::clone(&self.inner), other.0]).map_err(py_err)?,
        ))
    }

    /// ``f & a`` for a callable ``f``.
    fn __rand__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::all_of(vec![other.0, Arc::clone(&self.inner)]).map_err(py_err)?,
        ))
    }

    /// ``f | a`` for a callable ``f``.
    fn __ror__(&self, other: AuthorizerArg) -> PyResult<Self> {
        Ok(Self::wrap(
            authz::any_of(vec![other.0, Arc::clone(&self.inner)]).map_err(py_err)?,
        ))
    }

    /// ``~a``: :meth:`not_`.
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

/// A peer whose X.509-SVID chain verified: its SPIFFE ID, the chain it presented and the
/// bundle that verified it. Returned by :meth:`SvidVerifier.verify`.
#[pyclass(frozen, module = "meshtls", name = "VerifiedSvid")]
pub(crate) struct PyVerifiedSvid {
    inner: meshtls::svid::VerifiedSvid,
}

#[pymethods]
impl PyVerifiedSvid {
    /// The peer's SPIFFE ID.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    /// The chain as presented, DER ``bytes``, leaf first.
    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .chain()
            .iter()
            .map(|c| PyBytes::new(py, c.as_ref()))
            .collect()
    }

    /// The trust domain whose bundle verified the chain (the primary for an alias).
    #[getter]
    fn bundle_trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.bundle_trust_domain().clone(),
        }
    }

    /// The latest NotBefore of the chain (an aware UTC ``datetime``).
    #[getter]
    fn valid_from<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDateTime>> {
        unix_to_datetime(py, self.inner.valid_from())
    }

    /// The earliest NotAfter of the chain (an aware UTC ``datetime``).
    #[getter]
    fn valid_until<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDateTime>> {
        unix_to_datetime(py, self.inner.valid_until())
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

/// Verifies a peer's X.509-SVID chain by the SPIFFE X.509-SVID standard and returns its
/// SPIFFE ID.
///
/// The leaf must carry exactly one URI SAN that is a SPIFFE ID with a path, be an end-entity
/// certificate for digital signatures (serverAuth and clientAuth when it has an EKU), and
/// chain (RFC 5280) to a root in the bundle of the leaf's own trust domain (or of the trust
/// domain it is an alias of). Stricter than go-spiffe where the standard says MUST.
///
/// Args:
///     chain: PEM text (leaf first) or a list of DER ``bytes`` (leaf first).
///     bundles: a :class:`BundleSet`, or a dict mapping trust-domain names to PEM roots.
///     now: the verification time (an aware ``datetime``); ``None`` for now.
///     authorizer: an :class:`Authorizer` or callable checked after verification.
///
/// Returns:
///     The peer's :class:`SpiffeId`.
///
/// Raises:
///     SvidError: the chain failed a rule (the message says which).
///     AuthorizationError: the chain verified but ``authorizer`` refused the peer.
///     BundleError: ``bundles`` given as a dict could not be read.
///     InvalidArgumentError: a naive ``now``, or one before 1970.
///     TypeError: ``chain`` or ``bundles`` of the wrong type.
///
/// Example::
///
///     >>> verify_svid(svid.cert_chain_pem, {"cluster.local": ca.root_cert_pem})
///     SpiffeId("spiffe://cluster.local/ns/shop/sa/web")
#[pyfunction]
#[pyo3(signature = (chain, bundles, *, now = None, authorizer = None))]
fn verify_svid(
    py: Python<'_>,
    chain: ChainArg,
    bundles: BundlesArg,
    now: Option<&Bound<'_, PyAny>>,
    authorizer: Option<AuthorizerArg>,
) -> PyResult<PySpiffeId> {
    let now = unix_now_arg(now)?;
    let set = bundles.0;
    let verified = py
        .detach(|| meshtls::svid::verify_svid(&chain.0, &set, now))
        .map_err(to_py)?;
    authorize_after(&verified, authorizer)?;
    Ok(PySpiffeId {
        inner: verified.spiffe_id().clone(),
    })
}

/// :func:`verify_svid` with a cache for peers that come back: a chain that verified is
/// remembered (by its bytes and the bundle that verified it), so the next verification of
/// the same chain skips the signature checks but still checks validity at ``now``.
/// Replacing the bundles (:meth:`set_bundles`) drops what the old bundles verified. Safe to
/// share between threads.
///
/// Args:
///     bundles: a :class:`BundleSet`, or a dict mapping trust-domain names to PEM roots.
///     authorizer: an :class:`Authorizer` or callable applied after every verification.
///     cache_size: how many chains to remember (0 disables the cache).
///
/// Raises:
///     BundleError: ``bundles`` given as a dict could not be read.
///     InvalidArgumentError: ``cache_size`` out of range.
#[pyclass(frozen, module = "meshtls", name = "SvidVerifier")]
pub(crate) struct PySvidVerifier {
    pub(crate) inner: Arc<meshtls::svid::SvidVerifier>,
    authorizer: Option<Arc<dyn Authorizer>>,
}

#[pymethods]
impl PySvidVerifier {
    #[new]
    #[pyo3(
        signature = (bundles, *, authorizer = None, cache_size = None),
        text_signature = "(bundles, *, authorizer=None, cache_size=1024)"
    )]
    fn new(
        bundles: BundlesArg,
        authorizer: Option<AuthorizerArg>,
        cache_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let cache_size: usize = match cache_size {
            Some(n) => int_arg(n, "cache_size", "must be between 0 and 2**63")?,
            None => meshtls::svid::DEFAULT_CACHE_CAPACITY,
        };
        let set = Arc::try_unwrap(bundles.0).unwrap_or_else(|shared| (*shared).clone());
        Ok(PySvidVerifier {
            inner: Arc::new(meshtls::svid::SvidVerifier::with_capacity(set, cache_size)),
            authorizer: authorizer.map(|a| a.0),
        })
    }

    /// Verifies a peer chain (as :func:`verify_svid`), then applies the verifier's authorizer.
    ///
    /// Args:
    ///     chain: PEM text or a list of DER ``bytes``, leaf first.
    ///     now: an aware ``datetime``; ``None`` for now.
    ///
    /// Returns:
    ///     A :class:`VerifiedSvid`.
    ///
    /// Raises:
    ///     SvidError: the chain failed a rule.
    ///     AuthorizationError: the verifier's authorizer refused the peer.
    ///     InvalidArgumentError: a naive ``now``.
    #[pyo3(signature = (chain, *, now = None))]
    fn verify(
        &self,
        py: Python<'_>,
        chain: ChainArg,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyVerifiedSvid> {
        let now = unix_now_arg(now)?;
        let verifier = Arc::clone(&self.inner);
        let verified = py
            .detach(|| verifier.verify(&chain.0, now))
            .map_err(to_py)?;
        if let Some(a) = &self.authorizer {
            a.authorize_verified(&verified).map_err(py_err)?;
        }
        Ok(PyVerifiedSvid { inner: verified })
    }

    /// Replaces the bundles (e.g. after a root rotation); cached verdicts of the old ones
    /// are dropped.
    ///
    /// Raises:
    ///     BundleError: ``bundles`` given as a dict could not be read.
    fn set_bundles(&self, bundles: BundlesArg) {
        let set = Arc::try_unwrap(bundles.0).unwrap_or_else(|shared| (*shared).clone());
        self.inner.set_bundles(set);
    }

    /// The current bundles.
    #[getter]
    fn bundles(&self) -> PyBundleSet {
        PyBundleSet {
            inner: self.inner.bundles(),
        }
    }

    /// ``{"hits": ..., "misses": ..., "entries": ...}``.
    #[getter]
    fn cache_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("hits", stats.hits)?;
        d.set_item("misses", stats.misses)?;
        d.set_item("entries", stats.entries)?;
        Ok(d)
    }

    /// Forgets every cached verdict.
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
        let text: Text<'_> = ob.extract()?;
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

/// Checks that a private key belongs to a certificate (the key's public half is the
/// certificate's), as a TLS library would before serving with them.
///
/// Args:
///     certificate: PEM text (the first certificate is used) or DER ``bytes``.
///     private_key_pem: the key in PEM (PKCS#8, PKCS#1 or SEC1).
///
/// Raises:
///     SvidError: the key does not match, or the certificate or key cannot be read.
///     TypeError: ``certificate`` is neither ``str`` nor ``bytes``.
#[pyfunction]
fn check_private_key(certificate: &Bound<'_, PyAny>, private_key_pem: Text<'_>) -> PyResult<()> {
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

/// The SVID-relevant fields of a certificate, as a dict (what ``meshtls inspect --json``
/// prints): SPIFFE ID and other SANs, validity, key, KeyUsage/EKU, CA flag, serial, and
/// which SPIFFE rules the certificate breaks as a leaf.
///
/// Args:
///     certificate: PEM text (the first certificate is used) or DER ``bytes``.
///     now: the time validity is judged at (an aware ``datetime``); ``None`` for now.
///
/// Raises:
///     SvidError: the certificate cannot be read.
///     InvalidArgumentError: a naive ``now``.
///     TypeError: ``certificate`` is neither ``str`` nor ``bytes``.
#[pyfunction]
#[pyo3(signature = (certificate, *, now = None))]
fn inspect_certificate<'py>(
    py: Python<'py>,
    certificate: &Bound<'py, PyAny>,
    now: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let leaf = leaf_of(certificate)?;
    let now = unix_now_arg(now)?;
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
