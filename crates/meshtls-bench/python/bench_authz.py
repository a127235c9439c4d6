"""Python cost of AuthorizationPolicy checks next to the core's, in one run.

    python crates/meshtls-bench/python/bench_authz.py

Builds 1,000 namespaces x 10 policies (as crates/meshtls-bench's authz group does, in
spirit), then times one `check(explain=False)` call from Python, `check_many` per request
(the core's loop with the GIL released, plus argument conversion), and `check` with the
explanation.
"""

from __future__ import annotations

import random
import time

import meshtls


def cluster(rng: random.Random) -> list[dict]:
    out = []
    for n in range(1000):
        ns = f"team-{n:04d}"
        caller = lambda: f"cluster.local/ns/team-{rng.randrange(20):04d}/sa/sa-{rng.randrange(2)}"
        out.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                    "metadata": {"name": "p0", "namespace": ns},
                    "spec": {"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["untrusted"]}}],
                                                          "to": [{"operation": {"paths": ["/admin*"], "ports": ["8080"]}}]}]}})
        out.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                    "metadata": {"name": "p1", "namespace": ns},
                    "spec": {"rules": [{"from": [{"source": {"principals": [caller() for _ in range(3)]}}]}]}})
        for k in range(2, 10):
            out.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                        "metadata": {"name": f"p{k}", "namespace": ns},
                        "spec": {"selector": {"matchLabels": {"app": f"app-{k}"}},
                                 "rules": [{"from": [{"source": {"principals": [caller(), caller()]}}],
                                            "to": [{"operation": {"methods": ["GET"], "paths": ["/api/*"]}}]}]}})
    return out


def main() -> None:
    rng = random.Random(11)
    t = time.perf_counter()
    s = meshtls.AuthorizationPolicySet.from_dicts(cluster(rng))
    build = time.perf_counter() - t
    reqs = [{"namespace": f"team-{rng.randrange(1000):04d}", "labels": {"app": f"app-{rng.randrange(12)}"},
             "port": 8080, "principal": f"spiffe://cluster.local/ns/team-{rng.randrange(20):04d}/sa/sa-{rng.randrange(2)}",
             "method": "GET", "path": "/api/items"} for _ in range(20000)]
    for r in reqs[:100]:
        s.check(r["namespace"], r["labels"], port=r["port"], principal=r["principal"], method="GET", path="/api/items", explain=False)
    t = time.perf_counter()
    for r in reqs:
        s.check(r["namespace"], r["labels"], port=r["port"], principal=r["principal"], method="GET", path="/api/items", explain=False)
    one = (time.perf_counter() - t) / len(reqs)
    t = time.perf_counter()
    out = s.check_many(reqs)
    many = (time.perf_counter() - t) / len(reqs)
    t = time.perf_counter()
    for r in reqs[:2000]:
        s.check(r["namespace"], r["labels"], port=r["port"], principal=r["principal"], method="GET", path="/api/items")
    explained = (time.perf_counter() - t) / 2000
    allowed = sum(d.allowed for d in out)
    print(f"from_dicts, {len(s)} policies: {build * 1e3:.1f} ms (json.dumps + parse + build)")
    print(f"check(explain=False), one call from Python: {one * 1e6:.2f} us")
    print(f"check_many, per request (GIL released for the core's loop): {many * 1e6:.2f} us")
    print(f"check with the explanation: {explained * 1e6:.2f} us")
    print(f"{allowed} of {len(out)} allowed")


if __name__ == "__main__":
    main()
