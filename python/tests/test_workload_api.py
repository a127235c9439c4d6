"""The Workload API server against py-spiffe (PyPI ``spiffe``: ``WorkloadApiClient``,
``X509Source``, ``JwtSource``, ``JwtSvid``) and against raw gRPC calls (grpcio) decoded with
py-spiffe's generated messages: fetch, watch across a rotation, JWT both ways, the security
header, the refusals, attestation by uid and by the binary's path, a registration file
reloaded on change, and the test mode's injected failures."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest

import meshtls
from meshtls.workload_api import WorkloadApiServer, fake_server

spiffe = pytest.importorskip(
    "spiffe", reason="py-spiffe is not installed (python/requirements-test.txt)"
)
grpc = pytest.importorskip("grpc", reason="grpcio is not installed (python/requirements-test.txt)")
from spiffe._proto import workload_pb2  # noqa: E402

TD = "example.org"
APP = "spiffe://example.org/app"
ADMIN = "spiffe://example.org/admin"
HEADER = [("workload.spiffe.io", "true")]


def _ca() -> meshtls.MeshCa:
    return meshtls.MeshCa.create(TD, key="ec-p256")


def _serial(svid) -> int:  # type: ignore[no-untyped-def]
    return svid.leaf.serial_number


def test_py_spiffe_fetches_x509_and_jwt_svids() -> None:
    with fake_server(TD, identities=[(APP, "app"), (ADMIN, "admin")]) as api:
        client = spiffe.WorkloadApiClient(socket_path=api.endpoint, default_timeout=10)
        try:
            svid = client.fetch_x509_svid()
            assert str(svid.spiffe_id) == APP
            # The chain verifies against the test CA's root with meshtls.
            chain = [c.public_bytes(_der()) for c in svid.cert_chain]
            got = meshtls.verify_svid(chain, meshtls.BundleSet.from_pem_map({TD: api.root_cert_pem}))
            assert str(got) == APP
            assert [str(s.spiffe_id) for s in client.fetch_x509_svids()] == [APP, ADMIN]
            bundles = client.fetch_x509_bundles()
            assert bundles.get_bundle_for_trust_domain(spiffe.TrustDomain(TD)) is not None

            jwt = client.fetch_jwt_svid(audience={"billing"})
            assert str(jwt.spiffe_id) == APP
            # meshtls validates py-spiffe's token with the served bundle ...
            ok = meshtls.validate_jwt_svid(jwt.token, {TD: api.jwks}, audience=["billing"])
            assert str(ok.spiffe_id) == APP
            # ... py-spiffe validates it with the JWT bundles the server streams (no `use`) ...
            jwt_bundles = client.fetch_jwt_bundles()
            bundle = jwt_bundles.get_bundle_for_trust_domain(spiffe.TrustDomain(TD))
            parsed = spiffe.JwtSvid.parse_and_validate(jwt.token, bundle, {"billing"})
            assert str(parsed.spiffe_id) == APP
            # ... and the server validates it for py-spiffe, refusing another audience.
            assert str(client.validate_jwt_svid(jwt.token, "billing").spiffe_id) == APP
            with pytest.raises(Exception, match="INVALID_ARGUMENT"):
                client.validate_jwt_svid(jwt.token, "payments")
            admin = client.fetch_jwt_svid(audience={"a"}, subject=spiffe.SpiffeId(ADMIN))
            assert str(admin.spiffe_id) == ADMIN
        finally:
            client.close()


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_x509_source_follows_rotations_and_jwt_source_fetches() -> None:
    with fake_server(TD, identities=[APP]) as api:
        source = spiffe.X509Source(socket_path=api.endpoint, timeout_in_seconds=10)
        try:
            first = _serial(source.get_x509_context().default_svid)
            updated = threading.Event()
            source.subscribe_for_updates(updated.set)
            api.rotate()
            assert updated.wait(10), "the rotation reached the X509Source"
            deadline = time.monotonic() + 10
            while _serial(source.get_x509_context().default_svid) == first and time.monotonic() < deadline:
                time.sleep(0.05)
            svid = source.get_x509_context().default_svid
            assert _serial(svid) != first
            assert str(svid.spiffe_id) == APP
        finally:
            source.close()
        jwt_source = spiffe.JwtSource(socket_path=api.endpoint, timeout_in_seconds=10)
        try:
            token = jwt_source.fetch_svid(audience={"billing"})
            assert str(token.spiffe_id) == APP
        finally:
            jwt_source.close()


def test_scripted_rotations_reach_an_open_stream() -> None:
    with fake_server(TD, identities=[APP], rotate_every=dt.timedelta(milliseconds=300)) as api:
        channel = grpc.insecure_channel(api.endpoint)
        call = channel.unary_stream(
            "/SpiffeWorkloadAPI/FetchX509SVID",
            request_serializer=lambda _: b"",
            response_deserializer=workload_pb2.X509SVIDResponse.FromString,
        )
        stream = call(None, metadata=HEADER, timeout=20)
        serials = set()
        for msg in stream:
            assert msg.svids[0].spiffe_id == APP
            assert msg.svids[0].bundle and msg.svids[0].x509_svid_key
            serials.add(bytes(msg.svids[0].x509_svid[:64]))
            if len(serials) == 3:
                break
        stream.cancel()
        channel.close()
        assert len(serials) == 3


def test_security_header_and_wit_methods() -> None:
    with fake_server(TD, identities=[APP]) as api:
        channel = grpc.insecure_channel(api.endpoint)
        call = channel.unary_stream(
            "/SpiffeWorkloadAPI/FetchX509SVID",
            request_serializer=lambda _: b"",
            response_deserializer=workload_pb2.X509SVIDResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as err:
            next(call(None, timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "security header" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            next(call(None, metadata=[("workload.spiffe.io", "True")], timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        first = next(call(None, metadata=HEADER, timeout=10))
        assert first.svids[0].spiffe_id == APP
        wit = channel.unary_stream(
            "/SpiffeWorkloadAPI/FetchWITSVID",
            request_serializer=lambda _: b"",
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as err:
            next(wit(None, metadata=HEADER, timeout=10))
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        jwt = channel.unary_unary(
            "/SpiffeWorkloadAPI/FetchJWTSVID",
            request_serializer=workload_pb2.JWTSVIDRequest.SerializeToString,
            response_deserializer=workload_pb2.JWTSVIDResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as err:
            jwt(workload_pb2.JWTSVIDRequest(), metadata=HEADER, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        channel.close()


def test_unregistered_uid_is_denied_and_path_selectors_attest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sock = f"unix://{tmp_path}/api.sock"
    other = [{"spiffe_id": APP, "selectors": [f"unix:uid:{os.geteuid() + 1}"]}]
    with WorkloadApiServer(_ca(), socket=sock, entries=other) as server:
        client = spiffe.WorkloadApiClient(socket_path=server.endpoint, default_timeout=10)
        with pytest.raises(Exception, match="PERMISSION_DENIED"):
            client.fetch_x509_svid()
        with pytest.raises(Exception, match="PERMISSION_DENIED"):
            client.fetch_jwt_svid(audience={"a"})
        # The binary of this process, through /proc/<pid>/exe.
        exe = os.path.realpath(sys.executable)
        server.set_entries(
            [{"spiffe_id": ADMIN, "selectors": [f"unix:path:{exe}", f"unix:uid:{os.geteuid()}"]}]
        )
        assert str(client.fetch_x509_svid().spiffe_id) == ADMIN
        server.set_entries([{"spiffe_id": ADMIN, "selectors": ["unix:path:/nonexistent/bin"]}])
        with pytest.raises(Exception, match="PERMISSION_DENIED"):
            client.fetch_x509_svid()
        client.close()


def test_registration_file_is_reloaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = tmp_path / "registration.yaml"
    uid = os.geteuid()
    reg.write_text(f"entries:\n  - spiffe_id: {APP}\n    selectors: ['unix:uid:{uid}']\n")
    sock = f"unix://{tmp_path}/api.sock"
    with WorkloadApiServer(_ca(), socket=sock, registration=reg) as server:
        client = spiffe.WorkloadApiClient(socket_path=server.endpoint, default_timeout=10)
        assert str(client.fetch_x509_svid().spiffe_id) == APP
        reg.write_text(json.dumps({"entries": [{"spiffe_id": ADMIN, "selectors": [f"unix:uid:{uid}"]}]}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if str(client.fetch_x509_svid().spiffe_id) == ADMIN:
                break
            time.sleep(0.1)
        assert str(client.fetch_x509_svid().spiffe_id) == ADMIN
        client.close()


def test_injected_failures() -> None:
    with fake_server(TD, identities=[APP]) as api:
        client = spiffe.WorkloadApiClient(socket_path=api.endpoint, default_timeout=10)
        api.fail("unavailable", calls=1)
        with pytest.raises(Exception, match="UNAVAILABLE"):
            client.fetch_x509_svid()
        assert str(client.fetch_x509_svid().spiffe_id) == APP
        api.fail("permission_denied", calls=None)
        for _ in range(2):
            with pytest.raises(Exception, match="PERMISSION_DENIED"):
                client.fetch_x509_svid()
        api.clear_failures()
        assert str(client.fetch_x509_svid().spiffe_id) == APP
        client.close()
        with pytest.raises(meshtls.InvalidArgumentError):
            api.fail("internal")


def test_bad_options_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for bad in ["unix://relative", "tcp://10.1.2.3:80", "http://x"]:
        with pytest.raises(meshtls.WorkloadApiError, match="invalid workload api address"):
            WorkloadApiServer(_ca(), socket=bad, entries=[])
    with pytest.raises(meshtls.WorkloadApiError, match="not in the trust domain"):
        WorkloadApiServer(
            _ca(),
            socket=f"unix://{tmp_path}/a.sock",
            entries=[{"spiffe_id": "spiffe://other.org/x", "selectors": ["unix:uid:1"]}],
        )
    with pytest.raises(meshtls.WorkloadApiError, match="unix:gid:x"):
        WorkloadApiServer(
            _ca(),
            socket=f"unix://{tmp_path}/a.sock",
            entries=[{"spiffe_id": APP, "selectors": ["unix:gid:x"]}],
        )


def test_fake_server_on_a_unix_socket_is_removed_on_exit() -> None:
    with fake_server(TD, identities=[APP], transport="unix") as api:
        assert api.endpoint.startswith("unix:///")
        path = api.endpoint[len("unix://") :]
        assert os.path.exists(path)
    assert not os.path.exists(path)
    with pytest.raises(meshtls.InvalidArgumentError, match="transport"):
        with fake_server(TD, transport="udp"):  # type: ignore[arg-type]
            pass


# ---- go-spiffe's workloadapi (the Go client every Go SPIFFE workload uses) ----------------------

_GO_WORKLOAD = (
    pathlib.Path(
        os.environ.get("MESHTLS_PEERS_CACHE", pathlib.Path.home() / ".cache" / "meshtls-peers")
    )
    / "go-spiffe-workload"
)


def _go_workload() -> str:
    if not os.access(_GO_WORKLOAD, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{_GO_WORKLOAD} is missing in CI: scripts/build-spiffe-peers.sh builds it")
        pytest.skip(f"{_GO_WORKLOAD} is missing: run scripts/build-spiffe-peers.sh (.ci/run does)")
    return str(_GO_WORKLOAD)


def test_go_spiffe_fetches_watches_and_validates() -> None:
    peer = _go_workload()
    ids = [("spiffe://example.org/app", "app"), ("spiffe://example.org/admin", "admin")]
    with fake_server("example.org", identities=ids) as api:
        env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=api.endpoint)
        # FetchX509Context: every SVID verified by go-spiffe's x509svid.Verify against the bundle.
        out = subprocess.run([peer, "x509"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        got = json.loads(out.stdout)
        assert [(s["spiffe_id"], s["hint"]) for s in got["svids"]] == ids
        assert got["bundles"] == ["example.org"]
        # FetchJWTSVID, validated by go-spiffe with FetchJWTBundles and by the server; then by
        # meshtls with the bundle the same server serves.
        out = subprocess.run(
            [peer, "jwt", "billing"], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr
        token = json.loads(out.stdout)
        assert token["spiffe_id"] == "spiffe://example.org/app"
        # WatchX509Context across a rotation: the second update carries a new certificate.
        watch = subprocess.Popen(
            [peer, "watch", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert watch.stderr is not None
            assert watch.stderr.readline().strip() == "ready"
            api.rotate()
            stdout, stderr = watch.communicate(timeout=60)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.communicate()
        updates = [json.loads(line) for line in stdout.splitlines()]
        assert watch.returncode == 0, stdout + stderr
        assert [u["spiffe_id"] for u in updates] == ["spiffe://example.org/app"] * 2
        assert updates[0]["serial"] != updates[1]["serial"]


def test_go_spiffe_sees_permission_denied_for_an_unregistered_caller(tmp_path) -> None:  # type: ignore[no-untyped-def]
    peer = _go_workload()
    ca = _ca()
    other_uid = os.getuid() + 4242
    entries = [{"spiffe_id": "spiffe://example.org/web", "selectors": [f"unix:uid:{other_uid}"]}]
    with WorkloadApiServer(ca, socket=f"unix://{tmp_path}/api.sock", entries=entries) as server:
        env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=server.endpoint)
        out = subprocess.run([peer, "x509"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "PermissionDenied" in out.stdout, out.stdout
