"""meshtls.hbone against real HBONE servers: meshtls's own acceptor (the ``meshtls hbone
serve`` binary, standing in for ztunnel) for the tunnel and every refusal, and Istio's own Go
implementation (istio.io/istio/pkg/hbone, built by scripts/build-peers.sh) when present."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import meshtls
import meshtls.hbone

REPO = pathlib.Path(__file__).resolve().parents[2]
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/api"
CLIENT_ID = "spiffe://cluster.local/ns/gateway/sa/agc"


def cli_binary() -> pathlib.Path:
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "debug" / "meshtls"
    if not path.exists():
        if shutil.which("cargo") is None:
            pytest.fail("the meshtls CLI is not built and cargo is not available: run `cargo build -p meshtls-cli`")
        subprocess.run(["cargo", "build", "-q", "-p", "meshtls-cli"], cwd=REPO, check=True)
    return path


def go_peer() -> pathlib.Path | None:
    cache = pathlib.Path(os.environ.get("MESHTLS_PEERS_CACHE", pathlib.Path.home() / ".cache/meshtls-peers"))
    path = pathlib.Path(os.environ.get("MESHTLS_HBONE_PEER", cache / "hbone-peer"))
    return path if path.is_file() else None


class Mesh:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
        self.bundles = {"cluster.local": self.ca.root_cert_pem}
        self.server = self.ca.issue(SERVER_ID, ttl=timedelta(hours=1))
        self.client = self.ca.issue(CLIENT_ID, ttl=timedelta(hours=1))
        self.root = tmp / "root.pem"
        self.root.write_text(self.ca.root_cert_pem)
        self.server_files = []
        for name, svid in [("server", self.server)]:
            (tmp / f"{name}.pem").write_text(svid.cert_chain_pem)
            (tmp / f"{name}-key.pem").write_text(svid.private_key_pem)
            self.server_files = ["--cert", str(tmp / f"{name}.pem"), "--key", str(tmp / f"{name}-key.pem")]


@pytest.fixture
def mesh(tmp_path: pathlib.Path) -> Mesh:
    return Mesh(tmp_path)


class Echo:
    """A TCP echo server on 127.0.0.1 (one thread per connection)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.sock.close()


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening "), line
    return proc, line.removeprefix("listening ")


def stop(proc: subprocess.Popen[str]) -> None:
    """Kills a server started by `start` and closes its pipe (warnings are errors here)."""
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def serve(mesh: Mesh) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def run(forward: str, *extra: str) -> str:
        proc, addr = start([str(cli_binary()), "hbone", "serve", "--listen", "127.0.0.1:0", "--forward", forward,
                            *mesh.server_files, "--bundle", str(mesh.root), *extra])
        procs.append(proc)
        return addr

    yield run
    for p in procs:
        stop(p)


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def roundtrip(tunnel: meshtls.hbone.HboneSocket, message: bytes) -> bytes:
    tunnel.sendall(message)
    tunnel.shutdown(socket.SHUT_WR)
    with tunnel.makefile("rb") as f:
        return bytes(f.read())


def test_blocking_tunnel_through_meshtls_acceptor(mesh: Mesh, echo: Echo, serve: Any) -> None:
    via = serve(f"127.0.0.1:{echo.port}")
    message = bytes(range(256)) * 2000
    with meshtls.hbone.connect(via, f"127.0.0.1:{echo.port}", mesh.client, mesh.bundles, expected=SERVER_ID) as t:
        assert t.peer_spiffe_id == meshtls.SpiffeId(SERVER_ID)
        assert roundtrip(t, message) == message
    # A TlsMaterial works too, and streams share the pooled connection.
    material = meshtls.tls.TlsMaterial(mesh.client, meshtls.BundleSet.from_pem_map(mesh.bundles))
    before = meshtls.hbone.connection_count()
    tunnels = [meshtls.hbone.connect(via, f"127.0.0.1:{echo.port}", material, expected=SERVER_ID) for _ in range(5)]
    assert meshtls.hbone.connection_count() == before, "the five tunnels ride the pooled connection"
    for i, t in enumerate(tunnels):
        assert roundtrip(t, b"tunnel %d" % i) == b"tunnel %d" % i
        t.close()


def test_asyncio_open_connection(mesh: Mesh, echo: Echo, serve: Any) -> None:
    via = serve(f"127.0.0.1:{echo.port}")

    async def main() -> list[bytes]:
        async def one(i: int) -> bytes:
            reader, writer = await meshtls.hbone.open_connection(
                via, f"127.0.0.1:{echo.port}", mesh.client, mesh.bundles, expected=SERVER_ID)
            writer.write(b"async %d" % i)
            await writer.drain()
            writer.write_eof()
            data = await reader.read()
            writer.close()
            await writer.wait_closed()
            return data

        return await asyncio.gather(*(one(i) for i in range(20)))

    assert asyncio.run(main()) == [b"async %d" % i for i in range(20)]


def test_refusals_raise_typed_errors(mesh: Mesh, echo: Echo, serve: Any) -> None:
    via = serve(f"127.0.0.1:{echo.port}")
    target = f"127.0.0.1:{echo.port}"
    with pytest.raises(meshtls.HbonePeerIdentityError, match="is not spiffe://cluster.local/ns/shop/sa/other"):
        meshtls.hbone.connect(via, target, mesh.client, mesh.bundles, expected="spiffe://cluster.local/ns/shop/sa/other")
    with pytest.raises(meshtls.HboneBadRequestError, match=r"\(400\)"):
        meshtls.hbone.connect(via, "127.0.0.9:80", mesh.client, mesh.bundles, expected=SERVER_ID)
    denied = serve(target, "--allow", "spiffe://cluster.local/ns/ops/sa/admin")
    with pytest.raises(meshtls.HboneDeniedError, match=r"denied by policy \(401\)"):
        meshtls.hbone.connect(denied, target, mesh.client, mesh.bundles, expected=SERVER_ID)
    nowhere = serve(f"127.0.0.1:{closed_port()}")
    with pytest.raises(meshtls.HboneNoUpstreamError, match=r"\(503\)"):
        meshtls.hbone.connect(nowhere, target, mesh.client, mesh.bundles, expected=SERVER_ID)
    # A client of another trust domain (its root trusted by the client side only).
    other = meshtls.MeshCa.create("other.example", key="ec-p256")
    stranger = other.issue("spiffe://other.example/ns/gateway/sa/agc")
    bundles = {"cluster.local": mesh.ca.root_cert_pem, "other.example": other.root_cert_pem}
    with pytest.raises(meshtls.HboneTlsError):
        meshtls.hbone.connect(via, target, stranger, bundles, expected=SERVER_ID)
    # Errors are ConnectionErrors and MeshTlsErrors; bad addresses are argument errors.
    assert issubclass(meshtls.HboneError, ConnectionError)
    with pytest.raises(meshtls.InvalidArgumentError, match="ip:port"):
        meshtls.hbone.connect("api.shop:15008", target, mesh.client, mesh.bundles, expected=SERVER_ID)
    with pytest.raises(meshtls.InvalidArgumentError, match="timeout -1"):
        meshtls.hbone.connect(via, target, mesh.client, mesh.bundles, expected=SERVER_ID, timeout=-1)
    with pytest.raises(meshtls.InvalidArgumentError, match="header"):
        meshtls.hbone.connect(via, target, mesh.client, mesh.bundles, expected=SERVER_ID,
                              headers={"bad name": "x"})

    async def refused() -> None:
        await meshtls.hbone.open_connection(via, "127.0.0.9:80", mesh.client, mesh.bundles, expected=SERVER_ID)

    with pytest.raises(meshtls.HboneBadRequestError):
        asyncio.run(refused())


@pytest.mark.skipif(go_peer() is None, reason="Istio's Go HBONE peer not built: run scripts/build-peers.sh")
def test_reaches_istio_go_hbone_server(mesh: Mesh, echo: Echo, tmp_path: pathlib.Path) -> None:
    peer = go_peer()
    assert peer is not None
    proc, via = start([str(peer), "server", *mesh.server_files, "--ca", str(mesh.root)])
    try:
        with meshtls.hbone.connect(via, f"127.0.0.1:{echo.port}", mesh.client, mesh.bundles, expected=SERVER_ID) as t:
            assert roundtrip(t, b"hello istio") == b"hello istio"
        with pytest.raises(meshtls.HbonePeerIdentityError):
            meshtls.hbone.connect(via, f"127.0.0.1:{echo.port}", mesh.client, mesh.bundles,
                                  expected="spiffe://cluster.local/ns/shop/sa/other")
    finally:
        stop(proc)
