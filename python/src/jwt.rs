//! JWT-SVIDs: `JwtSigner`, `JwtSvid`, `validate_jwt_svid`.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use crate::args::{Str, Text, duration_arg, now_arg, strings, to_datetime};
use crate::ca::key_kind;
use crate::errors::{InvalidArgumentError, py_err};
use crate::identity::{PySpiffeId, PyTrustDomain, SpiffeIdArg, TrustDomainArg};

fn shape(name: &str) -> PyResult<meshtls::jwt::JwksShape> {
    match name {
        "spiffe" => Ok(meshtls::jwt::JwksShape::SpiffeBundle),
        "workload-api" => Ok(meshtls::jwt::JwksShape::WorkloadApi),
        other => Err(InvalidArgumentError::new_err(format!(
            "invalid shape {other:?}: use \"spiffe\" or \"workload-api\""
        ))),
    }
}

/// A trust domain's JWT signing key (EC P-256 → ES256, EC P-384 → ES384, RSA → RS256) that
/// mints JWT-SVIDs; its ``kid`` is the key's RFC 7638 thumbprint unless given.
///
/// Example::
///
///     >>> signer = JwtSigner.generate("example.org")
///     >>> token = signer.mint("spiffe://example.org/web", ["billing"])
///     >>> svid = validate_jwt_svid(token, {"example.org": signer.jwks()}, audience=["billing"])
///     >>> str(svid.spiffe_id)
///     'spiffe://example.org/web'
#[pyclass(frozen, module = "meshtls", name = "JwtSigner")]
pub(crate) struct PyJwtSigner {
    pub(crate) inner: meshtls::jwt::JwtSigner,
}

#[pymethods]
impl PyJwtSigner {
    /// A new key of kind ``key`` (``ec-p256``, ``ec-p384``, ``rsa-2048``, ``rsa-3072``,
    /// ``rsa-4096``) for ``trust_domain``.
    ///
    /// Raises:
    ///     CaError: an unknown key kind.
    ///     InvalidSpiffeIdError: a bad trust domain.
    #[classmethod]
    #[pyo3(signature = (trust_domain, *, key = Text("ec-p256")), text_signature = "(trust_domain, *, key='ec-p256')")]
    fn generate(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        trust_domain: TrustDomainArg,
        key: Text<'_>,
    ) -> PyResult<Self> {
        let kind = key_kind(&key)?;
        let inner = py
            .detach(|| meshtls::jwt::JwtSigner::generate(trust_domain.0, kind))
            .map_err(py_err)?;
        Ok(PyJwtSigner { inner })
    }

    /// Reads a private key from PEM (PKCS#8, PKCS#1 or SEC1); ``kid`` defaults to the key's
    /// thumbprint.
    ///
    /// Raises:
    ///     CaError: the PEM holds no usable key.
    #[classmethod]
    #[pyo3(signature = (trust_domain, pem, *, kid = None))]
    fn from_pem(
        _cls: &Bound<'_, PyType>,
        trust_domain: TrustDomainArg,
        pem: Text<'_>,
        kid: Option<Str>,
    ) -> PyResult<Self> {
        let inner = meshtls::jwt::JwtSigner::from_pem(
            trust_domain.0,
            &pem,
            kid.as_ref().map(|k| k.0.as_str()),
        )
        .map_err(py_err)?;
        Ok(PyJwtSigner { inner })
    }

    /// Reads ``<directory>/jwt-key.pem`` (a CA directory) as the key of ``trust_domain``.
    ///
    /// Raises:
    ///     FileError: the file cannot be read.
    ///     CaError: it holds no usable key.
    #[classmethod]
    fn load(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        directory: PathBuf,
        trust_domain: TrustDomainArg,
    ) -> PyResult<Self> {
        let inner = py
            .detach(|| meshtls::jwt::JwtSigner::load(&directory, trust_domain.0))
            .map_err(py_err)?;
        Ok(PyJwtSigner { inner })
    }

    /// Writes the key to ``<directory>/jwt-key.pem`` (mode 0600, atomically).
    ///
    /// Raises:
    ///     FileError: the file cannot be written.
    fn save(&self, py: Python<'_>, directory: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&directory)).map_err(py_err)
    }

    /// The trust domain it signs for.
    #[getter]
    fn trust_domain(&self) -> PyTrustDomain {
        PyTrustDomain {
            inner: self.inner.trust_domain().clone(),
        }
    }

    /// The key id written into every token.
    #[getter]
    fn kid(&self) -> &str {
        self.inner.kid()
    }

    /// The signing algorithm (``ES256``, ``ES384`` or ``RS256``).
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm().name()
    }

    /// The private key, PKCS#8 PEM.
    #[getter]
    fn private_key_pem(&self) -> String {
        self.inner.private_key_pem().to_string()
    }

    /// Mints a JWT-SVID for ``spiffe_id`` (of this trust domain) with ``audiences`` (at least
    /// one), valid for ``ttl`` (a ``timedelta``, default 5 minutes, at most a day). The header
    /// is ``{alg, kid, typ: "JWT"}``; the claims ``sub``, ``aud``, ``exp``, ``iat``.
    ///
    /// Raises:
    ///     JwtError: an empty audience, a subject of another trust domain, a bad ``ttl``.
    #[pyo3(signature = (spiffe_id, audiences, *, ttl = None))]
    fn mint(
        &self,
        py: Python<'_>,
        spiffe_id: SpiffeIdArg,
        audiences: Vec<Str>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let ttl = match ttl {
            Some(t) => duration_arg(t, "ttl")?,
            None => Duration::from_secs(300),
        };
        let audiences = strings(audiences);
        py.detach(|| {
            let refs: Vec<&str> = audiences.iter().map(String::as_str).collect();
            self.inner.mint(&spiffe_id.0, &refs, ttl)
        })
        .map_err(py_err)
    }

    /// The public key as a JWKS: ``shape="spiffe"`` (SPIFFE bundle, ``use: jwt-svid``) or
    /// ``"workload-api"`` (no ``use``).
    ///
    /// Raises:
    ///     InvalidArgumentError: an unknown shape.
    #[pyo3(signature = (*, shape = Text("spiffe")), text_signature = "(self, /, *, shape='spiffe')")]
    fn jwks(&self, shape: Text<'_>) -> PyResult<String> {
        Ok(self.inner.bundle().to_jwks(self::shape(&shape)?))
    }

    fn __repr__(&self) -> String {
        format!(
            "<JwtSigner {} {} kid={}>",
            self.inner.trust_domain(),
            self.inner.algorithm(),
            self.inner.kid()
        )
    }
}

/// A validated JWT-SVID.
#[pyclass(frozen, module = "meshtls", name = "JwtSvid")]
pub(crate) struct PyJwtSvid {
    pub(crate) inner: meshtls::jwt::JwtSvid,
}

#[pymethods]
impl PyJwtSvid {
    /// The subject (a :class:`SpiffeId`).
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    /// The ``aud`` values.
    #[getter]
    fn audience(&self) -> Vec<String> {
        self.inner.audience().to_vec()
    }

    /// ``exp`` as an aware UTC ``datetime``.
    #[getter]
    fn expiry<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(to_datetime(py, self.inner.expiry())?.into_any())
    }

    /// The ``kid`` of the key that verified it.
    #[getter]
    fn kid(&self) -> &str {
        self.inner.kid()
    }

    /// The algorithm (``ES256``, ...).
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm().name()
    }

    /// Every claim, as a ``dict``.
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::Value::Object(self.inner.claims().clone()).to_string();
        py.import("json")?.call_method1("loads", (text,))
    }

    fn __repr__(&self) -> String {
        format!("<JwtSvid {}>", self.inner.spiffe_id())
    }
}

/// Validates a JWT-SVID by meshtls's policy (see the Rust ``meshtls::jwt`` docs): ``alg``
/// allow-list first, ``typ`` JWT/JOSE, no ``crit`` or other extra header, ``kid`` required,
/// the bundle of the ``sub`` trust domain only, ``aud`` any-of (all-of with
/// ``all_audiences=True``), ``exp``/``nbf`` with ``leeway``.
///
/// Args:
///     token: the JWS compact token.
///     bundles: trust domain (or its name) → JWKS JSON text, in SPIFFE bundle or Workload API
///         shape.
///     audience: the expected audiences (at least one, none empty).
///     all_audiences: require every expected audience.
///     leeway: clock leeway (``timedelta``, default 30 s).
///     require_kid: refuse tokens without ``kid`` (default).
///     allow_extra_headers: tolerate header parameters other than alg, kid, typ.
///     now: validation time (aware ``datetime``; default now).
///
/// Raises:
///     JwtError: the rule the token broke, or a bad bundle or audience.
#[pyfunction]
#[pyo3(signature = (token, bundles, *, audience, all_audiences = false, leeway = None, require_kid = true, allow_extra_headers = false, now = None))]
#[allow(clippy::too_many_arguments)]
fn validate_jwt_svid(
    py: Python<'_>,
    token: Text<'_>,
    bundles: &Bound<'_, PyDict>,
    audience: Vec<Str>,
    all_audiences: bool,
    leeway: Option<&Bound<'_, PyAny>>,
    require_kid: bool,
    allow_extra_headers: bool,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyJwtSvid> {
    let mut set = meshtls::jwt::JwtBundleSet::new();
    for (k, v) in bundles.iter() {
        let td: TrustDomainArg = k.extract()?;
        let jwks: Text<'_> = v.extract()?;
        let bundle =
            meshtls::jwt::JwtBundle::from_jwks(td.0, &jwks, meshtls::jwt::JwksShape::WorkloadApi)
                .map_err(py_err)?;
        set.insert(bundle);
    }
    let leeway = match leeway {
        Some(l) => duration_arg(l, "leeway")?,
        None => meshtls::jwt::DEFAULT_LEEWAY,
    };
    let policy = meshtls::jwt::JwtPolicy::new(strings(audience))
        .map_err(py_err)?
        .audience_match(if all_audiences {
            meshtls::jwt::AudienceMatch::AllOf
        } else {
            meshtls::jwt::AudienceMatch::AnyOf
        })
        .leeway(leeway)
        .require_kid(require_kid)
        .allow_extra_headers(allow_extra_headers);
    let now = now_arg(now)?;
    let token = token.0.to_owned();
    let inner = py
        .detach(|| meshtls::jwt::validate_at(&token, &set, &policy, now))
        .map_err(py_err)?;
    Ok(PyJwtSvid { inner })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyJwtSigner>()?;
    m.add_class::<PyJwtSvid>()?;
    m.add_function(wrap_pyfunction!(validate_jwt_svid, m)?)?;
    Ok(())
}
