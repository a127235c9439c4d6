"""The gateway-certificate controller's decision through the binding: the same rules as the
Rust core (meshtls::controller), certificates from a real MeshCa, the written Secret read back
by an independent X.509 implementation (cryptography)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import meshtls

SOURCE = "cacerts:istio-system/cacerts"


def spec(**kw):
    return meshtls.SecretSpec(
        "alb-gateway-client-certificate-istio",
        "alb",
        identity_namespace="alb",
        service_account="alb-gateway",
        source=SOURCE,
        **kw,
    )


def as_current(action: meshtls.SecretAction) -> dict:
    s = action.secret
    assert s is not None
    return {"type": s["type"], "data": dict(s["data"]), "annotations": dict(s["annotations"])}


def full_round(mesh, sp, ca, current, now=None):
    action = meshtls.decide_secret(mesh, sp, current, source_roots=ca.root_cert_pem, now=now)
    assert action.kind == "issue", action
    svid = ca.issue(action.identity, ttl=sp.ttl)
    written = action.complete(svid)
    assert written.kind == "write"
    return action, written


@pytest.fixture(scope="module")
def ca():
    return meshtls.MeshCa.create("cluster.local", key="ec-p256")


def test_missing_secret_is_issued_and_then_left_alone(ca):
    mesh = meshtls.MeshConfig.from_yaml("trustDomain: cluster.local\n")
    sp = spec()
    action, written = full_round(mesh, sp, ca, None)
    assert action.reason == "missing"
    assert str(action.identity) == "spiffe://cluster.local/ns/alb/sa/alb-gateway"
    s = written.secret
    assert s["type"] == "kubernetes.io/tls"
    assert s["name"] == "alb-gateway-client-certificate-istio" and s["namespace"] == "alb"
    assert sorted(s["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert s["data"]["ca.crt"].decode() == ca.root_cert_pem
    assert s["annotations"]["meshtls.io/identity"] == str(action.identity)
    assert s["annotations"]["meshtls.io/trust-domain"] == "cluster.local"
    assert s["annotations"]["meshtls.io/trust-domain-aliases"] == ""
    assert s["annotations"]["meshtls.io/source"] == SOURCE
    assert s["labels"] == {"app.kubernetes.io/managed-by": "meshtls-controller"}
    # An independent parser: the leaf's URI SAN, the key pair, the issuer is the root.
    leaf = x509.load_pem_x509_certificates(s["data"]["tls.crt"])[0]
    root = x509.load_pem_x509_certificate(s["data"]["ca.crt"])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [str(action.identity)]
    key = serialization.load_pem_private_key(s["data"]["tls.key"], None)
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    leaf.verify_directly_issued_by(root)
    na = leaf.not_valid_after_utc
    assert s["annotations"]["meshtls.io/not-after"] == na.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The rotation point: half the lifetime, within 1 %.
    nb = leaf.not_valid_before_utc
    ratio = (written.recheck_at - nb) / (na - nb)
    assert 0.49 <= ratio <= 0.51
    # Written: nothing to do; the API's JSON shape (base64 strings, metadata.annotations)
    # decides the same.
    again = meshtls.decide_secret(mesh, sp, as_current(written), source_roots=ca.root_cert_pem)
    assert again.kind == "nothing" and again.reason is None
    assert again.recheck_at == written.recheck_at
    api = json.loads(written.manifest())
    assert api["kind"] == "Secret" and api["type"] == "kubernetes.io/tls"
    assert base64.b64decode(api["data"]["tls.crt"]) == s["data"]["tls.crt"]
    assert meshtls.decide_secret(mesh, sp, api, source_roots=ca.root_cert_pem).kind == "nothing"


def test_trust_domain_change_reissues_in_the_new_domain():
    ca = meshtls.MeshCa.create("cluster.local", key="ec-p256")
    sp = spec()
    old = meshtls.MeshConfig.from_yaml("trustDomain: cluster.local\n")
    _, written = full_round(old, sp, ca, None)
    new = meshtls.MeshConfig.from_yaml("trustDomain: prod.example\n")
    other_ca = meshtls.MeshCa.create("prod.example", key="ec-p256")
    action, written2 = full_round(new, sp, other_ca, as_current(written))
    assert action.reason == "identity-changed"
    assert "spiffe://cluster.local/ns/alb/sa/alb-gateway" in action.message
    assert written2.secret["annotations"]["meshtls.io/trust-domain"] == "prod.example"
    assert str(sp.identity(new)) == "spiffe://prod.example/ns/alb/sa/alb-gateway"


def test_alias_and_extra_root_follow_without_reissue(ca):
    sp = spec()
    mesh = meshtls.MeshConfig.from_yaml("")
    _, written = full_round(mesh, sp, ca, None)
    other = meshtls.MeshCa.create("old.example", key="ec-p256")
    pem = "".join("    " + line + "\n" for line in other.root_cert_pem.splitlines())
    aliased = meshtls.MeshConfig.from_yaml(
        "trustDomainAliases: [old.example]\ncaCertificates:\n- trustDomains: [old.example]\n  pem: |\n"
        + pem
    )
    action = meshtls.decide_secret(aliased, sp, as_current(written), source_roots=ca.root_cert_pem)
    assert action.kind == "write" and action.reason == "metadata-changed"
    s = action.secret
    assert s["data"]["tls.crt"] == written.secret["data"]["tls.crt"]
    assert s["data"]["tls.key"] == written.secret["data"]["tls.key"]
    assert s["data"]["ca.crt"].decode() == ca.root_cert_pem + other.root_cert_pem
    assert s["annotations"]["meshtls.io/trust-domain-aliases"] == "old.example"


def test_hand_edits_rotation_and_failures(ca):
    sp = spec(ttl=timedelta(minutes=10))
    mesh = meshtls.MeshConfig.from_yaml("")
    _, written = full_round(mesh, sp, ca, None)
    cur = as_current(written)
    edited = dict(cur, data=dict(cur["data"], **{"tls.crt": b"garbage"}))
    a = meshtls.decide_secret(mesh, sp, edited, source_roots=ca.root_cert_pem)
    assert (a.kind, a.reason) == ("issue", "unreadable")
    opaque = dict(cur, type="Opaque")
    a = meshtls.decide_secret(mesh, sp, opaque, source_roots=ca.root_cert_pem)
    assert (a.kind, a.reason, a.replace) == ("issue", "wrong-type", True)
    # Rotation: just before the point nothing, at it a renewal.
    at = written.recheck_at
    before = meshtls.decide_secret(
        mesh, sp, cur, source_roots=ca.root_cert_pem, now=at - timedelta(seconds=1)
    )
    assert before.kind == "nothing"
    due = meshtls.decide_secret(mesh, sp, cur, source_roots=ca.root_cert_pem, now=at)
    assert (due.kind, due.reason) == ("issue", "rotation-due")
    # The CA is away: never a write, a capped backoff no later than the rotation point.
    now = datetime.now(timezone.utc)
    fresh = meshtls.decide_secret(mesh, sp, cur, source_roots=ca.root_cert_pem, now=now)
    for attempt in range(12):
        f = fresh.after_failure(attempt, cap=timedelta(seconds=30))
        assert f.kind == "nothing" and f.secret is None
        assert timedelta(seconds=1) <= f.recheck_at - now <= timedelta(seconds=30)


def test_complete_refuses_unfit_certificates_and_bad_settings(ca):
    sp = spec()
    mesh = meshtls.MeshConfig.from_yaml("")
    action = meshtls.decide_secret(mesh, sp, None, source_roots=ca.root_cert_pem)
    wrong = ca.issue("spiffe://cluster.local/ns/alb/sa/someone-else")
    with pytest.raises(meshtls.ControllerError, match="the identity asked for is spiffe://"):
        action.complete(wrong)
    foreign = meshtls.MeshCa.create("cluster.local", key="ec-p256").issue(action.identity)
    with pytest.raises(meshtls.ControllerError, match="does not chain to the mesh roots"):
        action.complete(foreign)
    nothing = action.after_failure(0)
    with pytest.raises(meshtls.InvalidArgumentError, match='needs an "issue" action'):
        nothing.complete(ca.issue(action.identity))
    with pytest.raises(meshtls.ControllerError, match="ttl"):
        spec(ttl=timedelta(days=91))
    with pytest.raises(meshtls.CaError, match="Bad_Name"):
        meshtls.SecretSpec(
            "Bad_Name", "alb", identity_namespace="a", service_account="b", source=SOURCE
        )
    with pytest.raises(TypeError, match="current must be None or a mapping"):
        meshtls.decide_secret(mesh, sp, "a secret")
    with pytest.raises(meshtls.InvalidArgumentError, match="not base64"):
        meshtls.decide_secret(mesh, sp, {"type": "kubernetes.io/tls", "data": {"tls.crt": "%%"}})
