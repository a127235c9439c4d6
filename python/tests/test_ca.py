"""The mesh CA from Python, checked by independent peers: openssl verify (-x509_strict, client
and server purpose), py-spiffe's X509Svid parser, and pyca/cryptography reading every field of
Istio's workload profile."""

from __future__ import annotations

import base64
import datetime as dt
import os
import pathlib
import shutil
import stat
import subprocess
import random
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from spiffe import X509Svid

import meshtls

UTC = dt.timezone.utc
PEM = serialization.Encoding.PEM
WORKLOAD = "spiffe://cluster.local/ns/gateway/sa/agc"

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def pem_of(cs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(PEM).decode() for c in cs)


def openssl_verify(tmp: pathlib.Path, chain_pem: str, roots_pem: str, purpose: str) -> None:
    chain = certs(chain_pem)
    roots = certs(roots_pem)
    inter = [c for c in chain[1:] if c not in roots]
    (tmp / "root.pem").write_text(roots_pem)
    (tmp / "leaf.pem").write_text(pem_of(chain[:1]))
    args = [OPENSSL, "verify", "-x509_strict", "-purpose", purpose, "-CAfile", str(tmp / "root.pem")]
    if inter:
        (tmp / "inter.pem").write_text(pem_of(inter))
        args += ["-untrusted", str(tmp / "inter.pem")]
    args.append(str(tmp / "leaf.pem"))
    out = subprocess.run(args, capture_output=True, text=True)
    assert out.returncode == 0 and ": OK" in out.stdout, out.stdout + out.stderr


def check_profile(leaf: x509.Certificate, issuer: x509.Certificate, spiffe_id: str, dns=()):
    """Every field of istiod's genCertTemplateFromCSR, read by pyca/cryptography."""
    assert leaf.version == x509.Version.v3
    assert len(leaf.subject) == 0
    assert leaf.issuer == issuer.subject
    assert 0 < leaf.serial_number < 2**128
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe_id]
    assert san.value.get_values_for_type(x509.DNSName) == list(dns)
    assert len(list(san.value)) == 1 + len(dns)
    assert isinstance(list(san.value)[0], x509.UniformResourceIdentifier)
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature and ku.value.key_encipherment
    assert not (
        ku.value.content_commitment
        or ku.value.data_encipherment
        or ku.value.key_agreement
        or ku.value.key_cert_sign
        or ku.value.crl_sign
    )
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False and bc.value.path_length is None
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.value.key_identifier == ski.value.digest
    assert len(leaf.extensions) == 5
    leaf.verify_directly_issued_by(issuer)


def fresh_root(key="ec-p256", **kw) -> meshtls.MeshCa:
    return meshtls.MeshCa.create("cluster.local", key=key, **kw)


@needs_openssl
@pytest.mark.parametrize("root_key", ["rsa-2048", "ec-p256", "ec-p384"])
@pytest.mark.parametrize("leaf_key", ["ec-p256", "ec-p384", "rsa-2048"])
@pytest.mark.parametrize("with_intermediate", [False, True])
def test_issued_chains_pass_openssl_py_spiffe_and_cryptography(
    tmp_path, root_key, leaf_key, with_intermediate
):
    root = fresh_root(root_key)
    ca = root.create_intermediate(key="ec-p256" if root_key.startswith("rsa") else "rsa-2048") if with_intermediate else root
    svid = ca.issue(WORKLOAD, key=leaf_key, dns_names=["gw.example.com"])
    chain = certs(svid.cert_chain_pem)
    assert len(chain) == (3 if with_intermediate else 2)
    assert chain[-1] == certs(root.root_cert_pem)[0], "chain ends with the root"
    check_profile(chain[0], chain[1], WORKLOAD, ["gw.example.com"])
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    # The private key belongs to the leaf and is PKCS#8.
    assert svid.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(svid.private_key_pem.encode(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == chain[0].public_key().public_bytes(
        serialization.Encoding.DER, spki
    )
    assert svid.private_key_der == key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # py-spiffe reads the SVID.
    parsed = X509Svid.parse(svid.cert_chain_pem.encode(), svid.private_key_pem.encode())
    assert str(parsed.spiffe_id) == WORKLOAD
    assert len(parsed.cert_chain) == len(chain)
    openssl_verify(tmp_path, svid.cert_chain_pem, root.root_cert_pem, "sslclient")
    openssl_verify(tmp_path, svid.cert_chain_pem, root.root_cert_pem, "sslserver")


def test_py_spiffe_loads_the_files_svid_save_writes(tmp_path):
    ca = fresh_root()
    svid = ca.issue(meshtls.SpiffeId(WORKLOAD))
    svid.save(tmp_path)
    loaded = X509Svid.load(str(tmp_path / "cert-chain.pem"), str(tmp_path / "key.pem"), PEM)
    assert str(loaded.spiffe_id) == WORKLOAD
    assert stat.S_IMODE(os.stat(tmp_path / "key.pem").st_mode) == 0o600
    assert (tmp_path / "root-cert.pem").read_text() == ca.root_cert_pem
    again = meshtls.Svid.from_pem(
        (tmp_path / "cert-chain.pem").read_text(), (tmp_path / "key.pem").read_text()
    )
    assert again.spiffe_id == svid.spiffe_id
    assert again.serial_number == svid.serial_number


def test_root_has_istiods_defaults():
    ca = meshtls.MeshCa.create()
    assert ca.key == "rsa-2048"
    assert ca.trust_domain == meshtls.TrustDomain("cluster.local")
    root = certs(ca.root_cert_pem)[0]
    assert root.subject == x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    assert root.issuer == root.subject
    assert isinstance(root.public_key(), rsa.RSAPublicKey) and root.public_key().key_size == 2048
    assert root.not_valid_after_utc - root.not_valid_before_utc == dt.timedelta(days=3650)
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length is None
    ku = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and not ku.value.crl_sign and not ku.value.digital_signature
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    with pytest.raises(x509.ExtensionNotFound):
        root.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert ca.is_self_signed
    assert ca.not_after == root.not_valid_after_utc


def test_documented_defaults_are_the_cores():
    """The defaults the signatures show (``help()``, the stubs) are what the core applies when
    an argument is left out: the binding passes no default of its own."""
    import inspect

    create = inspect.signature(meshtls.MeshCa.create).parameters
    ca = meshtls.MeshCa.create()
    assert ca.key == create["key"].default == "rsa-2048"
    assert str(ca.trust_domain) == create["trust_domain"].default == "cluster.local"
    intermediate = inspect.signature(ca.create_intermediate).parameters
    inter = ca.create_intermediate()
    ic = certs(inter.ca_cert_pem)[0]
    assert inter.key == intermediate["key"].default
    assert ic.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == intermediate["common_name"].default
    bc = ic.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.path_length == intermediate["path_len"].default == 0
    lifetime = ic.not_valid_after_utc - ic.not_valid_before_utc
    assert dt.timedelta(days=730) <= lifetime <= dt.timedelta(days=730, minutes=5), lifetime
    # Given, even as None, an optional field replaces the default: no path length at all.
    unbounded = certs(ca.create_intermediate(path_len=None).ca_cert_pem)[0]
    assert unbounded.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length is None
    # A leaf: the core's IssueParams::default() (P-256, 24 hours, NotBefore backdated 2 minutes).
    assert inspect.signature(ca.issue).parameters["key"].default == "ec-p256"
    svid = ca.issue(WORKLOAD)
    leaf = certs(svid.cert_chain_pem)[0]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"
    assert svid.not_after - svid.not_before == dt.timedelta(hours=24, minutes=2)
    rotation = inspect.signature(svid.rotation_time).parameters
    assert (rotation["grace_ratio"].default, rotation["jitter"].default) == (0.5, 0.01)
    spec = inspect.signature(meshtls.SecretSpec).parameters
    assert (spec["grace_ratio"].default, spec["jitter"].default) == (0.5, 0.01)


def test_custom_root_and_intermediate_parameters():
    ca = meshtls.MeshCa.create(
        "prod.example", key="ec-p384", ttl=dt.timedelta(days=30), organization="Example Org"
    )
    root = certs(ca.root_cert_pem)[0]
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Org"
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp384r1"
    inter = ca.create_intermediate(key="ec-p256", common_name="cluster-1", ttl=dt.timedelta(days=365))
    ic = certs(inter.ca_cert_pem)[0]
    assert ic.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cluster-1"
    assert ic.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert ic.not_valid_after_utc == root.not_valid_after_utc, "clamped to the root"
    assert not inter.is_self_signed
    assert certs(inter.cert_chain_pem) == [ic, root]


def test_validity_ttl_and_clamping():
    ca = fresh_root()
    before = dt.datetime.now(UTC).replace(microsecond=0)
    svid = ca.issue(WORKLOAD, ttl=dt.timedelta(hours=12))
    after = dt.datetime.now(UTC)
    assert svid.not_before.tzinfo is not None
    assert before - dt.timedelta(minutes=2, seconds=1) <= svid.not_before <= after - dt.timedelta(minutes=2)
    assert svid.not_after - svid.not_before == dt.timedelta(hours=12, minutes=2)
    leaf = certs(svid.cert_chain_pem)[0]
    assert leaf.not_valid_before_utc == svid.not_before
    assert leaf.not_valid_after_utc == svid.not_after
    # Default 24h.
    assert ca.issue(WORKLOAD).not_after - ca.issue(WORKLOAD).not_before >= dt.timedelta(hours=24)
    # 90 days is the most Istio signs; more is refused, not clamped.
    ca.issue(WORKLOAD, ttl=dt.timedelta(days=90))
    with pytest.raises(meshtls.CaError, match="90 days"):
        ca.issue(WORKLOAD, ttl=dt.timedelta(days=90, seconds=1))
    with pytest.raises(meshtls.CaError, match="at least one second"):
        ca.issue(WORKLOAD, ttl=dt.timedelta(0))
    with pytest.raises(meshtls.InvalidArgumentError, match="ttl of -5 seconds: a lifetime must not be negative"):
        ca.issue(WORKLOAD, ttl=dt.timedelta(seconds=-5))
    # A short-lived CA clamps its leaves.
    short = fresh_root(ttl=dt.timedelta(hours=1))
    assert short.issue(WORKLOAD).not_after == short.not_after


def test_an_expired_ca_refuses_to_sign():
    ca = fresh_root(ttl=dt.timedelta(seconds=1))
    time.sleep(2.1)
    with pytest.raises(meshtls.CaError, match="expired"):
        ca.issue(WORKLOAD)


def test_bad_inputs_raise_typed_errors():
    ca = fresh_root()
    with pytest.raises(meshtls.CaError, match="non-root path"):
        ca.issue("spiffe://cluster.local")
    with pytest.raises(meshtls.InvalidSpiffeIdError):
        ca.issue("spiffe://Cluster.local/x")
    with pytest.raises(meshtls.CaError, match='unknown key kind "ed25519"'):
        ca.issue(WORKLOAD, key="ed25519")
    with pytest.raises(meshtls.CaError, match="10.0.0.1"):
        ca.issue(WORKLOAD, dns_names=["10.0.0.1"])
    with pytest.raises(TypeError):
        ca.issue(WORKLOAD, dns_names="gw.example.com")
    with pytest.raises(meshtls.CaError, match="name"):
        ca.issue(WORKLOAD).to_k8s_secret("Bad_Name", "default")
    with pytest.raises(ValueError, match="aware"):
        ca.issue(WORKLOAD).should_rotate(dt.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="layout"):
        ca.save("/tmp/nowhere", layout="helm")


def test_repr_and_pickle_never_expose_keys():
    ca = fresh_root("rsa-2048")
    svid = ca.issue(WORKLOAD, key="rsa-2048")
    key_lines = [l for l in svid.private_key_pem.splitlines() if not l.startswith("-----")]
    ca_key_lines = [l for l in ca.ca_key_pem.splitlines() if not l.startswith("-----")]
    for text in (repr(svid), str(svid), repr(ca), str(ca)):
        assert "PRIVATE" not in text
        for line in key_lines + ca_key_lines:
            assert line not in text
    assert WORKLOAD in repr(svid)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(svid)
    with pytest.raises(TypeError):
        pickle.dumps(ca)


def test_should_rotate_and_rotation_time():
    svid = fresh_root().issue(WORKLOAD)
    life = svid.not_after - svid.not_before
    half = svid.not_before + life / 2
    assert not svid.should_rotate(svid.not_before)
    assert not svid.should_rotate(half - dt.timedelta(seconds=1))
    assert svid.should_rotate(half)
    assert not svid.should_rotate()
    assert svid.rotation_time(jitter=0) == half
    # The defaults are the core's, Istio's: ratio 0.5 with a jitter of 0.01.
    times = {svid.rotation_time() for _ in range(50)}
    assert len(times) > 1
    assert all(abs((t - half).total_seconds()) <= life.total_seconds() * 0.01 + 1 for t in times)
    assert svid.rotation_time(grace_ratio=1.0, jitter=0) == svid.not_before
    assert svid.rotation_time(grace_ratio=0.0, jitter=0) == svid.not_after
    # Out of range is refused by the core's rule, not clamped.
    for bad in ({"grace_ratio": 1.5}, {"grace_ratio": -0.1}, {"jitter": 2.0}, {"jitter": float("nan")}):
        with pytest.raises(meshtls.InvalidArgumentError, match="must be a number between 0 and 1"):
            svid.rotation_time(**bad)


def test_k8s_objects():
    ca = fresh_root()
    inter = ca.create_intermediate(key="ec-p256")
    svid = inter.issue(WORKLOAD)
    secret = svid.to_k8s_secret("agc-mesh-client", "gateway")
    assert secret["apiVersion"] == "v1" and secret["kind"] == "Secret"
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {"name": "agc-mesh-client", "namespace": "gateway"}
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    chain = certs(svid.cert_chain_pem)
    assert certs(data["tls.crt"]) == chain[:2], "leaf and intermediate; the root goes to ca.crt"
    assert data["tls.key"] == svid.private_key_pem
    assert data["ca.crt"] == ca.root_cert_pem
    cacerts = inter.to_cacerts_secret()
    assert cacerts["metadata"] == {"name": "cacerts", "namespace": "istio-system"}
    assert cacerts["type"] == "Opaque"
    cdata = {k: base64.b64decode(v).decode() for k, v in cacerts["data"].items()}
    assert cdata["ca-cert.pem"] == inter.ca_cert_pem
    assert cdata["ca-key.pem"] == inter.ca_key_pem
    assert cdata["cert-chain.pem"] == inter.cert_chain_pem
    assert cdata["root-cert.pem"] == ca.root_cert_pem
    cm = inter.root_cert_configmap("shop")
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "istio-ca-root-cert"
    assert cm["data"] == {"root-cert.pem": ca.root_cert_pem}


@pytest.mark.parametrize("layout", ["istio", "kubernetes-tls"])
def test_save_load_round_trip_and_key_mode(tmp_path, layout):
    root = fresh_root()
    inter = root.create_intermediate(key="ec-p256")
    inter.save(tmp_path / "cacerts", layout=layout)
    key_file = "ca-key.pem" if layout == "istio" else "tls.key"
    names = sorted(p.name for p in (tmp_path / "cacerts").iterdir())
    expected = (
        ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
        if layout == "istio"
        else ["ca.crt", "tls.crt", "tls.key"]
    )
    assert names == expected, "no temporary files are left behind"
    assert stat.S_IMODE(os.stat(tmp_path / "cacerts" / key_file).st_mode) == 0o600
    loaded = meshtls.MeshCa.load(tmp_path / "cacerts", trust_domain="cluster.local")
    assert loaded.ca_cert_pem == inter.ca_cert_pem
    assert loaded.cert_chain_pem == inter.cert_chain_pem
    assert loaded.root_cert_pem == root.root_cert_pem
    again = meshtls.MeshCa.from_pem(
        inter.ca_cert_pem,
        inter.ca_key_pem,
        cert_chain_pem=inter.cert_chain_pem,
        root_cert_pem=inter.root_cert_pem,
        trust_domain="cluster.local",
    )
    assert again.issue(WORKLOAD).spiffe_id == meshtls.SpiffeId(WORKLOAD)


def test_broken_plugin_layouts_name_the_file(tmp_path):
    root = fresh_root()
    inter = root.create_intermediate(key="ec-p256")
    other = fresh_root()
    good = tmp_path / "good"
    inter.save(good)

    def variant(name: str, **files: str) -> pathlib.Path:
        d = tmp_path / name
        shutil.copytree(good, d)
        for fname, text in files.items():
            (d / fname.replace("_", "-").replace("-pem", ".pem")).write_text(text)
        return d

    cases = [
        (variant("mismatch", ca_key_pem=other.ca_key_pem), "ca-key.pem does not match"),
        (variant("notca", ca_cert_pem=root.issue(WORKLOAD).cert_chain_pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"), "not a ca certificate"),
        (variant("wrongroot", root_cert_pem=other.root_cert_pem, cert_chain_pem=inter.ca_cert_pem), "root-cert.pem"),
        (variant("garbage", cert_chain_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "cert-chain.pem"),
    ]
    for d, needle in cases:
        with pytest.raises(meshtls.CaError, match=needle) as e:
            meshtls.MeshCa.load(d, trust_domain="cluster.local")
        assert str(d) in str(e.value), str(e.value)
    partial = variant("partial")
    (partial / "ca-key.pem").unlink()
    with pytest.raises(meshtls.CaError, match="missing ca-key.pem"):
        meshtls.MeshCa.load(partial, trust_domain="cluster.local")
    with pytest.raises(OSError):
        meshtls.MeshCa.load(tmp_path / "does-not-exist" / "x", trust_domain="cluster.local")
    # A file that is not UTF-8 text is a CaError naming the file, not a bare OSError.
    binary = variant("binary")
    (binary / "ca-key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n\xff\xfe\x00\n")
    with pytest.raises(meshtls.CaError, match="ca-key.pem: not a text \\(PEM\\) file: byte 28 is not valid UTF-8") as e:
        meshtls.MeshCa.load(binary, trust_domain="cluster.local")
    assert str(binary / "ca-key.pem") in str(e.value)
    assert not isinstance(e.value, OSError)


def test_sign_csr_ignores_subject_and_sans(tmp_path):
    ca = fresh_root().create_intermediate(key="ec-p256")
    for key in (ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)):
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier("spiffe://cluster.local/ns/kube-system/sa/admin"), x509.DNSName("evil.example")]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        issued = ca.sign_csr(csr.public_bytes(PEM).decode(), WORKLOAD, ttl=dt.timedelta(hours=1))
        leaf = certs(issued.cert_chain_pem)[0]
        check_profile(leaf, certs(ca.ca_cert_pem)[0], WORKLOAD)
        assert leaf.public_key() == key.public_key()
        assert issued.spiffe_id == meshtls.SpiffeId(WORKLOAD)
        assert issued.not_after - issued.not_before == dt.timedelta(hours=1, minutes=2)
        key_pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        svid = issued.with_private_key(key_pem)
        assert svid.trust_bundle_pem == ca.root_cert_pem
        if OPENSSL:
            openssl_verify(tmp_path, issued.cert_chain_pem, ca.root_cert_pem, "sslclient")
    for bad_key, needle in (
        (rsa.generate_private_key(65537, 1024), "1024 bits"),
        (ec.generate_private_key(ec.SECP521R1()), "1.3.132.0.35"),
    ):
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(bad_key, hashes.SHA256())
        with pytest.raises(meshtls.CaError, match=needle):
            ca.sign_csr(csr.public_bytes(PEM).decode(), WORKLOAD)
    with pytest.raises(meshtls.CaError, match="certificate signing request"):
        ca.sign_csr("not a csr", WORKLOAD)


@needs_openssl
def test_root_rotation_keeps_old_leaves_valid(tmp_path):
    ca = fresh_root("rsa-2048")
    old_leaf = ca.issue(WORKLOAD)
    rotated = ca.rotate_root(ttl=dt.timedelta(days=365))
    assert rotated.ca_key_pem == ca.ca_key_pem
    assert rotated.root_cert_pem != ca.root_cert_pem
    openssl_verify(tmp_path, pem_of(certs(old_leaf.cert_chain_pem)[:1]), rotated.root_cert_pem, "sslclient")
    new_leaf = rotated.issue(WORKLOAD)
    openssl_verify(tmp_path, pem_of(certs(new_leaf.cert_chain_pem)[:1]), ca.root_cert_pem, "sslserver")
    assert not ca.needs_rotation()
    assert ca.needs_rotation(ca.not_after - dt.timedelta(days=365))
    with pytest.raises(meshtls.CaError, match="self-signed root"):
        ca.create_intermediate(key="ec-p256").rotate_root()


def test_issue_many_and_the_gil_is_released():
    ca = fresh_root()
    ids = [f"spiffe://cluster.local/ns/n{i}/sa/s" for i in range(50)]
    svids = ca.issue_many(ids)
    assert [str(s.spiffe_id) for s in svids] == ids
    assert len({s.serial_number for s in svids}) == 50
    assert len(ca.issue_many(ids[:3], threads=1)) == 3
    with pytest.raises(meshtls.CaError):
        ca.issue_many(ids + ["spiffe://cluster.local"])

    # (The GIL during issuance: test_the_gil_is_released_during_issuance.)


def progress_during(call) -> tuple[float, float]:
    """Runs ``call`` in a second thread while this thread spins, and returns (the call's
    duration, the share of it during which this thread made progress). A stretch of more
    than 50 ms between two turns of the loop counts as no progress: far above an OS time
    slice or the interpreter's 5 ms switch interval, far below the call."""
    span: dict[str, float] = {}
    gaps: list[tuple[float, float]] = []

    def work():
        span["start"] = time.perf_counter()
        call()
        span["end"] = time.perf_counter()

    t = threading.Thread(target=work)
    last = time.perf_counter()  # before start(): start() itself waits while the GIL is held
    t.start()
    alive = True
    while alive:
        alive = t.is_alive()
        now = time.perf_counter()
        if now - last > 0.05:
            gaps.append((last, now))
        last = now
    t.join()
    start, end = span["start"], span["end"]
    blocked = sum(max(0.0, min(b, end) - max(a, start)) for a, b in gaps)
    return end - start, 1 - blocked / (end - start)


def long_enough(make_call, at_least: float = 0.5):
    """A call (from ``make_call(n)``) that runs at least ``at_least`` seconds alone."""
    n = 1
    while True:
        call = make_call(n)
        t = time.perf_counter()
        call()
        if time.perf_counter() - t >= at_least:
            return call
        n *= 2


def test_the_gil_is_released_during_issuance():
    ca = fresh_root()
    ids = [f"spiffe://cluster.local/ns/n{i}/sa/s" for i in range(64)]
    # RSA key generation and signing for a batch, on one thread so the machine's other core
    # stays free for this one.
    issuing = long_enough(lambda n: lambda: ca.issue_many(ids[:n], key="rsa-2048", threads=1))
    duration, share = progress_during(issuing)
    assert share > 0.8, f"this thread progressed during only {share:.0%} of a {duration:.2f} s call"

    # Control: a single C call that holds the GIL (sorting a large list) -- the same
    # measurement says this thread stood still, so it would catch a binding that held it.
    data = [random.random() for _ in range(200_000)]
    holding = long_enough(lambda n: lambda: sorted(data * n))
    duration, share = progress_during(holding)
    assert share < 0.3, f"control: progressed during {share:.0%} of a {duration:.2f} s GIL-holding call"
