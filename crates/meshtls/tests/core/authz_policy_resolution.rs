//! Evaluation rules checked three ways on random policy sets: the indexed `check`, the
//! walk of `explain`, and a reference written here straight from spec/istio-authz.md §a-c
//! (candidates, the CUSTOM/DENY/ALLOW order, rule matching, the TCP rules), istiod's
//! `serviceAccountRegex` (short names in the policy's namespace), `ReplaceTrustDomainAliases`
//! (pattern trust domains) and `destination.ip`/`ipBlocks` CIDRs.

use std::collections::BTreeMap;

use meshtls::MeshConfig;
use meshtls::policy::authorization::{
    Action, AuthorizationPolicy, AuthorizationPolicySet, AuthorizationPolicySpec, Condition, From,
    Metadata, Operation, Provider, Request, Rule, Selector, Source, To,
};
use proptest::prelude::*;

const ROOT: &str = "istio-system";

#[derive(Debug, Clone)]
struct S {
    principals: Option<Vec<String>>,
    not_principals: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
    service_accounts: Option<Vec<String>>,
    not_service_accounts: Option<Vec<String>>,
    ip_blocks: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct O {
    ports: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    not_paths: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct R {
    from: Option<Vec<S>>,
    to: Option<Vec<O>>,
    when_token: Option<Vec<String>>,
    /// `when destination.ip`: `(notValues?, values)`.
    when_dest: Option<(bool, Vec<String>)>,
}

#[derive(Debug, Clone)]
struct P {
    ns: String,
    name: String,
    action: Action,
    selector: Option<BTreeMap<String, String>>,
    rules: Option<Vec<R>>,
    dry_run: bool,
}

impl P {
    fn to_ap(&self) -> AuthorizationPolicy {
        let mut md = Metadata::new(&self.ns, &self.name);
        if self.dry_run {
            md.annotations
                .insert("istio.io/dry-run".into(), "true".into());
        }
        let spec = AuthorizationPolicySpec {
            selector: self.selector.as_ref().map(|l| Selector {
                match_labels: Some(l.clone()),
            }),
            action: Some(self.action),
            provider: (self.action == Action::Custom).then(|| Provider {
                name: Some("ext".into()),
            }),
            rules: self.rules.as_ref().map(|rs| {
                rs.iter()
                    .map(|r| Rule {
                        from: r.from.as_ref().map(|f| {
                            f.iter()
                                .map(|s| From {
                                    source: Some(Source {
                                        principals: s.principals.clone(),
                                        not_principals: s.not_principals.clone(),
                                        namespaces: s.namespaces.clone(),
                                        service_accounts: s.service_accounts.clone(),
                                        not_service_accounts: s.not_service_accounts.clone(),
                                        ip_blocks: s.ip_blocks.clone(),
                                        ..Source::default()
                                    }),
                                })
                                .collect()
                        }),
                        to: r.to.as_ref().map(|t| {
                            t.iter()
                                .map(|o| To {
                                    operation: Some(Operation {
                                        ports: o.ports.clone(),
                                        methods: o.methods.clone(),
                                        not_paths: o.not_paths.clone(),
                                        ..Operation::default()
                                    }),
                                })
                                .collect()
                        }),
                        when: {
                            let mut when = Vec::new();
                            if let Some(v) = &r.when_token {
                                when.push(Condition {
                                    key: "request.headers[x-token]".into(),
                                    values: Some(v.clone()),
                                    not_values: None,
                                });
                            }
                            if let Some((not, v)) = &r.when_dest {
                                when.push(Condition {
                                    key: "destination.ip".into(),
                                    values: (!not).then(|| v.clone()),
                                    not_values: not.then(|| v.clone()),
                                });
                            }
                            (!when.is_empty()).then_some(when)
                        },
                    })
                    .collect()
            }),
            ..AuthorizationPolicySpec::default()
        };
        AuthorizationPolicy::new(md, spec)
    }
}

#[derive(Debug, Clone)]
struct Q {
    principal: Option<String>,
    port: u16,
    http: Option<(String, String, Option<String>)>,
    source_ip: Option<&'static str>,
    destination_ip: Option<&'static str>,
}

/// The mesh's trust domains (trust domain first, then aliases).
type Tds = &'static [&'static str];

/// istiod's `ReplaceTrustDomainAliases` for one principal, from bundle.go and util.go.
fn expand(p: &str, tds: Tds) -> Vec<String> {
    let parts: Vec<&str> = p.split('/').collect();
    if parts.len() != 5 || parts[0] == "*" {
        return vec![p.to_owned()];
    }
    let td = parts[0];
    let covers = |t: &str| {
        td == t
            || td.strip_suffix('*').is_some_and(|x| t.starts_with(x))
            || td.strip_prefix('*').is_some_and(|x| t.ends_with(x))
    };
    if !(td == "cluster.local" || tds.iter().any(|t| covers(t))) {
        return vec![p.to_owned()];
    }
    let rest = &p[td.len()..];
    let mut out: Vec<String> = Vec::new();
    for t in tds {
        let n = match td.strip_prefix('*') {
            Some(x) if t.ends_with(x) => p.to_owned(),
            _ => format!("{t}{rest}"),
        };
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` for the Istio-form principals used here; a value
/// without `/` names a service account of the policy's namespace.
fn sa_match(policy_ns: &str, v: &str, principal: &str) -> bool {
    let (ns, sa) = v.split_once('/').unwrap_or((policy_ns, v));
    let parts: Vec<&str> = principal.split('/').collect();
    parts.len() == 5 && parts[1] == "ns" && parts[2] == ns && parts[3] == "sa" && parts[4] == sa
}

/// The CIDRs used here.
fn ip_match(v: &str, ip: &str) -> bool {
    match v.strip_suffix("/8") {
        Some(net) => net.split('.').next() == ip.split('.').next(),
        None => v == ip,
    }
}

fn pattern(p: &str, s: &str) -> bool {
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

/// `.*/ns/<ns>/.*` with `*` in `ns` as `.*`, for the vocabulary used here.
fn ns_match(v: &str, principal: &str) -> bool {
    match v.strip_suffix('*') {
        None => principal.contains(&format!("/ns/{v}/")),
        Some(prefix) => principal
            .find(&format!("/ns/{prefix}"))
            .is_some_and(|i| principal[i + 4 + prefix.len()..].contains('/')),
    }
}

/// A positive field matches when the attribute is there and one value matches; a negative
/// field passes unless the attribute is there and one value matches.
fn field(
    values: &Option<Vec<String>>,
    actual: Option<&str>,
    not: bool,
    m: fn(&str, &str) -> bool,
) -> bool {
    match values {
        None => true,
        Some(vs) => {
            let hit = actual.is_some_and(|a| vs.iter().any(|v| m(v, a)));
            hit != not
        }
    }
}

fn rule_matches(r: &R, q: &Q, action: Action, policy_ns: &str, tds: Tds) -> bool {
    let tcp = q.http.is_none();
    let uses_http =
        r.to.iter()
            .flatten()
            .any(|o| o.methods.is_some() || o.not_paths.is_some())
            || r.when_token.is_some();
    if tcp && uses_http && action == Action::Allow {
        return false;
    }
    let p = q.principal.as_deref();
    let expanded = |vs: &Option<Vec<String>>| {
        vs.as_ref()
            .map(|vs| vs.iter().flat_map(|v| expand(v, tds)).collect::<Vec<_>>())
    };
    let sas = |vs: &Option<Vec<String>>, not: bool| match vs {
        None => true,
        Some(vs) => p.is_some_and(|p| vs.iter().any(|v| sa_match(policy_ns, v, p))) != not,
    };
    let from_ok = r.from.as_ref().is_none_or(|f| {
        f.iter().any(|s| {
            field(&expanded(&s.principals), p, false, pattern)
                && field(&expanded(&s.not_principals), p, true, pattern)
                && field(&s.namespaces, p, false, ns_match)
                && sas(&s.service_accounts, false)
                && sas(&s.not_service_accounts, true)
                && field(&s.ip_blocks, q.source_ip, false, ip_match)
        })
    });
    let method = q.http.as_ref().map(|h| h.0.as_str());
    let path = q.http.as_ref().map(|h| h.1.as_str());
    let port = q.port.to_string();
    let to_ok = r.to.as_ref().is_none_or(|t| {
        t.iter().any(|o| {
            field(&o.ports, Some(&port), false, |a, b| a == b)
                && (tcp || field(&o.methods, method, false, pattern))
                && (tcp || field(&o.not_paths, path, true, pattern))
        })
    });
    let token = q.http.as_ref().and_then(|h| h.2.as_deref());
    let when_ok = tcp || field(&r.when_token, token, false, pattern);
    let dest_ok = match &r.when_dest {
        None => true,
        Some((not, v)) => field(&Some(v.clone()), q.destination_ip, *not, ip_match),
    };
    from_ok && to_ok && when_ok && dest_ok
}

fn reference(
    ps: &[P],
    ns: &str,
    labels: &BTreeMap<String, String>,
    q: &Q,
    tds: Tds,
) -> (String, Option<String>, Option<usize>) {
    let mut cands: Vec<&P> = ps
        .iter()
        .filter(|p| (p.ns == ns || p.ns == ROOT) && !p.dry_run)
        .filter(|p| {
            p.selector
                .as_ref()
                .is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .collect();
    cands.sort_by_key(|p| (p.ns != ns, p.ns.clone(), p.name.clone()));
    let first = |a: Action| {
        cands.iter().filter(|p| p.action == a).find_map(|p| {
            p.rules
                .as_ref()?
                .iter()
                .position(|r| rule_matches(r, q, a, &p.ns, tds))
                .map(|i| (format!("{}/{}", p.ns, p.name), i))
        })
    };
    let custom = first(Action::Custom);
    let result = if let Some((n, i)) = first(Action::Deny) {
        ("denied".to_owned(), Some(n), Some(i))
    } else if let Some((n, i)) = first(Action::Allow) {
        ("allowed".to_owned(), Some(n), Some(i))
    } else if cands.iter().any(|p| p.action == Action::Allow) {
        ("no-allow-matched".to_owned(), None, None)
    } else {
        ("no-allow-policy".to_owned(), None, None)
    };
    match (custom, result.0.as_str()) {
        (Some((n, i)), "allowed" | "no-allow-policy") => ("external".to_owned(), Some(n), Some(i)),
        _ => result,
    }
}

fn opt_list(items: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::weighted(
        0.4,
        proptest::sample::subsequence(items, 1..=2)
            .prop_map(|v| v.into_iter().map(str::to_owned).collect()),
    )
}

fn source() -> impl Strategy<Value = S> {
    (
        opt_list(&[
            "cluster.local/ns/a/sa/x",
            "cluster.local/ns/b/*",
            "*/sa/x",
            "*",
            "*.local/ns/a/sa/x",
            "clu*/ns/a/sa/x",
            "old*/ns/b/sa/y",
        ]),
        opt_list(&["cluster.local/ns/a/sa/x", "*", "*.td/ns/ab/sa/z"]),
        opt_list(&["a", "b", "a*"]),
        // serviceAccounts exclude principals and namespaces (the CRD's rule): one or the other.
        proptest::bool::ANY,
        opt_list(&["x", "a/x", "b/y", "y"]),
        opt_list(&["x", "other/z"]),
        opt_list(&["10.0.0.0/8", "192.168.1.1"]),
    )
        .prop_map(
            |(principals, not_principals, namespaces, by_sa, sas, not_sas, ip_blocks)| {
                if by_sa {
                    S {
                        principals: None,
                        not_principals: None,
                        namespaces: None,
                        service_accounts: sas,
                        not_service_accounts: not_sas,
                        ip_blocks,
                    }
                } else {
                    S {
                        principals,
                        not_principals,
                        namespaces,
                        service_accounts: None,
                        not_service_accounts: None,
                        ip_blocks,
                    }
                }
            },
        )
}

fn operation() -> impl Strategy<Value = O> {
    (
        opt_list(&["80", "8080"]),
        opt_list(&["GET", "POST"]),
        opt_list(&["/admin*", "/x"]),
    )
        .prop_map(|(ports, methods, not_paths)| O {
            ports,
            methods,
            not_paths,
        })
}

fn rule() -> impl Strategy<Value = R> {
    (
        proptest::option::of(proptest::collection::vec(source(), 1..3)),
        proptest::option::of(proptest::collection::vec(operation(), 1..3)),
        opt_list(&["t1", "t*"]),
        proptest::option::weighted(
            0.2,
            (
                proptest::bool::ANY,
                proptest::sample::subsequence(&["10.0.0.0/8", "172.16.0.1"][..], 1..=2),
            ),
        ),
    )
        .prop_map(|(from, to, when_token, when_dest)| R {
            from,
            to,
            when_token,
            when_dest: when_dest.map(|(not, v)| (not, v.into_iter().map(str::to_owned).collect())),
        })
}

fn policy() -> impl Strategy<Value = P> {
    (
        prop_oneof![Just("demo"), Just("other"), Just(ROOT)],
        0u8..6,
        prop_oneof![4 => Just(Action::Allow), 3 => Just(Action::Deny), 1 => Just(Action::Audit), 1 => Just(Action::Custom)],
        proptest::option::of(prop_oneof![
            Just(BTreeMap::from([("app".to_owned(), "api".to_owned())])),
            Just(BTreeMap::from([("app".to_owned(), "db".to_owned())])),
            Just(BTreeMap::new()),
        ]),
        proptest::option::weighted(0.85, proptest::collection::vec(rule(), 0..3)),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(ns, n, action, selector, rules, dry_run)| P {
            ns: ns.to_owned(),
            name: format!("p{n}"),
            action,
            selector,
            rules,
            dry_run,
        })
}

fn query() -> impl Strategy<Value = Q> {
    (
        prop_oneof![
            Just(None),
            Just(Some("cluster.local/ns/a/sa/x")),
            Just(Some("cluster.local/ns/b/sa/y")),
            Just(Some("other.td/ns/ab/sa/z")),
            Just(Some("old.local/ns/b/sa/y")),
            Just(Some("clutter.io/ns/a/sa/x")),
            Just(Some("cluster.local/ns/demo/sa/x")),
            Just(Some("cluster.local/ns/istio-system/sa/y")),
        ],
        prop_oneof![Just(80u16), Just(8080u16)],
        proptest::option::of((
            prop_oneof![Just("GET"), Just("POST")],
            prop_oneof![Just("/"), Just("/admin/x"), Just("/x")],
            proptest::option::of(prop_oneof![Just("t1"), Just("t2")]),
        )),
        proptest::option::of(prop_oneof![Just("10.1.2.3"), Just("192.168.1.1")]),
        proptest::option::of(prop_oneof![Just("10.9.9.9"), Just("172.16.0.1")]),
    )
        .prop_map(|(p, port, http, source_ip, destination_ip)| Q {
            principal: p.map(str::to_owned),
            port,
            http: http.map(|(m, p, t)| (m.to_owned(), p.to_owned(), t.map(str::to_owned))),
            source_ip,
            destination_ip,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn check_explain_and_reference_agree(
        mut ps in proptest::collection::vec(policy(), 0..8),
        q in query(),
        app in prop_oneof![Just("api"), Just("db"), Just("web")],
        aliases in proptest::bool::ANY,
    ) {
        // One object per namespace/name, as a cluster holds.
        let mut seen = std::collections::HashSet::new();
        ps.retain(|p| seen.insert((p.ns.clone(), p.name.clone())));
        let (mesh, tds): (MeshConfig, Tds) = if aliases {
            (
                MeshConfig::from_yaml("trustDomain: cluster.local\ntrustDomainAliases: [old.local]\n").unwrap(),
                &["cluster.local", "old.local"],
            )
        } else {
            (MeshConfig::default(), &["cluster.local"])
        };
        let set = AuthorizationPolicySet::new(&ps.iter().map(P::to_ap).collect::<Vec<_>>(), &mesh).unwrap();
        let labels = BTreeMap::from([("app".to_owned(), app.to_owned())]);
        let mut req = Request::tcp(q.port);
        if let Some(p) = &q.principal {
            req = req.with_principal(p);
        }
        if let Some((m, path, token)) = &q.http {
            req = req.with_http(m, path);
            if let Some(t) = token {
                req = req.with_header("x-token", t);
            }
        }
        if let Some(ip) = q.source_ip {
            req = req.with_source_ip(ip.parse().unwrap());
        }
        if let Some(ip) = q.destination_ip {
            req = req.with_destination_ip(ip.parse().unwrap());
        }
        for ns in ["demo", ROOT] {
            let fast = set.check(ns, &labels, &req);
            let slow = set.explain(ns, &labels, &req);
            prop_assert_eq!(&fast, &slow);
            let want = reference(&ps, ns, &labels, &q, tds);
            let got = (
                fast.step().kind().to_owned(),
                fast.step().policy().map(|p| p.to_string()),
                fast.step().rule(),
            );
            prop_assert_eq!(got, want, "{}", slow.explanation().join("\n"));
        }
    }
}
