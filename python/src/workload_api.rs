//! `meshtls.workload_api`: the SPIFFE Workload API server and its test mode, driven from
//! Python (the server runs on a tokio runtime of its own; every blocking call releases the
//! GIL).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use meshtls::workload_api::testing::{InjectedStatus, TestWorkloadApi};
use meshtls::workload_api::{ListenAddress, Registration, ServerOptions, WorkloadApiServer};
use pyo3::prelude::*;
use pyo3::types::PyDelta;

use crate::args::duration_arg;
use crate::ca::PyMeshCa;
use crate::errors::{InvalidArgumentError, MeshTlsError, WorkloadApiError, py_err};
use crate::identity::TrustDomainArg;
use crate::jwt::PyJwtSigner;

fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("meshtls-workload-api")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| MeshTlsError::new_err(format!("cannot start the workload api runtime: {e}")))
}

fn stopped() -> PyErr {
    WorkloadApiError::new_err("the workload api server is stopped")
}

/// The SPIFFE Workload API server (see ``meshtls.workload_api.WorkloadApiServer``).
#[pyclass(frozen, module = "meshtls", name = "WorkloadApiServer")]
pub(crate) struct PyWorkloadApiServer {
    server: Mutex<Option<WorkloadApiServer>>,
    endpoint: String,
}

#[pymethods]
impl PyWorkloadApiServer {
    #[new]
    #[pyo3(signature = (ca, *, socket, registration_file = None, registration_text = None, jwt_signer = None, federated = None, x509_ttl = None, jwt_ttl = None, max_connections = None, max_streams_per_connection = None),
        text_signature = "(ca, *, socket, registration_file=None, registration_text=None, jwt_signer=None, federated=None, x509_ttl=None, jwt_ttl=None, max_connections=None, max_streams_per_connection=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ca: &Bound<'_, PyMeshCa>,
        socket: &str,
        registration_file: Option<PathBuf>,
        registration_text: Option<String>,
        jwt_signer: Option<&Bound<'_, PyJwtSigner>>,
        federated: Option<Vec<(TrustDomainArg, PathBuf)>>,
        x509_ttl: Option<&Bound<'_, PyDelta>>,
        jwt_ttl: Option<&Bound<'_, PyDelta>>,
        max_connections: Option<usize>,
        max_streams_per_connection: Option<u32>,
    ) -> PyResult<Self> {
        let address = ListenAddress::parse(socket).map_err(py_err)?;
        let mut options = ServerOptions::default();
        if let Some(t) = x509_ttl {
            options.x509_ttl = duration_arg(t.as_any(), "x509_ttl")?;
        }
        if let Some(t) = jwt_ttl {
            options.jwt_ttl = duration_arg(t.as_any(), "jwt_ttl")?;
        }
        if let Some(n) = max_connections {
            options.max_connections = n;
        }
        if let Some(n) = max_streams_per_connection {
            options.max_streams_per_connection = n;
        }
        let mut builder = WorkloadApiServer::builder(ca.get().inner.clone()).options(options);
        builder = match (registration_file, registration_text) {
            (Some(path), None) => builder.registration_file(path),
            (None, Some(text)) => {
                let reg = py
                    .detach(|| Registration::from_text(&text))
                    .map_err(py_err)?;
                builder.registration(reg)
            }
            _ => {
                return Err(InvalidArgumentError::new_err(
                    "give exactly one of registration_file and entries",
                ));
            }
        };
        if let Some(s) = jwt_signer {
            let inner = &s.get().inner;
            let copy = meshtls::jwt::JwtSigner::from_pem(
                inner.trust_domain().clone(),
                &inner.private_key_pem(),
                Some(inner.kid()),
            )
            .map_err(py_err)?;
            builder = builder.jwt_signer(copy);
        }
        for (td, path) in federated.unwrap_or_default() {
            builder = builder.federated_bundle_file(td.0, path);
        }
        let rt = runtime()?;
        let server = py
            .detach(move || rt.block_on(builder.serve(&address)))
            .map_err(py_err)?;
        let endpoint = server.endpoint();
        Ok(PyWorkloadApiServer {
            server: Mutex::new(Some(server)),
            endpoint,
        })
    }

    /// The ``SPIFFE_ENDPOINT_SOCKET`` value that reaches this server.
    #[getter]
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Renews every X.509-SVID now; returns once the new ones are published to every open
    /// stream.
    fn rotate(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime()?;
        py.detach(|| {
            let guard = self.server.lock().map_err(|_| stopped())?;
            let server = guard.as_ref().ok_or_else(stopped)?;
            rt.block_on(server.rotate());
            Ok(())
        })
    }

    /// Replaces the registration with entries read from YAML/JSON text.
    fn set_registration_text(&self, py: Python<'_>, text: String) -> PyResult<()> {
        let rt = runtime()?;
        py.detach(|| {
            let reg = Registration::from_text(&text).map_err(py_err)?;
            let guard = self.server.lock().map_err(|_| stopped())?;
            let server = guard.as_ref().ok_or_else(stopped)?;
            rt.block_on(server.set_registration(reg));
            Ok(())
        })
    }

    /// Stops serving: open streams end, the socket file is removed. Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime()?;
        let taken = self.server.lock().map_err(|_| stopped())?.take();
        if let Some(server) = taken {
            py.detach(|| rt.block_on(server.shutdown()));
        }
        Ok(())
    }
}

fn injected(status: &str) -> PyResult<InjectedStatus> {
    match status {
        "unavailable" => Ok(InjectedStatus::Unavailable),
        "permission_denied" => Ok(InjectedStatus::PermissionDenied),
        other => Err(InvalidArgumentError::new_err(format!(
            "invalid status {other:?}: use \"unavailable\" or \"permission_denied\""
        ))),
    }
}

/// The in-process test Workload API (see ``meshtls.workload_api.fake_server``).
#[pyclass(frozen, module = "meshtls", name = "FakeWorkloadApi")]
pub(crate) struct PyTestWorkloadApi {
    api: Mutex<Option<TestWorkloadApi>>,
    endpoint: String,
    root_cert_pem: String,
    jwks: String,
}

impl PyTestWorkloadApi {
    fn with<R>(&self, f: impl FnOnce(&TestWorkloadApi) -> R) -> PyResult<R> {
        let guard = self.api.lock().map_err(|_| stopped())?;
        let api = guard.as_ref().ok_or_else(stopped)?;
        Ok(f(api))
    }
}

#[pymethods]
impl PyTestWorkloadApi {
    #[new]
    #[pyo3(signature = (trust_domain, *, identities, transport = "unix", x509_ttl = None, jwt_ttl = None, rotate_every = None),
        text_signature = "(trust_domain, *, identities, transport='unix', x509_ttl=None, jwt_ttl=None, rotate_every=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        trust_domain: TrustDomainArg,
        identities: Vec<(String, String)>,
        transport: &str,
        x509_ttl: Option<&Bound<'_, PyDelta>>,
        jwt_ttl: Option<&Bound<'_, PyDelta>>,
        rotate_every: Option<&Bound<'_, PyDelta>>,
    ) -> PyResult<Self> {
        let mut b = TestWorkloadApi::builder(trust_domain.0.as_str()).map_err(py_err)?;
        for (id, hint) in &identities {
            b = b.identity(id, hint).map_err(py_err)?;
        }
        match transport {
            "tcp" => b = b.tcp(),
            "unix" => {}
            other => {
                return Err(InvalidArgumentError::new_err(format!(
                    "invalid transport {other:?}: use \"tcp\" or \"unix\""
                )));
            }
        }
        if let Some(t) = x509_ttl {
            b = b.x509_ttl(duration_arg(t.as_any(), "x509_ttl")?);
        }
        if let Some(t) = jwt_ttl {
            b = b.jwt_ttl(duration_arg(t.as_any(), "jwt_ttl")?);
        }
        if let Some(t) = rotate_every {
            b = b.rotate_every(duration_arg(t.as_any(), "rotate_every")?);
        }
        let rt = runtime()?;
        let api = py.detach(|| rt.block_on(b.start())).map_err(py_err)?;
        let endpoint = api.endpoint();
        let root_cert_pem = api.ca().root_cert_pem();
        let jwks = api
            .jwt_signer()
            .bundle()
            .to_jwks(meshtls::jwt::JwksShape::SpiffeBundle);
        Ok(PyTestWorkloadApi {
            api: Mutex::new(Some(api)),
            endpoint,
            root_cert_pem,
            jwks,
        })
    }

    /// The ``SPIFFE_ENDPOINT_SOCKET`` value (``tcp://127.0.0.1:<port>`` or ``unix:///.../agent.sock``).
    #[getter]
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The PEM root of the test CA (the X.509 bundle served).
    #[getter]
    fn root_cert_pem(&self) -> String {
        self.root_cert_pem.clone()
    }

    /// The JWT bundle served, as a SPIFFE bundle JWKS (``use: jwt-svid``).
    #[getter]
    fn jwks(&self) -> String {
        self.jwks.clone()
    }

    /// Rotates every X.509-SVID now; returns once the new ones are published.
    fn rotate(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime()?;
        py.detach(|| self.with(|api| rt.block_on(api.rotate())))
    }

    /// Replaces the identities (``[(spiffe_id, hint), ...]``); ``[]`` withdraws them all.
    fn set_identities(&self, py: Python<'_>, identities: Vec<(String, String)>) -> PyResult<()> {
        let rt = runtime()?;
        py.detach(|| {
            let ids: Vec<(&str, &str)> = identities
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            self.with(|api| rt.block_on(api.set_identities(&ids)))?
                .map_err(py_err)
        })
    }

    /// The next ``calls`` calls fail with ``status`` (``"unavailable"`` or
    /// ``"permission_denied"``); ``calls=None`` fails every call until ``clear_failures()``.
    #[pyo3(signature = (status, *, calls = Some(1)), text_signature = "(self, status, *, calls=1)")]
    fn fail(&self, status: &str, calls: Option<u32>) -> PyResult<()> {
        let s = injected(status)?;
        self.with(|api| match calls {
            Some(n) => api.fail_next(s, n),
            None => api.fail_all(s),
        })
    }

    /// Ends injected failures.
    fn clear_failures(&self) -> PyResult<()> {
        self.with(TestWorkloadApi::clear_failures)
    }

    /// Ends every open stream with ``status``.
    fn interrupt_streams(&self, py: Python<'_>, status: &str) -> PyResult<()> {
        let s = injected(status)?;
        let rt = runtime()?;
        py.detach(|| self.with(|api| rt.block_on(api.interrupt_streams(s))))
    }

    /// Stops the server and removes its directory. Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime()?;
        let taken = self.api.lock().map_err(|_| stopped())?.take();
        if let Some(api) = taken {
            py.detach(|| rt.block_on(api.shutdown()));
        }
        Ok(())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWorkloadApiServer>()?;
    m.add_class::<PyTestWorkloadApi>()?;
    Ok(())
}
