//! AuthorizationPolicy evaluation: 10,000 policies over 1,000 namespaces (plus mesh-wide ones
//! in the root namespace), against the straightforward alternative: per request, take the
//! workload namespace's and the root namespace's policy objects and evaluate them as written
//! (patterns parsed, principals expanded with the trust domains, per request).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use meshtls::MeshConfig;
use meshtls::policy::authorization::{
    Action, AuthorizationPolicy, AuthorizationPolicySet, AuthorizationPolicySpec, Condition, From,
    Metadata, Operation, Request, Rule, Selector, Source, To,
};

use crate::harness::{Harness, Stat};

const NAMESPACES: usize = 1_000;
const PER_NAMESPACE: usize = 10;
const ROOT: &str = "istio-system";
const CALLER_NAMESPACES: u64 = 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// The high bits, scaled: xorshift's low bits of consecutive draws are correlated.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

fn ns(i: u64) -> String {
    format!("team-{i:04}")
}

/// A caller: callers come from a few client namespaces, so that a realistic share of the
/// requests is allowed.
fn principal(rng: &mut Rng) -> String {
    format!(
        "cluster.local/ns/{}/sa/sa-{}",
        ns(rng.below(CALLER_NAMESPACES)),
        rng.below(2)
    )
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

/// A cluster's worth of policies: per namespace a namespace-wide DENY, a namespace-wide ALLOW
/// naming callers, and workload ALLOW policies per app with methods and paths; mesh-wide
/// DENY/AUDIT in the root namespace.
fn cluster(rng: &mut Rng) -> Vec<AuthorizationPolicy> {
    let mut out = Vec::new();
    for n in 0..NAMESPACES as u64 {
        let nsn = ns(n);
        for k in 0..PER_NAMESPACE {
            let mut md = Metadata::new(&nsn, format!("p{k}"));
            md.annotations.clear();
            let spec = match k {
                0 => AuthorizationPolicySpec {
                    action: Some(Action::Deny),
                    rules: Some(vec![Rule {
                        from: Some(vec![From {
                            source: Some(Source {
                                namespaces: strings(&["untrusted", "sandbox-*"]),
                                ..Source::default()
                            }),
                        }]),
                        to: Some(vec![To {
                            operation: Some(Operation {
                                paths: strings(&["/admin*"]),
                                ports: strings(&["8080"]),
                                ..Operation::default()
                            }),
                        }]),
                        ..Rule::default()
                    }]),
                    ..AuthorizationPolicySpec::default()
                },
                1 => AuthorizationPolicySpec {
                    rules: Some(vec![Rule {
                        from: Some(vec![From {
                            source: Some(Source {
                                principals: Some((0..3).map(|_| principal(rng)).collect()),
                                ..Source::default()
                            }),
                        }]),
                        ..Rule::default()
                    }]),
                    ..AuthorizationPolicySpec::default()
                },
                _ => AuthorizationPolicySpec {
                    selector: Some(Selector {
                        match_labels: Some([("app".to_owned(), format!("app-{k}"))].into()),
                    }),
                    rules: Some(vec![
                        Rule {
                            from: Some(vec![From {
                                source: Some(Source {
                                    principals: Some((0..2).map(|_| principal(rng)).collect()),
                                    ..Source::default()
                                }),
                            }]),
                            to: Some(vec![To {
                                operation: Some(Operation {
                                    methods: strings(&["GET", "HEAD"]),
                                    paths: strings(&["/api/*", "/healthz"]),
                                    ..Operation::default()
                                }),
                            }]),
                            ..Rule::default()
                        },
                        Rule {
                            from: Some(vec![From {
                                source: Some(Source {
                                    namespaces: Some(vec![ns(rng.below(CALLER_NAMESPACES))]),
                                    ..Source::default()
                                }),
                            }]),
                            when: Some(vec![Condition {
                                key: "request.headers[x-tenant]".into(),
                                values: strings(&["gold", "silver"]),
                                not_values: None,
                            }]),
                            ..Rule::default()
                        },
                    ]),
                    ..AuthorizationPolicySpec::default()
                },
            };
            out.push(AuthorizationPolicy::new(md, spec));
        }
    }
    for (i, (action, rules)) in [
        (
            Action::Deny,
            vec![Rule {
                from: Some(vec![From {
                    source: Some(Source {
                        not_principals: strings(&["*"]),
                        ..Source::default()
                    }),
                }]),
                to: Some(vec![To {
                    operation: Some(Operation {
                        ports: strings(&["9090"]),
                        ..Operation::default()
                    }),
                }]),
                ..Rule::default()
            }],
        ),
        (Action::Audit, vec![Rule::default()]),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(AuthorizationPolicy::new(
            Metadata::new(ROOT, format!("mesh-{i}")),
            AuthorizationPolicySpec {
                action: Some(action),
                rules: Some(rules),
                ..AuthorizationPolicySpec::default()
            },
        ));
    }
    out
}

type Query = (String, Vec<(String, String)>, Request);

fn queries(n: usize, rng: &mut Rng) -> Vec<Query> {
    (0..n)
        .map(|_| {
            let nsn = ns(rng.below(NAMESPACES as u64));
            let labels = vec![
                (
                    "app".to_owned(),
                    format!("app-{}", rng.below(PER_NAMESPACE as u64 + 2)),
                ),
                ("version".to_owned(), "v1".to_owned()),
            ];
            let mut r = Request::tcp(if rng.below(10) == 0 { 9090 } else { 8080 });
            if rng.below(20) != 0 {
                r = r.with_principal(&principal(rng));
            }
            let path = ["/api/items", "/healthz", "/admin/x", "/"][rng.below(4) as usize];
            let method = ["GET", "POST"][rng.below(2) as usize];
            r = r.with_http(method, path);
            if rng.below(3) == 0 {
                r = r.with_header("x-tenant", "gold");
            }
            (nsn, labels, r)
        })
        .collect()
}

/// The alternative: per request, evaluate the namespace's and the root namespace's policy
/// objects as written. Supports the fields the generated cluster uses.
struct Scan {
    by_ns: HashMap<String, Vec<AuthorizationPolicy>>,
    trust_domains: Vec<meshtls::TrustDomain>,
}

fn pat(p: &str, s: &str) -> bool {
    if p == "*" {
        true
    } else if let Some(x) = p.strip_prefix('*') {
        s.ends_with(x)
    } else if let Some(x) = p.strip_suffix('*') {
        s.starts_with(x)
    } else {
        p == s
    }
}

impl Scan {
    fn new(policies: &[AuthorizationPolicy], mesh: &MeshConfig) -> Self {
        let mut by_ns: HashMap<String, Vec<AuthorizationPolicy>> = HashMap::new();
        for p in policies {
            by_ns
                .entry(p.metadata.namespace.clone().unwrap_or_default())
                .or_default()
                .push(p.clone());
        }
        for v in by_ns.values_mut() {
            v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        }
        Scan {
            by_ns,
            trust_domains: mesh.trust_domains().all().to_vec(),
        }
    }

    fn source(&self, s: &Source, r: &Request) -> bool {
        let p = r.principal.as_deref();
        if let Some(ps) = &s.principals {
            let expanded =
                meshtls::identity::expand_principals(ps, &self.trust_domains).unwrap_or_default();
            if !p.is_some_and(|p| expanded.iter().any(|v| pat(v, p))) {
                return false;
            }
        }
        if let Some(ps) = &s.not_principals {
            let expanded =
                meshtls::identity::expand_principals(ps, &self.trust_domains).unwrap_or_default();
            if p.is_some_and(|p| expanded.iter().any(|v| pat(v, p))) {
                return false;
            }
        }
        if let Some(nss) = &s.namespaces {
            let hit = p.is_some_and(|p| {
                nss.iter().any(|n| match n.strip_suffix('*') {
                    Some(prefix) => p
                        .find(&format!("/ns/{prefix}"))
                        .is_some_and(|i| p[i + 4 + prefix.len()..].contains('/')),
                    None => p.contains(&format!("/ns/{n}/")),
                })
            });
            if !hit {
                return false;
            }
        }
        true
    }

    fn operation(&self, o: &Operation, r: &Request) -> bool {
        let http = r.http.as_ref();
        if let Some(ports) = &o.ports {
            if !ports.iter().any(|p| p.parse::<u16>().ok() == Some(r.port)) {
                return false;
            }
        }
        if let Some(m) = &o.methods {
            if !http.is_some_and(|h| m.iter().any(|v| pat(v, &h.method))) {
                return false;
            }
        }
        if let Some(ps) = &o.paths {
            if !http.is_some_and(|h| {
                let path = h.path.split('?').next().unwrap_or("");
                ps.iter().any(|v| pat(v, path))
            }) {
                return false;
            }
        }
        true
    }

    fn rule(&self, rule: &Rule, r: &Request) -> bool {
        rule.from.as_ref().is_none_or(|f| {
            f.iter()
                .any(|f| f.source.as_ref().is_none_or(|s| self.source(s, r)))
        }) && rule.to.as_ref().is_none_or(|t| {
            t.iter()
                .any(|t| t.operation.as_ref().is_none_or(|o| self.operation(o, r)))
        }) && rule.when.iter().flatten().all(|c| {
            let name = c
                .key
                .strip_prefix("request.headers[")
                .and_then(|k| k.strip_suffix(']'))
                .unwrap_or("");
            let v = r.http.as_ref().and_then(|h| {
                h.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            });
            c.values
                .as_ref()
                .is_none_or(|vs| v.is_some_and(|v| vs.iter().any(|p| pat(p, v))))
        })
    }

    fn check(&self, q: &Query) -> (&'static str, Option<String>) {
        let (nsn, labels, r) = q;
        let mut cands: Vec<&AuthorizationPolicy> = Vec::new();
        for n in [nsn.as_str(), ROOT] {
            for p in self.by_ns.get(n).into_iter().flatten() {
                let selected = p.spec.selector_labels().is_none_or(|sel| {
                    sel.iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
                });
                if selected && !p.spec.has_target_refs() && !p.is_dry_run() {
                    cands.push(p);
                }
            }
        }
        let first = |a: Action| {
            cands.iter().find(|p| {
                p.spec.action() == a
                    && p.spec
                        .rules
                        .as_ref()
                        .is_some_and(|rs| rs.iter().any(|rule| self.rule(rule, r)))
            })
        };
        let name = |p: &&&AuthorizationPolicy| Some(p.object_ref());
        if let Some(p) = first(Action::Deny) {
            return ("denied", name(&p));
        }
        if let Some(p) = first(Action::Allow) {
            return ("allowed", name(&p));
        }
        if cands.iter().any(|p| p.spec.action() == Action::Allow) {
            ("no-allow-matched", None)
        } else {
            ("no-allow-policy", None)
        }
    }
}

fn latencies(rounds: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut overhead: Vec<f64> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    overhead.sort_by(f64::total_cmp);
    let base = overhead[overhead.len() / 2];
    let mut v: Vec<f64> = (0..rounds)
        .map(|i| {
            let t = Instant::now();
            f(i);
            (t.elapsed().as_nanos() as f64 - base).max(0.0)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn target(name: &str, ns: f64) -> Stat {
    Stat {
        name: name.to_owned(),
        median_ns: ns,
        min_ns: ns,
        ops_per_sec: 1e9 / ns,
    }
}

pub fn rows(h: &mut Harness) {
    let mut rng = Rng(0xa07a_2024_0000_0011);
    let policies = cluster(&mut rng);
    let qs = queries(10_000, &mut rng);
    let mesh = MeshConfig::default();
    let n = policies.len();
    let Ok(set) = AuthorizationPolicySet::new(&policies, &mesh) else {
        eprintln!("meshtls-bench: authorization policy set did not build");
        return;
    };
    let scan = Scan::new(&policies, &mesh);
    // Same answers before timing anything.
    let mut mismatches = 0;
    let mut steps: std::collections::BTreeMap<&str, usize> = Default::default();
    for q in &qs {
        let v = set.check(&q.0, &q.1, &q.2);
        *steps.entry(v.step().kind()).or_default() += 1;
        let ours = (v.step().kind(), v.step().policy().map(|p| p.to_string()));
        if ours != scan.check(q) {
            mismatches += 1;
        }
    }
    if mismatches > 0 {
        eprintln!("meshtls-bench: {mismatches} authorization queries disagree with the scan");
    }
    let steps: Vec<String> = steps.iter().map(|(k, v)| format!("{k} {v}")).collect();

    let build = h.measure(
        &format!("AuthorizationPolicySet::new, {n} / {NAMESPACES} ns"),
        || AuthorizationPolicySet::new(&policies, &mesh),
    );
    let build_ms = build.median_ns / 1e6;
    h.derived(
        "authz",
        build.clone(),
        target("target: 100 ms", 100e6),
        100e6 / build.median_ns,
        Some(1.0),
        &format!("build {build_ms:.2} ms from parsed objects, one core"),
    );
    let json = {
        let items: Vec<serde_json::Value> =
            policies.iter().map(AuthorizationPolicy::to_value).collect();
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
    };
    let read = h.measure(
        "AuthorizationPolicySet::from_yaml (kubectl -o json)",
        || AuthorizationPolicySet::from_yaml(&json, &mesh),
    );
    h.single(
        "authz",
        read,
        &format!(
            "{n} policies, {} KiB of JSON, parse + build",
            json.len() / 1024
        ),
    );

    let qn = qs.len() as u64;
    let ours = h.measure_batch("AuthorizationPolicySet::check (mean of 10k)", qn, || {
        for q in &qs {
            black_box(set.check(black_box(&q.0), &q.1, &q.2));
        }
    });
    let (p50, p99) = latencies(200_000, |i| {
        let q = &qs[i % qs.len()];
        black_box(set.check(black_box(&q.0), &q.1, &q.2));
    });
    let alt = h.measure_batch("scan: own ns + root policies as written", qn, || {
        for q in &qs {
            black_box(scan.check(black_box(q)));
        }
    });
    let (s50, s99) = latencies(50_000, |i| {
        black_box(scan.check(&qs[i % qs.len()]));
    });
    h.pair(
        "authz",
        ours,
        alt,
        None,
        &format!(
            "check p50 {p50:.0} ns p99 {p99:.0} ns; scan p50 {s50:.0} ns p99 {s99:.0} ns (ratio {:.1}x at p50); {mismatches} disagreements; {}",
            s50 / p50.max(1.0),
            steps.join(", ")
        ),
    );
    h.derived(
        "authz",
        target(
            &format!("AuthorizationPolicySet::check p50 ({p50:.0} ns)"),
            p50,
        ),
        target("target: 2 µs", 2000.0),
        2000.0 / p50.max(1.0),
        Some(1.0),
        &format!("p99 {p99:.0} ns, timer overhead subtracted"),
    );
    let explain = h.measure_batch("AuthorizationPolicySet::explain (mean of 1k)", 1000, || {
        for q in qs.iter().take(1000) {
            black_box(set.explain(black_box(&q.0), &q.1, &q.2));
        }
    });
    h.single(
        "authz",
        explain,
        "with the full explanation (allocates its lines)",
    );

    mesh_rows(h, &policies, &qs);
}

/// The path check over the same cluster: PeerAuthentications (mesh-wide STRICT, a tenth of
/// the namespaces PERMISSIVE), the AuthorizationPolicies, a DestinationRule per namespace
/// (every fifth one DISABLE), from one `kubectl get -o json` dump. `Mesh::check` always
/// builds the whole explanation; the alternative row is the two explanations it is made
/// of (PeerAuthentication mode + AuthorizationPolicy), called by hand.
fn mesh_rows(h: &mut Harness, policies: &[AuthorizationPolicy], qs: &[Query]) {
    use meshtls::path::{Caller, Destination, Mesh};
    let mut items: Vec<serde_json::Value> =
        policies.iter().map(AuthorizationPolicy::to_value).collect();
    items.push(serde_json::json!({
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": ROOT},
        "spec": {"mtls": {"mode": "STRICT"}}}));
    for n in 0..NAMESPACES as u64 {
        if n % 10 == 0 {
            items.push(serde_json::json!({
                "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": {"name": "default", "namespace": ns(n)},
                "spec": {"mtls": {"mode": "PERMISSIVE"}}}));
        }
        let mode = if n % 5 == 0 {
            "DISABLE"
        } else {
            "ISTIO_MUTUAL"
        };
        items.push(serde_json::json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "api", "namespace": ns(n)},
            "spec": {"host": "api", "trafficPolicy": {"tls": {"mode": mode}}}}));
    }
    items.push(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": ROOT},
        "data": {"mesh": "trustDomain: cluster.local\ntrustDomainAliases: [old.example]\n"}}));
    let dump = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let Ok(mesh) = Mesh::from_dump(&dump, None) else {
        eprintln!("meshtls-bench: the path-check dump did not read");
        return;
    };
    let read = h.measure("Mesh::from_dump (kubectl -o json)", || {
        Mesh::from_dump(&dump, None)
    });
    h.single(
        "authz",
        read,
        &format!(
            "{} objects, {} KiB of JSON: PeerAuthentications, AuthorizationPolicies, DestinationRules, istio ConfigMap",
            items.len(),
            dump.len() / 1024
        ),
    );
    // Callers alternate: the gateway-like outside caller and a mesh workload with a
    // DestinationRule for the service.
    let calls: Vec<(Caller, Destination)> = qs
        .iter()
        .take(1000)
        .enumerate()
        .filter_map(|(i, (nsn, labels, r))| {
            let id = format!("spiffe://{}", r.principal.as_deref()?);
            let caller = if i % 2 == 0 {
                Caller::external(&id).ok()?
            } else {
                Caller::workload(&id).ok()?
            };
            let mut to = Destination::new(nsn, labels.iter().map(|(k, v)| (k, v)), r.port)
                .with_service("api");
            to.request.http = r.http.clone();
            Some((caller, to))
        })
        .collect();
    let n = calls.len() as u64;
    let ours = h.measure_batch("Mesh::check (mean of 1k, with explanation)", n, || {
        for (c, to) in &calls {
            black_box(mesh.check(black_box(c), to));
        }
    });
    let parts = h.measure_batch(
        "PolicySet::explain + AuthorizationPolicySet::explain",
        n,
        || {
            for (c, to) in &calls {
                let mode =
                    mesh.peer_authentications()
                        .explain(&to.namespace, &to.labels, Some(to.port));
                let id = match c {
                    Caller::External(id) | Caller::Workload { id, .. } => Some(id),
                    _ => None,
                };
                let mut req = Request::tcp(to.port);
                if let Some(id) = id {
                    req = req.with_peer(id);
                }
                req.http = to.request.http.clone();
                black_box(mode);
                black_box(
                    mesh.authorization_policies()
                        .explain(&to.namespace, &to.labels, &req),
                );
            }
        },
    );
    let allowed = calls
        .iter()
        .filter(|(c, to)| mesh.check(c, to).allowed())
        .count();
    h.pair(
        "authz",
        ours,
        parts,
        None,
        &format!(
            "{n} calls (outside caller / mesh workload with a DestinationRule), {allowed} allowed; alternative: the mode and authorization explanations alone"
        ),
    );
}
