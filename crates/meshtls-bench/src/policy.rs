//! PeerAuthentication resolution at cluster scale: 10,000 policies over 1,000 namespaces.
//!
//! meshtls's indexed `PolicySet` against two straightforward resolvers written here:
//! - a scan of every policy per query (the brief's baseline);
//! - istiod's own shape: policies grouped by namespace once, then a scan of the workload's
//!   namespace and the root namespace per query (`getConfigsForWorkload` +
//!   `ComposePeerAuthentication`).
//!
//! Both baselines are checked to give the same answers as meshtls before anything is timed.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Instant;

use meshtls::policy::{
    Level, MtlsMode, MutualTls, ObjectMeta, PeerAuthentication, PeerAuthenticationSpec, PolicySet,
    WorkloadSelector,
};

use crate::harness::{Harness, Stat};

const ROOT: &str = "istio-system";
const NAMESPACES: usize = 1_000;
const PER_NAMESPACE: usize = 10;

/// A small deterministic generator (xorshift), so every run measures the same cluster.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn namespace(i: usize) -> String {
    if i == 0 {
        ROOT.to_owned()
    } else {
        format!("team-{i:04}")
    }
}

fn timestamp(secs: u64) -> String {
    // 2024-01-01T00:00:00Z plus `secs`, at Kubernetes' one-second resolution.
    let t = 1_704_067_200 + secs;
    let (days, rem) = (t / 86_400, t % 86_400);
    let (y, m, d) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn mode(rng: &mut Rng) -> Option<MtlsMode> {
    match rng.below(10) {
        0 => None,
        1 => Some(MtlsMode::Unset),
        2 | 3 => Some(MtlsMode::Disable),
        4..=6 => Some(MtlsMode::Permissive),
        _ => Some(MtlsMode::Strict),
    }
}

/// 10 policies per namespace: one namespace-wide `default` and nine workload policies
/// (`app=svc-N`, some also pinning `version`, some with port-level settings). The root
/// namespace holds the mesh policy and nine selector policies that istiod ignores.
fn cluster(namespaces: usize, rng: &mut Rng) -> Vec<PeerAuthentication> {
    let mut out = Vec::with_capacity(namespaces * PER_NAMESPACE);
    for n in 0..namespaces {
        let ns = namespace(n);
        for j in 0..PER_NAMESPACE {
            let (name, selector) = if j == 0 {
                ("default".to_owned(), None)
            } else {
                let mut labels = BTreeMap::new();
                labels.insert("app".to_owned(), format!("svc-{}", j % 7));
                if j >= 7 || rng.below(4) == 0 {
                    labels.insert("version".to_owned(), format!("v{}", rng.below(3)));
                }
                (
                    format!("svc-{j}"),
                    Some(WorkloadSelector {
                        match_labels: Some(labels),
                    }),
                )
            };
            let ports = (selector.is_some() && rng.below(3) == 0).then(|| {
                [
                    (8080, MutualTls { mode: mode(rng) }),
                    (9090, MutualTls { mode: mode(rng) }),
                ]
                .into_iter()
                .collect()
            });
            let mut meta = ObjectMeta::new(&ns, &name);
            // Few distinct seconds: creation-time ties are common, as in real clusters.
            meta.creation_timestamp = Some(timestamp(rng.below(50_000)));
            let spec = PeerAuthenticationSpec {
                selector,
                mtls: mode(rng).map(MutualTls::new),
                port_level_mtls: ports,
            };
            out.push(PeerAuthentication::new(meta, spec));
        }
    }
    out
}

type Query = (String, Vec<(String, String)>, Option<u16>);

/// Pods as they look: app, version, pod-template-hash and Istio's own labels.
fn queries(n: usize, rng: &mut Rng) -> Vec<Query> {
    (0..n)
        .map(|_| {
            let ns = namespace(rng.below(NAMESPACES as u64) as usize);
            let app = format!("svc-{}", rng.below(9));
            let labels = vec![
                ("app".to_owned(), app.clone()),
                ("version".to_owned(), format!("v{}", rng.below(3))),
                (
                    "pod-template-hash".to_owned(),
                    format!("{:010x}", rng.next() & 0xff_ffff_ffff),
                ),
                ("security.istio.io/tlsMode".to_owned(), "istio".to_owned()),
                ("service.istio.io/canonical-name".to_owned(), app),
            ];
            let port = [None, Some(8080), Some(9090), Some(15000)][rng.below(4) as usize];
            (ns, labels, port)
        })
        .collect()
}

fn creation_key(p: &PeerAuthentication) -> (bool, String, String, String) {
    // RFC 3339 UTC with seconds sorts as text; policies without one go last.
    let ts = p.metadata.creation_timestamp.clone();
    (
        ts.is_none(),
        ts.unwrap_or_default(),
        p.metadata.name.clone(),
        p.metadata.namespace.clone().unwrap_or_default(),
    )
}

fn selects(p: &PeerAuthentication, labels: &[(String, String)]) -> bool {
    p.spec.selector_labels().is_none_or(|sel| {
        sel.iter()
            .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
    })
}

/// `ComposePeerAuthentication` + `GetMutualTLSModeForPort` over candidates in age order.
fn compose<'a>(
    candidates: impl Iterator<Item = &'a PeerAuthentication>,
    ns: &str,
    labels: &[(String, String)],
    port: Option<u16>,
) -> (MtlsMode, Level, Option<String>) {
    let (mut mesh, mut nsp, mut wl): (
        Option<&PeerAuthentication>,
        Option<&PeerAuthentication>,
        Option<&PeerAuthentication>,
    ) = (None, None, None);
    for p in candidates {
        let pns = p.metadata.namespace.as_deref().unwrap_or("");
        if pns != ns && pns != ROOT {
            continue;
        }
        let wide = p.spec.is_namespace_wide();
        let slot = match (wide, pns == ROOT) {
            (true, true) => &mut mesh,
            (true, false) => &mut nsp,
            (false, false) if selects(p, labels) => &mut wl,
            _ => continue,
        };
        // Age order: the first of a class is the oldest (and the deduplicated one).
        if slot.is_none() {
            *slot = Some(p);
        }
    }
    let mut out = (MtlsMode::Permissive, Level::Default, None);
    for (p, level) in [
        (mesh, Level::Mesh),
        (nsp, Level::Namespace),
        (wl, Level::Workload),
    ] {
        if let Some(p) = p {
            if p.spec.mode() != MtlsMode::Unset {
                out = (p.spec.mode(), level, Some(p.object_ref()));
            }
        }
    }
    if let (Some(port), Some(w)) = (port, wl) {
        if let Some(entry) = w
            .spec
            .port_level_mtls
            .as_ref()
            .and_then(|m| m.get(&u32::from(port)))
        {
            if entry.effective() != MtlsMode::Unset {
                out = (entry.effective(), Level::Port, Some(w.object_ref()));
            }
        }
    }
    out
}

/// The brief's baseline: every policy, every query (sorted once, like istiod's init).
struct FullScan(Vec<PeerAuthentication>);

impl FullScan {
    fn new(mut all: Vec<PeerAuthentication>) -> Self {
        all.sort_by_cached_key(creation_key);
        FullScan(all)
    }
    fn resolve(&self, q: &Query) -> (MtlsMode, Level, Option<String>) {
        compose(self.0.iter(), &q.0, &q.1, q.2)
    }
}

/// istiod's shape: grouped by namespace once; per query, the workload's namespace then root.
struct PerNamespace(HashMap<String, Vec<PeerAuthentication>>);

impl PerNamespace {
    fn new(all: &[PeerAuthentication]) -> Self {
        let mut sorted = all.to_vec();
        sorted.sort_by_cached_key(creation_key);
        let mut map: HashMap<String, Vec<PeerAuthentication>> = HashMap::new();
        for p in sorted {
            map.entry(p.metadata.namespace.clone().unwrap_or_default())
                .or_default()
                .push(p);
        }
        PerNamespace(map)
    }
    fn resolve(&self, q: &Query) -> (MtlsMode, Level, Option<String>) {
        let own = self.0.get(&q.0).map(Vec::as_slice).unwrap_or(&[]);
        let root = if q.0 == ROOT {
            &[][..]
        } else {
            self.0.get(ROOT).map(Vec::as_slice).unwrap_or(&[])
        };
        compose(own.iter().chain(root), &q.0, &q.1, q.2)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Per-call latencies of `f` over `rounds` calls, timer overhead subtracted: (p50, p99).
fn latencies(rounds: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut overhead: Vec<f64> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    overhead.sort_by(f64::total_cmp);
    let base = percentile(&overhead, 0.5);
    let mut v: Vec<f64> = (0..rounds)
        .map(|i| {
            let t = Instant::now();
            f(i);
            (t.elapsed().as_nanos() as f64 - base).max(0.0)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn target(name: &str, ns: f64) -> Stat {
    Stat {
        name: name.to_owned(),
        median_ns: ns,
        min_ns: ns,
        ops_per_sec: 1e9 / ns,
    }
}

fn kubectl_yaml(policies: &[PeerAuthentication]) -> String {
    let mut out =
        String::from("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n");
    for (i, p) in policies.iter().enumerate() {
        let mut doc = serde_json::to_value(p).unwrap_or_default();
        doc["metadata"]["uid"] = format!("00000000-0000-0000-0000-{i:012}").into();
        doc["metadata"]["resourceVersion"] = (1000 + i).to_string().into();
        doc["metadata"]["generation"] = 1.into();
        doc["metadata"]["managedFields"] = serde_json::json!([{
            "apiVersion": "security.istio.io/v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {".": {}, "f:mtls": {".": {}, "f:mode": {}}}},
            "manager": "kubectl-client-side-apply", "operation": "Update",
            "time": p.metadata.creation_timestamp,
        }]);
        let yaml = meshtls::manifest::to_yaml(&doc).unwrap_or_default();
        for (j, line) in yaml.lines().enumerate() {
            out.push_str(if j == 0 { "- " } else { "  " });
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub fn rows(h: &mut Harness) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let policies = cluster(NAMESPACES, &mut rng);
    let qs = queries(10_000, &mut rng);
    let n = policies.len();
    let Ok(set) = PolicySet::new(&policies, ROOT) else {
        eprintln!("meshtls-bench: policy set did not build");
        return;
    };
    let full = FullScan::new(policies.clone());
    let grouped = PerNamespace::new(&policies);

    // Same answers from all three before timing anything.
    let mut mismatches = 0;
    let mut by_level: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &qs {
        let d = set.resolve(&q.0, &q.1, q.2);
        let ours = (d.mode(), d.level(), d.policy().map(|p| p.to_string()));
        *by_level.entry(d.level().as_str()).or_default() += 1;
        if ours != full.resolve(q) || ours != grouped.resolve(q) {
            mismatches += 1;
        }
    }
    if mismatches > 0 {
        eprintln!("meshtls-bench: {mismatches} queries disagree with the baselines");
    }
    let levels: Vec<String> = by_level.iter().map(|(k, v)| format!("{k} {v}")).collect();

    // Memory: the set's own estimate, and the resident-set growth of building 10x more.
    let estimate = set.approximate_heap_bytes() as f64 / n as f64;
    let big = cluster(NAMESPACES * 10, &mut rng);
    let before = rss_kib();
    let big_set = PolicySet::new(&big, ROOT);
    let after = rss_kib();
    let rss = match (before, after, &big_set) {
        (Some(b), Some(a), Ok(s)) => format!(
            "{:.0} B/policy measured (RSS growth building {} policies)",
            (a.saturating_sub(b) * 1024) as f64 / s.len() as f64,
            s.len()
        ),
        _ => "RSS not available".to_owned(),
    };
    drop(big_set);
    drop(big);

    let build = h.measure(
        &format!("PolicySet::new, {n} policies / {NAMESPACES} ns"),
        || PolicySet::new(&policies, ROOT),
    );
    let build_ms = build.median_ns / 1e6;
    h.derived(
        "policy",
        build.clone(),
        target("target: 50 ms", 50e6),
        50e6 / build.median_ns,
        Some(1.0),
        &format!(
            "build {build_ms:.2} ms, one core; memory {estimate:.0} B/policy estimated by approximate_heap_bytes, {rss}"
        ),
    );

    let qn = qs.len() as u64;
    let ours = h.measure_batch("PolicySet::resolve (mean of 10k pods)", qn, || {
        for q in &qs {
            black_box(set.resolve(black_box(&q.0), &q.1, q.2));
        }
    });
    let (p50, p99) = latencies(200_000, |i| {
        let q = &qs[i % qs.len()];
        black_box(set.resolve(black_box(&q.0), &q.1, q.2));
    });
    let scan = h.measure_batch("scan of all 10k policies per query", qn, || {
        for q in qs.iter().take(200) {
            black_box(full.resolve(black_box(q)));
        }
    });
    // The scan is slow: it runs 200 queries per batch; rescale to per-query.
    let scan = Stat {
        median_ns: scan.median_ns * qn as f64 / 200.0,
        min_ns: scan.min_ns * qn as f64 / 200.0,
        ops_per_sec: scan.ops_per_sec * 200.0 / qn as f64,
        ..scan
    };
    let (scan_p50, scan_p99) = latencies(2_000, |i| {
        black_box(full.resolve(&qs[i % qs.len()]));
    });
    h.pair(
        "policy",
        ours.clone(),
        scan,
        None,
        &format!(
            "resolve p50 {p50:.0} ns p99 {p99:.0} ns; scan p50 {:.1} µs p99 {:.1} µs; {mismatches} disagreements; levels: {}",
            scan_p50 / 1e3,
            scan_p99 / 1e3,
            levels.join(", ")
        ),
    );
    let per_ns = h.measure_batch("istiod shape: scan own ns + root per query", qn, || {
        for q in &qs {
            black_box(grouped.resolve(black_box(q)));
        }
    });
    let (ns_p50, ns_p99) = latencies(50_000, |i| {
        black_box(grouped.resolve(&qs[i % qs.len()]));
    });
    h.pair(
        "policy",
        ours.clone(),
        per_ns,
        None,
        &format!("istiod shape p50 {ns_p50:.0} ns p99 {ns_p99:.0} ns"),
    );
    h.derived(
        "policy",
        target(&format!("PolicySet::resolve p50 ({p50:.0} ns)"), p50),
        target("target: 1 µs", 1000.0),
        1000.0 / p50.max(1.0),
        Some(1.0),
        &format!("p99 {p99:.0} ns, timer overhead subtracted"),
    );

    // Crowded namespaces: the same 10k policies in 10 namespaces (1,000 each), where a scan
    // of the workload's namespace is what istiod does per query.
    let crowded: Vec<PeerAuthentication> = policies
        .iter()
        .map(|p| {
            let mut p = p.clone();
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            if ns != ROOT {
                let bucket = ns
                    .bytes()
                    .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
                    % 10;
                p.metadata.name = format!("{ns}-{}", p.metadata.name);
                p.metadata.namespace = Some(format!("crowded-{bucket}"));
            }
            p
        })
        .collect();
    let crowded_qs: Vec<Query> = qs
        .iter()
        .map(|(ns, l, port)| {
            let bucket = ns
                .bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 10;
            (format!("crowded-{bucket}"), l.clone(), *port)
        })
        .collect();
    if let Ok(crowded_set) = PolicySet::new(&crowded, ROOT) {
        let crowded_grouped = PerNamespace::new(&crowded);
        let disagree = crowded_qs
            .iter()
            .filter(|q| {
                let d = crowded_set.resolve(&q.0, &q.1, q.2);
                (d.mode(), d.level(), d.policy().map(|p| p.to_string()))
                    != crowded_grouped.resolve(q)
            })
            .count();
        let ours = h.measure_batch("resolve, 10k policies in 10 crowded ns", qn, || {
            for q in &crowded_qs {
                black_box(crowded_set.resolve(black_box(&q.0), &q.1, q.2));
            }
        });
        let theirs = h.measure_batch("istiod shape, 1,000 policies per ns", qn, || {
            for q in &crowded_qs {
                black_box(crowded_grouped.resolve(black_box(q)));
            }
        });
        h.pair(
            "policy",
            ours,
            theirs,
            None,
            &format!("{disagree} disagreements"),
        );
    }

    let explain = h.measure_batch("PolicySet::explain (10k pods)", qn, || {
        for q in &qs {
            black_box(set.explain(black_box(&q.0), &q.1, q.2));
        }
    });
    h.single("policy", explain, "with the explanation lines");

    // Reading manifests: the YAML kubectl prints (with managedFields) and the JSON.
    let yaml = kubectl_yaml(&policies);
    let from_yaml = h.measure(
        &format!(
            "PolicySet::from_yaml, kubectl list ({:.1} MB)",
            yaml.len() as f64 / 1e6
        ),
        || PolicySet::from_yaml(&yaml, ROOT),
    );
    let parsed_ok = PolicySet::from_yaml(&yaml, ROOT)
        .map(|s| s.len())
        .unwrap_or(0)
        == n;
    h.single(
        "policy",
        from_yaml,
        &format!("reads all {n}: {parsed_ok}; serde-saphyr parse dominates"),
    );
    let json = meshtls::manifest::parse_documents(&yaml, "bench")
        .ok()
        .and_then(|d| d.into_iter().next())
        .map(|v| v.to_string())
        .unwrap_or_default();
    let from_json = h.measure(
        &format!(
            "PolicySet::from_yaml, kubectl JSON ({:.1} MB)",
            json.len() as f64 / 1e6
        ),
        || PolicySet::from_yaml(&json, ROOT),
    );
    h.single("policy", from_json, "JSON input takes the serde_json path");
}
