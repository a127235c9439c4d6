//! `_bench_*` and `_handshake_loop`: the core's own cost of what a Python call does, timed in
//! a Rust loop with the GIL released, so that the Python benchmarks
//! (`crates/meshtls-bench/python/bench_*.py`) can print the binding's overhead next to the
//! core's figure measured in the same process and run. Built only with the binding's `bench`
//! feature (the test command and the benchmarks enable it; the default wheel has none of it).

use std::hint::black_box;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::args::Text;
use crate::ca::PyMeshCa;
use crate::document::to_json;
use crate::policy::PyPolicySet;
use crate::svid::{BundlesArg, ChainArg, PySvidVerifier};

fn owned_labels(labels: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    if labels.is_none() {
        return Ok(Vec::new());
    }
    let d = labels.cast::<PyDict>()?;
    d.iter()
        .map(|(k, v)| Ok((k.extract::<String>()?, v.extract::<String>()?)))
        .collect()
}

fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let n = n.max(1);
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64
}

/// Seconds per query of one workload: core `PolicySet::resolve_compact` (what `resolve`
/// calls) or, with `explain`, core `PolicySet::explain` (what `Decision.explanation` builds on
/// access); labels converted once, outside.
#[pyfunction]
#[pyo3(signature = (policies, namespace, labels, port, iterations, *, explain = false))]
fn _bench_resolve(
    py: Python<'_>,
    policies: PyRef<'_, PyPolicySet>,
    namespace: Text<'_>,
    labels: &Bound<'_, PyAny>,
    port: Option<u16>,
    iterations: usize,
    explain: bool,
) -> PyResult<f64> {
    let labels = owned_labels(labels)?;
    let set = &*policies.inner;
    let ns = namespace.0;
    Ok(py.detach(|| {
        per_call(iterations, || {
            if explain {
                drop(black_box(set.explain(
                    black_box(ns),
                    labels.as_slice(),
                    port,
                )));
            } else {
                black_box(set.resolve_compact(black_box(ns), labels.as_slice(), port));
            }
        })
    }))
}

/// Seconds per query of core resolution over a batch of `(namespace, labels, port)` tuples.
#[pyfunction]
fn _bench_resolve_many(
    py: Python<'_>,
    policies: PyRef<'_, PyPolicySet>,
    workloads: &Bound<'_, PyList>,
    iterations: usize,
) -> PyResult<f64> {
    let mut queries = Vec::with_capacity(workloads.len());
    for item in workloads.iter() {
        let t = item.cast::<PyTuple>()?;
        let ns: String = t.get_item(0)?.extract()?;
        let labels = owned_labels(&t.get_item(1)?)?;
        let port: Option<u16> = if t.len() > 2 {
            t.get_item(2)?.extract()?
        } else {
            None
        };
        queries.push((ns, labels, port));
    }
    let set = &*policies.inner;
    let n = queries.len().max(1) as f64;
    Ok(py.detach(|| {
        per_call(iterations, || {
            for (ns, labels, port) in &queries {
                black_box(set.resolve_compact(ns.as_str(), labels.as_slice(), *port));
            }
        }) / n
    }))
}

/// Seconds per core read of `documents` from JSON values (converted once, not timed): the
/// core's reader over `serde_json` trees (`PolicySetBuilder::push_document` of each value, as
/// `PolicySet::from_json_values` does, without timing the drop of the caller's values), then
/// the build. `from_dicts` runs the same reader over the Python objects themselves.
#[pyfunction]
fn _bench_from_values(
    py: Python<'_>,
    documents: &Bound<'_, PyList>,
    iterations: usize,
) -> PyResult<f64> {
    let values = documents
        .iter()
        .map(|d| to_json(&d, "documents"))
        .collect::<PyResult<Vec<_>>>()?;
    let root = meshtls::policy::DEFAULT_ROOT_NAMESPACE;
    Ok(py.detach(|| {
        per_call(iterations, || {
            let mut builder = meshtls::policy::PolicySetBuilder::with_capacity(values.len());
            let read = values.iter().try_for_each(|v| builder.push_document(v));
            drop(black_box((read, builder.build(root))));
        })
    }))
}

/// Seconds per core `PolicySet::new` from the same documents already read into typed
/// `PeerAuthentication`s (the floor under `from_json_values`: indexing only).
#[pyfunction]
fn _bench_from_typed(
    py: Python<'_>,
    documents: &Bound<'_, PyList>,
    iterations: usize,
) -> PyResult<f64> {
    let mut typed = Vec::with_capacity(documents.len());
    for d in documents.iter() {
        let value = to_json(&d, "documents")?;
        typed.push(
            meshtls::policy::PeerAuthentication::from_value(&value)
                .map_err(crate::errors::py_err)?,
        );
    }
    let root = meshtls::policy::DEFAULT_ROOT_NAMESPACE;
    Ok(py.detach(|| {
        per_call(iterations, || {
            drop(black_box(meshtls::PolicySet::new(&typed, root)));
        })
    }))
}

/// Seconds per core `PolicySet::from_yaml` of `text`.
#[pyfunction]
fn _bench_from_yaml(py: Python<'_>, text: Text<'_>, iterations: usize) -> f64 {
    let text = text.0;
    let root = meshtls::policy::DEFAULT_ROOT_NAMESPACE;
    py.detach(|| {
        per_call(iterations, || {
            drop(black_box(meshtls::PolicySet::from_yaml(text, root)));
        })
    })
}

/// Seconds per core `verify_svid` of `chain` against `bundles` (both converted once).
#[pyfunction]
fn _bench_verify_svid(
    py: Python<'_>,
    chain: ChainArg,
    bundles: BundlesArg,
    iterations: usize,
) -> f64 {
    let now = rustls_pki_types::UnixTime::now();
    py.detach(|| {
        per_call(iterations, || {
            drop(black_box(meshtls::svid::verify_svid(
                &chain.0, &bundles.0, now,
            )));
        })
    })
}

/// Seconds per core `SvidVerifier::verify` of `chain` (a cache hit after the first call).
#[pyfunction]
fn _bench_verifier(
    py: Python<'_>,
    verifier: PyRef<'_, PySvidVerifier>,
    chain: ChainArg,
    iterations: usize,
) -> f64 {
    let now = rustls_pki_types::UnixTime::now();
    let v = &*verifier.inner;
    py.detach(|| {
        per_call(iterations, || {
            drop(black_box(v.verify(&chain.0, now)));
        })
    })
}

/// Seconds per core `MeshCa::issue` (a fresh P-256 key, 24 h).
#[pyfunction]
fn _bench_issue(
    py: Python<'_>,
    ca: PyRef<'_, PyMeshCa>,
    identity: Text<'_>,
    iterations: usize,
) -> PyResult<f64> {
    let id = meshtls::SpiffeId::new(&identity).map_err(crate::errors::py_err)?;
    let ca = &*ca.inner;
    let params = meshtls::ca::IssueParams::default();
    Ok(py.detach(|| {
        per_call(iterations, || {
            drop(black_box(ca.issue(&id, &params)));
        })
    }))
}

/// Benchmark support: runs ``n`` complete in-memory handshakes between sessions of ``client``
/// and ``server`` entirely in Rust (the core's figure for ``bench_tls.py``, measured in the
/// same process as the Python-driven loop) and returns the seconds taken, GIL released.
///
/// Raises:
///     TlsConnectionError: a handshake failed (the configs do not accept each other).
#[pyfunction]
fn _handshake_loop(
    py: Python<'_>,
    client: PyRef<'_, crate::tls::PyClientConfig>,
    server: PyRef<'_, crate::tls::PyServerConfig>,
    n: usize,
) -> PyResult<f64> {
    let (client, server) = (&client.inner, &server.inner);
    py.detach(|| -> Result<f64, meshtls::Error> {
        let start = std::time::Instant::now();
        let mut wire = Vec::with_capacity(8192);
        for _ in 0..n {
            let mut c = client.session(None)?;
            let mut s = server.session()?;
            while c.is_handshaking() || s.is_handshaking() {
                wire.clear();
                c.take_outgoing(&mut wire);
                s.receive(&wire)?;
                wire.clear();
                s.take_outgoing(&mut wire);
                c.receive(&wire)?;
            }
        }
        Ok(start.elapsed().as_secs_f64())
    })
    .map_err(crate::tls::connection_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_handshake_loop, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_resolve, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_resolve_many, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_from_values, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_from_typed, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_from_yaml, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_verify_svid, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_verifier, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_issue, m)?)?;
    Ok(())
}
