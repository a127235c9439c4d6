"""Mesh mTLS handshakes from Python: the rustls path driven by Python against the same handshakes
run by the core alone, and against Python's ssl (OpenSSL) path, in the same process.

Rows, per TLS version, median per handshake (client and server, ECDSA P-256 leaves, no session
resumption, Istio's parameters on both paths):

- ``core``: ``_meshtls._handshake_loop`` — the core's sans-I/O sessions exchanging bytes in
  memory, entirely in Rust (the binding's floor);
- ``python sans-io``: the same sessions (``TlsSession``) with Python moving the bytes, as
  ``meshtls.tls.connect`` and ``Listener`` do: the binding's overhead is the difference;
- ``ssl + check_peer``: Python's ssl over ``MemoryBIO`` with ``meshtls.tls.client_context`` /
  ``server_context``, then ``check_peer`` on both sides (the ssl path's SPIFFE check);
- ``loopback``: ``meshtls.tls.connect`` to a ``Listener`` thread vs ``ssl`` sockets on both ends
  (+ ``check_peer``), handshake plus one 4-byte round trip.

The variants alternate sample by sample so that load from other processes falls on all alike.

    python crates/meshtls-bench/python/bench_tls.py [--samples N] [--batch N] [--json]
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import statistics
import threading
import time
from typing import Any, Callable

import meshtls
import meshtls._meshtls as native
import meshtls.tls as mtls

SIDECAR = "spiffe://cluster.local/ns/demo/sa/api"
GATEWAY = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller"


def python_loop(client: mtls.ClientConfig, server: mtls.ServerConfig, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        c = client.session()
        s = server.session()
        while c.is_handshaking or s.is_handshaking:
            s.receive(c.take_outgoing())
            c.receive(s.take_outgoing())
    return time.perf_counter() - start


def ssl_loop(cctx: ssl.SSLContext, sctx: ssl.SSLContext, bundles: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        cin, cout, sin, sout = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        c = cctx.wrap_bio(cin, cout)
        s = sctx.wrap_bio(sin, sout, server_side=True)
        c_done = s_done = False
        while not (c_done and s_done):
            if not c_done:
                try:
                    c.do_handshake()
                    c_done = True
                except ssl.SSLWantReadError:
                    pass
            sin.write(cout.read())
            if not s_done:
                try:
                    s.do_handshake()
                    s_done = True
                except ssl.SSLWantReadError:
                    pass
            cin.write(sout.read())
        mtls.check_peer(c, bundles, expected=[SIDECAR], close=False)  # type: ignore[arg-type]
        mtls.check_peer(s, bundles, trust_domains=["cluster.local"], close=False)  # type: ignore[arg-type]
    return time.perf_counter() - start


class LoopbackServers:
    """A meshtls Listener and an ssl server, each answering ``pong`` to every connection."""

    def __init__(self, sidecar: meshtls.Svid, bundles: Any, version: str) -> None:
        self.listener = mtls.serve(("127.0.0.1", 0), sidecar, bundles, min_version=version, max_version=version)
        sctx = mtls.server_context(sidecar, bundles, min_version=version, max_version=version)
        self.plain = socket.create_server(("127.0.0.1", 0))
        self.stop = False

        def meshtls_server() -> None:
            while not self.stop:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(16)
                    conn.sendall(b"pong")

        def ssl_server() -> None:
            while not self.stop:
                try:
                    raw, _ = self.plain.accept()
                except OSError:
                    return
                with sctx.wrap_socket(raw, server_side=True) as tls:
                    mtls.check_peer(tls, bundles, trust_domains=["cluster.local"])
                    tls.recv(16)
                    tls.sendall(b"pong")

        for fn in (meshtls_server, ssl_server):
            threading.Thread(target=fn, daemon=True).start()

    def close(self) -> None:
        self.stop = True
        self.listener.close()
        self.plain.close()


def loop_meshtls(config: mtls.ClientConfig, address: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        with config.connect(address) as conn:
            conn.sendall(b"ping")
            conn.recv(16)
    return time.perf_counter() - start


def loop_ssl(cctx: ssl.SSLContext, bundles: Any, address: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        with cctx.wrap_socket(socket.create_connection(address)) as tls:
            mtls.check_peer(tls, bundles, expected=[SIDECAR])
            tls.sendall(b"ping")
            tls.recv(16)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--batch", type=int, default=20, help="handshakes per sample")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
    bundles = meshtls.BundleSet.from_pem_map({"cluster.local": ca.root_cert_pem})
    sidecar, gateway = ca.issue(SIDECAR), ca.issue(GATEWAY)
    rows = []
    for version in ("1.2", "1.3"):
        client = mtls.ClientConfig(gateway, bundles, expected=SIDECAR, min_version=version, max_version=version)
        server = mtls.ServerConfig(sidecar, bundles)
        cctx = mtls.client_context(gateway, bundles, min_version=version, max_version=version)
        sctx = mtls.server_context(sidecar, bundles, min_version=version, max_version=version)
        servers = LoopbackServers(sidecar, bundles, version)
        variants: dict[str, Callable[[int], float]] = {
            "core": lambda n: native._handshake_loop(client._native, server._native, n),
            "python sans-io": lambda n: python_loop(client, server, n),
            "ssl + check_peer": lambda n: ssl_loop(cctx, sctx, bundles, n),
            "loopback meshtls.tls.connect": lambda n: loop_meshtls(client, servers.listener.address, n),
            "loopback ssl + check_peer": lambda n: loop_ssl(cctx, bundles, servers.plain.getsockname(), n),
        }
        for fn in variants.values():  # warm up (the verification cache, OpenSSL's tables)
            fn(2)
        samples: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.samples):
            for name, fn in variants.items():
                samples[name].append(fn(args.batch) / args.batch * 1e6)
        servers.close()
        med = {k: statistics.median(v) for k, v in samples.items()}
        rows.append({"version": f"TLS {version}", **{k: round(v, 1) for k, v in med.items()},
                     "binding overhead": round(med["python sans-io"] - med["core"], 1)})

    if args.json:
        print(json.dumps(rows, indent=2))
        return
    cols = ["core", "python sans-io", "binding overhead", "ssl + check_peer",
            "loopback meshtls.tls.connect", "loopback ssl + check_peer"]
    print("median µs per handshake (client + server in one process)")
    print("| handshake | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['version']} | " + " | ".join(f"{r[c]:.0f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
