from __future__ import annotations

import copy
import datetime
import json
import pickle
import re
import threading
import time

import pytest

import meshtls
from conftest import SHARED_SPEC, load_vectors
from meshtls import (
    Decision,
    ManifestError,
    MeshTlsError,
    MtlsMode,
    PolicyError,
    PolicySet,
    validate_peer_authentication,
)

RESOLUTION = load_vectors("peerauth-resolution.json")
VALIDATION = load_vectors("peerauth-validation.json")


# ---- building manifests from the vector fields ---------------------------------------------


def _q(s: str) -> str:
    return json.dumps(s)


def kubectl_list(policies: list[dict]) -> str:
    """The YAML `kubectl get peerauthentications -A -o yaml` prints for these policies."""
    out = ["apiVersion: v1", "items:" if policies else "items: []"]
    for i, p in enumerate(policies):
        out += [
            "- apiVersion: security.istio.io/v1",
            "  kind: PeerAuthentication",
            "  metadata:",
            f"    creationTimestamp: {_q(p['creation_timestamp'])}",
            "    generation: 1",
            f"    name: {p['name']}",
            f"    namespace: {p['namespace']}",
            f'    resourceVersion: "{1000 + i}"',
            f"    uid: 00000000-0000-0000-0000-{i:012d}",
        ]
        spec = []
        if p["mtls_mode"] is not None:
            spec += ["    mtls:", f"      mode: {p['mtls_mode']}"]
        if p.get("port_level_mtls"):
            spec.append("    portLevelMtls:")
            for port, mode in p["port_level_mtls"].items():
                if mode is None:
                    spec.append(f'      "{port}": {{}}')
                else:
                    spec += [f'      "{port}":', f"        mode: {mode}"]
        if p["selector"] is not None:
            if not p["selector"]:
                spec += ["    selector:", "      matchLabels: {}"]
            else:
                spec += ["    selector:", "      matchLabels:"]
                spec += [f"        {k}: {_q(v)}" for k, v in p["selector"].items()]
        out += ["  spec:", *spec] if spec else ["  spec: {}"]
    out += ["kind: List", "metadata:", '  resourceVersion: ""']
    return "\n".join(out) + "\n"


def as_dict(p: dict) -> dict:
    """The same policy as the JSON a Kubernetes client returns (ports as int keys here)."""
    spec: dict = {}
    if p["mtls_mode"] is not None:
        spec["mtls"] = {"mode": p["mtls_mode"]}
    if p["selector"] is not None:
        spec["selector"] = {"matchLabels": dict(p["selector"])}
    if p.get("port_level_mtls"):
        spec["portLevelMtls"] = {
            int(port): ({} if mode is None else {"mode": mode})
            for port, mode in p["port_level_mtls"].items()
        }
    return {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "PeerAuthentication",
        "metadata": {
            "name": p["name"],
            "namespace": p["namespace"],
            "creationTimestamp": datetime.datetime.fromisoformat(
                p["creation_timestamp"].replace("Z", "+00:00")
            ),
        },
        "spec": spec,
    }


# ---- resolution -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", RESOLUTION, ids=[c["name"] for c in RESOLUTION])
def test_resolution_vectors(case):
    root = case["root_namespace"]
    wl = case["workload"]
    expected = case["expected_mode"]
    from_yaml = PolicySet.from_yaml(kubectl_list(case["policies"]), root_namespace=root)
    from_dicts = PolicySet.from_dicts(
        [as_dict(p) for p in case["policies"]], root_namespace=root
    )
    assert len(from_yaml) == len(from_dicts) == len(case["policies"])
    assert from_yaml.root_namespace == root
    for ps in (from_yaml, from_dicts):
        d = ps.resolve(wl["namespace"], wl["labels"], case["port"])
        assert str(d.mode) == expected, d.explanation
        assert d.mode == MtlsMode[expected] == expected
        assert d.level in ("workload", "port", "namespace", "mesh", "default")
        if d.level == "default":
            assert d.policy is None and d.mode is MtlsMode.PERMISSIVE
        else:
            ns = d.policy.split("/")[0]
            assert ns == (root if d.level == "mesh" else wl["namespace"])
        assert d.explanation[-1].startswith(f"result: {expected}")
        if case["category"] == "root-selector":
            assert any("ignored: selector in the root namespace" in line for line in d.explanation)
    # The same answer in bulk, with and without explanations.
    many = from_yaml.resolve_many([(wl["namespace"], wl["labels"], case["port"])] * 3)
    quick = from_yaml.resolve_many(
        [(wl["namespace"], wl["labels"], case["port"])], explain=False
    )
    assert [str(d.mode) for d in many + quick] == [expected] * 4
    assert quick[0] == many[0] and quick[0].explanation == []


def test_which_mode_applies_example():
    manifests = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system, creationTimestamp: "2024-01-01T00:00:00Z"}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: shop, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  selector: {matchLabels: {app: legacy}}
  portLevelMtls: {8080: {mode: PERMISSIVE}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"""
    policies = PolicySet.from_yaml(manifests)
    assert policies.skipped == 1
    assert policies.policy_names == ["istio-system/default", "shop/legacy"]
    d = policies.resolve("shop", {"app": "legacy", "version": "v1"}, port=8080)
    assert (d.mode, d.level, d.policy) == (MtlsMode.PERMISSIVE, "port", "shop/legacy")
    d = policies.resolve("shop", {"app": "legacy"}, port=9090)
    assert (d.mode, d.level, d.policy) == (MtlsMode.STRICT, "mesh", "istio-system/default")
    assert "shop/legacy has no portLevelMtls entry for 9090" in " ".join(d.explanation)
    d = policies.resolve("shop", None)
    assert str(d) == "STRICT (mesh level, istio-system/default)"


def test_conflicts_and_root_selectors_are_explained():
    docs = [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": n, "namespace": ns, "creationTimestamp": ts},
            "spec": spec,
        }
        for n, ns, ts, spec in [
            ("x", "istio-system", "2024-01-01T00:00:00Z",
             {"selector": {"matchLabels": {"app": "foo"}}, "mtls": {"mode": "DISABLE"}}),
            ("new", "app", "2024-01-01T00:00:05Z",
             {"selector": {"matchLabels": {"app": "foo", "v": "1"}}, "mtls": {"mode": "DISABLE"}}),
            ("old", "app", "2024-01-01T00:00:00Z",
             {"selector": {"matchLabels": {"app": "foo"}}, "mtls": {"mode": "STRICT"}}),
        ]
    ]
    d = PolicySet.from_dicts(docs).resolve("app", {"app": "foo", "v": "1"})
    assert d.policy == "app/old" and d.mode is MtlsMode.STRICT
    text = "\n".join(d.explanation)
    assert "istio-system/x ignored: selector in the root namespace" in text
    assert "app/old wins over app/new: older" in text


def test_policies_without_creation_timestamp_sort_after_applied_ones_then_by_name():
    docs = [
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": name, "namespace": "shop", **extra},
         "spec": {"mtls": {"mode": mode}}}
        for name, extra, mode in [
            ("a-unapplied", {}, "DISABLE"),
            ("b-unapplied", {"creationTimestamp": None}, "PERMISSIVE"),
            ("z-applied", {"creationTimestamp": "2030-01-01T00:00:00Z"}, "STRICT"),
        ]
    ]
    ps = PolicySet.from_dicts(docs)
    assert ps.policy_names == ["shop/z-applied", "shop/a-unapplied", "shop/b-unapplied"]
    assert ps.resolve("shop", {}).policy == "shop/z-applied"
    ps = PolicySet.from_dicts(docs[:2])
    assert ps.resolve("shop", {}).policy == "shop/a-unapplied"


def test_resolve_many_matches_resolve_and_accepts_two_tuples():
    case = next(c for c in RESOLUTION if c["name"].startswith("model: foo namespace"))
    ps = PolicySet.from_yaml(kubectl_list(case["policies"]), root_namespace=case["root_namespace"])
    workloads = [
        ("foo", {}),
        ("foo", {"version": "v1"}, None),
        ("bar", {"app": "httpbin", "version": "v2"}, 80),
        ("istio-config", {"app": "httpbin", "version": "v2"}),
    ]
    got = ps.resolve_many(workloads)
    want = [ps.resolve(*w) for w in workloads]
    assert got == want
    assert [d.explanation for d in got] == [d.explanation for d in want]
    assert [str(d.mode) for d in got] == ["STRICT", "DISABLE", "PERMISSIVE", "PERMISSIVE"]
    with pytest.raises(TypeError):
        ps.resolve_many([("foo",)])
    with pytest.raises(TypeError):
        ps.resolve_many(["foo"])


def _label_policies():
    docs = [
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": name, "namespace": "shop", "creationTimestamp": ts},
         "spec": spec}
        for name, ts, spec in [
            ("wide", "2024-01-01T00:00:00Z", {"mtls": {"mode": "PERMISSIVE"}}),
            ("many", "2024-01-01T00:00:01Z",
             {"selector": {"matchLabels": {f"k{i}": f"v{i}" for i in range(10)}}, "mtls": {"mode": "STRICT"},
              "portLevelMtls": {"8080": {"mode": "DISABLE"}}}),
            ("web", "2024-01-01T00:00:02Z", {"selector": {"matchLabels": {"app": "web"}}, "mtls": {"mode": "STRICT"}}),
        ]
    ]
    return PolicySet.from_dicts(docs)


def test_explanations_are_of_the_query_as_it_was_asked_for_any_number_of_labels():
    # Decisions keep a copy of their query (up to four label pairs inline, more on the heap;
    # resolve_many keeps one copy per batch): the explanation built later is of that query,
    # even when the caller's dict changed since, and equals the core's explain of it.
    ps = _label_policies()
    ten = {f"k{i}": f"v{i}" for i in range(10)}
    for labels, port, mode in [({"app": "web"}, None, "STRICT"), (ten, 8080, "DISABLE"),
                               ({**ten, **{f"x{i}": "y" for i in range(6)}}, 9090, "STRICT"),
                               ({"app": "db"}, None, "PERMISSIVE"), ({}, 1, "PERMISSIVE")]:
        asked = dict(labels)
        single = ps.resolve("shop", asked, port)
        batch = ps.resolve_many([("shop", asked, port), ("other", {"app": "web"}), ("shop", asked, port)])
        asked.clear()
        asked["app"] = "changed"
        fresh = ps.resolve("shop", labels, port)
        assert str(single.mode) == mode == str(batch[0].mode) == str(batch[2].mode)
        assert single.explanation == fresh.explanation == batch[0].explanation == batch[2].explanation
        assert fresh.explanation[-1].startswith(f"result: {mode}"), fresh.explanation
        assert batch[1].explanation == ps.resolve("other", {"app": "web"}).explanation
        del batch  # the batch's copy lives as long as one of its decisions
    survivor = ps.resolve_many([("shop", {"app": "web"})] * 3)[1]
    assert survivor.explanation[-1].startswith("result: STRICT")
    # A decision from a set (which names its policy through the set) and one rebuilt from its
    # parts are equal, hash alike, and print alike.
    d = ps.resolve("shop", ten, 8080)
    back = pickle.loads(pickle.dumps(d))
    rebuilt = Decision("DISABLE", "port", "shop/many")
    assert d == back == rebuilt and hash(d) == hash(back) == hash(rebuilt)
    assert {d, back, rebuilt, ps.resolve_many([("shop", ten, 8080)], explain=False)[0]} == {d}
    assert (str(d), repr(d)) == (str(rebuilt), repr(rebuilt)) == (
        "DISABLE (port level, shop/many)", "Decision(mode=MtlsMode.DISABLE, level='port', policy='shop/many')")
    assert back.explanation == d.explanation and d != ps.resolve("shop", ten, 80)
    default = ps.resolve("elsewhere", {})
    assert (default.policy, default.level, str(default)) == (None, "default", str(Decision("PERMISSIVE", "default")))


def test_from_dicts_keeps_error_precedence_while_reading_one_document_at_a_time():
    good = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "a", "namespace": "shop"}, "spec": {"mtls": {"mode": "STRICT"}}}
    bad_policy = {**good, "metadata": {"name": "b", "namespace": "shop"}, "spec": {"mtls": {"mode": "strict"}}}
    bad_value = {**good, "metadata": {"name": "c", "namespace": "shop", "uid": {1, 2}}}
    # A value that is not JSON-like anywhere wins over a policy error in an earlier document.
    with pytest.raises(ManifestError, match=r"documents\[2\]\.metadata\.uid"):
        PolicySet.from_dicts([good, bad_policy, bad_value])
    # Policy errors come in document order, naming the document.
    with pytest.raises(PolicyError, match="shop/b") as info:
        PolicySet.from_dicts([good, bad_policy, {**bad_policy, "metadata": {"name": "z", "namespace": "x"}}])
    assert "x/z" not in str(info.value)
    # A document's error wins over the set's own (a bad root namespace, a duplicate).
    with pytest.raises(PolicyError, match="shop/b"):
        PolicySet.from_dicts([good, good, bad_policy], root_namespace="Bad Root")
    with pytest.raises(PolicyError, match="invalid root namespace"):
        PolicySet.from_dicts([good], root_namespace="Bad Root")
    # Generators, lists inside kind: List, and other kinds, as before.
    ps = PolicySet.from_dicts(
        d for d in [{"apiVersion": "v1", "kind": "List", "items": [good, {"kind": "ConfigMap"}]}])
    assert (len(ps), ps.skipped, ps.policy_names) == (1, 1, ["shop/a"])


def test_from_dicts_reads_mappings_in_key_order_as_json_does():
    # from_dicts reads the dicts in place, through the core's reader: a mapping is read as a
    # JSON object is (members in key order, the last of keys that convert alike), whatever
    # the dict's insertion order, so the first error is the same one as for the same JSON.
    def pa(spec):
        return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": {"name": "pa", "namespace": "shop"}, "spec": spec}

    with pytest.raises(PolicyError, match=r"spec\.mtls in body must be of type object"):
        PolicySet.from_dicts([pa({"selector": 1, "mtls": 2})])
    with pytest.raises(PolicyError, match='unknown field "spec.aa"'):
        PolicySet.from_dicts([pa({"zz": 1, "aa": 2})])
    with pytest.raises(PolicyError, match=r'spec\.portLevelMtls\["80"\]: port 80 appears twice'):
        PolicySet.from_dicts([pa({"portLevelMtls": {"80": {}, "080": {}}})])
    # An int port key and the same port as a str: one key, the later value.
    for ports, mode in (({80: {"mode": "STRICT"}, "80": {"mode": "DISABLE"}}, "DISABLE"),
                        ({"80": {"mode": "DISABLE"}, 80: {"mode": "STRICT"}}, "STRICT")):
        ps = PolicySet.from_dicts([pa({"selector": {"matchLabels": {"app": "web"}},
                                       "mtls": {"mode": "PERMISSIVE"}, "portLevelMtls": ports})])
        assert str(ps.resolve("shop", {"app": "web"}, 80).mode) == mode
    for ports in ({80: {"mode": 1}}, {"80": {"mode": 1}}):
        with pytest.raises(PolicyError, match=r'spec\.portLevelMtls\["80"\]\.mode in body must be of type string'):
            PolicySet.from_dicts([pa({"portLevelMtls": ports})])


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", VALIDATION, ids=[c["name"] for c in VALIDATION])
def test_validation_vectors(case):
    manifest = case["manifest"]
    name = re.search(r"^  name: (\S+)$", manifest, re.M).group(1)
    webhook = case["layer"].startswith("istiod")
    if case["expected"] == "accept":
        warnings = validate_peer_authentication(manifest)
        assert isinstance(warnings, list)
        if webhook:
            assert bool(warnings) == case["warning"]
        if case["warning"]:
            assert any(case["reason"] in w for w in warnings), warnings
            assert all(name in w and "spec.selector" in w for w in warnings)
    else:
        with pytest.raises(PolicyError) as info:
            validate_peer_authentication(manifest)
        message = str(info.value)
        assert name in message
        for part in case["reason"].split("; also "):
            assert part in message, (part, message)


def test_validation_accepts_dicts_and_reports_every_rule():
    obj = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "portLevelMtls": {8080: {"mode": "DISABLE"}}},
    }
    assert validate_peer_authentication(obj) == []
    bad = copy.deepcopy(obj)
    bad["spec"]["selector"]["matchLabels"] = {}
    bad["spec"]["mtls"] = {"mode": "strict"}
    with pytest.raises(PolicyError) as info:
        validate_peer_authentication(bad)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, MeshTlsError)
    msg = str(err)
    assert msg.startswith("invalid PeerAuthentication shop/p: ")
    assert 'spec.mtls.mode: Unsupported value: "strict"' in msg
    assert "portLevelMtls requires selector [CRD CEL rule]" in msg
    assert "mesh/namespace peer authentication cannot have port level mTLS [istiod webhook]" in msg
    typo = copy.deepcopy(obj)
    typo["spec"]["mTLS"] = typo["spec"].pop("portLevelMtls")
    with pytest.raises(PolicyError, match='unknown field "spec.mTLS"'):
        validate_peer_authentication(typo)
    # Other kinds are skipped by every reader (one rule, see the policy module docs): a stream
    # with no PeerAuthentication at all is the error.
    with pytest.raises(PolicyError, match="no PeerAuthentication"):
        validate_peer_authentication("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(PolicyError, match="has no kind"):
        validate_peer_authentication("foo: bar\n")
    with pytest.raises(PolicyError, match="no PeerAuthentication"):
        validate_peer_authentication("")


def test_validation_enum_matches_the_crd():
    path = SHARED_SPEC / "crd-peerauthentication.yaml"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared spec lives beside the repository)")
    text = path.read_text()
    enums = re.findall(r"enum:\n((?:\s+- \S+\n)+)", text)
    mode_enums = [re.findall(r"- (\S+)", e) for e in enums if "STRICT" in e]
    assert len(mode_enums) == 4  # mtls.mode and portLevelMtls mode, in v1 and v1beta1
    for values in mode_enums:
        assert values == [m.value for m in MtlsMode]
    assert re.findall(r"maxLength: (\d+)", text) == ["63", "63"]
    assert re.findall(r"maxProperties: (\d+)", text) == ["4096", "4096"]
    for message in set(re.findall(r"- message: (.+)", text)):
        # Every CEL message of the CRD is one meshtls reports.
        assert message in _all_cel_messages(), message


def _all_cel_messages() -> str:
    msgs = []
    for spec in (
        {"selector": {"matchLabels": {"": "x", "a*": "b*"}}, "portLevelMtls": {"0": {}}},
        {"portLevelMtls": {"80": {}}},
    ):
        try:
            validate_peer_authentication(
                {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                 "metadata": {"name": "x", "namespace": "y"}, "spec": spec}
            )
        except PolicyError as e:
            msgs.append(str(e))
    return "\n".join(msgs)


# ---- values -----------------------------------------------------------------------------------


def test_mtls_mode_is_a_string_enum():
    assert [str(m) for m in MtlsMode] == ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]
    assert MtlsMode("STRICT") is MtlsMode.STRICT is MtlsMode["STRICT"]
    assert MtlsMode.STRICT == "STRICT" and f"{MtlsMode.DISABLE}" == "DISABLE"
    assert pickle.loads(pickle.dumps(MtlsMode.PERMISSIVE)) is MtlsMode.PERMISSIVE
    with pytest.raises(ValueError):
        MtlsMode("strict")


def test_decision_is_a_value():
    d = Decision(MtlsMode.STRICT, "workload", "shop/api", ["because"])
    assert (d.mode, d.level, d.policy, d.explanation) == (MtlsMode.STRICT, "workload", "shop/api", ["because"])
    assert d == Decision("STRICT", "workload", "shop/api")  # explanations are not compared
    assert hash(d) == hash(Decision("STRICT", "workload", "shop/api"))
    assert d != Decision("STRICT", "namespace", "shop/default")
    back = pickle.loads(pickle.dumps(d))
    assert back == d and back.explanation == ["because"]
    assert eval(repr(d), {"Decision": Decision, "MtlsMode": MtlsMode}) == d
    assert repr(Decision("PERMISSIVE", "default")) == "Decision(mode=MtlsMode.PERMISSIVE, level='default', policy=None)"
    for args in [("UNSET", "default"), ("strict", "mesh", "a/b"), ("STRICT", "pod", "a/b"),
                 ("STRICT", "mesh"), ("STRICT", "default", "a/b"), ("STRICT", "mesh", "nobody")]:
        with pytest.raises((PolicyError, ValueError)):
            Decision(*args)


# ---- bad input ------------------------------------------------------------------------------


def test_bad_queries_and_sets():
    ps = PolicySet.from_yaml("")
    assert len(ps) == 0 and ps.resolve("x", {}).level == "default"
    with pytest.raises(meshtls.InvalidArgumentError, match="port 70000 is out of range"):
        ps.resolve("x", {}, 70000)
    with pytest.raises(meshtls.InvalidArgumentError, match="port -1 is out of range"):
        ps.resolve("x", {}, -1)
    with pytest.raises(TypeError, match="label values must be str"):
        ps.resolve("x", {"version": 1})
    with pytest.raises(TypeError, match="labels must be a mapping"):
        ps.resolve("x", ["app=web"])
    with pytest.raises(PolicyError, match="invalid root namespace"):
        PolicySet.from_yaml("", root_namespace="Istio System")
    pa = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "x"}}
    with pytest.raises(PolicyError, match="has no metadata.namespace"):
        PolicySet.from_dicts([pa])
    with pytest.raises(PolicyError, match="appears twice"):
        PolicySet.from_dicts([{**pa, "metadata": {"name": "x", "namespace": "a"}}] * 2)
    naive = {**pa, "metadata": {"name": "x", "namespace": "a", "creationTimestamp": datetime.datetime(2024, 1, 1)}}
    with pytest.raises(ValueError, match="naive datetime at documents\\[0\\].metadata.creationTimestamp"):
        PolicySet.from_dicts([naive])
    with pytest.raises(TypeError, match="list of objects"):
        PolicySet.from_dicts(pa)
    with pytest.raises(PolicyError, match="unknown field \"spec.mtls.mod\""):
        PolicySet.from_dicts([{**pa, "metadata": {"name": "x", "namespace": "a"}, "spec": {"mtls": {"mod": "STRICT"}}}])


def test_hostile_input_ends_in_typed_errors():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    names = "abcdefghi"
    for prev, nxt in zip(names, names[1:]):
        bomb += f"{nxt}: &{nxt} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    deep = "[" * 10_000 + "]" * 10_000
    huge = "apiVersion: v1\nkind: List\nitems: []\n# " + "x" * (20 * 1024 * 1024) + "\n"
    for text in (bomb, deep, huge):
        for call in (lambda t: PolicySet.from_yaml(t), validate_peer_authentication):
            with pytest.raises(ManifestError) as info:
                call(text)
            assert "\n" not in str(info.value) and len(str(info.value)) < 1024
    nested: dict = {}
    cur = nested
    for _ in range(10_000):
        cur["a"] = {}
        cur = cur["a"]
    with pytest.raises(ManifestError, match="nesting deeper than"):
        PolicySet.from_dicts([nested])
    cyclic: dict = {"kind": "PeerAuthentication"}
    cyclic["spec"] = cyclic
    with pytest.raises(ManifestError):
        validate_peer_authentication(cyclic)


def test_exports():
    for name in ("PolicySet", "Decision", "MtlsMode", "validate_peer_authentication"):
        assert name in meshtls.__all__ and getattr(meshtls, name)


def test_decision_policy_name_must_be_namespace_slash_name():
    assert meshtls.Decision("STRICT", "namespace", "shop/default").policy == "shop/default"
    for bad in ["shop", "/default", "shop/", "a/b/c"]:
        with pytest.raises(meshtls.PolicyError, match="namespace>/<name"):
            meshtls.Decision("STRICT", "namespace", bad)
