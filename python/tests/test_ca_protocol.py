"""Istio's CA protocol against independent peers.

- meshtls.IstioCaServer against a grpcio client built by grpcio-tools from proto/istio/v1/auth/
  ca.proto, with CSRs made by pyca/cryptography and tokens signed by PyJWT (or by hand where
  PyJWT refuses to make the attack): good requests, every bad token, bad CSRs, garbage frames,
  renewal by client certificate; the server keeps serving after each.
- meshtls.IstioCaServer against raw HTTP/2 from the `h2` package (an independent HTTP/2
  implementation): gRPC's framing rules for a unary call, each refusal's code.
- meshtls.IstioCaClient against a small fake istiod written here with grpcio + cryptography.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib
import json
import pathlib
import socket
import ssl
import sys
import threading
import time
from concurrent import futures

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import meshtls

REPO = pathlib.Path(__file__).resolve().parents[2]
PROTO = REPO / "proto"
ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVER_NAME = "istiod.istio-system.svc"
UTC = dt.timezone.utc


# ---- generated stubs from our own .proto --------------------------------------------------


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("pb")
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "protoc",
            f"-I{PROTO}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO / "istio/v1/auth/ca.proto"),
        ]
    )
    assert rc == 0, "grpcio-tools could not compile proto/istio/v1/auth/ca.proto"
    sys.path.insert(0, str(out))
    try:
        ca_pb2 = importlib.import_module("istio.v1.auth.ca_pb2")
        ca_pb2_grpc = importlib.import_module("istio.v1.auth.ca_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return ca_pb2, ca_pb2_grpc


# ---- token issuer (RS256, as the Kubernetes API server signs) ------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n: int) -> str:
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "sa-key-1"

    def jwks(self) -> str:
        nums = self.key.public_key().public_numbers()
        return json.dumps(
            {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                       "n": int_b64(nums.n), "e": int_b64(nums.e)}]}
        )

    def claims(self, ns: str = "default", sa: str = "app", **over) -> dict:
        now = int(time.time())
        c = {"iss": ISSUER, "sub": f"system:serviceaccount:{ns}:{sa}", "aud": ["istio-ca"],
             "iat": now, "nbf": now, "exp": now + 3600,
             "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa, "uid": "u"}}}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, **over) -> str:
        return jwt.encode(self.claims(**over), self.key, algorithm="RS256",
                          headers={"kid": self.kid})

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def hs256_with_public_key(issuer: Issuer) -> str:
    """The key-confusion attack: HS256 keyed with the issuer's public key PEM (PyJWT refuses
    to build it, so it is built by hand)."""
    header = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = b64u(json.dumps(issuer.claims()).encode())
    sig = hmac.new(issuer.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64u(sig)}"


def alg_none(issuer: Issuer) -> str:
    header = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64u(json.dumps(issuer.claims()).encode())
    return f"{header}.{payload}."


# ---- CSRs from pyca/cryptography ------------------------------------------------------------


def make_csr(uri: str = "spiffe://cluster.local/ns/default/sa/app", *, dns: str | None = None,
             cn: str | None = None) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    if dns:
        names.append(x509.DNSName(dns))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(subject)
           .add_extension(x509.SubjectAlternativeName(names), critical=True)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


# ---- the meshtls server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer():
    return Issuer()


@pytest.fixture(scope="module")
def ca():
    return meshtls.MeshCa.create("cluster.local", key="ec-p256")


@pytest.fixture(scope="module")
def server(ca, issuer):
    with meshtls.IstioCaServer(ca, listen="127.0.0.1:0", jwks=issuer.jwks(), issuer=ISSUER) as s:
        yield s
    assert not s.running


def channel(ca, server, *, key_pem: bytes | None = None, chain_pem: bytes | None = None):
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.root_cert_pem.encode(), private_key=key_pem,
        certificate_chain=chain_pem)
    return grpc.secure_channel(f"localhost:{server.port}", creds,
                               options=[("grpc.ssl_target_name_override", SERVER_NAME)])


def call(pb, ca, server, csr: str, token: str | None, ttl: int = 3600, metadata=(),
         impersonate: str | None = None, **chan):
    ca_pb2, ca_pb2_grpc = pb
    with channel(ca, server, **chan) as ch:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(ch)
        md = list(metadata)
        if token is not None:
            md.append(("authorization", f"Bearer {token}"))
        request = ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=ttl)
        if impersonate is not None:  # ztunnel's request metadata (a protobuf Struct)
            request.metadata.update({"ImpersonatedIdentity": impersonate})
        return stub.CreateCertificate(request, metadata=md, timeout=10)


def assert_serving(pb, ca, server, issuer):
    csr, _ = make_csr()
    resp = call(pb, ca, server, csr, issuer.token())
    assert len(resp.cert_chain) == 2


def test_grpcio_client_gets_a_chain_for_the_token_identity(pb, ca, server, issuer):
    # The CSR asks for another identity and a DNS name: istiod ignores both.
    csr, key = make_csr("spiffe://cluster.local/ns/evil/sa/admin", dns="evil.example")
    resp = call(pb, ca, server, csr, issuer.token(ns="shop", sa="web"), ttl=7200)
    assert len(resp.cert_chain) == 2
    assert all(entry.endswith("-----END CERTIFICATE-----\n") for entry in resp.cert_chain)
    leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
    root = x509.load_pem_x509_certificate(resp.cert_chain[-1].encode())
    assert root.public_bytes(serialization.Encoding.PEM).decode() == ca.root_cert_pem
    leaf.verify_directly_issued_by(root)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/shop/sa/web"]
    assert san.value.get_values_for_type(x509.DNSName) == []
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert life == dt.timedelta(seconds=7200 + 120)
    # And meshtls's own verifier agrees.
    got = meshtls.verify_svid("".join(resp.cert_chain[:-1]),
                              meshtls.BundleSet.from_pem_map({"cluster.local": ca.root_cert_pem}))
    assert got == meshtls.SpiffeId("spiffe://cluster.local/ns/shop/sa/web")


def test_default_ttl_is_24h(pb, ca, server, issuer):
    csr, _ = make_csr()
    resp = call(pb, ca, server, csr, issuer.token(), ttl=0)
    leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(hours=24, minutes=2)


BAD_TOKENS = {
    "expired": lambda i: i.token(exp=int(time.time()) - 3600, nbf=int(time.time()) - 7200),
    "not yet valid": lambda i: i.token(nbf=int(time.time()) + 3600),
    "wrong aud": lambda i: i.token(aud=["kubernetes"]),
    "wrong iss": lambda i: i.token(iss="https://evil.example"),
    "missing sub": lambda i: i.token(sub=None),
    "sub not a service account": lambda i: i.token(sub="alice"),
    "missing exp": lambda i: i.token(exp=None),
    "bad signature": lambda i: Issuer().token(),
    "tampered payload": lambda i: (lambda t: t.split(".")[0] + "." + b64u(json.dumps(
        i.claims(ns="kube-system", sa="admin")).encode()) + "." + t.split(".")[2])(i.token()),
    "alg none": alg_none,
    "hs256 with the public key as secret": hs256_with_public_key,
    "not a jwt": lambda i: "garbage",
    "empty": lambda i: "",
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_unauthenticated_and_the_server_keeps_serving(pb, ca, server, issuer,
                                                                       name):
    csr, _ = make_csr()
    token = BAD_TOKENS[name](issuer)
    with pytest.raises(grpc.RpcError) as err:
        call(pb, ca, server, csr, token)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
    assert err.value.details() == "request authenticate failure"  # opaque
    assert_serving(pb, ca, server, issuer)


def test_no_credentials_and_foreign_cluster_are_unauthenticated(pb, ca, server, issuer):
    csr, _ = make_csr()
    with pytest.raises(grpc.RpcError) as err:
        call(pb, ca, server, csr, None)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        call(pb, ca, server, csr, issuer.token(), metadata=[("clusterid", "cluster-2")])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    call(pb, ca, server, csr, issuer.token(), metadata=[("clusterid", "Kubernetes")])


@pytest.mark.parametrize("csr", [
    "",
    "not a csr",
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
    "tampered",
    "rsa-1024",
])
def test_bad_csrs_are_invalid_argument(pb, ca, server, issuer, csr):
    if csr == "tampered":
        good, _ = make_csr()
        der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(
            serialization.Encoding.DER))
        der[-3] ^= 0x40
        csr = ("-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)).decode()
               + "-----END CERTIFICATE REQUEST-----\n")
    elif csr == "rsa-1024":
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    with pytest.raises(grpc.RpcError) as err:
        call(pb, ca, server, csr, issuer.token())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert_serving(pb, ca, server, issuer)


def test_ttl_over_the_maximum_is_refused_not_clamped(pb, ca, server, issuer):
    csr, _ = make_csr()
    with pytest.raises(grpc.RpcError) as err:
        call(pb, ca, server, csr, issuer.token(), ttl=91 * 24 * 3600)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_renewal_by_client_certificate(pb, ca, server):
    svid = ca.issue("spiffe://cluster.local/ns/gw/sa/agc", ttl=dt.timedelta(hours=1))
    csr, _ = make_csr("spiffe://cluster.local/ns/gw/sa/agc")
    resp = call(pb, ca, server, csr, None, key_pem=svid.private_key_pem.encode(),
                chain_pem=svid.cert_chain_pem.encode())
    leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
    uris = leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://cluster.local/ns/gw/sa/agc"]


def test_garbage_frames_never_stop_the_server(pb, ca, server, issuer):
    # Not TLS at all.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 8)
        try:
            s.recv(100)
        except OSError:
            pass
    # TLS, then junk instead of HTTP/2.
    ctx = ssl.create_default_context(cadata=ca.root_cert_pem)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 4096)
            try:
                s.recv(100)
            except OSError:
                pass
    # Valid gRPC framing, invalid protobuf.
    with channel(ca, server) as ch:
        raw_call = ch.unary_unary("/istio.v1.auth.IstioCertificateService/CreateCertificate")
        with pytest.raises(grpc.RpcError) as err:
            raw_call(b"\x0a\xff\xff\xff\xff\x0f", timeout=5,
                     metadata=[("authorization", f"Bearer {issuer.token()}")])
        assert err.value.code() != grpc.StatusCode.OK
        unknown = ch.unary_unary("/istio.v1.auth.IstioCertificateService/Nope")
        with pytest.raises(grpc.RpcError) as err:
            unknown(b"", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert_serving(pb, ca, server, issuer)


# ---- raw HTTP/2 from an independent implementation (the `h2` package) -------------------------

METHOD = "/istio.v1.auth.IstioCertificateService/CreateCertificate"


def grpc_frame(message: bytes, *, flag: int = 0, length: int | None = None) -> bytes:
    n = len(message) if length is None else length
    return bytes([flag]) + n.to_bytes(4, "big") + message


def raw_call(ca, server, *, method: str = "POST", path: str = METHOD,
             content_type: str = "application/grpc", chunks: tuple[bytes, ...] = (),
             headers: tuple[tuple[str, str], ...] = (), reset_after: int | None = None):
    """One stream over TLS with the `h2` package: the response headers, body and trailers
    (as dicts of str), or None when the stream was reset (`reset_after`: send that many
    chunks, then RST_STREAM)."""
    import h2.config
    import h2.connection
    import h2.events

    ctx = ssl.create_default_context(cadata=ca.root_cert_pem)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
            assert s.selected_alpn_protocol() == "h2"
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            s.sendall(conn.data_to_send())
            # The server's SETTINGS (a 1 MiB stream window) before the first DATA frame.
            while not any(isinstance(ev, h2.events.RemoteSettingsChanged)
                          for ev in conn.receive_data(s.recv(65536))):
                pass
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", method), (":scheme", "https"),
                                    (":authority", SERVER_NAME), (":path", path),
                                    ("content-type", content_type), ("te", "trailers"),
                                    *headers])
            for i, chunk in enumerate(chunks):
                if reset_after is not None and i == reset_after:
                    conn.reset_stream(sid)
                    s.sendall(conn.data_to_send())
                    return None
                # Wait for the server's WINDOW_UPDATEs when the window is too small.
                while conn.local_flow_control_window(sid) < len(chunk):
                    s.sendall(conn.data_to_send())
                    for ev in conn.receive_data(s.recv(65536)):
                        if isinstance(ev, (h2.events.StreamReset, h2.events.ResponseReceived)):
                            return None
                conn.send_data(sid, chunk)
            conn.end_stream(sid)
            s.sendall(conn.data_to_send())
            head: dict[str, str] = {}
            trailers: dict[str, str] = {}
            body = b""
            while True:
                data = s.recv(65536)
                assert data, "the server closed the connection without answering"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        head = {k.decode(): v.decode() for k, v in ev.headers}
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        trailers = {k.decode(): v.decode() for k, v in ev.headers}
                    elif isinstance(ev, h2.events.StreamReset):
                        return None
                    if isinstance(ev, h2.events.StreamEnded):
                        return head, body, trailers
                s.sendall(conn.data_to_send())


def grpc_status(answer) -> int:
    head, _, trailers = answer
    return int(trailers.get("grpc-status", head.get("grpc-status", "-1")))


def test_raw_http2_peer_gets_grpc_answers(pb, ca, server, issuer):
    ca_pb2, _ = pb
    csr, _ = make_csr()
    message = ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=3600).SerializeToString()
    auth = (("authorization", f"Bearer {issuer.token()}"),)
    # The message cut into 7-byte DATA frames is one message: answered.
    framed = grpc_frame(message)
    ok = raw_call(ca, server, headers=auth,
                  chunks=tuple(framed[i:i + 7] for i in range(0, len(framed), 7)))
    assert ok is not None and grpc_status(ok) == 0, ok
    head, body, _ = ok
    assert head[":status"] == "200" and head["content-type"] == "application/grpc"
    answer = ca_pb2.IstioCertificateResponse.FromString(body[5:])
    assert int.from_bytes(body[1:5], "big") == len(body) - 5 and len(answer.cert_chain) == 2
    # gRPC's codes for what a unary call may not be (Trailers-Only answers, HTTP 200).
    cases = {
        # Compressed without a grpc-encoding: INTERNAL, as tonic and grpc-go answer.
        "compressed": (dict(chunks=(grpc_frame(message, flag=1),)), 13),
        "bad flag": (dict(chunks=(grpc_frame(message, flag=9),)), 13),  # INTERNAL
        "two messages": (dict(chunks=(framed + framed,)), 13),
        "no message": (dict(chunks=()), 13),
        "cut short": (dict(chunks=(framed[:-3],)), 13),
        "over 64 KiB": (dict(chunks=(grpc_frame(b"", length=70_000),)), 8),  # RESOURCE_EXHAUSTED
        "body over 64 KiB": (dict(chunks=(b"\0" * 16_000,) * 5), 8),
        "GET": (dict(method="GET", chunks=(framed,)), 12),
        "unknown path": (dict(path="/istio.v1.auth.IstioCertificateService/Other",
                              chunks=(framed,)), 12),
        "no token": (dict(chunks=(framed,), headers=()), 16),  # UNAUTHENTICATED
    }
    for name, (kw, code) in cases.items():
        kw.setdefault("headers", auth)
        answer = raw_call(ca, server, **kw)
        assert answer is not None, name
        assert grpc_status(answer) == code, (name, answer)
        assert answer[0][":status"] == "200", name
    # Not gRPC at all: HTTP 415, as gRPC's HTTP/2 protocol says.
    answer = raw_call(ca, server, content_type="application/json", chunks=(framed,))
    assert answer is not None and answer[0][":status"] == "415"
    # A stream reset halfway through its body: nothing to answer, the server goes on.
    assert raw_call(ca, server, headers=auth, chunks=(framed[:10], framed[10:]),
                    reset_after=1) is None
    assert_serving(pb, ca, server, issuer)


def test_strict_csr_mode(pb, ca, issuer):
    with meshtls.IstioCaServer(ca, jwks=issuer.jwks(), issuer=ISSUER, strict_csr=True) as strict:
        good, _ = make_csr("spiffe://cluster.local/ns/default/sa/app")
        call(pb, ca, strict, good, issuer.token())
        for bad in (make_csr(dns="x.example")[0], make_csr(cn="app")[0],
                    make_csr("spiffe://cluster.local/ns/other/sa/x")[0]):
            with pytest.raises(grpc.RpcError) as err:
                call(pb, ca, strict, bad, issuer.token())
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_meshtls_client_against_meshtls_server(ca, server, issuer, tmp_path):
    token_file = tmp_path / "istio-token"
    token_file.write_text(issuer.token(ns="gateway", sa="agc"))
    client = meshtls.IstioCaClient(f"localhost:{server.port}", root_cert_pem=ca.root_cert_pem,
                                   token_file=token_file)
    assert client.server_name == SERVER_NAME
    svid = client.fetch_svid("spiffe://cluster.local/ns/gateway/sa/agc",
                             ttl=dt.timedelta(hours=2), key="rsa-2048")
    assert str(svid.spiffe_id) == "spiffe://cluster.local/ns/gateway/sa/agc"
    assert svid.not_after - svid.not_before == dt.timedelta(hours=2, minutes=2)
    renewed = meshtls.IstioCaClient(f"localhost:{server.port}",
                                    root_cert_pem=ca.root_cert_pem).renew(svid)
    assert renewed.spiffe_id == svid.spiffe_id
    token_file.write_text(Issuer().token(ns="gateway", sa="agc"))
    with pytest.raises(meshtls.CaProtocolError, match="request authenticate failure"):
        client.fetch_svid("spiffe://cluster.local/ns/gateway/sa/agc")
    with pytest.raises(meshtls.CaProtocolError, match="unreachable"):
        meshtls.IstioCaClient("localhost:1", root_cert_pem=ca.root_cert_pem,
                              token="x").fetch_svid("spiffe://cluster.local/ns/a/sa/b")
    with pytest.raises(meshtls.CaProtocolError, match="invalid address"):
        meshtls.IstioCaClient("nohost", root_cert_pem=ca.root_cert_pem)
    with pytest.raises(meshtls.CaError):
        client.fetch_svid("spiffe://cluster.local/ns/a/sa/b", key="rsa-1024")


def test_concurrent_fetches_from_python_threads(ca, server, issuer):
    # fetch_svid releases the GIL while it waits (py.detach); 16 threads share one client.
    client = meshtls.IstioCaClient(f"localhost:{server.port}", root_cert_pem=ca.root_cert_pem,
                                   token=issuer.token())
    results: list[object] = []

    def work():
        results.append(client.fetch_svid("spiffe://cluster.local/ns/default/sa/app"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16


# ---- keep_fresh: rotation in the background ----------------------------------------------


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_ttl_under_the_floor_is_refused_and_logged(pb, ca, server, issuer, caplog):
    csr, _ = make_csr()
    with caplog.at_level("INFO", logger="meshtls.ca_protocol"):
        with pytest.raises(grpc.RpcError) as err:
            call(pb, ca, server, csr, issuer.token(), ttl=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "invalid certificate request"
        resp = call(pb, ca, server, csr, issuer.token(), ttl=240)
    leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(minutes=6)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records
             if r.name == "meshtls.ca_protocol"]
    assert ("WARNING", "ca server: INVALID_ARGUMENT (invalid certificate request): "
            "spiffe://cluster.local/ns/default/sa/app: requested ttl 60s is less than the min "
            "allowed ttl 240s (agents renew at notBefore + half the lifetime and notBefore is "
            "back-dated by 120s: a shorter ttl makes them renew in a loop)") in lines, lines
    assert ("INFO", "ca server: OK: signed a certificate chain of 2 entries for "
            "spiffe://cluster.local/ns/default/sa/app, ttl 240s") in lines, lines


def test_ttl_bounds_are_checked(ca):
    with pytest.raises(meshtls.CaProtocolError, match="min 600s, default 300s"):
        meshtls.IstioCaServer(ca, min_ttl=dt.timedelta(minutes=10),
                              default_ttl=dt.timedelta(minutes=5))


ZTUNNEL = "spiffe://cluster.local/ns/istio-system/sa/ztunnel"
WEB = "spiffe://cluster.local/ns/shop/sa/web"


@pytest.mark.parametrize("accounts", [
    {"istio-system/ztunnel": None},
    {ZTUNNEL: [WEB]},
    {"istio-system/ztunnel": ["shop/web"]},
])
def test_impersonation_by_a_trusted_node_account(pb, ca, issuer, accounts, caplog):
    with meshtls.IstioCaServer(ca, jwks=issuer.jwks(), issuer=ISSUER,
                               trusted_node_accounts=accounts) as s:
        csr, _ = make_csr(WEB)
        resp = call(pb, ca, s, csr, issuer.token(ns="istio-system", sa="ztunnel"),
                    impersonate=WEB)
        leaf = x509.load_pem_x509_certificate(resp.cert_chain[0].encode())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [WEB]
        # Another caller may not; istiod's message, the reason in the log.
        with caplog.at_level("WARNING", logger="meshtls.ca_protocol"):
            with pytest.raises(grpc.RpcError) as err:
                call(pb, ca, s, csr, issuer.token(ns="shop", sa="db"),
                     impersonate=WEB)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.value.details() == "request impersonation authentication failure"
        assert any("spiffe://cluster.local/ns/shop/sa/db is not a trusted node account"
                   in r.getMessage() for r in caplog.records), caplog.records


def test_impersonation_without_node_accounts_is_refused(pb, ca, server, issuer):
    csr, _ = make_csr(WEB)
    with pytest.raises(grpc.RpcError) as err:
        call(pb, ca, server, csr, issuer.token(ns="istio-system", sa="ztunnel"),
             impersonate=WEB)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "request impersonation authentication failure"


def test_cluster_id_dns_names_and_config_file(pb, ca, issuer, tmp_path):
    conf = tmp_path / "ca.yaml"
    conf.write_text("clusterId: east\nextraDnsNames: [ca.example]\nminTtl: 1h\n")
    with meshtls.IstioCaServer(ca, jwks=issuer.jwks(), issuer=ISSUER, config_file=conf,
                               extra_dns_names=["localhost"]) as s:
        csr, _ = make_csr()
        call(pb, ca, s, csr, issuer.token(), metadata=[("clusterid", "east")])
        with pytest.raises(grpc.RpcError) as err:
            call(pb, ca, s, csr, issuer.token(), metadata=[("clusterid", "Kubernetes")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:  # the file's floor
            call(pb, ca, s, csr, issuer.token(), ttl=1800)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Python's ssl checks the serving names: istiod's kept, the added ones there.
        ctx = ssl.create_default_context(cadata=ca.root_cert_pem)
        for name in ["localhost", "ca.example", SERVER_NAME]:
            with socket.create_connection(("127.0.0.1", s.port)) as raw, \
                    ctx.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() is not None
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", s.port)) as raw:
                ctx.wrap_socket(raw, server_hostname="other.example")
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusterID: east\n")
    with pytest.raises(meshtls.ManifestError, match="clusterID"):
        meshtls.IstioCaServer(ca, config_file=bad)


AGC = "spiffe://cluster.local/ns/gateway/sa/agc"
# The server backdates not_before by 2 min, so a 130 s certificate lives 250 s: Istio's rule
# renews it at half of that before not_after, i.e. about 5 s (+- 2.5 s jitter) after issuance.
SHORT_TTL = dt.timedelta(seconds=130)


@pytest.fixture(scope="module")
def short_server(ca, issuer):
    """A server without the TTL floor: the renewal tests want certificates due at once."""
    with meshtls.IstioCaServer(ca, jwks=issuer.jwks(), issuer=ISSUER,
                               min_ttl=dt.timedelta(0)) as s:
        yield s


def test_keep_fresh_rotates_the_material_in_place(ca, short_server, issuer):
    import meshtls.tls as mtls

    server = short_server
    client = meshtls.IstioCaClient(f"localhost:{server.port}", root_cert_pem=ca.root_cert_pem,
                                   token=issuer.token(ns="gateway", sa="agc"))
    material = mtls.TlsMaterial(ca.issue(AGC), {"cluster.local": ca.root_cert_pem})
    issued_locally = material.cert_chain_der[0]
    with client.keep_fresh(material, AGC, ttl=SHORT_TTL) as handle:
        # The first certificate came from the server, with the token, before keep_fresh returned.
        first = material.cert_chain_der[0]
        assert first != issued_locally
        assert handle.svid is not None and handle.svid.cert_chain_der[0] == first
        assert handle.running and handle.renewals == 0 and handle.error is None
        # Renewed in the background (by client certificate) while Python goes on.
        assert wait_for(lambda: handle.renewals >= 1), handle
        renewed = material.cert_chain_der[0]
        assert renewed != first
        cert = x509.load_der_x509_certificate(renewed)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == SHORT_TTL + dt.timedelta(minutes=2)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [AGC]
        assert handle.svid.cert_chain_der[0] == renewed
    assert not handle.running
    assert handle.error is None
    handle.stop()  # idempotent
    assert "running=False" in repr(handle)


def test_keep_fresh_surfaces_the_error_that_ends_it(ca, issuer):
    import meshtls.tls as mtls

    own = meshtls.IstioCaServer(ca, listen="127.0.0.1:0", jwks=issuer.jwks(), issuer=ISSUER,
                                min_ttl=dt.timedelta(0))
    own.start()
    client = meshtls.IstioCaClient(f"localhost:{own.port}", root_cert_pem=ca.root_cert_pem,
                                   token=issuer.token(ns="gateway", sa="agc"))
    material = mtls.TlsMaterial(ca.issue(AGC), {"cluster.local": ca.root_cert_pem})
    handle = client.keep_fresh(material, AGC, ttl=SHORT_TTL, max_failures=2,
                               initial_backoff=dt.timedelta(milliseconds=50))
    kept = material.cert_chain_der[0]
    own.stop()
    # The renewal finds no server: two tries with backoff, then the loop ends with the error.
    assert wait_for(lambda: not handle.running), handle
    assert isinstance(handle.error, meshtls.CaProtocolError)
    assert "unreachable" in str(handle.error)
    assert handle.renewals == 0
    assert material.cert_chain_der[0] == kept, "a failed renewal leaves the material alone"
    handle.stop()
    assert isinstance(handle.error, meshtls.CaProtocolError), "the error stays on the handle"


def test_keep_fresh_checks_its_arguments(ca, server, issuer):
    import meshtls.tls as mtls

    client = meshtls.IstioCaClient(f"localhost:{server.port}", root_cert_pem=ca.root_cert_pem,
                                   token=issuer.token(ns="gateway", sa="agc"))
    material = mtls.TlsMaterial(ca.issue(AGC), {"cluster.local": ca.root_cert_pem})
    with pytest.raises(TypeError, match="TlsMaterial"):
        client.keep_fresh("not a material", AGC)
    with pytest.raises(meshtls.InvalidArgumentError, match="max_failures"):
        client.keep_fresh(material, AGC, max_failures=0)
    with pytest.raises(meshtls.InvalidArgumentError, match="backoff"):
        client.keep_fresh(material, AGC, initial_backoff=dt.timedelta(0))
    with pytest.raises(meshtls.CaProtocolError, match="svid names"):
        client.keep_fresh(material, AGC, svid=ca.issue("spiffe://cluster.local/ns/a/sa/b"))
    # The token names another identity: the first fetch fails and raises at once.
    with pytest.raises(meshtls.CaProtocolError, match="bad chain|names"):
        client.keep_fresh(material, "spiffe://cluster.local/ns/other/sa/x")
    # A given svid is used as is (no first fetch) and put into the material.
    svid = ca.issue(AGC, ttl=dt.timedelta(hours=1))
    with client.keep_fresh(material, AGC, svid=svid) as handle:
        assert handle.svid.cert_chain_der[0] == svid.cert_chain_der[0]
        assert material.cert_chain_der[0] == svid.cert_chain_der[0]


# ---- the meshtls client against a fake istiod (grpcio + cryptography) ----------------------


class FakeIstiod:
    """A CA server of the same protocol, independent of meshtls: its own root, serving
    certificate for istiod.istio-system.svc, and a switch for misbehaving."""

    def __init__(self, pb) -> None:
        self.ca_pb2, self.ca_pb2_grpc = pb
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
        self.root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5))
                     .not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.root_pem = self.root.public_bytes(serialization.Encoding.PEM).decode()
        self.mode = "ok"
        self.seen: list[dict[str, str]] = []
        serving_key = ec.generate_private_key(ec.SECP256R1())
        serving = self.leaf(serving_key.public_key(), None, dns=[SERVER_NAME], ttl=3600)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        outer = self

        class Servicer(self.ca_pb2_grpc.IstioCertificateServiceServicer):
            def CreateCertificate(self, request, context):
                return outer.handle(request, context)

        self.ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(Servicer(), self.server)
        creds = grpc.ssl_server_credentials([(
            serving_key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
            serving.public_bytes(serialization.Encoding.PEM))])
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def leaf(self, public_key, uri: str | None, *, dns=(), ttl: int) -> x509.Certificate:
        now = dt.datetime.now(UTC)
        names = ([x509.UniformResourceIdentifier(uri)] if uri else []) + [x509.DNSName(d) for d in dns]
        return (x509.CertificateBuilder().subject_name(x509.Name([]))
                .issuer_name(self.root.subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=2))
                .not_valid_after(now + dt.timedelta(seconds=ttl))
                .add_extension(x509.SubjectAlternativeName(names), critical=True)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                             False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self.key, hashes.SHA256()))

    def handle(self, request, context):
        md = dict(context.invocation_metadata())
        self.seen.append(md)
        if self.mode == "unauthenticated":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "fake istiod says no")
        if self.mode == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded")
        csr = x509.load_pem_x509_csr(request.csr.encode())
        assert csr.is_signature_valid
        uri = csr.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)[0]
        if self.mode == "other identity":
            uri = "spiffe://cluster.local/ns/other/sa/x"
        key = csr.public_key()
        if self.mode == "other key":
            key = ec.generate_private_key(ec.SECP256R1()).public_key()
        leaf = self.leaf(key, uri, ttl=request.validity_duration or 86400)
        entries = [leaf.public_bytes(serialization.Encoding.PEM).decode(), self.root_pem]
        if self.mode == "one entry":
            entries = ["".join(entries), self.root_pem]
        if self.mode == "leaf only":
            entries = entries[:1]
        if self.mode == "foreign root":
            other = FakeIstiod.__new__(FakeIstiod)
            other.key = ec.generate_private_key(ec.SECP256R1())
            other.root = self.root
            entries = [other.leaf(key, uri, ttl=3600).public_bytes(
                serialization.Encoding.PEM).decode(), self.root_pem]
        return self.ca_pb2.IstioCertificateResponse(cert_chain=entries)

    def stop(self) -> None:
        self.server.stop(0)


@pytest.fixture()
def fake(pb):
    f = FakeIstiod(pb)
    yield f
    f.stop()


GW = "spiffe://cluster.local/ns/gateway/sa/agc"


def test_meshtls_client_against_fake_istiod(fake):
    client = meshtls.IstioCaClient(f"localhost:{fake.port}", root_cert_pem=fake.root_pem,
                                   token="the-token", cluster_id="Kubernetes",
                                   headers={"x-meshtls-test": "1"})
    svid = client.fetch_svid(GW, ttl=dt.timedelta(hours=1), key="ec-p384")
    assert str(svid.spiffe_id) == GW
    md = fake.seen[-1]
    assert md["authorization"] == "Bearer the-token"
    assert md["clusterid"] == "Kubernetes"
    assert md["x-meshtls-test"] == "1"
    # The key in the returned leaf is the one generated for the CSR.
    leaf = x509.load_pem_x509_certificate(svid.cert_chain_pem.encode())
    key = serialization.load_pem_private_key(svid.private_key_pem.encode(), None)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("mode,message", [
    ("unauthenticated", "refused authentication: fake istiod says no"),
    ("unavailable", "UNAVAILABLE: overloaded"),
    ("one entry", "exactly one per entry"),
    ("leaf only", "at least 2"),
    ("other identity", "ns/other/sa/x"),
    ("other key", "bad certificate chain"),
    ("foreign root", "bad certificate chain"),
])
def test_meshtls_client_refuses_bad_answers(fake, mode, message):
    fake.mode = mode
    client = meshtls.IstioCaClient(f"localhost:{fake.port}", root_cert_pem=fake.root_pem,
                                   token="t")
    with pytest.raises(meshtls.CaProtocolError) as err:
        client.fetch_svid(GW)
    assert message in str(err.value)


def test_meshtls_client_checks_the_server_name_and_root(fake, ca):
    with pytest.raises(meshtls.CaProtocolError, match="istiod.other.svc"):
        meshtls.IstioCaClient(f"localhost:{fake.port}", root_cert_pem=fake.root_pem, token="t",
                              server_name="istiod.other.svc").fetch_svid(GW)
    with pytest.raises(meshtls.CaProtocolError, match="tls handshake"):
        meshtls.IstioCaClient(f"localhost:{fake.port}", root_cert_pem=ca.root_cert_pem,
                              token="t").fetch_svid(GW)
