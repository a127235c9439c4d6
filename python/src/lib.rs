//! The thin pyo3 layer over meshtls: argument conversion, error mapping, GIL release. No logic
//! lives only here; exceptions are defined in Python (`meshtls/_errors.py`).

use pyo3::prelude::*;

mod args;
mod authz_policy;
#[cfg(feature = "bench")]
mod bench;
mod ca;
mod ca_protocol;
mod controller;
mod document;
mod errors;
mod hbone;
mod identity;
mod jwt;
mod logging;
mod policy;
mod svid;
mod tls;
mod workload_api;
mod workload_client;

#[pymodule(gil_used = false)]
fn _meshtls(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    identity::register(m)?;
    ca::register(m)?;
    ca_protocol::register(m)?;
    controller::register(m)?;
    jwt::register(m)?;
    policy::register(m)?;
    svid::register(m)?;
    authz_policy::register(m)?;
    tls::register(m)?;
    hbone::register(m)?;
    workload_client::register(m)?;
    #[cfg(feature = "bench")]
    bench::register(m)?;
    workload_api::register(m)?;
    logging::install();
    Ok(())
}
