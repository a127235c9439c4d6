from __future__ import annotations

import copy
import pickle

import pytest

import meshtls
from meshtls import (
    InvalidSpiffeIdError,
    IstioIdentity,
    MeshTlsError,
    SpiffeId,
    TrustDomain,
)


def test_spiffe_id_vectors(spiffe_vectors):
    cases = spiffe_vectors["spiffe_ids"]
    assert len(cases) > 50
    for case in cases:
        text = case["input"]
        if case["valid"]:
            sid = SpiffeId(text)
            assert str(sid) == text
            assert sid.trust_domain == TrustDomain(case["trust_domain"])
            assert sid.trust_domain.name == case["trust_domain"]
            assert sid.path == case["path"]
        else:
            with pytest.raises(InvalidSpiffeIdError) as info:
                SpiffeId(text)
            if case.get("go_spiffe_error"):
                assert case["go_spiffe_error"] in str(info.value)
            else:
                assert "255 bytes" in str(info.value)
        if "lenient_canonical" in case:
            assert str(SpiffeId.parse_lenient(text)) == case["lenient_canonical"]


def test_trust_domain_vectors(spiffe_vectors):
    for case in spiffe_vectors["trust_domains"]:
        text = case["input"]
        if case["valid"]:
            assert TrustDomain(text).name == case["trust_domain"]
        else:
            with pytest.raises(InvalidSpiffeIdError):
                TrustDomain(text)
        if "lenient_trust_domain" in case:
            assert TrustDomain.parse_lenient(text).name == case["lenient_trust_domain"]


def test_errors_are_value_errors_and_mesh_errors():
    with pytest.raises(ValueError):
        SpiffeId("SPIFFE://example.org/x")
    with pytest.raises(MeshTlsError):
        TrustDomain("")
    assert issubclass(meshtls.PolicyError, ValueError)
    assert issubclass(meshtls.SvidError, MeshTlsError)


def test_py_spiffe_bugs_are_not_ours():
    with pytest.raises(InvalidSpiffeIdError):
        SpiffeId("spiffe://example.org/p\n")
    with pytest.raises(InvalidSpiffeIdError):
        SpiffeId.parse_lenient("spiffe://\u212aexample.org/p")


@pytest.mark.parametrize(
    "value",
    [
        SpiffeId("spiffe://cluster.local/ns/default/sa/web"),
        SpiffeId("spiffe://example.org"),
        TrustDomain("cluster.local"),
        IstioIdentity("cluster.local", "shop", "checkout"),
    ],
)
def test_frozen_values(value):
    assert eval(repr(value), vars(meshtls)) == value
    assert pickle.loads(pickle.dumps(value)) == value
    assert hash(copy.copy(value)) == hash(value)
    assert len({value, pickle.loads(pickle.dumps(value))}) == 1
    with pytest.raises(AttributeError):
        value.foo = 1  # type: ignore[attr-defined]


def test_workload_ids():
    sid = SpiffeId.for_workload("cluster.local", "shop", "checkout")
    assert str(sid) == "spiffe://cluster.local/ns/shop/sa/checkout"
    assert sid.segments == ["ns", "shop", "sa", "checkout"]
    ident = IstioIdentity.from_spiffe_id(sid)
    assert (ident.namespace, ident.service_account) == ("shop", "checkout")
    assert ident.principal == "cluster.local/ns/shop/sa/checkout"
    assert ident.spiffe_id == sid
    assert IstioIdentity.from_principal(ident.principal) == ident
    with pytest.raises(meshtls.IdentityError):
        IstioIdentity.from_spiffe_id("spiffe://cluster.local/ns/shop/sa/checkout/v2")
    with pytest.raises(InvalidSpiffeIdError):
        SpiffeId.for_workload("cluster.local", "", "x")
    with pytest.raises(InvalidSpiffeIdError):
        SpiffeId.for_workload("Cluster.local", "a", "x")


def test_principals():
    assert meshtls.principal_matches("cluster.local/ns/shop/*", "spiffe://cluster.local/ns/shop/sa/x")
    assert not meshtls.principal_matches("*/sa/db", "spiffe://cluster.local/ns/shop/sa/x")
    assert meshtls.expand_principals(["cluster.local/ns/a/sa/b"], ["td1", TrustDomain("td2")]) == [
        "td1/ns/a/sa/b",
        "td2/ns/a/sa/b",
    ]
    assert [str(i) for i in meshtls.expand_spiffe_ids(["spiffe://td1/x"], ["td2"])] == [
        "spiffe://td1/x",
        "spiffe://td2/x",
    ]


def test_mesh_config():
    cm = """
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    trustDomain: prod.example
    trustDomainAliases: [old.example, cluster.local, old.example]
    meshMTLS: {minProtocolVersion: TLSV1_3}
"""
    mesh = meshtls.MeshConfig.from_yaml(cm)
    assert mesh.trust_domain == TrustDomain("prod.example")
    assert [t.name for t in mesh.trust_domain_aliases] == ["cluster.local", "old.example"]
    assert mesh.root_namespace == "istio-system"
    assert mesh.min_protocol_version == "TLSV1_3"
    assert [t.name for t in mesh.trust_domains_for_validation()] == [
        "prod.example",
        "cluster.local",
        "old.example",
    ]
    assert pickle.loads(pickle.dumps(mesh)) == mesh
    with pytest.raises(meshtls.MeshConfigError, match="trustDomainAliases"):
        meshtls.MeshConfig.from_yaml("trustDomainAliases: [Bad]")
    with pytest.raises(ValueError):
        meshtls.MeshConfig.from_yaml("trustDomain: [x")
