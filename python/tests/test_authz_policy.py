"""AuthorizationPolicy and the path check from Python: the same vectors as the Rust suite
(tests/data/authz-*.json, the upstream cases of authz-upstream.json among them), Istio's
documented examples, the webhook's refusals, the seed case, ambient pods, and the values'
Python behaviour (frozen, ==, hash, repr, pickle)."""

from __future__ import annotations

import json
import pickle
import re
import threading

import pytest

import meshtls
from conftest import REPO, load_vectors

GW = "spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller"


def mesh_yaml(m: dict | None) -> str | None:
    if not m:
        return None
    lines = []
    if "trust_domain" in m:
        lines.append(f"trustDomain: {m['trust_domain']}")
    if "trust_domain_aliases" in m:
        lines.append(f"trustDomainAliases: {json.dumps(m['trust_domain_aliases'])}")
    if "root_namespace" in m:
        lines.append(f"rootNamespace: {m['root_namespace']}")
    return "\n".join(lines) + "\n"


def kwargs(req: dict) -> dict:
    out: dict = {"port": req["port"]}
    if "principal" in req:
        out["principal"] = "spiffe://" + req["principal"]
    for k in ("source_ip", "remote_ip", "destination_ip", "sni", "request_principal", "claims"):
        if k in req:
            out[k] = req[k]
    if "http" in req:
        h = req["http"]
        out["method"] = h["method"]
        out["path"] = h["path"]
        if "host" in h:
            out["host"] = h["host"]
        if "headers" in h:
            out["headers"] = h["headers"]
    return out


EVAL = load_vectors("authz-eval.json")["cases"]


def assert_decision(d: meshtls.AuthorizationDecision, e: dict, context: str) -> None:
    """The decision is the vector's: allowed, step, deciding policy and rule."""
    assert (d.allowed, d.step, d.policy, d.rule) == (
        e["allowed"],
        e["step"],
        e.get("policy"),
        e.get("rule"),
    ), context


@pytest.mark.parametrize("case", EVAL, ids=[c["name"] for c in EVAL])
def test_evaluation_vectors(case):
    mesh = mesh_yaml(case.get("mesh"))
    s = meshtls.AuthorizationPolicySet.from_dicts(case["policies"], mesh_config=mesh)
    w = case["workload"]
    d = s.check(w["namespace"], w["labels"], **kwargs(case["request"]))
    assert_decision(d, case["expected"], "\n".join(d.explanation))
    assert d.explanation[-1].startswith("decision: ")
    fast = s.check(w["namespace"], w["labels"], explain=False, **kwargs(case["request"]))
    assert fast == d and fast.explanation == []


def test_check_many_matches_check_and_releases_the_gil():
    requests = []
    expected = []
    sets = {}
    for c in EVAL:
        if c.get("mesh"):
            continue
        key = json.dumps(c["policies"], sort_keys=True)
        sets.setdefault(key, meshtls.AuthorizationPolicySet.from_dicts(c["policies"]))
    # One set, many requests: the seed policies.
    s = meshtls.AuthorizationPolicySet.from_yaml(
        (REPO / "examples" / "authz" / "deny-gateway.yaml").read_text()
    )
    for i in range(2000):
        principal = GW if i % 2 else "spiffe://cluster.local/ns/shop/sa/web"
        requests.append(
            {"namespace": "demo", "labels": {"app": "api"}, "port": 8080, "principal": principal}
        )
        expected.append(i % 2 == 0)
    results: list = []
    t = threading.Thread(target=lambda: results.extend(s.check_many(requests)))
    t.start()
    t.join()
    assert [d.allowed for d in results] == expected
    assert results[1].step == "no-allow-matched" and results[0].policy == "demo/api-callers"
    with pytest.raises(TypeError, match="unknown key"):
        s.check_many([{"namespace": "demo", "port": 80, "prinicpal": GW}])
    with pytest.raises(TypeError, match="no port"):
        s.check_many([{"namespace": "demo"}])


def test_istio_documented_examples():
    n = 0
    for ex in load_vectors("authz-istio-examples.json")["examples"]:
        for p in ex["policies"]:
            meshtls.validate_authorization_policy(p)
        s = meshtls.AuthorizationPolicySet.from_dicts(
            ex["policies"], mesh_config=mesh_yaml(ex.get("mesh"))
        )
        for c in ex["checks"]:
            n += 1
            w = c["workload"]
            d = s.check(w["namespace"], w["labels"], **kwargs(c["request"]))
            if c["allowed"] is None:
                assert d.step == "external" and d.provider == "sample-ext-authz-grpc"
            else:
                assert d.allowed is c["allowed"], (ex["name"], c["why"], d.explanation)
    assert n >= 40


VALIDATION = load_vectors("authz-validation.json")["cases"]


@pytest.mark.parametrize("case", VALIDATION, ids=[c["name"] for c in VALIDATION])
def test_webhook_refusals(case):
    if case["valid"]:
        warnings = meshtls.validate_authorization_policy(case["object"])
        if "warning" in case:
            assert any(case["warning"] in w for w in warnings), warnings
        else:
            assert warnings == []
    else:
        with pytest.raises(meshtls.AuthorizationPolicyError) as info:
            meshtls.validate_authorization_policy(case["object"])
        assert case["error"] in str(info.value)
        assert not isinstance(info.value, meshtls.PolicyError)
        assert isinstance(info.value, ValueError)


def test_values_are_frozen_comparable_and_pickle():
    s = meshtls.AuthorizationPolicySet.from_yaml(
        (REPO / "examples" / "authz" / "deny-gateway.yaml").read_text(),
        mesh_config=meshtls.MeshConfig.from_yaml("trustDomain: cluster.local\n"),
    )
    d = s.check("demo", {"app": "api"}, port=8080, principal=meshtls.SpiffeId(GW))
    assert not d.allowed
    assert d.reason == "denied: ALLOW policies apply to the workload and none matched"
    assert pickle.loads(pickle.dumps(d)) == d
    assert hash(pickle.loads(pickle.dumps(d))) == hash(d)
    assert repr(d) == "AuthorizationDecision(step='no-allow-matched', policy=None, rule=None, provider=None)"
    ok = s.check("demo", {"app": "api"}, port=8080, principal="spiffe://cluster.local/ns/shop/sa/web")
    assert ok != d and ok.policy == "demo/api-callers" and ok.rule == 0
    assert eval(repr(ok), {"AuthorizationDecision": meshtls.AuthorizationDecision}) == ok
    with pytest.raises(AttributeError):
        ok.allowed = False  # type: ignore[misc]
    assert meshtls.AuthorizationDecision("external", "a/b", 1, "ext").provider == "ext"
    with pytest.raises(ValueError):
        meshtls.AuthorizationDecision("maybe")
    with pytest.raises(ValueError):
        meshtls.AuthorizationDecision("allowed")
    assert len(s) == 1 and s.policy_names == ["demo/api-callers"] and s.skipped == 0
    assert "1 policies" in repr(s)


def test_bad_arguments_raise_typed_errors():
    s = meshtls.AuthorizationPolicySet.from_dicts([])
    with pytest.raises(meshtls.InvalidArgumentError, match="port 70000 is out of range"):
        s.check("demo", {}, port=70000)
    with pytest.raises(meshtls.InvalidSpiffeIdError):
        s.check("demo", {}, port=80, principal="not a spiffe id")
    with pytest.raises(ValueError, match="not an IP address"):
        s.check("demo", {}, port=80, source_ip="10.0.0")
    with pytest.raises(TypeError):
        s.check("demo", ["app"], port=80)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of objects"):
        meshtls.AuthorizationPolicySet.from_dicts({"kind": "AuthorizationPolicy"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of objects"):
        meshtls.AuthorizationPolicySet.from_dicts("kind: AuthorizationPolicy")  # type: ignore[arg-type]
    with pytest.raises(meshtls.AuthorizationPolicyError, match="no metadata.namespace"):
        meshtls.AuthorizationPolicySet.from_dicts(
            [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "x"}}]
        )
    with pytest.raises(meshtls.ManifestError):
        meshtls.AuthorizationPolicySet.from_yaml("a: [")
    # One port rule for every entry point: a wrong type is a TypeError, out of range an
    # InvalidArgumentError naming the port, whichever set or query takes it.
    with pytest.raises(TypeError, match="port must be an int, got str"):
        s.check("demo", {}, port="80")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port must be an int, got bool"):
        s.check("demo", {}, port=True)
    with pytest.raises(meshtls.InvalidArgumentError, match="port 18446744073709551616 is out of range"):
        s.check_many([{"namespace": "demo", "port": 2**64}])
    with pytest.raises(meshtls.InvalidArgumentError, match="port -1 is out of range"):
        meshtls.PolicySet.from_yaml("").resolve("demo", {}, -1)
    with pytest.raises(TypeError, match="mesh_config"):
        meshtls.AuthorizationPolicySet.from_yaml("", mesh_config=3)  # type: ignore[arg-type]


def test_path_check_seed_case():
    dump = (REPO / "examples" / "authz" / "cluster-dump.json").read_text()
    mesh = meshtls.Mesh.from_dump(dump)
    r = mesh.check("demo", {"app": "api"}, 8080, caller=GW)
    assert not r.allowed
    assert r.step == "no-allow-matched"
    assert r.mode == meshtls.MtlsMode.STRICT and r.mode_policy == "demo/default"
    assert r.transport == "mtls"
    assert r.authorization is not None and r.authorization.step == "no-allow-matched"
    assert any("ALLOW demo/api-callers" in line for line in r.explanation)
    assert pickle.loads(pickle.dumps(r)) == r

    doc = json.loads(dump)
    doc["items"][2]["spec"]["rules"][0]["from"][0]["source"]["principals"].append(GW[len("spiffe://"):])
    r = meshtls.Mesh.from_dump(json.dumps(doc)).check("demo", {"app": "api"}, 8080, caller=GW)
    assert r.allowed and r.step == "allowed" and r.authorization.policy == "demo/api-callers"

    plain = mesh.check("demo", {"app": "api"}, 8080, caller=None)
    assert not plain.allowed and plain.step == "mode" and plain.authorization is None
    assert plain.reason.startswith("refused by mTLS mode STRICT")

    web = mesh.check(
        "demo", {"app": "api"}, 8080, caller="spiffe://cluster.local/ns/shop/sa/web", workload=True, service="api"
    )
    assert web.allowed and web.transport == "mtls"
    foreign = mesh.check("demo", {"app": "api"}, 8080, caller="spiffe://other.example/ns/a/sa/b")
    assert foreign.step == "trust-domain"
    with pytest.raises(ValueError, match="workload=True"):
        mesh.check("demo", {}, 80, caller=None, workload=True)
    with_cfg = meshtls.Mesh.from_dump(dump, mesh_config="trustDomain: prod.example\n")
    assert with_cfg.check("demo", {"app": "api"}, 8080, caller=GW).step == "trust-domain"
    obj = meshtls.Mesh.from_dump(dump, mesh_config=meshtls.MeshConfig.from_yaml("trustDomain: prod.example\n"))
    assert obj.check("demo", {"app": "api"}, 8080, caller=GW).step == "trust-domain"
    assert mesh.authorization_policies == ["demo/api-callers"] and mesh.destination_rules == 1


@pytest.mark.parametrize(
    "cls",
    [meshtls.AuthorizationPolicySet, meshtls.AuthorizationDecision, meshtls.Mesh, meshtls.PathResult],
)
def test_everything_has_a_docstring(cls):
    assert cls.__doc__ and cls.__doc__.strip()
    for name in dir(cls):
        if name.startswith("_") and name != "__reduce__":
            continue
        attr = getattr(cls, name)
        assert getattr(attr, "__doc__", None), f"{cls.__name__}.{name} has no docstring"
    assert meshtls.validate_authorization_policy.__doc__


UPSTREAM = load_vectors("authz-upstream.json")


@pytest.mark.parametrize("case", UPSTREAM["expand"], ids=[c["name"] for c in UPSTREAM["expand"]])
def test_upstream_alias_expansion(case):
    got = meshtls.expand_principals(case["principals"], case["trust_domains"])
    assert got == case["expect"], case["source"]


@pytest.mark.parametrize("case", UPSTREAM["eval"], ids=[c["name"] for c in UPSTREAM["eval"]])
def test_upstream_evaluation(case):
    mesh = mesh_yaml(case.get("mesh"))
    s = meshtls.AuthorizationPolicySet.from_dicts(case["policies"], mesh_config=mesh)
    w = case["workload"]
    args = kwargs(case["request"])
    d = s.check(w["namespace"], w["labels"], data_plane=case["data_plane"], **args)
    e = case["expected"]
    assert_decision(d, e, case["source"] + "\n" + "\n".join(d.explanation))
    many = s.check_many(
        [dict(args, namespace=w["namespace"], labels=w["labels"], data_plane=case["data_plane"])],
        explain=True,
    )
    assert many == [d]


def path_kwargs(case: dict) -> dict:
    d = case["destination"]
    caller = case["caller"]
    out: dict = {
        "caller": caller.get("id"),
        "workload": caller["kind"] == "workload",
        "hbone": caller["kind"] == "hbone",
    }
    for k in ("method", "path", "destination_ip", "source_ip"):
        if k in d:
            out[k] = d[k]
    return out


@pytest.mark.parametrize("case", UPSTREAM["path"], ids=[c["name"] for c in UPSTREAM["path"]])
def test_upstream_path_checks(case):
    dump = json.dumps({"apiVersion": "v1", "kind": "List", "items": case["dump"]})
    mesh = meshtls.Mesh.from_dump(dump, mesh_config=mesh_yaml(case.get("mesh")) or "{}\n")
    d = case["destination"]
    r = mesh.check(d["namespace"], d["labels"], d["port"], **path_kwargs(case))
    e = case["expected"]
    assert (r.allowed, r.step, r.data_plane, r.transport) == (
        e["allowed"],
        e["step"],
        e["data_plane"],
        e["transport"],
    ), case["source"] + "\n" + "\n".join(r.explanation)
    assert r.explanation[1].startswith("data plane: ")
    assert pickle.loads(pickle.dumps(r)) == r


def test_every_attribute_reaches_the_evaluator():
    """Each request attribute, given by its keyword, decides a policy that reads only it."""
    def one(when_key: str, value: str) -> meshtls.AuthorizationPolicySet:
        return meshtls.AuthorizationPolicySet.from_dicts(
            [
                {
                    "apiVersion": "security.istio.io/v1",
                    "kind": "AuthorizationPolicy",
                    "metadata": {"name": "deny", "namespace": "demo"},
                    "spec": {"action": "DENY", "rules": [{"when": [{"key": when_key, "values": [value]}]}]},
                }
            ]
        )

    cases = [
        ("source.ip", "10.0.0.0/8", {"source_ip": "10.1.1.1"}, {"source_ip": "192.168.0.1"}),
        ("remote.ip", "1.2.3.4", {"remote_ip": "1.2.3.4"}, {"remote_ip": "1.2.3.5"}),
        ("destination.ip", "10.0.0.0/8", {"destination_ip": "10.9.9.9"}, {"destination_ip": "172.16.0.1"}),
        # HTTP-only attributes: on TCP a DENY drops them (denies more), so these are HTTP requests.
        ("request.auth.principal", "iss/sub", {"request_principal": "iss/sub", "method": "GET"}, {"request_principal": "iss/other", "method": "GET"}),
        ("request.auth.claims[group]", "admin", {"claims": {"group": ["x", "admin"]}, "path": "/"}, {"claims": {"group": "x"}, "path": "/"}),
        ("connection.sni", "api.example", {"sni": "api.example"}, {"sni": "web.example"}),
        ("request.headers[x-user]", "bad", {"headers": {"x-user": "bad"}}, {"headers": {"x-user": "good"}}),
        ("source.principal", "cluster.local/ns/a/sa/b", {"principal": "spiffe://cluster.local/ns/a/sa/b"}, {"principal": "spiffe://cluster.local/ns/a/sa/c"}),
    ]
    for key, value, hit, miss in cases:
        s = one(key, value)
        assert s.check("demo", {}, port=80, **hit).step == "denied", key
        assert s.check("demo", {}, port=80, **miss).step == "no-allow-policy", key
        assert [d.step for d in s.check_many([dict(hit, namespace="demo", port=80), dict(miss, namespace="demo", port=80)])] == [
            "denied",
            "no-allow-policy",
        ], key
    # The HTTP ones (`host`, `method`, `path`) in operations.
    s = meshtls.AuthorizationPolicySet.from_dicts(
        [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny", "namespace": "demo"},
                "spec": {
                    "action": "DENY",
                    "rules": [{"to": [{"operation": {"hosts": ["api.example"], "methods": ["POST"], "paths": ["/admin"]}}]}],
                },
            }
        ]
    )
    assert s.check("demo", {}, port=80, host="api.example", method="POST", path="/admin").step == "denied"
    assert s.check("demo", {}, port=80, host="api.example", method="GET", path="/admin").step == "no-allow-policy"
    # Any HTTP attribute makes the request HTTP with the core's defaults (GET /).
    assert s.check("demo", {}, port=80, host="api.example").step == "no-allow-policy"


def test_ambient_arguments_are_checked():
    s = meshtls.AuthorizationPolicySet.from_dicts([])
    with pytest.raises(meshtls.InvalidArgumentError, match='invalid data_plane "waypoint"'):
        s.check("demo", {}, port=80, data_plane="waypoint")
    with pytest.raises(meshtls.InvalidArgumentError, match="invalid data_plane"):
        s.check_many([{"namespace": "demo", "port": 80, "data_plane": "x"}])
    with pytest.raises(meshtls.InvalidArgumentError, match="invalid destination_ip"):
        s.check("demo", {}, port=80, destination_ip="10.0.0.300")
    mesh = meshtls.Mesh.from_dump('{"apiVersion": "v1", "kind": "List", "items": []}')
    with pytest.raises(meshtls.InvalidArgumentError, match="exclude each other"):
        mesh.check("demo", {}, 80, caller=GW, workload=True, hbone=True)
    with pytest.raises(meshtls.InvalidArgumentError, match="need the caller"):
        mesh.check("demo", {}, 80, caller=None, hbone=True)


def test_documents_from_python_objects_are_read_strictly_by_the_one_reader() -> None:
    """from_dicts and validate_authorization_policy read Python objects as PolicySet.from_dicts
    does: a value that is not JSON-like is a ManifestError naming where it is (never its str()),
    and any Mapping is an object."""
    import collections
    import datetime as dt

    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "demo"},
        "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": ["*"]}}]}]},
    }
    # An aware datetime (as the kubernetes client returns creationTimestamp) is read.
    aware = dict(policy, metadata={**policy["metadata"], "creationTimestamp": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)})
    assert len(meshtls.AuthorizationPolicySet.from_dicts([aware])) == 1
    assert meshtls.validate_authorization_policy(collections.OrderedDict(aware)) == []
    # Bytes, sets and naive datetimes are refused with where they are.
    for bad, where in [
        ({**policy, "spec": {"action": b"ALLOW"}}, "documents[0].spec.action"),
        ({**policy, "metadata": {**policy["metadata"], "labels": {"a", "b"}}}, "documents[0].metadata.labels"),
        ({**policy, "metadata": {**policy["metadata"], "creationTimestamp": dt.datetime(2024, 1, 1)}}, "documents[0].metadata.creationTimestamp"),
    ]:
        with pytest.raises(meshtls.ManifestError, match=re.escape(where)):
            meshtls.AuthorizationPolicySet.from_dicts([bad])
        with pytest.raises(meshtls.ManifestError, match=re.escape(where.replace("documents[0]", "object"))):
            meshtls.validate_authorization_policy(bad)
    with pytest.raises(TypeError, match="takes YAML/JSON text"):
        meshtls.validate_authorization_policy(42)  # type: ignore[arg-type]


def test_authorization_policy_errors_are_not_peer_authentication_errors() -> None:
    with pytest.raises(meshtls.AuthorizationPolicyError) as info:
        meshtls.validate_authorization_policy(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: deny-all, namespace: foo}\nspec: {action: DENY}\n"
        )
    assert not isinstance(info.value, meshtls.PolicyError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, meshtls.MeshTlsError)
    assert not issubclass(meshtls.PolicyError, meshtls.AuthorizationPolicyError)
