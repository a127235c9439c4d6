//! `meshtls.hbone`: argument conversion and GIL release around `meshtls::hbone`. A tunnel is
//! handed to Python as one end of a Unix socket pair whose other end a task of the binding's
//! runtime copies to and from the tunnel, so that the blocking and the asyncio streams of
//! `meshtls/hbone.py` are ordinary sockets.

use std::collections::HashMap;
use std::os::fd::IntoRawFd;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use meshtls::hbone::{self, HboneClient, HboneClientConfig};
use pyo3::prelude::*;

use crate::errors::{InvalidArgumentError, MeshTlsError, py_err};
use crate::identity::SpiffeIdArg;
use crate::tls::PyTlsMaterial;

/// The runtime that drives every tunnel opened from Python (two worker threads).
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("meshtls-hbone")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| MeshTlsError::new_err(format!("cannot start the hbone runtime: {e}")))
}

/// The most distinct client settings kept; past it the cache starts over (the dropped
/// clients' connections close when idle, as any others).
const MAX_CLIENTS: usize = 64;

type ClientKey = (Option<u64>, Vec<(String, String)>);

fn clients() -> &'static Mutex<HashMap<ClientKey, HboneClient>> {
    static CLIENTS: OnceLock<Mutex<HashMap<ClientKey, HboneClient>>> = OnceLock::new();
    CLIENTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Clients by settings (timeout, headers): tunnels opened with the same settings share one
/// pool, so repeated `connect` calls reuse connections.
fn client(timeout: Option<f64>, headers: &[(String, String)]) -> PyResult<HboneClient> {
    if let Some(t) = timeout.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(InvalidArgumentError::new_err(format!(
            "timeout {t}: must be a positive number of seconds"
        )));
    }
    let key: ClientKey = (timeout.map(f64::to_bits), headers.to_vec());
    let mut clients = clients()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let mut config = HboneClientConfig::default();
    if let Some(t) = timeout {
        config.connect_timeout = Duration::from_secs_f64(t);
    }
    for (name, value) in headers {
        config = config.with_header(name, value).map_err(py_err)?;
    }
    let client = HboneClient::new(config);
    if clients.len() >= MAX_CLIENTS {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

/// The number of open HBONE connections in the pools behind :mod:`meshtls.hbone` (tunnels to
/// the same server identity and address share one, up to 100 streams each).
#[pyfunction]
fn _hbone_connection_count() -> usize {
    clients()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .map(HboneClient::connection_count)
        .sum()
}

/// Opens an HBONE tunnel (GIL released) and returns the file descriptor of the Python end
/// of a Unix socket pair that the native runtime copies to and from the tunnel; used by
/// :mod:`meshtls.hbone`.
///
/// Raises:
///     HboneError: the tunnel was refused (a subclass says which refusal).
///     InvalidArgumentError: ``via`` or ``target`` is not ``ip:port``.
#[pyfunction]
#[pyo3(signature = (via, target, material, expected, *, timeout = None, headers = Vec::new()))]
fn _hbone_connect(
    py: Python<'_>,
    via: &str,
    target: &str,
    material: PyRef<'_, PyTlsMaterial>,
    expected: SpiffeIdArg,
    timeout: Option<f64>,
    headers: Vec<(String, String)>,
) -> PyResult<i32> {
    let via = hbone::parse_address("address", via).map_err(py_err)?;
    let target = hbone::parse_address("target", target).map_err(py_err)?;
    let client = client(timeout, &headers)?;
    let material = material.inner.clone();
    let rt = runtime()?;
    let opened = py.detach(move || {
        rt.block_on(async move {
            let stream = client
                .connect(via, target, &material, &expected.0)
                .await
                .map_err(py_err)?;
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| MeshTlsError::new_err(format!("cannot make a socket pair: {e}")))?;
            ours.set_nonblocking(true)
                .map_err(|e| MeshTlsError::new_err(format!("socket pair: {e}")))?;
            let ours = tokio::net::UnixStream::from_std(ours)
                .map_err(|e| MeshTlsError::new_err(format!("socket pair: {e}")))?;
            tokio::spawn(async move {
                let mut stream = stream;
                let mut ours = ours;
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut ours).await;
            });
            Ok::<_, PyErr>(theirs)
        })
    })?;
    Ok(opened.into_raw_fd())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_hbone_connect, m)?)?;
    m.add_function(wrap_pyfunction!(_hbone_connection_count, m)?)?;
    Ok(())
}
