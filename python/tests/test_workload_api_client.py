"""meshtls.workload_api's client side against SPIRE's own agent and server (v1.13.3, built from
the published Go module by scripts/build-spiffe-peers.sh into ~/.cache/meshtls-peers/spire):
X.509-SVIDs and bundles, selection by hint, JWT-SVIDs minted by SPIRE validated by meshtls, a
rotation reaching a running rustls server config fed by an X509Source, and the typed errors."""

from __future__ import annotations

import datetime
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import meshtls
import meshtls.tls
from meshtls.workload_api import (
    InvalidEndpointError,
    JwtSource,
    NoIdentityError,
    NoMatchingSvidError,
    WorkloadApiClient,
    WorkloadApiConnectError,
    WorkloadApiStatusError,
    X509Source,
)

TD = "spire.test"
_SPIRE = (
    pathlib.Path(os.environ.get("MESHTLS_PEERS_CACHE", pathlib.Path.home() / ".cache" / "meshtls-peers"))
    / "spire"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Spire:
    """spire-server (in-memory sqlite, join token, keys in memory) and spire-agent (unix
    workload attestor) on loopback and a temporary directory."""

    def __init__(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mtls-spire-py-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        port = _free_port()
        d = self.dir
        (d / "server").mkdir()
        (d / "agent").mkdir()
        (d / "server.conf").write_text(
            f"""server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{d}/server.sock"
    trust_domain = "{TD}"
    data_dir = "{d}/server"
    log_level = "WARN"
}}
plugins {{
    DataStore "sql" {{ plugin_data {{
        database_type = "sqlite3"
        connection_string = "file:memdb-py-{port}?mode=memory&cache=shared"
    }} }}
    NodeAttestor "join_token" {{ plugin_data {{}} }}
    KeyManager "memory" {{ plugin_data {{}} }}
}}
"""
        )
        self._spawn([str(_SPIRE / "spire-server"), "run", "-config", str(d / "server.conf")], "server.log")
        self._wait("spire-server", lambda: self.server("healthcheck").returncode == 0)
        (d / "bundle.pem").write_text(self.server("bundle", "show").stdout)
        out = self.server("token", "generate", "-ttl", "600").stdout
        token = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Token:"))
        self.agent_id = f"spiffe://{TD}/spire/agent/join_token/{token}"
        (d / "agent.conf").write_text(
            f"""agent {{
    data_dir = "{d}/agent"
    log_level = "WARN"
    server_address = "127.0.0.1"
    server_port = "{port}"
    socket_path = "{d}/agent.sock"
    trust_bundle_path = "{d}/bundle.pem"
    trust_domain = "{TD}"
    experimental {{ sync_interval = "1s" }}
}}
plugins {{
    NodeAttestor "join_token" {{ plugin_data {{}} }}
    KeyManager "memory" {{ plugin_data {{}} }}
    WorkloadAttestor "unix" {{ plugin_data {{}} }}
}}
"""
        )
        self._spawn(
            [str(_SPIRE / "spire-agent"), "run", "-config", str(d / "agent.conf"), "-joinToken", token],
            "agent.log",
        )
        self._wait(
            "spire-agent",
            lambda: subprocess.run(
                [str(_SPIRE / "spire-agent"), "healthcheck", "-socketPath", str(d / "agent.sock")],
                capture_output=True,
            ).returncode
            == 0,
        )
        self.address = f"unix://{d}/agent.sock"

    def _spawn(self, argv: list[str], log: str) -> None:
        with open(self.dir / log, "wb") as out:
            self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out))

    @staticmethod
    def _wait(what: str, ok: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            assert time.monotonic() < deadline, f"{what} not ready after {timeout}s"
            time.sleep(0.2)

    def server(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(_SPIRE / "spire-server"), *args, "-socketPath", str(self.dir / "server.sock")],
            capture_output=True,
            text=True,
        )

    def entry(self, spiffe_id: str, *extra: str) -> str:
        out = self.server(
            "entry", "create", "-parentID", self.agent_id, "-spiffeID", spiffe_id,
            "-selector", f"unix:uid:{os.getuid()}", *extra,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return next(l.split(":", 1)[1].strip() for l in out.stdout.splitlines() if l.startswith("Entry ID"))

    def update(self, entry_id: str, spiffe_id: str, *extra: str) -> None:
        out = self.server(
            "entry", "update", "-entryID", entry_id, "-parentID", self.agent_id,
            "-spiffeID", spiffe_id, "-selector", f"unix:uid:{os.getuid()}", *extra,
        )
        assert out.returncode == 0, out.stdout + out.stderr

    def wait_served(self, spiffe_id: str) -> None:
        def served() -> bool:
            out = subprocess.run(
                [str(_SPIRE / "spire-agent"), "api", "fetch", "x509", "-socketPath", str(self.dir / "agent.sock")],
                capture_output=True,
                text=True,
            )
            return out.returncode == 0 and spiffe_id in out.stdout

        self._wait(f"agent serving {spiffe_id}", served)

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def spire() -> Iterator[Spire]:
    if not (os.access(_SPIRE / "spire-server", os.X_OK) and os.access(_SPIRE / "spire-agent", os.X_OK)):
        if os.environ.get("CI"):
            pytest.fail(f"SPIRE is missing in CI ({_SPIRE}): scripts/build-spiffe-peers.sh did not build it")
        pytest.skip(f"{_SPIRE} is missing: run scripts/build-spiffe-peers.sh (.ci/run does)")
    s = Spire()
    try:
        yield s
    finally:
        s.stop()


def test_address_refused_with_the_rule() -> None:
    with pytest.raises(InvalidEndpointError, match="must not set a path"):
        WorkloadApiClient("tcp://127.0.0.1:8000/foo")
    with pytest.raises(InvalidEndpointError, match="must not set an authority"):
        WorkloadApiClient("unix://relative.sock")
    with pytest.raises(ValueError, match="ip address"):
        WorkloadApiClient("tcp://localhost:8000")


def test_missing_socket_is_a_connect_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(WorkloadApiConnectError, match="nope.sock"):
        WorkloadApiClient(f"unix://{tmp_path}/nope.sock")


def test_fetch_from_spire(spire: Spire) -> None:
    web, db = f"spiffe://{TD}/web", f"spiffe://{TD}/db"
    spire.entry(web, "-hint", "web-hint")
    spire.entry(db, "-hint", "db-hint")
    spire.wait_served(web)
    spire.wait_served(db)
    client = WorkloadApiClient(spire.address, timeout=datetime.timedelta(seconds=10))
    ctx = client.fetch_x509_context()
    assert sorted(str(s.spiffe_id) for s in ctx.svids) == [db, web]
    assert str(ctx.select(hint="db-hint").spiffe_id) == db
    with pytest.raises(NoMatchingSvidError, match="web-hint"):
        ctx.select(hint="nope")
    # The bundle is SPIRE's CA, as `spire-server bundle show` prints it.
    want = meshtls.TrustBundle.from_pem(TD, (spire.dir / "bundle.pem").read_text())
    got = client.fetch_x509_bundles().get(TD)
    assert got is not None and got.to_pem() == want.to_pem()
    svid = client.fetch_x509_svid(spiffe_id=web).svid
    assert str(meshtls.verify_svid(svid.cert_chain_pem, ctx.bundles)) == web

    # A JWT-SVID minted by SPIRE, validated by meshtls with SPIRE's JWT bundle.
    jwks = client.fetch_jwt_bundles()
    token = client.fetch_jwt_svid(["billing"], hint="db-hint")
    assert str(token.spiffe_id) == db
    assert str(meshtls.validate_jwt_svid(token.token, jwks, audience=["billing"]).spiffe_id) == db
    with pytest.raises(meshtls.JwtError, match="audience"):
        meshtls.validate_jwt_svid(token.token, jwks, audience=["payments"])
    sid, claims = client.validate_jwt_svid(token.token, "billing")
    assert str(sid) == db and claims["sub"] == db
    with pytest.raises(WorkloadApiStatusError) as refused:
        client.validate_jwt_svid(token.token, "payments")
    assert refused.value.code == "InvalidArgument"

    with JwtSource(spire.address, hint="web-hint") as source:
        minted = source.fetch_svid(["audit"])
        assert str(source.validate(minted.token, audience=["audit"]).spiffe_id) == web


def test_no_entry_is_retried_then_reported(spire: Spire) -> None:
    client = WorkloadApiClient(spire.address)
    with pytest.raises(NoIdentityError) as denied:
        client.fetch_x509_context()
    assert denied.value.code == "PermissionDenied"
    started = time.monotonic()
    with pytest.raises(NoIdentityError):
        X509Source(spire.address, initial_timeout=datetime.timedelta(seconds=2),
                   backoff_initial=datetime.timedelta(milliseconds=50))
    assert time.monotonic() - started >= 2


def _serve_once(config: meshtls.tls.ServerConfig, result: dict[str, Any]) -> int:
    listener = config.listen(("127.0.0.1", 0))

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                result["peer"] = str(conn.peer_spiffe_id)
                conn.recv(5)
                conn.sendall(b"ok")

    threading.Thread(target=run, daemon=True).start()
    return int(listener.address[1])


def test_mtls_and_rotation_through_x509_sources(spire: Spire) -> None:
    server_id, client_id = f"spiffe://{TD}/server", f"spiffe://{TD}/client"
    entry = spire.entry(server_id, "-hint", "server")
    spire.entry(client_id, "-hint", "client")
    spire.wait_served(server_id)
    spire.wait_served(client_id)
    with X509Source(spire.address, hint="server") as server_src, X509Source(spire.address, hint="client") as client_src:
        server = meshtls.tls.ServerConfig(server_src.tls_material)
        client = meshtls.tls.ClientConfig(client_src.tls_material, expected=[server_id])
        result: dict[str, Any] = {}
        port = _serve_once(server, result)
        with client.connect(("127.0.0.1", port)) as tls:
            assert str(tls.peer_spiffe_id) == server_id
            tls.sendall(b"hello")
            assert tls.recv(2) == b"ok"
        assert result["peer"] == client_id

        before = server_src.svid.svid.serial_number
        generation = server_src.generation
        spire.update(entry, server_id, "-hint", "server", "-dns", "rotated.local")
        assert server_src.wait_for_update(generation, timeout=datetime.timedelta(seconds=60)) > generation
        assert server_src.svid.svid.serial_number != before
        # The running server config presents the rotated certificate at its next handshake.
        assert server_src.tls_material.cert_chain_der[0] == server_src.svid.svid.cert_chain_der[0]
        port = _serve_once(server, result)
        with client.connect(("127.0.0.1", port)) as tls:
            tls.sendall(b"again")
            assert tls.recv(2) == b"ok"
