//! `MeshCa`, `Svid` and `IssuedCertificate`: argument conversion, error mapping and GIL release
//! around `meshtls::ca`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::args::{Str, Text, duration_arg, int_arg, now_arg, strings};
use crate::errors::py_err;
use crate::identity::{PyMeshConfig, PySpiffeId, PyTrustDomain, SpiffeIdArg, TrustDomainArg};

/// `trust_domain=` / `mesh=` of `MeshCa.load` and `MeshCa.from_pem` as a [`meshtls::ca::CaTrust`].
fn ca_trust(
    trust_domain: Option<TrustDomainArg>,
    mesh: Option<PyRef<'_, PyMeshConfig>>,
) -> PyResult<meshtls::ca::CaTrust> {
    match (trust_domain, mesh) {
        (Some(_), Some(_)) => Err(pyo3::exceptions::PyTypeError::new_err(
            "pass trust_domain or mesh, not both",
        )),
        (Some(td), None) => Ok(meshtls::ca::CaTrust::TrustDomain(td.0)),
        (None, Some(mesh)) => Ok(meshtls::ca::CaTrust::Mesh(mesh.inner.trust_domains())),
        (None, None) => Ok(meshtls::ca::CaTrust::FromCertificate),
    }
}

pub(crate) fn key_kind(name: &str) -> PyResult<meshtls::ca::KeyKind> {
    meshtls::ca::KeyKind::parse(name).map_err(py_err)
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

/// An optional field whose `None` means something (no CN, no path length): left out, the
/// core's default applies ([`Field::Default`]); given, even as `None`, it replaces it.
enum Field<T> {
    Default,
    Given(Option<T>),
}

impl<'a, 'py, T: FromPyObject<'a, 'py>> FromPyObject<'a, 'py> for Field<T> {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if ob.is_none() {
            return Ok(Field::Given(None));
        }
        T::extract(ob)
            .map(|v| Field::Given(Some(v)))
            .map_err(Into::into)
    }
}

/// `path_len`: an int in 0..=255.
struct PathLen(u8);

impl<'a, 'py> FromPyObject<'a, 'py> for PathLen {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        int_arg(&ob.to_owned(), "path_len", "must be between 0 and 255").map(PathLen)
    }
}

/// A mesh certificate authority that issues X.509-SVIDs with Istio's exact workload profile
/// (empty subject, one critical URI SAN, 128-bit random serial, NotBefore backdated two
/// minutes, NotAfter clamped to the CA's), signs CSRs, rotates its root and writes Istio's
/// plug-in ``cacerts`` layout.
///
/// Make one with :meth:`create` (a self-signed root), :meth:`create_intermediate`,
/// :meth:`load` or :meth:`from_pem`. Safe to share between threads; heavy work (key
/// generation, signing, files) runs with the GIL released.
///
/// Example::
///
///     >>> ca = MeshCa.create("cluster.local", key="ec-p256")
///     >>> svid = ca.issue("spiffe://cluster.local/ns/shop/sa/web")
///     >>> str(svid.spiffe_id)
///     'spiffe://cluster.local/ns/shop/sa/web'
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

/// What `create` and `create_intermediate` were given; the rest stays as the core's
/// `CaParams::new` (a root) or `CaParams::intermediate` decides.
struct CaArgs<'a> {
    key: Option<Text<'a>>,
    ttl: Option<&'a Bound<'a, PyAny>>,
    organization: Option<Str>,
    common_name: Field<Str>,
    path_len: Field<PathLen>,
    trust_domain_san: Option<bool>,
}

fn ca_params(mut p: meshtls::ca::CaParams, a: CaArgs<'_>) -> PyResult<meshtls::ca::CaParams> {
    if let Some(key) = a.key {
        p.key = key_kind(&key)?;
    }
    if let Some(ttl) = a.ttl {
        p.ttl = duration_arg(ttl, "ttl")?;
    }
    if let Some(o) = a.organization {
        p.organization = Some(o.0);
    }
    if let Field::Given(cn) = a.common_name {
        p.common_name = cn.map(|c| c.0);
    }
    if let Field::Given(n) = a.path_len {
        p.path_len = n.map(|n| n.0);
    }
    if let Some(san) = a.trust_domain_san {
        p.trust_domain_san = san;
    }
    Ok(p)
}

/// `IssueParams::default()` with what the caller gave.
pub(crate) fn issue_params(
    ttl: Option<&Bound<'_, PyAny>>,
    key: Option<Text<'_>>,
    dns_names: Vec<String>,
) -> PyResult<meshtls::ca::IssueParams> {
    let mut p = meshtls::ca::IssueParams::default();
    if let Some(ttl) = ttl {
        p.ttl = duration_arg(ttl, "ttl")?;
    }
    if let Some(key) = key {
        p.key = key_kind(&key)?;
    }
    p.dns_names = dns_names;
    Ok(p)
}

#[pymethods]
impl PyMeshCa {
    #[classmethod]
    #[pyo3(
        signature = (trust_domain = None, *, key = None, ttl = None, organization = None, common_name = Field::Default, trust_domain_san = None),
        text_signature = "(trust_domain='cluster.local', *, key='rsa-2048', ttl=None, organization=None, common_name=None, trust_domain_san=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    /// A new self-signed root CA, as istiod makes for itself (``istio-ca-secret``).
    ///
    /// Args:
    ///     trust_domain: the trust domain (a :class:`TrustDomain` or its name).
    ///     key: ``"ec-p256"``, ``"ec-p384"``, ``"rsa-2048"`` (Istio's default), ``"rsa-3072"``
    ///         or ``"rsa-4096"``.
    ///     ttl: the root's lifetime (a ``timedelta``; default ten years).
    ///     organization: the subject's O (default: the trust domain, as Istio).
    ///     common_name: an optional subject CN.
    ///     trust_domain_san: add the URI SAN ``spiffe://<trust_domain>`` to the CA certificate.
    ///
    /// Raises:
    ///     CaError: an unknown key kind, or a parameter the CA profile refuses.
    ///     InvalidArgumentError: a negative or unrepresentable ``ttl``.
    ///     InvalidSpiffeIdError: a bad trust domain.
    fn create(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        trust_domain: Option<TrustDomainArg>,
        key: Option<Text<'_>>,
        ttl: Option<&Bound<'_, PyAny>>,
        organization: Option<Str>,
        common_name: Field<Str>,
        trust_domain_san: Option<bool>,
    ) -> PyResult<Self> {
        let base = match trust_domain {
            Some(t) => meshtls::ca::CaParams::new(t.0),
            None => meshtls::ca::CaParams::default(),
        };
        let params = ca_params(
            base,
            CaArgs {
                key,
                ttl,
                organization,
                common_name,
                path_len: Field::Default,
                trust_domain_san,
            },
        )?;
        let ca = py
            .detach(|| meshtls::MeshCa::create(&params))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    #[pyo3(
        signature = (trust_domain = None, *, key = None, ttl = None, organization = None, common_name = Field::Default, path_len = Field::Default, trust_domain_san = None),
        text_signature = "(self, /, trust_domain=None, *, key='rsa-2048', ttl=None, organization=None, common_name='Intermediate CA', path_len=0, trust_domain_san=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    /// A new intermediate CA signed by this one (for a cluster's plug-in ``cacerts``).
    ///
    /// Args:
    ///     trust_domain: defaults to this CA's.
    ///     key: the intermediate's key kind (see :meth:`create`).
    ///     ttl: its lifetime (default two years; clamped to this CA's NotAfter).
    ///     organization: subject O (default: the trust domain).
    ///     common_name: subject CN.
    ///     path_len: the BasicConstraints pathLenConstraint (0 to 255) or ``None``.
    ///     trust_domain_san: add the URI SAN ``spiffe://<trust_domain>``.
    ///
    /// Raises:
    ///     CaError: this CA has no trust domain and none was given, or a bad parameter.
    ///     InvalidArgumentError: ``path_len`` out of 0..255, or a bad ``ttl``.
    fn create_intermediate(
        &self,
        py: Python<'_>,
        trust_domain: Option<TrustDomainArg>,
        key: Option<Text<'_>>,
        ttl: Option<&Bound<'_, PyAny>>,
        organization: Option<Str>,
        common_name: Field<Str>,
        path_len: Field<PathLen>,
        trust_domain_san: Option<bool>,
    ) -> PyResult<Self> {
        let trust_domain = match trust_domain {
            Some(t) => t.0,
            None => self.inner.trust_domain().clone(),
        };
        let params = ca_params(
            meshtls::ca::CaParams::intermediate(trust_domain),
            CaArgs {
                key,
                ttl,
                organization,
                common_name,
                path_len,
                trust_domain_san,
            },
        )?;
        let inner = Arc::clone(&self.inner);
        let ca = py
            .detach(move || inner.create_intermediate(&params))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    /// Loads a CA from Istio's plug-in layout (``ca-cert.pem``, ``ca-key.pem``,
    /// ``cert-chain.pem``, ``root-cert.pem``) or a ``kubernetes.io/tls`` directory.
    ///
    /// The CA issues for ``trust_domain`` only, or for ``mesh``'s trust domain and its
    /// ``trustDomainAliases`` (a ``MeshConfig``); with neither, for the trust domain in the
    /// signing certificate's ``spiffe://<td>`` URI SAN (Istio's sample CA has none).
    ///
    /// Raises:
    ///     CaError: a missing file, a file that cannot be read or is not UTF-8 text, material
    ///         that is not a usable CA (the message names the file), no trust domain, or a
    ///         URI SAN naming another trust domain than ``trust_domain``.
    ///     TypeError: both ``trust_domain`` and ``mesh``.
    #[classmethod]
    #[pyo3(signature = (directory, *, trust_domain = None, mesh = None))]
    fn load(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        directory: PathBuf,
        trust_domain: Option<TrustDomainArg>,
        mesh: Option<PyRef<'_, PyMeshConfig>>,
    ) -> PyResult<Self> {
        let trust = ca_trust(trust_domain, mesh)?;
        let ca = py
            .detach(|| meshtls::MeshCa::load_with(&directory, &trust))
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    /// A CA from PEM text, as in Istio's plug-in files.
    ///
    /// Args:
    ///     ca_cert_pem: the signing certificate.
    ///     ca_key_pem: its private key (PKCS#8, PKCS#1 or SEC1).
    ///     cert_chain_pem: the chain from the signing certificate up (``""``: just it).
    ///     root_cert_pem: the root (``""``: the last certificate of the chain).
    ///     trust_domain: the trust domain the CA issues for (see ``load``).
    ///     mesh: a ``MeshConfig`` whose trust domain and aliases the CA issues for.
    ///
    /// Raises:
    ///     CaError: unreadable or inconsistent material (key mismatch, not a CA, expired), no
    ///         trust domain, or a URI SAN naming another one.
    ///     TypeError: both ``trust_domain`` and ``mesh``.
    #[classmethod]
    #[pyo3(signature = (ca_cert_pem, ca_key_pem, *, cert_chain_pem = Text(""), root_cert_pem = Text(""), trust_domain = None, mesh = None),
        text_signature = "(ca_cert_pem, ca_key_pem, *, cert_chain_pem='', root_cert_pem='', trust_domain=None, mesh=None)")]
    #[allow(clippy::too_many_arguments)]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        ca_cert_pem: Text<'_>,
        ca_key_pem: Text<'_>,
        cert_chain_pem: Text<'_>,
        root_cert_pem: Text<'_>,
        trust_domain: Option<TrustDomainArg>,
        mesh: Option<PyRef<'_, PyMeshConfig>>,
    ) -> PyResult<Self> {
        let trust = ca_trust(trust_domain, mesh)?;
        let key = zeroize::Zeroizing::new(ca_key_pem.0.to_owned());
        let (ca_cert_pem, cert_chain_pem, root_cert_pem) =
            (ca_cert_pem.0, cert_chain_pem.0, root_cert_pem.0);
        let ca = py
            .detach(|| {
                meshtls::MeshCa::from_pem(ca_cert_pem, &key, cert_chain_pem, root_cert_pem, trust)
            })
            .map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    /// Writes the CA to ``directory`` atomically, keys 0600.
    ///
    /// Args:
    ///     directory: created if missing.
    ///     layout: ``"istio"`` (``ca-cert.pem``, ``ca-key.pem``, ``cert-chain.pem``,
    ///         ``root-cert.pem``) or ``"kubernetes-tls"`` (``tls.crt``, ``tls.key``, ``ca.crt``).
    ///
    /// Raises:
    ///     CaError: a file could not be written.
    ///     InvalidArgumentError: an unknown layout.
    #[pyo3(signature = (directory, *, layout = Text("istio")), text_signature = "(self, /, directory, *, layout='istio')")]
    fn save(&self, py: Python<'_>, directory: PathBuf, layout: Text<'_>) -> PyResult<()> {
        let layout = match &*layout {
            "istio" => meshtls::ca::CaLayout::Istio,
            "kubernetes-tls" => meshtls::ca::CaLayout::KubernetesTls,
            other => {
                return Err(crate::errors::InvalidArgumentError::new_err(format!(
                    "unknown layout {}: expected 'istio' or 'kubernetes-tls'",
                    crate::args::quote(other)
                )));
            }
        };
        py.detach(|| self.inner.save_as(&directory, layout))
            .map_err(py_err)
    }

    /// The root certificate (PEM): what workloads trust (``root-cert.pem``).
    #[getter]
    fn root_cert_pem(&self) -> String {
        self.inner.root_cert_pem()
    }

    /// The signing certificate (PEM, ``ca-cert.pem``).
    #[getter]
    fn ca_cert_pem(&self) -> String {
        self.inner.ca_cert_pem()
    }

    /// The signing key (PKCS#8 PEM, ``ca-key.pem``). Handle with care.
    #[getter]
    fn ca_key_pem(&self) -> String {
        self.inner.ca_key_pem().to_string()
    }

    /// The chain from the signing certificate to the root (PEM, ``cert-chain.pem``).
    #[getter]
    fn cert_chain_pem(&self) -> String {
        self.inner.cert_chain_pem()
    }

    /// The trust domain the CA issues for (identities of other trust domains are refused).
    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    /// The trust domain's aliases the CA also issues for (from ``mesh`` at loading).
    #[getter]
    fn trust_domain_aliases(&self) -> Vec<PyTrustDomain> {
        self.inner
            .trust_domains()
            .aliases()
            .iter()
            .map(|t| PyTrustDomain { inner: t.clone() })
            .collect()
    }

    /// The signing key's kind, e.g. ``"rsa-2048"`` or ``"ec-p256"``.
    #[getter]
    fn key(&self) -> String {
        self.inner.key_description()
    }

    /// Whether the signing certificate is the self-signed root.
    #[getter]
    fn is_self_signed(&self) -> bool {
        self.inner.is_self_signed()
    }

    /// The signing certificate's NotBefore (an aware UTC ``datetime``).
    #[getter]
    fn not_before(&self) -> SystemTime {
        self.inner.not_before()
    }

    /// The signing certificate's NotAfter (an aware UTC ``datetime``); leaves are clamped to it.
    #[getter]
    fn not_after(&self) -> SystemTime {
        self.inner.not_after()
    }

    /// Issues an X.509-SVID with a fresh key pair, with Istio's workload profile.
    ///
    /// Args:
    ///     identity: the SPIFFE ID (a :class:`SpiffeId` or its text), with a path.
    ///     ttl: the lifetime (a ``timedelta``; default 24 hours, at most 90 days); NotAfter
    ///         is clamped to the CA's.
    ///     key: the leaf's key kind (default ``"ec-p256"``; see :meth:`create`).
    ///     dns_names: extra DNS SANs after the SPIFFE ID.
    ///
    /// Returns:
    ///     An :class:`Svid` (chain leaf first, PKCS#8 key).
    ///
    /// Raises:
    ///     CaError: an ID without a path, a ttl of zero or over 90 days, a bad DNS name, an
    ///         unknown key kind, or an expired CA.
    ///     InvalidArgumentError: a negative or unrepresentable ``ttl``.
    ///     InvalidSpiffeIdError: ``identity`` is not a SPIFFE ID.
    ///
    /// Example::
    ///
    ///     >>> svid = ca.issue("spiffe://cluster.local/ns/shop/sa/web", ttl=timedelta(hours=1))
    #[pyo3(
        signature = (identity, *, ttl = None, key = None, dns_names = Vec::new()),
        text_signature = "(self, /, identity, *, ttl=None, key='ec-p256', dns_names=())"
    )]
    fn issue(
        &self,
        py: Python<'_>,
        identity: SpiffeIdArg,
        ttl: Option<&Bound<'_, PyAny>>,
        key: Option<Text<'_>>,
        dns_names: Vec<Str>,
    ) -> PyResult<PySvid> {
        let params = issue_params(ttl, key, strings(dns_names))?;
        let svid = py
            .detach(|| self.inner.issue(&identity.0, &params))
            .map_err(py_err)?;
        Ok(PySvid { inner: svid })
    }

    /// Issues one SVID per identity, in parallel on ``threads`` threads (default: the
    /// machine's cores), with the GIL released throughout.
    ///
    /// Args:
    ///     identities: SPIFFE IDs (:class:`SpiffeId` or text).
    ///     ttl, key, dns_names: as for :meth:`issue`.
    ///     threads: how many threads (at least 1), or ``None``.
    ///
    /// Returns:
    ///     The SVIDs, in the order of ``identities``.
    ///
    /// Raises:
    ///     CaError: as for :meth:`issue`, for the first identity refused (nothing is returned).
    ///     InvalidArgumentError: ``threads`` out of range, or a bad ``ttl``.
    #[pyo3(
        signature = (identities, *, ttl = None, key = None, dns_names = Vec::new(), threads = None),
        text_signature = "(self, /, identities, *, ttl=None, key='ec-p256', dns_names=(), threads=None)"
    )]
    fn issue_many(
        &self,
        py: Python<'_>,
        identities: Vec<SpiffeIdArg>,
        ttl: Option<&Bound<'_, PyAny>>,
        key: Option<Text<'_>>,
        dns_names: Vec<Str>,
        threads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<PySvid>> {
        let threads: Option<usize> = threads
            .filter(|t| !t.is_none())
            .map(|t| int_arg(t, "threads", "must be between 1 and 2**63"))
            .transpose()?;
        let params = issue_params(ttl, key, strings(dns_names))?;
        let ids: Vec<meshtls::SpiffeId> = identities.into_iter().map(|i| i.0).collect();
        let svids = py
            .detach(|| match threads {
                Some(n) => self.inner.issue_many_on(&ids, &params, n.max(1)),
                None => self.inner.issue_many(&ids, &params),
            })
            .map_err(py_err)?;
        Ok(svids.into_iter().map(|inner| PySvid { inner }).collect())
    }

    /// Signs a PKCS#10 CSR for ``identity``, as istiod does: the CSR's own SANs and subject
    /// are ignored in favour of the authenticated identity; its signature must verify.
    ///
    /// Args:
    ///     csr_pem: the CSR in PEM.
    ///     identity: the SPIFFE ID to certify.
    ///     ttl: the lifetime (default 24 hours, at most 90 days).
    ///
    /// Returns:
    ///     An :class:`IssuedCertificate` (the requester keeps its key).
    ///
    /// Raises:
    ///     CaError: an unreadable CSR, a bad signature, an unsupported key, or a ttl refused.
    ///     InvalidArgumentError: a negative or unrepresentable ``ttl``.
    #[pyo3(signature = (csr_pem, identity, *, ttl = None))]
    fn sign_csr(
        &self,
        py: Python<'_>,
        csr_pem: Text<'_>,
        identity: SpiffeIdArg,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyIssuedCertificate> {
        let ttl = match ttl {
            Some(t) => duration_arg(t, "ttl")?,
            None => meshtls::ca::DEFAULT_WORKLOAD_TTL,
        };
        let issued = py
            .detach(|| self.inner.sign_csr(csr_pem.0, &identity.0, ttl))
            .map_err(py_err)?;
        Ok(PyIssuedCertificate { inner: issued })
    }

    /// A new self-signed root with the same key kind, cross-signed so that SVIDs of the old
    /// root keep verifying while bundles carry both (Istio's root rotation).
    ///
    /// Raises:
    ///     CaError: this CA is not a self-signed root, or a ttl refused.
    #[pyo3(signature = (*, ttl = None))]
    fn rotate_root(&self, py: Python<'_>, ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let ttl = match ttl {
            Some(t) => duration_arg(t, "ttl")?,
            None => meshtls::ca::DEFAULT_ROOT_TTL,
        };
        let ca = py.detach(|| self.inner.rotate_root(ttl)).map_err(py_err)?;
        Ok(PyMeshCa::wrap(ca))
    }

    /// Whether the CA certificate is due for renewal at ``now`` (an aware ``datetime``;
    /// ``None`` for now), by istiod's rule for its self-signed root.
    ///
    /// Raises:
    ///     InvalidArgumentError: a naive ``now``.
    #[pyo3(signature = (now = None))]
    fn needs_rotation(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        Ok(self.inner.needs_rotation(now_arg(now)?))
    }

    /// Istio's ``cacerts`` Secret (plug-in CA) as a dict, ready for the kubernetes client.
    ///
    /// Raises:
    ///     CaError: ``namespace`` is not a valid namespace name.
    #[pyo3(signature = (namespace = Text("istio-system")), text_signature = "(self, /, namespace='istio-system')")]
    fn to_cacerts_secret(&self, py: Python<'_>, namespace: Text<'_>) -> PyResult<Py<PyAny>> {
        let json = self
            .inner
            .to_cacerts_secret(&namespace)
            .and_then(|s| s.to_json());
        to_dict(py, json)
    }

    /// The ``istio-ca-root-cert`` ConfigMap for ``namespace`` as a dict.
    ///
    /// Raises:
    ///     CaError: ``namespace`` is not a valid namespace name.
    fn root_cert_configmap(&self, py: Python<'_>, namespace: Text<'_>) -> PyResult<Py<PyAny>> {
        let json = self
            .inner
            .root_cert_configmap(&namespace)
            .and_then(|c| c.to_json());
        to_dict(py, json)
    }

    fn __repr__(&self) -> String {
        let td = format!("'{}'", self.inner.trust_domain());
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

/// Your own X.509-SVID: the certificate chain (leaf first) and its private key, as issued
/// by :meth:`MeshCa.issue` or read with :meth:`from_pem`. The key is zeroized when the
/// object is freed and never appears in ``repr()``; not picklable.
#[pyclass(frozen, module = "meshtls", name = "Svid")]
pub(crate) struct PySvid {
    pub(crate) inner: meshtls::Svid,
}

#[pymethods]
impl PySvid {
    /// Reads an SVID from PEM: the chain (leaf first) and its private key.
    ///
    /// Raises:
    ///     CaError: unreadable PEM, a key block in the chain, a leaf that is not an SVID, or a
    ///         key that does not match the leaf.
    #[classmethod]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        cert_chain_pem: Text<'_>,
        private_key_pem: Text<'_>,
    ) -> PyResult<Self> {
        let key = zeroize::Zeroizing::new(private_key_pem.0.to_owned());
        let inner = meshtls::Svid::from_pem(&cert_chain_pem, &key).map_err(py_err)?;
        Ok(PySvid { inner })
    }

    /// The SVID's SPIFFE ID.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    /// The chain as PEM text, leaf first.
    #[getter]
    fn cert_chain_pem(&self) -> String {
        self.inner.cert_chain_pem()
    }

    /// The chain as DER ``bytes``, leaf first.
    #[getter]
    fn cert_chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        der_list(py, self.inner.cert_chain_der())
    }

    /// The private key as PKCS#8 PEM.
    #[getter]
    fn private_key_pem(&self) -> String {
        self.inner.private_key_pem().to_string()
    }

    /// The private key as PKCS#8 DER ``bytes``.
    #[getter]
    fn private_key_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut key = self.inner.private_key_der();
        let bytes = PyBytes::new(py, key.secret_der());
        zeroize::Zeroize::zeroize(&mut key);
        bytes
    }

    /// The trust bundle (PEM roots) that came with the SVID; ``""`` if none.
    #[getter]
    fn trust_bundle_pem(&self) -> String {
        self.inner.trust_bundle_pem()
    }

    /// The leaf's NotBefore (an aware UTC ``datetime``).
    #[getter]
    fn not_before(&self) -> SystemTime {
        self.inner.not_before()
    }

    /// The leaf's NotAfter (an aware UTC ``datetime``).
    #[getter]
    fn not_after(&self) -> SystemTime {
        self.inner.not_after()
    }

    /// The leaf's serial number (an ``int``).
    #[getter]
    fn serial_number<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serial_int(py, self.inner.serial())
    }

    /// Whether the SVID is due for renewal at ``now`` by Istio's rule without jitter: once half
    /// its lifetime has passed (also true once expired).
    ///
    /// Raises:
    ///     InvalidArgumentError: a naive ``now``.
    #[pyo3(signature = (now = None))]
    fn should_rotate(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        Ok(self.inner.should_rotate(now_arg(now)?))
    }

    /// When to renew, as istio-agent decides it: at ``not_after - lifetime * ratio``, where
    /// ratio is ``grace_ratio`` plus a random deviation within ``±jitter``. The defaults are
    /// Istio's (``SECRET_GRACE_PERIOD_RATIO`` 0.5, jitter 0.01).
    ///
    /// Raises:
    ///     InvalidArgumentError: a ratio that is not a number between 0 and 1.
    #[pyo3(
        signature = (*, grace_ratio = None, jitter = None),
        text_signature = "(self, /, *, grace_ratio=0.5, jitter=0.01)"
    )]
    fn rotation_time(&self, grace_ratio: Option<f64>, jitter: Option<f64>) -> PyResult<SystemTime> {
        let istio = meshtls::svid::RotationPolicy::default();
        let policy = meshtls::svid::RotationPolicy::new(
            grace_ratio.unwrap_or(istio.grace_ratio),
            jitter.unwrap_or(istio.jitter),
        )
        .map_err(|e| crate::errors::InvalidArgumentError::new_err(e.to_string()))?;
        Ok(self.inner.rotation_time(&policy))
    }

    /// A ``kubernetes.io/tls`` Secret as a dict: ``tls.crt`` the leaf and intermediates,
    /// ``tls.key`` the PKCS#8 key, ``ca.crt`` the trust bundle.
    ///
    /// Raises:
    ///     CaError: ``name`` or ``namespace`` is not a valid Kubernetes name.
    fn to_k8s_secret(
        &self,
        py: Python<'_>,
        name: Text<'_>,
        namespace: Text<'_>,
    ) -> PyResult<Py<PyAny>> {
        let json = self
            .inner
            .to_k8s_secret(&name, &namespace)
            .and_then(|s| s.to_json());
        to_dict(py, json)
    }

    /// Writes ``cert-chain.pem``, ``key.pem`` (0600) and ``root-cert.pem`` to ``directory``
    /// atomically, as istio-agent's output files.
    ///
    /// Raises:
    ///     CaError: a file could not be written.
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

/// A certificate chain signed from a CSR by :meth:`MeshCa.sign_csr` (the requester keeps
/// the key): leaf first, plus the trust bundle. Join it with the key by
/// :meth:`with_private_key`.
#[pyclass(frozen, module = "meshtls", name = "IssuedCertificate")]
pub(crate) struct PyIssuedCertificate {
    inner: meshtls::ca::IssuedCertificate,
}

#[pymethods]
impl PyIssuedCertificate {
    /// The certified SPIFFE ID.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    /// The chain as PEM text, leaf first.
    #[getter]
    fn cert_chain_pem(&self) -> String {
        self.inner.cert_chain_pem()
    }

    /// The chain as DER ``bytes``, leaf first.
    #[getter]
    fn cert_chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        der_list(py, self.inner.cert_chain_der())
    }

    /// The leaf's NotBefore (an aware UTC ``datetime``).
    #[getter]
    fn not_before(&self) -> SystemTime {
        self.inner.not_before()
    }

    /// The leaf's NotAfter (an aware UTC ``datetime``).
    #[getter]
    fn not_after(&self) -> SystemTime {
        self.inner.not_after()
    }

    /// The leaf's serial number (an ``int``).
    #[getter]
    fn serial_number<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serial_int(py, self.inner.serial())
    }

    /// The :class:`Svid` made of this chain and the requester's private key (PEM).
    ///
    /// Raises:
    ///     CaError: the key cannot be read or does not match the leaf.
    fn with_private_key(&self, private_key_pem: Text<'_>) -> PyResult<PySvid> {
        let key = zeroize::Zeroizing::new(private_key_pem.0.to_owned());
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
