"""meshtls.tls, the rustls path: connect / open_connection / Listener against meshtls itself,
Python's ssl (OpenSSL) on the other side in both directions, openssl s_server and s_client,
and the demo's sidecar (examples/gateway_to_sidecar). The peer is verified and authorized
inside the handshake, so a refused peer never receives (or delivers) application data."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from typing import Any, Callable, Optional

import pytest

import meshtls
import meshtls._meshtls as native
import meshtls.tls as mtls
from conftest import bundles_of

SIDECAR = "spiffe://cluster.local/ns/demo/sa/api"
GATEWAY = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller"
OTHER = "spiffe://cluster.local/ns/demo/sa/other"
REPO = pathlib.Path(__file__).resolve().parents[2]


class Background:
    """Runs ``fn`` in a thread; ``result``/``error`` after ``join()``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as e:  # reported to the test
                self.error = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> "Background":
        self.thread.join(15)
        assert not self.thread.is_alive(), "background peer hung"
        return self


def echo_once(listener: mtls.Listener) -> Background:
    """Accepts one connection, records what it received, answers ``hello <peer>``."""

    def run() -> Any:
        conn, _ = listener.accept()
        with conn:
            data = conn.recv(1024)
            who = conn.peer.spiffe_id if conn.peer else "plaintext"
            conn.sendall(f"hello {who}".encode())
            return conn, data

    return Background(run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: Optional[subprocess.Popen[Any]] = None) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"peer process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


# ---- meshtls on both ends ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_connect_and_listener_talk_mesh_mtls(ca: meshtls.MeshCa, version: str) -> None:
    bundles = bundles_of(ca)
    gateway = ca.issue(GATEWAY)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        server = echo_once(listener)
        with mtls.connect(listener.address, gateway, bundles, expected=SIDECAR,
                          min_version=version, max_version=version) as conn:
            conn.sendall(b"ping")
            answer = conn.recv(1024)
            assert conn.recv(1024) == b""  # the server closed with close_notify
        server.join()
    assert server.error is None
    assert answer == f"hello {GATEWAY}".encode()
    assert conn.peer_spiffe_id == meshtls.SpiffeId(SIDECAR)
    assert conn.version == f"TLSv{version}"
    # the EC key and Istio's list: the first ECDSA suite on TLS 1.2
    assert conn.cipher == ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" if version == "1.2" else "TLS13_AES_128_GCM_SHA256")
    # the gateway offered istio-http/1.1 then http/1.1; the server selects http/1.1
    assert conn.alpn == "http/1.1"
    accepted, received = server.result
    assert received == b"ping"
    assert accepted.server_side and not conn.server_side
    assert accepted.peer_spiffe_id == meshtls.SpiffeId(GATEWAY)
    assert accepted.peer.certificate == bytes(gateway.cert_chain_der[0])
    assert accepted.peer.xfcc(SIDECAR).startswith(f"By={SIDECAR};Hash=")
    assert accepted.peer.xfcc(SIDECAR).endswith(f";URI={GATEWAY}")
    assert conn.closed and conn.fileno() == -1


def test_wrong_server_id_fails_in_the_handshake_and_the_server_gets_nothing(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        server = echo_once(listener)
        with pytest.raises(meshtls.PeerAuthorizationError,
                           match=f"peer {SIDECAR} is not authorized: expected {OTHER}") as info:
            mtls.connect(listener.address, ca.issue(GATEWAY), bundles, expected=OTHER)
        server.join()
    # one exception type per way of catching it
    assert isinstance(info.value, meshtls.AuthorizationError)
    assert isinstance(info.value, meshtls.TlsError) and isinstance(info.value, ConnectionError)
    # the server never completed a handshake, so its application received nothing
    assert server.result is None
    assert isinstance(server.error, meshtls.TlsConnectionError)
    assert "alert" in str(server.error)


def test_config_reuse_authorizers_and_aliases(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    material = mtls.TlsMaterial(ca.issue(GATEWAY), bundles)
    seen: list[Any] = []

    def only_demo(peer: meshtls.SpiffeId) -> bool:
        seen.append(peer)
        return peer.path.startswith("/ns/demo/")

    config = mtls.ClientConfig(material, authorizer=only_demo)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        for _ in range(2):
            server = echo_once(listener)
            with config.connect(listener.address) as conn:
                conn.sendall(b"x")
                assert conn.recv(100) == f"hello {GATEWAY}".encode()
            server.join()
        assert seen == [meshtls.SpiffeId(SIDECAR)] * 2  # called inside each handshake
        config.set_authorizer(meshtls.Authorizer.namespace(["prod"], trust_domains=["cluster.local"]))
        server = echo_once(listener)
        with pytest.raises(meshtls.PeerAuthorizationError, match="in a namespace matching prod"):
            config.connect(listener.address)
        server.join()
    # an expected ID in an alias trust domain matches the sidecar's cluster.local ID
    aliased = mtls.ClientConfig(material, expected="spiffe://old.example/ns/demo/sa/api",
                                trust_domain_aliases=["cluster.local"])
    assert meshtls.SpiffeId(SIDECAR) in aliased.expected


def test_server_side_authorizer_refuses_client_before_its_data_reaches_the_app(ca: meshtls.MeshCa) -> None:
    """A Python ssl client finishes its TLS 1.3 handshake before the server has checked its
    certificate and sends at once; the meshtls Listener refuses it in the handshake, so
    accept() raises and no application ever sees the bytes."""
    bundles = bundles_of(ca)
    config = mtls.ServerConfig(ca.issue(SIDECAR), bundles, authorizer=meshtls.Authorizer.id(GATEWAY))
    with config.listen(("127.0.0.1", 0)) as listener:
        server = echo_once(listener)
        ctx = mtls.client_context(ca.issue(OTHER), bundles, min_version="1.3")
        with socket.create_connection(listener.address, timeout=10) as raw, ctx.wrap_socket(raw) as tls:
            tls.sendall(b"secret for the app")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                tls.recv(100)
        server.join()
    assert server.result is None
    assert isinstance(server.error, meshtls.PeerAuthorizationError)
    assert f"peer {OTHER} is not authorized: expected {GATEWAY}" in str(server.error)


def test_foreign_ca_claiming_our_trust_domain_is_refused_in_the_handshake(ca: meshtls.MeshCa, foreign: meshtls.MeshCa) -> None:
    """OpenSSL's merged store accepts this impostor (see test_tls.py); the rustls path picks the
    bundle by the peer's trust domain during the handshake and refuses it."""
    both = bundles_of(ca, foreign)
    # foreign.example's CA material loaded as if it served cluster.local (a CA refuses to issue
    # outside its trust domain, so the impostor needs the material loaded that way).
    rogue = meshtls.MeshCa.from_pem(foreign.ca_cert_pem, foreign.ca_key_pem, trust_domain="cluster.local")
    impostor = rogue.issue(GATEWAY)  # claims cluster.local, signed by foreign.example's key
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), both) as listener:
        server = echo_once(listener)
        with pytest.raises(meshtls.TlsConnectionError):
            with mtls.connect(listener.address, impostor, both, expected=SIDECAR) as conn:
                conn.sendall(b"x")
                conn.recv(100)
        server.join()
        assert isinstance(server.error, meshtls.PeerVerificationError), server.error
        assert isinstance(server.error, meshtls.SvidError)
        # a genuine foreign.example workload verifies, but its trust domain is not accepted
        server = echo_once(listener)
        with pytest.raises(meshtls.TlsConnectionError):
            with mtls.connect(listener.address, foreign.issue("spiffe://foreign.example/ns/x/sa/y"), both,
                              expected=SIDECAR) as conn:
                conn.recv(100)
        server.join()
        assert isinstance(server.error, meshtls.PeerAuthorizationError), server.error
        assert "foreign.example" in str(server.error)


def test_rotation_in_place(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    server_material = mtls.TlsMaterial(ca.issue(SIDECAR), bundles)
    client_material = mtls.TlsMaterial(ca.issue(GATEWAY), bundles)
    client = mtls.ClientConfig(client_material, expected=SIDECAR)
    with mtls.ServerConfig(server_material).listen(("127.0.0.1", 0)) as listener:
        def certificate_seen() -> bytes:
            server = echo_once(listener)
            with client.connect(listener.address) as conn:
                conn.sendall(b"x")
                conn.recv(100)
                cert = bytes(conn.peer.certificate)
            server.join()
            assert server.error is None, server.error
            return cert

        first = certificate_seen()
        assert first == bytes(server_material.cert_chain_der[0])
        renewed = ca.issue(SIDECAR)
        server_material.set_svid(renewed)  # the listener and its config see it at once
        assert certificate_seen() == bytes(renewed.cert_chain_der[0]) != first

        # new bundles on the client: the sidecar's CA is no longer trusted
        other_ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
        client_material.set_bundles({"cluster.local": other_ca.root_cert_pem})
        server = echo_once(listener)
        with pytest.raises(meshtls.PeerVerificationError):
            client.connect(listener.address)
        server.join()
        # the sidecar moves to the new CA too: connections work again
        server_material.set_svid(other_ca.issue(SIDECAR))
        server_material.set_bundles(bundles_of(ca, ))  # still trusts the gateway's old CA
        assert certificate_seen() == bytes(server_material.cert_chain_der[0])


# ---- the port's mode ---------------------------------------------------------------------


def plain_get(address: Any, first: bytes = b"GET / HTTP/1.1\r\n\r\n") -> bytes:
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(first)
        out = b""
        try:
            while chunk := s.recv(1024):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def test_modes_from_a_decision(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    strict = meshtls.PolicySet.from_yaml(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: default, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n"
    ).resolve("demo", {"app": "api"}, port=8080)
    permissive = meshtls.PolicySet.from_yaml("").resolve("demo", {"app": "api"}, port=8080)
    assert strict.mode == meshtls.MtlsMode.STRICT and permissive.mode == meshtls.MtlsMode.PERMISSIVE
    gateway = ca.issue(GATEWAY)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles, mode=strict) as listener:
        assert listener.mode == meshtls.MtlsMode.STRICT
        server = echo_once(listener)
        assert plain_get(listener.address) == b""  # refused: closed without an answer
        server.join()
        assert isinstance(server.error, meshtls.TlsConnectionError)
        assert "connection refused under STRICT: plaintext connection" in str(server.error)

        listener.set_mode(permissive)
        server = echo_once(listener)
        assert plain_get(listener.address, b"GET / HTTP/1.0\r\n\r\n") == b"hello plaintext"
        server.join()
        conn, received = server.result
        assert isinstance(conn, mtls.PlainSocket) and conn.client_hello is None
        assert received == b"GET / HTTP/1.0\r\n\r\n"  # the sniffed bytes are replayed

        # TLS with an Istio ALPN: terminated, the peer checked
        server = echo_once(listener)
        with mtls.connect(listener.address, gateway, bundles, expected=SIDECAR) as c:
            c.sendall(b"hi")
            assert c.recv(100) == f"hello {GATEWAY}".encode()
        server.join()
        assert isinstance(server.result[0], mtls.TlsSocket)

        # TLS without an Istio ALPN: passed through untouched, as Envoy's passthrough chain does
        server = echo_once(listener)
        with pytest.raises(meshtls.TlsConnectionError):
            mtls.connect(listener.address, gateway, bundles, expected=SIDECAR, alpn=["http/1.1"],
                         server_name="api.demo.svc")
        server.join()
        passed, raw_tls = server.result
        assert isinstance(passed, mtls.PlainSocket)
        assert passed.client_hello.alpn == ["http/1.1"]
        assert passed.client_hello.server_name == "api.demo.svc"
        assert raw_tls[:1] == b"\x16"  # the application got the raw ClientHello

        # DISABLE decides before any byte: a server-speaks-first protocol works
        listener.set_mode("DISABLE")
        server = echo_once(listener)
        with socket.create_connection(listener.address, timeout=10) as s:
            s.sendall(b"\x16\x03\x01")  # looks like TLS, not inspected
            assert s.recv(100) == b"hello plaintext"
        server.join()

    with pytest.raises(meshtls.PolicyError, match="BOGUS"):
        mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles, mode="BOGUS")


def test_client_that_sends_too_little_times_out(ca: meshtls.MeshCa) -> None:
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles_of(ca), timeout=0.3) as listener:
        server = echo_once(listener)
        with socket.create_connection(listener.address, timeout=10) as s:
            s.sendall(b"\x16\x03")  # a TLS record header, never completed
            server.join()
        assert isinstance(server.error, meshtls.TlsConnectionError)
        assert "0.3" in str(server.error)


def test_handshake_timeout_and_closed_peer(ca: meshtls.MeshCa) -> None:
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(meshtls.TlsConnectionError, match="timed out"):
            mtls.connect(silent.getsockname(), ca.issue(GATEWAY), bundles_of(ca), expected=SIDECAR, timeout=0.3)

    finally:
        silent.close()
    closing = socket.create_server(("127.0.0.1", 0))
    try:
        def close_at_once() -> None:
            c, _ = closing.accept()
            c.recv(4096)  # the ClientHello
            c.close()

        closer = Background(close_at_once)
        with pytest.raises(meshtls.TlsConnectionError, match="closed the connection during the handshake|reset"):
            mtls.connect(closing.getsockname(), ca.issue(GATEWAY), bundles_of(ca), expected=SIDECAR)
        closer.join()
    finally:
        closing.close()


def test_bad_arguments(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    svid = ca.issue(GATEWAY)
    with pytest.raises(meshtls.TlsError, match="no server identity to verify"):
        mtls.ClientConfig(svid, bundles)
    with pytest.raises(meshtls.TlsError, match="unknown TLS version '1.1'"):
        mtls.ClientConfig(svid, bundles, expected=SIDECAR, min_version="1.1")
    with pytest.raises(meshtls.TlsError, match="TLSv1_1"):
        mtls.ClientConfig(svid, bundles, expected=SIDECAR, min_version=ssl.TLSVersion.TLSv1_1)
    with pytest.raises(meshtls.TlsError, match="empty"):
        mtls.ClientConfig(svid, bundles, expected=SIDECAR, min_version="1.3", max_version="1.2")
    with pytest.raises(meshtls.TlsError, match="invalid ALPN protocol"):
        mtls.ClientConfig(svid, bundles, expected=SIDECAR, alpn=[""])
    with pytest.raises(TypeError, match="bundles are required"):
        mtls.ClientConfig(svid, expected=SIDECAR)
    with pytest.raises(meshtls.InvalidArgumentError, match="holds its own bundles"):
        mtls.ClientConfig(mtls.TlsMaterial(svid, bundles), bundles, expected=SIDECAR)
    with pytest.raises(TypeError, match="neither an Svid nor a TlsMaterial"):
        mtls.ClientConfig(object(), bundles, expected=SIDECAR)
    with pytest.raises(TypeError, match="authorizer must be"):
        mtls.ClientConfig(svid, bundles, authorizer=42)
    with pytest.raises(meshtls.InvalidSpiffeIdError):
        mtls.ClientConfig(svid, bundles, expected="spiffe://Bad/Id")
    with pytest.raises(meshtls.TlsError, match="invalid server name"):
        mtls.ClientConfig(svid, bundles, expected=SIDECAR).session("outbound|8080||api.demo")
    with pytest.raises(meshtls.BundleError):
        mtls.TlsMaterial(svid, {"cluster.local": "not pem"})
    # TLS 1.3 only from the mesh config
    mesh = meshtls.MeshConfig.from_yaml("meshMTLS:\n  minProtocolVersion: TLSV1_3\n")
    config = mtls.ServerConfig(ca.issue(SIDECAR), bundles, mesh=mesh)
    with config.listen(("127.0.0.1", 0)) as listener:
        server = echo_once(listener)
        with pytest.raises(meshtls.TlsConnectionError):
            mtls.connect(listener.address, svid, bundles, expected=SIDECAR, max_version="1.2")
        server.join()
        assert "Tls12NotOfferedOrEnabled" in str(server.error), server.error


def test_sans_io_session_refuses_application_data_before_the_handshake(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    client = mtls.ClientConfig(ca.issue(GATEWAY), bundles, expected=SIDECAR).session()
    server = mtls.ServerConfig(ca.issue(SIDECAR), bundles).session()
    with pytest.raises(meshtls.TlsConnectionError, match="no application data is sent before the peer is verified"):
        client.write(b"too early")
    assert client.read() is None
    while client.is_handshaking or server.is_handshaking:
        server.receive(client.take_outgoing())
        client.receive(server.take_outgoing())
    client.write(b"now")
    server.receive(client.take_outgoing())
    assert server.read() == b"now" and server.read() is None
    client.close()
    server.receive(client.take_outgoing())
    assert server.read() == b""
    assert server.peer.spiffe_id == meshtls.SpiffeId(GATEWAY)


def test_makefile_speaks_http(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        def http_server() -> bytes:
            conn, _ = listener.accept()
            with conn:
                f = conn.makefile("rb")
                request = f.readline()
                w = conn.makefile("w", encoding="ascii", newline="")
                w.write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                w.flush()
                return request

        server = Background(http_server)
        with mtls.connect(listener.address, ca.issue(GATEWAY), bundles, expected=SIDECAR) as conn:
            conn.sendall(b"GET /x HTTP/1.0\r\n\r\n")
            body = conn.makefile("rb").read()
        server.join()
    assert server.result == b"GET /x HTTP/1.0\r\n"
    assert body == b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_constants_come_from_the_core() -> None:
    assert mtls.ISTIO_TLS12_CIPHERS is native.ISTIO_TLS12_CIPHERS
    assert mtls.PERMISSIVE_MTLS_ALPN is native.PERMISSIVE_MTLS_ALPN
    assert mtls.GATEWAY_HTTP11_ALPN == ("istio-http/1.1", "http/1.1")
    assert mtls.PERMISSIVE_MTLS_ALPN == ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
    source = (REPO / "python" / "meshtls" / "tls.py").read_text()
    for literal in ('"istio-http/1.1"', '"ECDHE-RSA-AES128-GCM-SHA256"', '"istio-peer-exchange"'):
        assert literal not in source, f"tls.py re-declares {literal}"


# ---- Python's ssl on the other side --------------------------------------------------------


class SslServer:
    """One connection with Python's ssl as the server; records every application byte."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.received = b""
        self.peer: Any = None

        def run() -> None:
            raw, _ = self.listener.accept()
            raw.settimeout(10)
            try:
                with ctx.wrap_socket(raw, server_side=True) as tls:
                    self.peer = tls.getpeercert(binary_form=True)
                    while chunk := tls.recv(1024):
                        self.received += chunk
                        tls.sendall(b"echo " + chunk)
            finally:
                self.listener.close()

        self.bg = Background(run)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_connect_to_python_ssl_server(ca: meshtls.MeshCa, version: str) -> None:
    bundles = bundles_of(ca)
    server = SslServer(mtls.server_context(ca.issue(SIDECAR), bundles, min_version=version, max_version=version))
    with mtls.connect(server.address, ca.issue(GATEWAY), bundles, expected=SIDECAR) as conn:
        conn.sendall(b"ping")
        assert conn.recv(100) == b"echo ping"
        assert conn.version == f"TLSv{version}"
        assert conn.alpn == "http/1.1"
    server.bg.join()
    assert server.bg.error is None, server.bg.error
    assert server.received == b"ping"
    assert meshtls.verify_svid([server.peer], bundles) == meshtls.SpiffeId(GATEWAY)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_wrong_id_sends_nothing_to_a_python_ssl_server(ca: meshtls.MeshCa, version: str) -> None:
    """The proof asked for: the server records every application byte; with the wrong
    expected ID it records none (its handshake ends with our alert), with the right one it
    records what was sent — so the test can fail."""
    bundles = bundles_of(ca)
    ctx = mtls.server_context(ca.issue(SIDECAR), bundles, min_version=version, max_version=version)
    server = SslServer(ctx)
    with pytest.raises(meshtls.PeerAuthorizationError, match=f"expected {OTHER}"):
        with mtls.connect(server.address, ca.issue(GATEWAY), bundles, expected=OTHER) as conn:
            conn.sendall(b"must never arrive")
    server.bg.join()
    assert server.received == b""
    assert isinstance(server.bg.error, ssl.SSLError), server.bg.error
    assert "CERTIFICATE_UNKNOWN" in str(server.bg.error).upper()

    control = SslServer(ctx)
    with mtls.connect(control.address, ca.issue(GATEWAY), bundles, expected=SIDECAR) as conn:
        conn.sendall(b"arrives")
        conn.recv(100)
    control.bg.join()
    assert control.received == b"arrives"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_python_ssl_client_to_listener(ca: meshtls.MeshCa, version: str) -> None:
    bundles = bundles_of(ca)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        server = echo_once(listener)
        ctx = mtls.client_context(ca.issue(GATEWAY), bundles, min_version=version, max_version=version)
        with socket.create_connection(listener.address, timeout=10) as raw, ctx.wrap_socket(raw) as tls:
            assert mtls.check_peer(tls, bundles, expected=[SIDECAR]) == meshtls.SpiffeId(SIDECAR)
            tls.sendall(b"ping")
            assert tls.recv(100) == f"hello {GATEWAY}".encode()
            assert tls.version() == f"TLSv{version}"
            assert tls.selected_alpn_protocol() == "http/1.1"
        server.join()
    assert server.error is None, server.error
    conn, received = server.result
    assert received == b"ping" and conn.version == f"TLSv{version}"


def test_python_ssl_client_without_certificate_is_refused(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        server = echo_once(listener)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(cadata=ca.root_cert_pem)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(listener.address, timeout=10) as raw:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw)
        server.join()
    assert isinstance(server.error, meshtls.TlsConnectionError)
    assert "certificate" in str(server.error).lower()


# ---- asyncio ------------------------------------------------------------------------------


def test_open_connection_against_python_ssl_asyncio_server(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    ctx = mtls.server_context(ca.issue(SIDECAR), bundles)
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await reader.read(1024)
            received.append(data)
            if data:
                writer.write(b"echo " + data)
                await writer.drain()
        except (ssl.SSLError, ConnectionError):
            received.append(b"<handshake failed>")
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        address = server.sockets[0].getsockname()
        async with server:
            reader, writer = await mtls.open_connection(address, ca.issue(GATEWAY), bundles, expected=SIDECAR)
            assert writer.get_extra_info("peer_spiffe_id") == meshtls.SpiffeId(SIDECAR)
            assert writer.get_extra_info("version") == "TLSv1.3"
            assert writer.get_extra_info("alpn") == "http/1.1"
            assert writer.get_extra_info("peername")[0] == "127.0.0.1"
            writer.write(b"ping" * 10000)  # several records
            await writer.drain()
            answer = await reader.readexactly(5 + 1024)
            assert answer.startswith(b"echo pingping")
            writer.close()
            await writer.wait_closed()

            with pytest.raises(meshtls.PeerAuthorizationError, match=f"expected {OTHER}"):
                await mtls.open_connection(address, ca.issue(GATEWAY), bundles, expected=OTHER)
            await asyncio.sleep(0.2)

    asyncio.run(main())
    assert received[0] == b"ping" * 256
    assert received[1:] in ([b"<handshake failed>"], [])  # never any application byte


def test_open_connection_to_listener_reads_until_close(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        server = echo_once(listener)

        async def main() -> bytes:
            config = mtls.ClientConfig(ca.issue(GATEWAY), bundles, expected=SIDECAR)
            reader, writer = await config.open_connection(listener.address)
            writer.write(b"hi")
            data = await reader.read()  # until the server's close_notify
            writer.close()
            await writer.wait_closed()
            return data

        assert asyncio.run(main()) == f"hello {GATEWAY}".encode()
        server.join()
    assert server.result[1] == b"hi"


def test_open_connection_timeout(ca: meshtls.MeshCa) -> None:
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        async def main() -> None:
            await mtls.open_connection(silent.getsockname(), ca.issue(GATEWAY), bundles_of(ca),
                                       expected=SIDECAR, timeout=0.3)

        with pytest.raises(meshtls.TlsConnectionError, match="timed out"):
            asyncio.run(main())
    finally:
        silent.close()


def test_refused_tcp_connection_is_a_typed_error_naming_the_address(ca: meshtls.MeshCa) -> None:
    # A port nobody listens on: bind, read the port, close.
    probe = socket.create_server(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()
    where = f"cannot connect to 127.0.0.1:{address[1]}"
    with pytest.raises(meshtls.TlsConnectionError, match=where):
        mtls.connect(address, ca.issue(GATEWAY), bundles_of(ca), expected=SIDECAR, timeout=2)

    async def main() -> None:
        await mtls.open_connection(address, ca.issue(GATEWAY), bundles_of(ca), expected=SIDECAR, timeout=2)

    with pytest.raises(meshtls.TlsConnectionError, match=where):
        asyncio.run(main())


# ---- openssl s_server / s_client -----------------------------------------------------------

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def write_pems(tmp_path: pathlib.Path, svid: meshtls.Svid, root: str) -> None:
    (tmp_path / "chain.pem").write_text(svid.cert_chain_pem)
    (tmp_path / "key.pem").write_text(svid.private_key_pem)
    (tmp_path / "root.pem").write_text(root)


@needs_openssl
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_connect_to_openssl_s_server(ca: meshtls.MeshCa, tmp_path: pathlib.Path, version: str) -> None:
    write_pems(tmp_path, ca.issue(SIDECAR), ca.root_cert_pem)
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", str(port), "-www", f"-tls1_{version[-1]}",
         "-cert", str(tmp_path / "chain.pem"), "-key", str(tmp_path / "key.pem"),
         "-CAfile", str(tmp_path / "root.pem"), "-Verify", "2", "-verify_return_error"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
        bundles = bundles_of(ca)
        with mtls.connect(("127.0.0.1", port), ca.issue(GATEWAY), bundles, expected=SIDECAR, alpn=()) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            page = conn.makefile("rb").read()
            assert conn.version == f"TLSv{version}"
            assert conn.alpn is None
        assert page.startswith(b"HTTP/1.0 200 ok")
        # s_server -www reports the client certificate it verified
        assert b"alb-controller" in page or b"Client certificate" in page
        with pytest.raises(meshtls.PeerAuthorizationError):
            mtls.connect(("127.0.0.1", port), ca.issue(GATEWAY), bundles, expected=OTHER)
    finally:
        proc.kill()
        proc.wait()


@needs_openssl
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_openssl_s_client_to_listener(ca: meshtls.MeshCa, tmp_path: pathlib.Path, version: str) -> None:
    write_pems(tmp_path, ca.issue(GATEWAY), ca.root_cert_pem)
    bundles = bundles_of(ca)
    with mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles) as listener:
        server = echo_once(listener)
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{listener.address[1]}", f"-tls1_{version[-1]}",
             "-cert", str(tmp_path / "chain.pem"), "-key", str(tmp_path / "key.pem"),
             "-CAfile", str(tmp_path / "root.pem"), "-verify_return_error", "-alpn", "istio-http/1.1,http/1.1",
             "-ign_eof"],
            input=b"ping from openssl", capture_output=True, timeout=30,
        )
        server.join()
    assert server.error is None, (server.error, out.stderr)
    conn, received = server.result
    assert received == b"ping from openssl"
    assert conn.peer_spiffe_id == meshtls.SpiffeId(GATEWAY)
    assert f"hello {GATEWAY}".encode() in out.stdout
    assert b"Verify return code: 0 (ok)" in out.stdout


# ---- the demo's sidecar --------------------------------------------------------------------


def demo_binary() -> pathlib.Path:
    # cargo builds into $CARGO_TARGET_DIR when it is set.
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    path = target / "debug" / "examples" / "gateway_to_sidecar"
    if not path.exists():
        if shutil.which("cargo") is None:
            pytest.fail("examples/gateway_to_sidecar is not built and cargo is not available: run `cargo build --example gateway_to_sidecar`")
        subprocess.run(["cargo", "build", "-q", "-p", "meshtls", "--example", "gateway_to_sidecar"], cwd=REPO, check=True)
    return path


class Demo:
    """The demo's app and sidecar as processes (examples/gateway_to_sidecar)."""

    def __init__(self, tmp_path: pathlib.Path, *extra: str) -> None:
        self.bin = str(demo_binary())
        self.dir = tmp_path / "mesh-ca"
        subprocess.run([self.bin, "ca", "--dir", str(self.dir)], check=True, capture_output=True, timeout=120)
        self.ca = meshtls.MeshCa.load(str(self.dir), trust_domain="cluster.local")
        self.bundles = meshtls.BundleSet.from_pem_map({"cluster.local": self.ca.root_cert_pem})
        app_port, self.port = free_port(), free_port()
        self.procs = [subprocess.Popen([self.bin, "app", "--listen", f"127.0.0.1:{app_port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        wait_port(app_port, self.procs[0])
        self.sidecar = subprocess.Popen(
            [self.bin, "sidecar", "--ca-dir", str(self.dir), "--listen", f"127.0.0.1:{self.port}",
             "--upstream", f"127.0.0.1:{app_port}", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.procs.append(self.sidecar)
        wait_port(self.port, self.sidecar)
        self.log: list[str] = []
        self.reader = Background(lambda: [self.log.append(line) for line in self.sidecar.stdout or []])

    def events(self, n: int) -> list[str]:
        deadline = time.time() + 10
        while time.time() < deadline and len([x for x in self.log if x.startswith("sidecar: ") and "after 0 bytes" not in x]) < n:
            time.sleep(0.05)
        # wait_port's probe is a connection that sends nothing
        return [x for x in self.log if x.startswith("sidecar: ") and "after 0 bytes" not in x]

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.reader.join()  # the sidecar's output ends with it
        if self.sidecar.stdout:
            self.sidecar.stdout.close()


def http_get(conn: Any) -> bytes:
    conn.sendall(b"GET /api/headers HTTP/1.1\r\nHost: api.demo.svc.cluster.local:8080\r\nConnection: close\r\n\r\n")
    with conn.makefile("rb") as f:
        return bytes(f.read())


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_demo_sidecar_strict(tmp_path: pathlib.Path, version: str) -> None:
    demo = Demo(tmp_path, "--mode", "STRICT")
    try:
        svid = demo.ca.issue(GATEWAY)
        address = ("127.0.0.1", demo.port)
        with mtls.connect(address, svid, demo.bundles, expected=SIDECAR, min_version=version, max_version=version) as conn:
            response = http_get(conn)
            assert conn.version == f"TLSv{version}"
        assert response.startswith(b"HTTP/1.1 200")
        assert f"URI={GATEWAY}".encode() in response  # the sidecar's XFCC names us

        # the wrong expected ID: refused in the handshake, the sidecar forwards nothing
        with pytest.raises(meshtls.PeerAuthorizationError):
            with mtls.connect(address, svid, demo.bundles, expected=OTHER) as conn:
                http_get(conn)
        events = demo.events(2)
        assert f"STRICT: mTLS from {GATEWAY}" in events[0]
        assert "STRICT: refused" in events[1] and "alert" in events[1]
        assert len(events) == 2  # no forwarding (and no "forwarding failed") after the refusal

        async def via_asyncio() -> bytes:
            reader, writer = await mtls.open_connection(address, svid, demo.bundles, expected=SIDECAR)
            writer.write(b"GET /api/headers HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            data = await reader.read()
            writer.close()
            return data

        assert asyncio.run(via_asyncio()).startswith(b"HTTP/1.1 200")
    finally:
        demo.close()


def test_demo_sidecar_permissive_needs_an_istio_alpn_and_refuses_other_clients(tmp_path: pathlib.Path) -> None:
    demo = Demo(tmp_path, "--mode", "PERMISSIVE", "--expect-peer", "spiffe://cluster.local/ns/demo/sa/frontend")
    try:
        address = ("127.0.0.1", demo.port)
        frontend = demo.ca.issue("spiffe://cluster.local/ns/demo/sa/frontend")
        with mtls.connect(address, frontend, demo.bundles, expected=SIDECAR) as conn:
            assert http_get(conn).startswith(b"HTTP/1.1 200")
            assert conn.alpn == "http/1.1"  # istio-http/1.1 selected the mTLS chain, http/1.1 the protocol
        # without an Istio ALPN the PERMISSIVE port passes the TLS through to the plaintext app
        with pytest.raises(meshtls.TlsConnectionError):
            with mtls.connect(address, frontend, demo.bundles, expected=SIDECAR, alpn=["http/1.1"]) as conn:
                http_get(conn)
        # the sidecar's authorizer refuses the gateway's ID (TLS 1.2: inside our handshake)
        with pytest.raises(meshtls.TlsConnectionError, match="alert"):
            with mtls.connect(address, demo.ca.issue(GATEWAY), demo.bundles, expected=SIDECAR,
                              max_version="1.2") as conn:
                http_get(conn)
        events = demo.events(3)
        assert f"PERMISSIVE: mTLS from spiffe://cluster.local/ns/demo/sa/frontend" in events[0]
        assert "raw passthrough" in events[1]
        assert f"peer {GATEWAY} is not authorized" in events[2]
    finally:
        demo.close()


@pytest.mark.parametrize("path", ["rustls", "ssl"])
def test_python_gateway_example_against_the_demo_sidecar(tmp_path: pathlib.Path, path: str) -> None:
    import sys

    demo = Demo(tmp_path, "--mode", "STRICT")
    try:
        example = REPO / "examples" / "python" / "gateway_client.py"
        base = [sys.executable, str(example), "--ca-dir", str(demo.dir), "--connect", f"127.0.0.1:{demo.port}"]
        if path == "ssl":
            base.append("--ssl")
        ok = subprocess.run(base, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert f"sidecar ID    {SIDECAR}" in ok.stdout
        assert "HTTP/1.1 200" in ok.stdout and f"URI={GATEWAY}" in ok.stdout
        wrong = subprocess.run(base + ["--expect-peer", OTHER], capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 1
        assert f"peer {SIDECAR} is not authorized: expected {OTHER}" in wrong.stderr
        if path == "rustls":
            assert "PeerAuthorizationError" in wrong.stderr
            # refused in the handshake: the sidecar saw an alert, never a request
            events = demo.events(2)
            assert "refused" in events[-1] and "alert" in events[-1], events
    finally:
        demo.close()


def test_guide_python_tls_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "docs" / "python.md").read_text()
    section = text[text.index("## mTLS from Python: the rustls path"):]
    snippet = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python\n") + 10)]
    exec(compile(snippet, "docs/python.md#mtls-from-python-the-rustls-path", "exec"), {})
    out = capsys.readouterr().out
    assert f"hello {GATEWAY}" in out
    assert f"peer {SIDECAR} is not authorized: expected {OTHER}" in out
    assert "sidecar: tls handshake failed: received fatal alert" in out


def test_serve_forever_handles_connections_concurrently(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    errors: list[BaseException] = []
    listener = mtls.serve(("127.0.0.1", 0), ca.issue(SIDECAR), bundles, mode="PERMISSIVE")

    def handler(conn: Any, _addr: Any) -> None:
        data = conn.recv(100)
        conn.sendall(b"got " + data + b" from " + str(conn.peer_spiffe_id if conn.peer else "plaintext").encode())

    server = threading.Thread(target=listener.serve_forever, args=(handler,), kwargs={"on_error": lambda e, a: errors.append(e)})
    server.start()
    try:
        stalled = socket.create_connection(listener.address, timeout=10)  # sends nothing, holds one thread
        with mtls.connect(listener.address, ca.issue(GATEWAY), bundles, expected=SIDECAR) as conn:
            conn.sendall(b"a")
            assert conn.recv(200) == f"got a from {GATEWAY}".encode()
        assert plain_get(listener.address, b"b") == b"got b from plaintext"
        with pytest.raises(meshtls.PeerAuthorizationError):
            mtls.connect(listener.address, ca.issue(GATEWAY), bundles, expected=OTHER)
        stalled.close()
    finally:
        listener.close()
        server.join(10)
    assert not server.is_alive()
    assert any(isinstance(e, meshtls.TlsConnectionError) and "alert" in str(e) for e in errors), errors


@pytest.mark.skipif(
    not hasattr(native, "_handshake_loop"),
    reason="the module was built without the binding's bench feature (scripts/test.sh builds with it)",
)
def test_handshakes_run_without_the_gil(ca: meshtls.MeshCa) -> None:
    """A thread keeps running Python while the core handshakes; a control call that holds the
    GIL for as long (a regular expression that backtracks) shows that it would not."""
    import re

    bundles = bundles_of(ca)
    client = mtls.ClientConfig(ca.issue(GATEWAY), bundles, expected=SIDECAR)
    server = mtls.ServerConfig(ca.issue(SIDECAR), bundles)

    def spins_during(call: Callable[[], Any]) -> tuple[int, float]:
        """How often this thread counts while another runs ``call``, and for how long."""
        done = threading.Event()

        def run() -> None:
            call()
            done.set()

        t = threading.Thread(target=run)
        begin = time.perf_counter()
        t.start()
        spins = 0
        while not done.is_set():
            spins += 1
        elapsed = time.perf_counter() - begin
        t.join()
        return spins, elapsed

    def spin_rate(seconds: float) -> float:
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n / seconds

    # grow the batch until one call lasts long enough to judge
    n = 4
    while True:
        spins, elapsed = spins_during(lambda: native._handshake_loop(client._native, server._native, n))
        if elapsed > 0.3 or n > 4096:
            break
        n *= 2
    free = spin_rate(elapsed)
    assert spins > 0.3 * free * elapsed, (spins, free * elapsed)

    pattern = re.compile(r"(a+)+$")
    size = 16
    while True:  # calibrate alone: one match that takes ~0.3 s
        t0 = time.perf_counter()
        pattern.match("a" * size + "b")
        if time.perf_counter() - t0 > 0.15 or size > 30:
            break
        size += 1
    held, held_elapsed = spins_during(lambda: pattern.match("a" * (size + 1) + "b"))
    assert held < 0.3 * spin_rate(held_elapsed) * held_elapsed, "the control should starve the spinner"


def test_asyncio_start_server_applies_the_mode(ca: meshtls.MeshCa) -> None:
    bundles = bundles_of(ca)
    seen: list[Any] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        peer = writer.get_extra_info("peer")
        seen.append((peer.spiffe_id if peer else None, data))
        writer.write(b"got " + data)
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await mtls.start_server(handle, ("127.0.0.1", 0), ca.issue(SIDECAR), bundles,
                                         mode="PERMISSIVE", authorizer=meshtls.Authorizer.id(GATEWAY))
        address = server.sockets[0].getsockname()
        async with server:
            # meshtls's asyncio client
            reader, writer = await mtls.open_connection(address, ca.issue(GATEWAY), bundles, expected=SIDECAR)
            writer.write(b"one")
            assert await reader.read() == b"got one"
            writer.close()
            # Python's ssl asyncio client
            r2, w2 = await asyncio.open_connection(*address, ssl=mtls.client_context(ca.issue(GATEWAY), bundles))
            w2.write(b"two")
            assert await r2.read() == b"got two"
            w2.close()
            # plaintext under PERMISSIVE
            r3, w3 = await asyncio.open_connection(*address)
            w3.write(b"three")
            assert await r3.read() == b"got three"
            w3.close()
            # an unauthorized client: refused in the handshake, the handler never runs
            r4, w4 = await asyncio.open_connection(*address, ssl=mtls.client_context(ca.issue(OTHER), bundles, min_version="1.3"))
            w4.write(b"four")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                if not await r4.read():
                    raise ConnectionError("closed")
            w4.close()
            await asyncio.sleep(0.1)

        strict = await mtls.start_server(handle, ("127.0.0.1", 0), ca.issue(SIDECAR), bundles)
        async with strict:
            r5, w5 = await asyncio.open_connection(*strict.sockets[0].getsockname())
            w5.write(b"five")
            assert await r5.read() == b""  # plaintext refused under STRICT
            w5.close()

    asyncio.run(main())
    assert seen == [(meshtls.SpiffeId(GATEWAY), b"one"), (meshtls.SpiffeId(GATEWAY), b"two"), (None, b"three")]
