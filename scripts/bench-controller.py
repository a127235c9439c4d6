#!/usr/bin/env python3
"""Benchmark of the gateway-certificate controller on the loopback kube-apiserver
(scripts/kube-apiserver.sh), the Rust controller (`meshtls controller run`, release build)
beside the Python loop (meshtls.kube.run with the official client) in the same run:

- reconcile latency: a ConfigMap change (an alias added or removed) until the Secret's
  annotation follows, seen by a watch on the Secret; p50 and p99 over N changes;
- idle: the controller's resident memory (VmRSS) and CPU over an idle window;
- burst: 100 ConfigMap updates back to back; how many times the Secret was written.

    target/test-venv/bin/python scripts/bench-controller.py [--n 50] [--idle 20] [--bin PATH]

Needs the API server built (scripts/kube-apiserver.sh build), the meshtls binary
(cargo build --release -p meshtls-cli) and the meshtls module with its kube extra.
"""

from __future__ import annotations

import argparse
import base64
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

import meshtls
from meshtls.kube import CacertsSource
from meshtls.kube import run as py_run

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "kube-apiserver.sh"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def proc_rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def proc_cpu_s(pid: int) -> float:
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SecretWatch:
    """Records (time, resourceVersion, aliases annotation) of every event on one Secret."""

    def __init__(self, api, ns: str, name: str):
        self.events: list[tuple[float, str, str]] = []
        self.cv = threading.Condition()
        self.stop = threading.Event()
        self.w = k8s_watch.Watch()
        core = k8s.CoreV1Api(api)

        def loop():
            while not self.stop.is_set():
                try:
                    for ev in self.w.stream(
                        core.list_namespaced_secret, ns,
                        field_selector=f"metadata.name={name}", timeout_seconds=60,
                    ):
                        obj = ev["object"]
                        ann = (obj.metadata.annotations or {}).get("meshtls.io/trust-domain-aliases", "")
                        with self.cv:
                            self.events.append((time.monotonic(), obj.metadata.resource_version, ann))
                            self.cv.notify_all()
                except Exception:  # noqa: BLE001 - reconnect
                    time.sleep(0.1)

        self.t = threading.Thread(target=loop, daemon=True)
        self.t.start()

    def wait_for(self, aliases: str, after: float, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, _, a in self.events:
                    if t >= after and a == aliases:
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no secret with aliases {aliases!r}")
                self.cv.wait(left)

    def close(self):
        self.stop.set()
        self.w.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--bin", default=str(pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "meshtls"))
    a = ap.parse_args()
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="meshtls-bench-kube-"))
    subprocess.run([str(SCRIPT), "start", str(run_dir)], check=True, stdout=subprocess.DEVNULL)
    env = dict(line.split("=", 1) for line in (run_dir / "env").read_text().splitlines())
    cfg = k8s.Configuration()
    cfg.host, cfg.ssl_ca_cert = env["KUBE_SERVER"], env["KUBE_CA"]
    cfg.api_key = {"authorization": "Bearer " + env["KUBE_TOKEN"]}
    api = k8s.ApiClient(cfg)
    core = k8s.CoreV1Api(api)
    results = []
    try:
        for impl in ("rust", "python"):
            mesh_ns, gw_ns = f"bench-mesh-{impl}", f"bench-gw-{impl}"
            for ns in (mesh_ns, gw_ns):
                core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
            ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
            d = pathlib.Path(tempfile.mkdtemp())
            ca.save(d)
            data = {k: base64.b64encode((d / k).read_bytes()).decode() for k in ("ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem")}
            shutil.rmtree(d)
            core.create_namespaced_secret(mesh_ns, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="cacerts"), data=data))

            def set_mesh(aliases: str) -> None:
                body = {"data": {"mesh": f"trustDomain: cluster.local\ntrustDomainAliases: [{aliases}]\n"}}
                core.patch_namespaced_config_map("istio", mesh_ns, body)

            core.create_namespaced_config_map(
                mesh_ns, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="istio"), data={"mesh": "trustDomain: cluster.local\n"})
            )
            watcher = SecretWatch(api, gw_ns, "gw-cert")
            stop = threading.Event()
            proc = None
            thread = None
            if impl == "rust":
                proc = subprocess.Popen(
                    [a.bin, "controller", "run", "--kubeconfig", env["KUBECONFIG"],
                     "--secret", f"{gw_ns}/gw-cert", "--identity", f"{gw_ns}/alb-gateway",
                     "--source", f"cacerts:{mesh_ns}/cacerts", "--mesh-namespace", mesh_ns],
                    stderr=subprocess.DEVNULL,
                )
                pid = proc.pid
            else:
                spec = meshtls.SecretSpec("gw-cert", gw_ns, identity_namespace=gw_ns, service_account="alb-gateway", source=f"cacerts:{mesh_ns}/cacerts")
                thread = threading.Thread(target=py_run, args=(api, spec, CacertsSource(mesh_ns, "cacerts")), kwargs={"stop": stop, "mesh_namespace": mesh_ns}, daemon=True)
                thread.start()
                pid = os.getpid()
            watcher.wait_for("", 0, timeout=30)
            time.sleep(1)
            # Latency: alternate an alias on and off.
            lat = []
            for i in range(a.n):
                aliases = "old.example" if i % 2 == 0 else ""
                t0 = time.monotonic()
                set_mesh(aliases)
                lat.append((watcher.wait_for(aliases, t0) - t0) * 1000)
                time.sleep(0.05)
            # Idle.
            time.sleep(2)
            cpu0, t0 = proc_cpu_s(pid), time.monotonic()
            time.sleep(a.idle)
            cpu = (proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0) * 100
            rss = proc_rss_kib(pid)
            # Burst: 100 updates back to back, the last one decides.
            before = len({rv for _, rv, _ in watcher.events})
            t0 = time.monotonic()
            for i in range(100):
                set_mesh(f"burst-{i}.example")
            sent = time.monotonic()
            watcher.wait_for("burst-99.example", t0, timeout=60)
            time.sleep(3)
            writes = len({rv for _, rv, _ in watcher.events}) - before
            results.append({
                "impl": impl, "p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99),
                "idle_rss_mib": rss / 1024, "idle_cpu_pct": cpu,
                "burst_writes": writes, "burst_send_s": sent - t0,
            })
            watcher.close()
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
            stop.set()
    finally:
        subprocess.run([str(SCRIPT), "stop", str(run_dir)], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
    print(f"{'controller':<34} {'p50':>8} {'p99':>8} {'idle RSS':>10} {'idle CPU':>9} {'100 updates':>12}")
    for r in results:
        name = "meshtls controller run (Rust)" if r["impl"] == "rust" else "meshtls.kube.run (Python client)"
        rss_note = "" if r["impl"] == "rust" else " (whole interpreter)"
        print(f"{name:<34} {r['p50_ms']:>6.1f}ms {r['p99_ms']:>6.1f}ms {r['idle_rss_mib']:>7.1f}MiB {r['idle_cpu_pct']:>8.2f}% {r['burst_writes']:>5} writes{rss_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
