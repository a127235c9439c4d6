"""meshtls.tls: ssl contexts from an Svid and bundles, and the SPIFFE peer check, with Python's
ssl (OpenSSL) on both ends over loopback, and against openssl s_server / s_client."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable

import pytest

import meshtls
import meshtls.tls as mtls
from conftest import bundles_of

SIDECAR = "spiffe://cluster.local/ns/demo/sa/api"
GATEWAY = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller"


class Server:
    """A one-connection TLS server in a thread, running ``handle`` on the wrapped socket."""

    def __init__(self, ctx: ssl.SSLContext, handle: Callable[[ssl.SSLSocket], Any]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            raw, _ = self.listener.accept()
            raw.settimeout(10)
            try:
                with ctx.wrap_socket(raw, server_side=True) as tls:
                    self.result = handle(tls)
            except BaseException as e:  # reported to the test
                self.error = e
            finally:
                self.listener.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(10)


def serve_once(server_ctx: ssl.SSLContext, bundles: Any, **check: Any) -> Server:
    def handle(tls: ssl.SSLSocket) -> Any:
        peer = mtls.check_peer(tls, bundles, **check)
        tls.recv(64)
        tls.sendall(f"hello {peer}".encode())
        return peer

    return Server(server_ctx, handle)


def call(port: int, ctx: ssl.SSLContext, bundles: Any, **check: Any) -> tuple[Any, str, ssl.SSLSocket]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = ctx.wrap_socket(raw)
    peer = mtls.check_peer(tls, bundles, **check)
    tls.sendall(b"ping")
    answer = tls.recv(256).decode()
    return peer, answer, tls


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_gateway_and_sidecar_contexts_talk_mesh_mtls(ca: meshtls.MeshCa, version: str) -> None:
    bundles = bundles_of(ca)
    server_ctx = mtls.server_context(ca.issue(SIDECAR), bundles)
    client_ctx = mtls.client_context(ca.issue(GATEWAY), bundles, min_version=version, max_version=version)
    server = serve_once(server_ctx, bundles, trust_domains=["cluster.local"])
    peer, answer, tls = call(server.port, client_ctx, bundles, expected=[SIDECAR])
    server.join()
    assert server.error is None
    assert peer == meshtls.SpiffeId(SIDECAR)
    assert server.result == meshtls.SpiffeId(GATEWAY)
    assert answer == f"hello {GATEWAY}"
    assert tls.version() == ("TLSv1.2" if version == "1.2" else "TLSv1.3")
    assert tls.selected_alpn_protocol() == "http/1.1"
    if version == "1.2":
        # Istio's list on OpenSSL: the EC key makes the first ECDSA suite win.
        assert tls.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    tls.close()


def test_wrong_server_id_raises_and_closes(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    server = serve_once(mtls.server_context(ca.issue("spiffe://cluster.local/ns/demo/sa/other"), bundles), bundles)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    tls = mtls.client_context(ca.issue(GATEWAY), bundles).wrap_socket(raw)
    with pytest.raises(meshtls.AuthorizationError, match="spiffe://cluster.local/ns/demo/sa/other"):
        mtls.check_peer(tls, bundles, expected=[SIDECAR])
    assert tls.fileno() == -1  # closed
    server.join()


def test_authorizer_callable_and_trust_domains(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    server = serve_once(mtls.server_context(ca.issue(SIDECAR), bundles), bundles)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    tls = mtls.client_context(ca.issue(GATEWAY), bundles).wrap_socket(raw)
    with pytest.raises(meshtls.AuthorizationError):
        mtls.check_peer(tls, bundles, authorize=lambda peer: peer.path.startswith("/ns/other/"))
    server.join()

    server = serve_once(mtls.server_context(ca.issue(SIDECAR), bundles), bundles)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    tls = mtls.client_context(ca.issue(GATEWAY), bundles).wrap_socket(raw)
    with pytest.raises(meshtls.AuthorizationError, match=r"is not authorized: expected a member of .*prod\.example"):
        mtls.check_peer(tls, bundles, trust_domains=["prod.example"])
    server.join()


def test_merged_store_limit_is_closed_by_check_peer(ca: meshtls.MeshCa, foreign: meshtls.MeshCa) -> None:
    """OpenSSL accepts a cluster.local identity issued by foreign.example's CA (one merged
    store); check_peer refuses it because cluster.local's own bundle does not hold that root."""
    # foreign.example's CA material, loaded as if it served cluster.local (a CA refuses to
    # issue outside its trust domain, so the impostor needs the material loaded that way).
    rogue = meshtls.MeshCa.from_pem(foreign.ca_cert_pem, foreign.ca_key_pem, trust_domain="cluster.local")
    impostor = rogue.issue(GATEWAY)  # claims cluster.local, signed by foreign.example's key
    both = bundles_of(ca, foreign)
    server = serve_once(mtls.server_context(ca.issue(SIDECAR), both), both)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with mtls.client_context(impostor, both).wrap_socket(raw) as tls:  # OpenSSL: handshake fine
        mtls.check_peer(tls, both, expected=[SIDECAR])
        tls.sendall(b"ping")
        server.join()
    assert isinstance(server.error, meshtls.SvidError), server.error

    # A genuine foreign.example workload passes SVID verification but not the trust domains.
    server = serve_once(mtls.server_context(ca.issue(SIDECAR), both), both, trust_domains=["cluster.local"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with mtls.client_context(foreign.issue("spiffe://foreign.example/ns/x/sa/y"), both).wrap_socket(raw) as tls:
        mtls.check_peer(tls, both, expected=[SIDECAR])
        tls.sendall(b"ping")
        server.join()
    assert isinstance(server.error, meshtls.AuthorizationError), server.error


def test_no_client_certificate_is_refused(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    server = serve_once(mtls.server_context(ca.issue(SIDECAR), bundles), bundles)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=ca.root_cert_pem)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the server's verdict ends the handshake
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw)
    server.join()
    assert isinstance(server.error, ssl.SSLError)


def test_mesh_min_tls13_and_bad_options(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    ctx = mtls.server_context(ca.issue(SIDECAR), bundles, min_version="1.3")
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.options & ssl.OP_NO_TICKET
    with pytest.raises(meshtls.TlsError, match="1.1"):
        mtls.client_context(ca.issue(GATEWAY), bundles, min_version="1.1")
    with pytest.raises(meshtls.TlsError, match="empty"):
        mtls.client_context(ca.issue(GATEWAY), bundles, min_version="1.3", max_version="1.2")
    with pytest.raises(TypeError, match="not an Svid"):
        mtls.client_context(object(), bundles)
    with pytest.raises(TypeError, match="cannot read trust bundles"):
        mtls.client_context(ca.issue(GATEWAY), 42)
    # A key that does not belong to the certificate.
    a, b = ca.issue(GATEWAY), ca.issue(SIDECAR)
    mismatched = type("S", (), {"cert_chain_pem": a.cert_chain_pem, "private_key_pem": b.private_key_pem})()
    with pytest.raises(meshtls.TlsError, match="cannot load the SVID"):
        mtls.client_context(mismatched, bundles)


def test_no_key_file_is_left_behind(ca: meshtls.MeshCa, monkeypatch: pytest.MonkeyPatch) -> None:
    bundles = bundles_of(ca)
    svid = ca.issue(GATEWAY)
    calls: list[str] = []
    if hasattr(os, "memfd_create"):
        real = os.memfd_create

        def recording(name: str, flags: int = 0) -> int:
            calls.append(name)
            return real(name, flags)

        monkeypatch.setattr(os, "memfd_create", recording)
        mtls.client_context(svid, bundles)
        assert calls == ["meshtls-svid"]
        monkeypatch.delattr(os, "memfd_create")
    # Without memfd: a 0700 directory under the temp dir, gone after loading.
    tmp = tempfile.mkdtemp()
    monkeypatch.setattr(tempfile, "tempdir", tmp)
    created: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = real_mkdtemp(*args, **kwargs)
        created.append(path)
        assert os.stat(path).st_mode & 0o777 == 0o700
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    ctx = mtls.client_context(svid, bundles)
    assert isinstance(ctx, ssl.SSLContext)
    assert len(created) == 1 and not os.path.exists(created[0])
    assert os.listdir(tmp) == []
    shutil.rmtree(tmp)


def wait_port(port: int) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_client_context_against_openssl_s_server(ca: meshtls.MeshCa, tmp_path: Any, version: str) -> None:
    sidecar = ca.issue(SIDECAR)
    (tmp_path / "chain.pem").write_text(sidecar.cert_chain_pem)
    (tmp_path / "key.pem").write_text(sidecar.private_key_pem)
    (tmp_path / "root.pem").write_text(ca.root_cert_pem)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", str(port), "-www", "-tls1_2" if version == "1.2" else "-tls1_3",
         "-cert", str(tmp_path / "chain.pem"), "-key", str(tmp_path / "key.pem"),
         "-CAfile", str(tmp_path / "root.pem"), "-Verify", "2", "-verify_return_error"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        bundles = bundles_of(ca)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        tls = mtls.client_context(ca.issue(GATEWAY), bundles, alpn=()).wrap_socket(raw)
        assert mtls.check_peer(tls, bundles, expected=[SIDECAR]) == meshtls.SpiffeId(SIDECAR)
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        page = b""
        while chunk := tls.recv(4096):
            page += chunk
        assert page.startswith(b"HTTP/1.0 200 ok")
        tls.close()
    finally:
        proc.kill()
        proc.wait()
