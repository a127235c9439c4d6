//! The rustls path for Python: `TlsMaterial`, client and server configs, and sans-I/O sessions
//! that Python's sockets and asyncio transports drive (`meshtls/tls.py` does the I/O).
//!
//! Everything that decides — verification by the bundle of the peer's trust domain, the
//! authorizer, Istio's versions, ciphers and ALPN, the port's mode — is the core's
//! (`meshtls::tls`); this layer converts arguments and errors and releases the GIL around the
//! cryptography.

use std::sync::{Arc, Mutex, MutexGuard};

use meshtls::authz::Authorizer;
use meshtls::error::PolicyError;
use meshtls::tls::params::{self, MtlsParams};
use meshtls::tls::sniff::ClientHelloInfo;
use meshtls::tls::{
    ClientConfigBuilder, InboundAcceptor, MtlsClientConfig, MtlsServerConfig, MtlsSession, Peer,
    Plaintext, ServerConfigBuilder, Sniffer, Started, TlsMaterial, TlsVersion,
};
use meshtls::{BundleSet, MtlsMode};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::import_exception;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::ca::PySvid;
use crate::errors::{TlsError, py_err, to_py};
use crate::identity::{PyMeshConfig, PySpiffeId, SpiffeIdArg, TrustDomainArg};
use crate::svid::{PyAuthorizer, PyBundleSet};

import_exception!(meshtls._errors, TlsConnectionError);
import_exception!(meshtls._errors, PeerVerificationError);
import_exception!(meshtls._errors, PeerAuthorizationError);

/// An error of a connection (handshake, refusal, I/O) as its Python exception: the verifier's
/// own verdicts keep their type (`PeerAuthorizationError` is an `AuthorizationError`,
/// `PeerVerificationError` an `SvidError`), everything else is a `TlsConnectionError`; all three
/// are `TlsError`s and `ConnectionError`s.
pub(crate) fn connection_err(err: meshtls::Error) -> PyErr {
    let msg = err.to_string();
    match err {
        meshtls::Error::Authz(_) => PeerAuthorizationError::new_err(msg),
        meshtls::Error::Svid(_) => PeerVerificationError::new_err(msg),
        meshtls::Error::Tls(_) => TlsConnectionError::new_err(msg),
        other => to_py(other),
    }
}

// ---- arguments ------------------------------------------------------------------------------

/// A `BundleSet`, or anything `BundleSet.from_pem_map` reads (a dict of trust domain to PEM).
fn bundle_set(ob: &Bound<'_, PyAny>) -> PyResult<BundleSet> {
    if let Ok(set) = ob.cast::<PyBundleSet>() {
        return Ok((*set.get().inner).clone());
    }
    let set = ob
        .py()
        .get_type::<PyBundleSet>()
        .call_method1("from_pem_map", (ob,))?;
    let set = set.cast::<PyBundleSet>()?;
    Ok((*set.get().inner).clone())
}

/// An `Authorizer` or a callable `fn(SpiffeId) -> bool` (through `Authorizer.from_callable`).
fn authorizer(ob: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Authorizer>> {
    if let Ok(a) = ob.cast::<PyAuthorizer>() {
        return Ok(Arc::clone(&a.get().inner));
    }
    if !ob.is_callable() {
        return Err(PyTypeError::new_err(
            "authorizer must be a meshtls.Authorizer or a callable taking a SpiffeId and returning a bool",
        ));
    }
    let a = ob
        .py()
        .get_type::<PyAuthorizer>()
        .call_method1("from_callable", (ob,))?;
    Ok(Arc::clone(&a.cast::<PyAuthorizer>()?.get().inner))
}

fn version(text: &str) -> PyResult<TlsVersion> {
    match text {
        "1.2" | "TLSv1.2" => Ok(TlsVersion::Tls12),
        "1.3" | "TLSv1.3" => Ok(TlsVersion::Tls13),
        other => Err(TlsError::new_err(format!(
            "unknown TLS version '{other}': expected '1.2' or '1.3'"
        ))),
    }
}

fn alpn_list(alpn: &[String]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.as_bytes().to_vec()).collect()
}

fn text_tuple<'py>(py: Python<'py>, items: &[&[u8]]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        items
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    )
}

// ---- TlsMaterial ----------------------------------------------------------------------------

/// The workload's own SVID and the trust bundles peers are verified with, shared by every
/// config built from it and replaceable in place.
///
/// ``set_svid`` (certificate rotation) and ``set_bundles`` (bundle updates) on a material are
/// seen by the next handshake of every ``ClientConfig``/``ServerConfig``/``Listener`` built
/// from it; established connections keep what they negotiated. Peer chains that verified are
/// cached until they expire or their trust domain's roots change.
///
/// Args:
///     svid: the own :class:`~meshtls.Svid` (certificate chain and private key).
///     bundles: a :class:`~meshtls.BundleSet` or a dict of trust domain to PEM roots.
///
/// Raises:
///     TlsError: the leaf carries no single SPIFFE ID or does not match the key.
///
/// Example::
///
///     material = meshtls.tls.TlsMaterial(ca.issue(GATEWAY_ID), bundles)
///     material.set_svid(ca.issue(GATEWAY_ID))   # rotation: the next handshake presents it
#[pyclass(frozen, module = "meshtls.tls", name = "TlsMaterial")]
pub(crate) struct PyTlsMaterial {
    pub(crate) inner: TlsMaterial,
}

#[pymethods]
impl PyTlsMaterial {
    #[new]
    fn new(svid: PyRef<'_, PySvid>, bundles: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bundles = bundle_set(bundles)?;
        let inner = TlsMaterial::new(&svid.inner, bundles).map_err(py_err)?;
        Ok(PyTlsMaterial { inner })
    }

    /// Replaces the own certificate and key with a renewed ``Svid``; the next handshake
    /// presents it. Raises ``TlsError`` when the SVID is unusable (the old one stays).
    fn set_svid(&self, svid: PyRef<'_, PySvid>) -> PyResult<()> {
        self.inner.set_svid(&svid.inner).map_err(py_err)
    }

    /// Replaces the trust bundles (a ``BundleSet`` or a dict of trust domain to PEM); the
    /// next peer verification uses them.
    fn set_bundles(&self, bundles: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_bundles(bundle_set(bundles)?);
        Ok(())
    }

    /// The SPIFFE ID of the current own certificate.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id(),
        }
    }

    /// The current trust bundles.
    #[getter]
    fn bundles(&self) -> PyBundleSet {
        PyBundleSet {
            inner: self.inner.bundles(),
        }
    }

    /// The current own certificate chain, leaf first, as DER ``bytes``.
    #[getter]
    fn cert_chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .cert_chain()
            .iter()
            .map(|c| PyBytes::new(py, c.as_ref()))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("<TlsMaterial spiffe_id='{}'>", self.inner.spiffe_id())
    }
}

pub(crate) fn material_of(ob: &Bound<'_, PyAny>) -> PyResult<TlsMaterial> {
    ob.cast::<PyTlsMaterial>()
        .map(|m| m.get().inner.clone())
        .map_err(|_| PyTypeError::new_err("material must be a meshtls.tls.TlsMaterial"))
}

// ---- configs --------------------------------------------------------------------------------

/// The gateway side of mesh mTLS (rustls): presents the material's SVID, verifies the server's
/// chain against the bundle of its own trust domain and requires its SPIFFE ID to be one of
/// ``expected`` (expanded with ``trust_domain_aliases``) and/or accepted by ``authorizer``,
/// inside the handshake. The server name is never used for verification.
///
/// The building block of :class:`meshtls.tls.ClientConfig`, which adds the I/O; every argument
/// is given there with its default.
///
/// Raises:
///     TlsError: neither ``expected`` nor ``authorizer`` given, an empty or unknown version
///         range, an invalid ALPN value.
#[pyclass(frozen, module = "meshtls.tls", name = "NativeClientConfig")]
pub(crate) struct PyClientConfig {
    pub(crate) inner: MtlsClientConfig,
}

#[pymethods]
impl PyClientConfig {
    #[new]
    #[pyo3(signature = (material, *, expected, trust_domain_aliases, authorizer, alpn, min_version, max_version))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        material: &Bound<'_, PyAny>,
        expected: Vec<SpiffeIdArg>,
        trust_domain_aliases: Vec<TrustDomainArg>,
        authorizer: Option<&Bound<'_, PyAny>>,
        alpn: Vec<String>,
        min_version: Option<&str>,
        max_version: Option<&str>,
    ) -> PyResult<Self> {
        let mut builder = ClientConfigBuilder::new(material_of(material)?)
            .expect_server_ids(expected.into_iter().map(|i| i.0))
            .trust_domain_aliases(trust_domain_aliases.into_iter().map(|t| t.0))
            .alpn_protocols(alpn_list(&alpn));
        // Left out, a bound stays Istio's (the core's `MtlsParams::istio_default`, up to 1.3).
        if min_version.is_some() || max_version.is_some() {
            let min = match min_version {
                Some(v) => version(v)?,
                None => MtlsParams::istio_default().min_version(),
            };
            let max = match max_version {
                Some(v) => version(v)?,
                None => TlsVersion::Tls13,
            };
            builder = builder.versions(min, max).map_err(py_err)?;
        }
        if let Some(a) = authorizer {
            builder = builder.authorizer(self::authorizer(a)?);
        }
        Ok(PyClientConfig {
            inner: builder.build().map_err(py_err)?,
        })
    }

    /// A new sans-I/O client session; ``server_name`` goes into SNI only (a DNS name, or
    /// ``None`` for no SNI).
    #[pyo3(signature = (server_name = None))]
    fn session(&self, server_name: Option<&str>) -> PyResult<PyTlsSession> {
        let session = self.inner.session(server_name).map_err(py_err)?;
        Ok(PyTlsSession::wrap(session))
    }

    /// Replaces the authorizer for the next handshakes (the expected IDs stay in force).
    fn set_authorizer(&self, authorizer: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_authorizer(self::authorizer(authorizer)?);
        Ok(())
    }

    /// The expected server IDs after alias expansion (empty when only an authorizer decides).
    #[getter]
    fn expected(&self) -> Vec<PySpiffeId> {
        self.inner
            .expected_server_ids()
            .iter()
            .map(|i| PySpiffeId { inner: i.clone() })
            .collect()
    }

    /// The material presented and verified with (shared: rotating it affects this config).
    #[getter]
    fn material(&self) -> PyTlsMaterial {
        PyTlsMaterial {
            inner: self.inner.material().clone(),
        }
    }
}

/// The sidecar side of mesh mTLS (rustls): requires a client certificate, verifies it against
/// the bundle of its own trust domain, which must be one of ``trust_domains`` (default: the
/// mesh's, or the own SVID's), then asks ``authorizer``, all inside the handshake.
///
/// The building block of :class:`meshtls.tls.ServerConfig`; every argument is given there with
/// its default.
///
/// Raises:
///     TlsError: an empty or unknown version range, an invalid ALPN value, a mesh cipher list
///         without a usable TLS 1.2 suite.
#[pyclass(frozen, module = "meshtls.tls", name = "NativeServerConfig")]
pub(crate) struct PyServerConfig {
    pub(crate) inner: MtlsServerConfig,
}

#[pymethods]
impl PyServerConfig {
    #[new]
    #[pyo3(signature = (material, *, trust_domains, authorizer, alpn, min_version, max_version, mesh))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        material: &Bound<'_, PyAny>,
        trust_domains: Option<Vec<TrustDomainArg>>,
        authorizer: Option<&Bound<'_, PyAny>>,
        alpn: Vec<String>,
        min_version: Option<&str>,
        max_version: Option<&str>,
        mesh: Option<PyRef<'_, PyMeshConfig>>,
    ) -> PyResult<Self> {
        let material = material_of(material)?;
        let (mut builder, base) = match &mesh {
            Some(m) => (
                ServerConfigBuilder::from_mesh(material, &m.inner).map_err(py_err)?,
                MtlsParams::from_mesh(&m.inner).map_err(py_err)?,
            ),
            None => (
                ServerConfigBuilder::new(material),
                MtlsParams::istio_default(),
            ),
        };
        if let Some(min) = min_version {
            builder = builder.params(base.with_min_version(version(min)?).map_err(py_err)?);
        }
        if let Some(max) = max_version {
            builder = builder.max_version(version(max)?);
        }
        builder = builder.alpn_protocols(alpn_list(&alpn));
        if let Some(tds) = trust_domains {
            builder = builder.trust_domains(tds.into_iter().map(|t| t.0));
        }
        if let Some(a) = authorizer {
            builder = builder.authorizer(self::authorizer(a)?);
        }
        Ok(PyServerConfig {
            inner: builder.build().map_err(py_err)?,
        })
    }

    /// A new sans-I/O server session (no mode, no sniffing: the connection is mTLS).
    fn session(&self) -> PyResult<PyTlsSession> {
        Ok(PyTlsSession::wrap(self.inner.session().map_err(py_err)?))
    }

    /// Replaces the authorizer for the next handshakes.
    fn set_authorizer(&self, authorizer: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.set_authorizer(self::authorizer(authorizer)?);
        Ok(())
    }

    /// The material presented and verified with (shared: rotating it affects this config).
    #[getter]
    fn material(&self) -> PyTlsMaterial {
        PyTlsMaterial {
            inner: self.inner.material().clone(),
        }
    }

    /// An acceptor applying ``mode`` (``"STRICT"``, ``"PERMISSIVE"``, ``"DISABLE"``; ``"UNSET"``
    /// is PERMISSIVE) to inbound connections, as an Istio sidecar's listener does.
    fn acceptor(&self, mode: &str) -> PyResult<PyInboundAcceptor> {
        let mode =
            MtlsMode::parse(mode).ok_or_else(|| py_err(PolicyError::Mode(mode.to_owned())))?;
        Ok(PyInboundAcceptor {
            inner: InboundAcceptor::new(self.inner.clone(), mode),
        })
    }
}

// ---- peers and hellos -----------------------------------------------------------------------

/// The peer of an established connection, verified and authorized in the handshake.
#[pyclass(frozen, module = "meshtls.tls", name = "Peer")]
pub(crate) struct PyPeer {
    inner: Peer,
}

#[pymethods]
impl PyPeer {
    /// The peer's SPIFFE ID.
    #[getter]
    fn spiffe_id(&self) -> PySpiffeId {
        PySpiffeId {
            inner: self.inner.spiffe_id().clone(),
        }
    }

    /// The negotiated protocol version: ``"TLSv1.2"`` or ``"TLSv1.3"``.
    #[getter]
    fn version(&self) -> Option<&'static str> {
        self.inner.protocol_version().map(TlsVersion::as_str)
    }

    /// The negotiated cipher suite's IANA name (e.g. ``"TLS13_AES_128_GCM_SHA256"``).
    #[getter]
    fn cipher(&self) -> Option<&str> {
        self.inner.cipher_suite()
    }

    /// The negotiated ALPN protocol, or ``None``.
    #[getter]
    fn alpn(&self) -> Option<String> {
        self.inner
            .alpn()
            .map(|a| String::from_utf8_lossy(a).into_owned())
    }

    /// The peer's leaf certificate (DER).
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.certificate().as_ref())
    }

    /// True when the session was resumed (and the identity checked again).
    #[getter]
    fn resumed(&self) -> bool {
        self.inner.resumed()
    }

    /// An Envoy-style ``X-Forwarded-Client-Cert`` element: ``By=<local>;Hash=<sha256>;URI=<peer>``.
    fn xfcc(&self, local: SpiffeIdArg) -> String {
        self.inner.xfcc(&local.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Peer {} {} {} alpn={}>",
            self.inner.spiffe_id(),
            self.inner
                .protocol_version()
                .map_or("?", TlsVersion::as_str),
            self.inner.cipher_suite().unwrap_or("?"),
            self.inner.alpn().map_or_else(
                || "None".to_owned(),
                |a| String::from_utf8_lossy(a).into_owned()
            )
        )
    }
}

/// What a TLS ClientHello offered (SNI, ALPN, versions), as the inbound side saw it.
#[pyclass(frozen, module = "meshtls.tls", name = "ClientHello")]
pub(crate) struct PyClientHello {
    inner: ClientHelloInfo,
}

#[pymethods]
impl PyClientHello {
    /// The ``server_name`` extension's host name, or ``None``.
    #[getter]
    fn server_name(&self) -> Option<&str> {
        self.inner.server_name.as_deref()
    }

    /// The ALPN protocols offered, in the client's order.
    #[getter]
    fn alpn(&self) -> Vec<String> {
        self.inner.alpn_strings()
    }

    /// True when the client offers TLS 1.3.
    #[getter]
    fn offers_tls13(&self) -> bool {
        self.inner.offers_tls13()
    }

    fn __repr__(&self) -> String {
        format!(
            "<ClientHello server_name={:?} alpn={:?}>",
            self.inner.server_name,
            self.inner.alpn_strings()
        )
    }
}

// ---- sessions -------------------------------------------------------------------------------

/// A sans-I/O mesh mTLS connection: feed it what the network delivered, send what it hands
/// out, read and write application data once the handshake is over. Application data is
/// refused until the peer has been verified and authorized.
///
/// :class:`meshtls.tls.TlsSocket` and :func:`meshtls.tls.open_connection` drive it; use it
/// directly for other event loops.
#[pyclass(frozen, module = "meshtls.tls", name = "TlsSession")]
pub(crate) struct PyTlsSession {
    inner: Mutex<MtlsSession>,
}

impl PyTlsSession {
    fn wrap(session: MtlsSession) -> Self {
        PyTlsSession {
            inner: Mutex::new(session),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MtlsSession> {
        // No code panics while holding the lock; a poisoned session is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PyTlsSession {
    /// Feeds bytes received from the network (the handshake runs here, without the GIL).
    ///
    /// Raises:
    ///     PeerAuthorizationError: the peer's SPIFFE ID was refused.
    ///     PeerVerificationError: the peer's chain does not verify against its trust domain's
    ///         bundle.
    ///     TlsConnectionError: any other handshake or protocol failure. After an error, send
    ///         ``take_outgoing()`` (the alert) and close the transport.
    fn receive(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        py.detach(|| self.lock().receive(data))
            .map_err(connection_err)
    }

    /// Tells the session that the transport reached end of file. Raises
    /// ``TlsConnectionError`` when that happens during the handshake.
    fn receive_eof(&self) -> PyResult<()> {
        self.lock().receive_eof().map_err(connection_err)
    }

    /// The bytes to send to the network now (may be empty).
    fn take_outgoing<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut out = Vec::new();
        self.lock().take_outgoing(&mut out);
        PyBytes::new(py, &out)
    }

    /// Up to ``max`` bytes of received application data; ``b""`` when the peer closed the
    /// connection, ``None`` when nothing is buffered yet (receive more first).
    #[pyo3(signature = (max = 65536))]
    fn read<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut session = self.lock();
        let n = session.buffered().min(max);
        if n > 0 {
            return PyBytes::new_with(py, n, |buf| {
                session.read(buf);
                Ok(())
            })
            .map(Some);
        }
        Ok(match session.read(&mut []) {
            Plaintext::Closed { .. } => Some(PyBytes::new(py, b"")),
            _ => None,
        })
    }

    /// Encrypts application data for sending (then send ``take_outgoing()``). Raises
    /// ``TlsConnectionError`` before the handshake has completed.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        py.detach(|| self.lock().write(data))
            .map_err(connection_err)
    }

    /// Queues a TLS ``close_notify`` (send it with ``take_outgoing()``).
    fn close(&self) {
        self.lock().close();
    }

    /// True until the handshake has completed and the peer has been accepted.
    #[getter]
    fn is_handshaking(&self) -> bool {
        self.lock().is_handshaking()
    }

    /// True for the client side.
    #[getter]
    fn is_client(&self) -> bool {
        self.lock().is_client()
    }

    /// The verified and authorized peer once the handshake has completed, else ``None``.
    #[getter]
    fn peer(&self) -> Option<PyPeer> {
        self.lock().peer().map(|p| PyPeer { inner: p.clone() })
    }

    fn __repr__(&self) -> String {
        format!("<TlsSession {:?}>", *self.lock())
    }
}

/// Applies a port's mTLS mode to inbound connections (see :class:`meshtls.tls.Listener`).
#[pyclass(frozen, module = "meshtls.tls", name = "InboundAcceptor")]
pub(crate) struct PyInboundAcceptor {
    inner: InboundAcceptor,
}

#[pymethods]
impl PyInboundAcceptor {
    /// The mode applied: ``"STRICT"``, ``"PERMISSIVE"`` or ``"DISABLE"`` (never ``"UNSET"``).
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode().as_str()
    }

    /// A sniffer for one new connection.
    fn sniffer(&self) -> PySniffer {
        PySniffer {
            inner: Mutex::new(self.inner.sniffer()),
        }
    }

    fn __repr__(&self) -> String {
        format!("<InboundAcceptor {}>", self.inner.mode())
    }
}

/// Decides from the first bytes of one inbound connection where it goes.
///
/// ``verdict()`` and ``receive(data)`` return ``None`` ("receive more"), or a tuple
/// ``(kind, session, first_bytes, hello)``: ``("mtls", TlsSession, bytes, None)`` — feed
/// ``first_bytes`` into the session, then complete the handshake — or
/// ``("plaintext", None, bytes, ClientHello | None)`` — replay ``first_bytes`` to the
/// application. A refusal raises ``TlsConnectionError`` ("connection refused under STRICT: ...").
#[pyclass(frozen, module = "meshtls.tls", name = "Sniffer")]
pub(crate) struct PySniffer {
    inner: Mutex<Sniffer>,
}

type Verdict<'py> = Option<(
    &'static str,
    Option<PyTlsSession>,
    Bound<'py, PyBytes>,
    Option<PyClientHello>,
)>;

fn verdict<'py>(py: Python<'py>, started: Option<Started>) -> PyResult<Verdict<'py>> {
    Ok(match started {
        None => None,
        Some(Started::Mtls {
            session,
            first_bytes,
        }) => Some((
            "mtls",
            Some(PyTlsSession::wrap(*session)),
            PyBytes::new(py, &first_bytes),
            None,
        )),
        Some(Started::Plaintext { first_bytes, tls }) => Some((
            "plaintext",
            None,
            PyBytes::new(py, &first_bytes),
            tls.map(|inner| PyClientHello { inner }),
        )),
        Some(_) => {
            return Err(PyValueError::new_err(
                "the core returned a route this binding does not know",
            ));
        }
    })
}

impl PySniffer {
    fn lock(&self) -> MutexGuard<'_, Sniffer> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PySniffer {
    /// The verdict on the bytes seen so far (DISABLE decides before any byte arrives).
    fn verdict<'py>(&self, py: Python<'py>) -> PyResult<Verdict<'py>> {
        let started = self.lock().verdict().map_err(connection_err)?;
        verdict(py, started)
    }

    /// Adds received bytes (``b""``: the peer closed, an error) and returns the verdict.
    fn receive<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Verdict<'py>> {
        let started = self.lock().receive(data).map_err(connection_err)?;
        verdict(py, started)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyTlsMaterial>()?;
    m.add_class::<PyClientConfig>()?;
    m.add_class::<PyServerConfig>()?;
    m.add_class::<PyPeer>()?;
    m.add_class::<PyClientHello>()?;
    m.add_class::<PyTlsSession>()?;
    m.add_class::<PyInboundAcceptor>()?;
    m.add_class::<PySniffer>()?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    m.add("ALPN_ISTIO", text(params::ALPN_ISTIO))?;
    m.add(
        "ALPN_ISTIO_PEER_EXCHANGE",
        text(params::ALPN_ISTIO_PEER_EXCHANGE),
    )?;
    m.add("ALPN_ISTIO_HTTP10", text(params::ALPN_ISTIO_HTTP10))?;
    m.add("ALPN_ISTIO_HTTP11", text(params::ALPN_ISTIO_HTTP11))?;
    m.add("ALPN_ISTIO_H2", text(params::ALPN_ISTIO_H2))?;
    m.add("ALPN_H2", text(params::ALPN_H2))?;
    m.add("ALPN_HTTP11", text(params::ALPN_HTTP11))?;
    m.add(
        "PERMISSIVE_MTLS_ALPN",
        text_tuple(py, params::PERMISSIVE_MTLS_ALPN)?,
    )?;
    m.add("MTLS_HTTP_ALPN", text_tuple(py, params::MTLS_HTTP_ALPN)?)?;
    m.add(
        "SIDECAR_TCP_ALPN",
        text_tuple(py, params::SIDECAR_TCP_ALPN)?,
    )?;
    m.add(
        "SIDECAR_HTTP_ALPN",
        text_tuple(py, params::SIDECAR_HTTP_ALPN)?,
    )?;
    m.add(
        "SIDECAR_CLIENT_TCP_ALPN",
        text_tuple(py, params::SIDECAR_CLIENT_TCP_ALPN)?,
    )?;
    m.add(
        "GATEWAY_HTTP11_ALPN",
        text_tuple(py, params::GATEWAY_HTTP11_ALPN)?,
    )?;
    m.add(
        "ISTIO_TLS12_CIPHERS",
        PyTuple::new(py, params::ISTIO_TLS12_CIPHERS.iter().copied())?,
    )?;
    Ok(())
}
