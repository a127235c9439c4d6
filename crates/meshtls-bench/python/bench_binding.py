"""What a Python call costs next to the core's own work, measured in the same process and run.

Each row times a public meshtls call from Python and the same core operation in a Rust loop
(``meshtls._meshtls._bench_*``, GIL released, arguments converted once outside the loop), and
prints the binding's overhead per call: conversions, object creation, GIL hand-over. Samples
of the two alternate so that load from other processes falls on both alike, and each figure is
the fastest of its samples (the one least disturbed by that load).

The cluster is the core benchmark's shape: 10,000 PeerAuthentications over 1,000 namespaces
(one namespace-wide and nine workload policies each, a mesh-wide policy in istio-system).

    python crates/meshtls-bench/python/bench_binding.py [--samples N] [--target SECONDS] [--json]

(build the module with ``maturin develop --release`` first: a debug build measures nothing.)

The targets (issue 12) are for a quiet machine. On a loaded one every figure, the core's
included, is several times slower, so each target is also shown scaled by how much slower
the core's own reference work ran in this run than on a quiet machine: the core's
``resolve`` of the row's query against the issue's 0.25 µs (per-call rows), and the core's
``PolicySet::new`` from typed policies against 13.5 ms (build rows; crates/meshtls-bench/README.md). The factor
is at least 1, so on a quiet machine the scaled target is the target itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time

import meshtls
from meshtls import _meshtls as core

# Quiet-machine figures of the core's reference work (issue 12 / crates/meshtls-bench/README.md, the same 2-core VM).
QUIET_CORE_RESOLVE = 0.25e-6
QUIET_CORE_BUILD = 13.5e-3

NAMESPACES = 1_000
PER_NAMESPACE = 10
WORKLOAD = "spiffe://cluster.local/ns/shop/sa/web"


def cluster() -> list[dict]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    docs = []
    n = 0
    for i in range(NAMESPACES):
        ns = "istio-system" if i == 0 else f"team-{i:04d}"
        for j in range(PER_NAMESPACE):
            spec: dict = {"mtls": {"mode": ("STRICT", "PERMISSIVE", "DISABLE", "UNSET")[n % 4]}}
            if j > 0 and i > 0:
                spec["selector"] = {"matchLabels": {"app": f"app-{j}", "tier": f"t{j % 3}"}}
                if j % 2:
                    spec["portLevelMtls"] = {"8080": {"mode": "DISABLE"}, "9090": {"mode": "STRICT"}}
            docs.append(
                {
                    "apiVersion": "security.istio.io/v1",
                    "kind": "PeerAuthentication",
                    "metadata": {
                        "name": f"pa-{j}",
                        "namespace": ns,
                        "creationTimestamp": (base + dt.timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "uid": f"00000000-0000-0000-0000-{n:012d}",
                        "resourceVersion": str(1000 + n),
                    },
                    "spec": spec,
                }
            )
            n += 1
    return docs


def calibrate(fn, target: float) -> int:
    n = 1
    fn()  # warm up
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        el = time.perf_counter() - t
        if el >= target / 10:
            return max(1, int(n * target / el))
        n *= 4


def python_per_call(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def row(samples: int, target: float, py_fn, core_fn, per: int = 1) -> tuple[float, float]:
    """Median seconds per item of the Python call and of the core, alternating samples.
    ``core_fn(n)`` returns the core's seconds per call over ``n`` calls; ``per`` divides the
    Python figure (calls that handle several items)."""
    n = calibrate(py_fn, target)
    # core_fn reports per item; one of its iterations handles `per` items.
    core_n = max(1, int(target / max(core_fn(4) * per, 1e-9)))
    py_s, core_s = [], []
    for _ in range(samples):
        py_s.append(python_per_call(py_fn, n) / per)
        core_s.append(core_fn(core_n))
    return min(py_s), min(core_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=7)
    ap.add_argument("--target", type=float, default=0.2, help="seconds per sample")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    S, T = args.samples, args.target
    rows = []

    docs = cluster()
    yaml_text = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    ps = meshtls.PolicySet.from_dicts(docs)
    assert len(ps) == NAMESPACES * PER_NAMESPACE

    ns, labels, port = "team-0420", {"app": "app-3", "tier": "t0", "version": "v2"}, 8080
    d = ps.resolve(ns, labels, port)
    assert d.level == "port" and str(d.mode) == "DISABLE", d
    assert d.explanation[-1].startswith("result: DISABLE"), d.explanation

    py, co = row(S, T, lambda: ps.resolve(ns, labels, port),
                 lambda n: core._bench_resolve(ps, ns, labels, port, n))
    rows.append(("PolicySet.resolve (3 labels, port)", py, co, 1.5e-6))
    py, co = row(S, T, lambda: ps.resolve(ns, labels, port).explanation,
                 lambda n: core._bench_resolve(ps, ns, labels, port, n, explain=True))
    rows.append(("resolve + .explanation (built on access)", py, co, None))

    batch = [(f"team-{i % 999 + 1:04d}", {"app": f"app-{i % 12}", "tier": f"t{i % 3}"}, 8080 + i % 2)
             for i in range(1000)]
    py, co = row(S, T, lambda: ps.resolve_many(batch, explain=False),
                 lambda n: core._bench_resolve_many(ps, batch, n), per=len(batch))
    rows.append(("resolve_many(explain=False), per query", py, co, 1e-6))
    py, co = row(S, T, lambda: ps.resolve_many(batch),
                 lambda n: core._bench_resolve_many(ps, batch, n), per=len(batch))
    rows.append(("resolve_many (explainable), per query", py, co, 1e-6))

    small = max(2, S // 2)
    py, co = row(small, T, lambda: meshtls.PolicySet.from_dicts(docs),
                 lambda n: core._bench_from_values(docs, n))
    rows.append(("PolicySet.from_dicts, 10,000 policies", py, co, 60e-3))
    typed = min(core._bench_from_typed(docs, 2) for _ in range(small))
    rows.append(("(core) PolicySet::new from typed policies", typed, typed, None))
    py, co = row(small, T, lambda: meshtls.PolicySet.from_yaml(yaml_text),
                 lambda n: core._bench_from_yaml(yaml_text, n))
    rows.append(("PolicySet.from_yaml, 10,000 policies (JSON text)", py, co, None))

    ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
    svid = ca.issue(WORKLOAD)
    chain_der = svid.cert_chain_der
    bundles = meshtls.BundleSet.from_pem_map({"cluster.local": ca.root_cert_pem})
    assert str(meshtls.verify_svid(chain_der, bundles)) == WORKLOAD
    py, co = row(S, T, lambda: meshtls.verify_svid(chain_der, bundles),
                 lambda n: core._bench_verify_svid(chain_der, bundles, n))
    rows.append(("verify_svid (DER chain, BundleSet)", py, co, None))
    verifier = meshtls.SvidVerifier(bundles)
    verifier.verify(chain_der)
    py, co = row(S, T, lambda: verifier.verify(chain_der),
                 lambda n: core._bench_verifier(verifier, chain_der, n))
    rows.append(("SvidVerifier.verify (cached)", py, co, None))
    py, co = row(small, T, lambda: ca.issue(WORKLOAD),
                 lambda n: core._bench_issue(ca, WORKLOAD, n))
    rows.append(("MeshCa.issue (P-256 leaf, EC CA)", py, co, None))

    slow_call = max(1.0, rows[0][2] / QUIET_CORE_RESOLVE)
    slow_build = max(1.0, typed / QUIET_CORE_BUILD)

    def scale(name: str) -> float:
        return slow_build if "10,000" in name or "typed" in name else slow_call

    if args.json:
        print(json.dumps({
            "load_average": os.getloadavg()[0],
            "slowdown_per_call": slow_call,
            "slowdown_build": slow_build,
            "rows": [
                {"call": r[0], "python_us": r[1] * 1e6, "core_us": r[2] * 1e6,
                 "overhead_us": (r[1] - r[2]) * 1e6, "target_us": None if r[3] is None else r[3] * 1e6,
                 "scaled_target_us": None if r[3] is None else r[3] * scale(r[0]) * 1e6,
                 "met": None if r[3] is None else r[1] <= r[3],
                 "met_scaled": None if r[3] is None else r[1] <= r[3] * scale(r[0])}
                for r in rows
            ]}, indent=1))
        return
    print(f"meshtls {meshtls.__version__}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, fastest of {S} samples; the core ran {slow_call:.1f}x "
          f"(per call) and {slow_build:.1f}x (building) slower than on a quiet machine\n")

    def fmt(s: float) -> str:
        return f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.2f} µs"

    head = ("call", "Python", "core", "overhead", "Python/core", "target (quiet)", "target scaled to this run")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for name, py, co, target in rows:
        if target is None:
            tgt = scaled = ""
        else:
            k = scale(name)
            tgt = f"≤ {fmt(target)} " + ("ok" if py <= target else "MISS")
            scaled = f"≤ {fmt(target * k)} (×{k:.1f}) " + ("ok" if py <= target * k else "MISS")
        print(f"| {name} | {fmt(py)} | {fmt(co)} | {fmt(py - co)} | {py / co:.2f} | {tgt} | {scaled} |")


if __name__ == "__main__":
    main()
