//! Resolution rules, checked three ways on random policy sets: the indexed `resolve`, the
//! candidate walk of `explain`, and a reference written here straight from steps 1-8 of
//! spec/istio.md §b (sort, dedup, candidates, classification with strict `Before`, compose).

use std::collections::BTreeMap;

use meshtls::policy::{
    Level, MtlsMode, MutualTls, ObjectMeta, PeerAuthentication, PeerAuthenticationSpec, PolicySet,
    WorkloadSelector,
};
use proptest::prelude::*;

const ROOT: &str = "istio-system";

#[derive(Debug, Clone)]
struct P {
    ns: String,
    name: String,
    ts: Option<i64>,
    /// None: no selector; Some(empty): `selector: {}`.
    selector: Option<BTreeMap<String, String>>,
    mode: Option<MtlsMode>,
    ports: Option<BTreeMap<u32, Option<MtlsMode>>>,
}

impl P {
    fn to_pa(&self) -> PeerAuthentication {
        let mut meta = ObjectMeta::new(&self.ns, &self.name);
        meta.creation_timestamp = self.ts.map(|s| {
            time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + s)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        });
        let spec = PeerAuthenticationSpec {
            selector: self.selector.as_ref().map(|l| WorkloadSelector {
                match_labels: Some(l.clone()),
            }),
            mtls: self.mode.map(MutualTls::new),
            port_level_mtls: self.ports.as_ref().map(|m| {
                m.iter()
                    .map(|(p, mode)| (*p, MutualTls { mode: *mode }))
                    .collect()
            }),
        };
        PeerAuthentication::new(meta, spec)
    }

    fn wide(&self) -> bool {
        self.selector.as_ref().is_none_or(BTreeMap::is_empty)
    }

    fn age(&self) -> i64 {
        self.ts.unwrap_or(i64::MAX)
    }
}

/// Steps 1-8, as plainly as possible.
fn reference(
    policies: &[P],
    ns: &str,
    labels: &BTreeMap<String, String>,
    port: Option<u16>,
) -> (MtlsMode, Level, Option<String>) {
    // 2. global order
    let mut sorted: Vec<&P> = policies.iter().collect();
    sorted.sort_by(|a, b| {
        (a.ts.is_none(), a.ts, &a.name, &a.ns).cmp(&(b.ts.is_none(), b.ts, &b.name, &b.ns))
    });
    // 3. dedup namespace-wide
    let mut seen = std::collections::HashSet::new();
    let kept: Vec<&P> = sorted
        .into_iter()
        .filter(|p| !p.wide() || seen.insert(p.ns.clone()))
        .collect();
    // 4. candidates: workload namespace, then root, each in sorted order, subset match
    let mut candidates: Vec<&P> = kept.iter().copied().filter(|p| p.ns == ns).collect();
    if ns != ROOT {
        candidates.extend(kept.iter().copied().filter(|p| p.ns == ROOT));
    }
    candidates.retain(|p| {
        p.selector
            .as_ref()
            .is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
    });
    // 5. classify; within a class the first candidate wins unless a later one is strictly older
    let (mut mesh, mut nsp, mut wl): (Option<&P>, Option<&P>, Option<&P>) = (None, None, None);
    for p in candidates {
        let slot = match (p.wide(), p.ns == ROOT) {
            (true, true) => &mut mesh,
            (true, false) => &mut nsp,
            (false, false) => &mut wl,
            (false, true) => continue,
        };
        if slot.is_none_or(|cur| p.age() < cur.age()) {
            *slot = Some(p);
        }
    }
    // 6. compose
    let mut out = (MtlsMode::Permissive, Level::Default, None);
    for (p, level) in [
        (mesh, Level::Mesh),
        (nsp, Level::Namespace),
        (wl, Level::Workload),
    ] {
        if let Some(p) = p {
            if let Some(m) = p.mode.filter(|m| *m != MtlsMode::Unset) {
                out = (m, level, Some(format!("{}/{}", p.ns, p.name)));
            }
        }
    }
    // 7. port level, from the selected workload policy only
    if let (Some(port), Some(w)) = (port, wl) {
        if let Some(Some(m)) = w.ports.as_ref().and_then(|m| m.get(&u32::from(port))) {
            if *m != MtlsMode::Unset {
                out = (*m, Level::Port, Some(format!("{}/{}", w.ns, w.name)));
            }
        }
    }
    out
}

fn mode() -> impl Strategy<Value = MtlsMode> {
    prop::sample::select(MtlsMode::ALL.to_vec())
}

fn labels(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(keys).prop_map(str::to_owned),
        prop::sample::select(values).prop_map(str::to_owned),
        0..=keys.len(),
    )
}

fn policy(namespaces: &'static [&'static str]) -> impl Strategy<Value = P> {
    (
        prop::sample::select(namespaces),
        prop::sample::select(&["default", "a", "b", "c", "d", "e"][..]),
        prop::option::weighted(0.85, 0i64..4),
        prop::option::weighted(0.7, labels(&["app", "version", "tier"], &["x", "y"])),
        prop::option::weighted(0.8, mode()),
        prop::option::weighted(
            0.3,
            prop::collection::btree_map(
                prop::sample::select(&[80u32, 90, 100][..]),
                prop::option::weighted(0.8, mode()),
                0..3,
            ),
        ),
    )
        .prop_map(|(ns, name, ts, selector, mode, ports)| P {
            ns: ns.to_owned(),
            name: name.to_owned(),
            ts,
            selector,
            mode,
            ports,
        })
}

fn unique(mut ps: Vec<P>) -> Vec<P> {
    let mut seen = std::collections::HashSet::new();
    ps.retain(|p| seen.insert((p.ns.clone(), p.name.clone())));
    ps
}

fn check(policies: &[P], ns: &str, labels: &BTreeMap<String, String>, port: Option<u16>) {
    let set = PolicySet::new(policies.iter().map(P::to_pa), ROOT).unwrap();
    let want = reference(policies, ns, labels, port);
    let fast = set.resolve(ns, labels, port);
    let walked = set.explain(ns, labels, port);
    let got = (
        fast.mode(),
        fast.level(),
        fast.policy().map(|p| p.to_string()),
    );
    assert_eq!(
        got,
        want,
        "resolve {ns} {labels:?} {port:?}\n{:#?}",
        walked.explanation()
    );
    let got = (
        walked.mode(),
        walked.level(),
        walked.policy().map(|p| p.to_string()),
    );
    assert_eq!(
        got,
        want,
        "explain {ns} {labels:?} {port:?}\n{:#?}",
        walked.explanation()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn small_sets_agree_with_the_reference(
        policies in prop::collection::vec(policy(&["istio-system", "shop", "web"]), 0..12).prop_map(unique),
        ns in prop::sample::select(&["istio-system", "shop", "web", "empty"][..]),
        labels in labels(&["app", "version", "tier", "pod-template-hash"], &["x", "y"]),
        port in prop::option::of(prop::sample::select(&[80u16, 90, 100][..])),
    ) {
        check(&policies, ns, &labels, port);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Many policies per namespace: long posting lists, shared selector pairs, anchors.
    #[test]
    fn crowded_namespaces_agree_with_the_reference(
        policies in prop::collection::vec(policy(&["istio-system", "shop"]), 0..200).prop_map(unique),
        queries in prop::collection::vec(
            (
                prop::sample::select(&["istio-system", "shop"][..]),
                labels(&["app", "version", "tier", "pod-template-hash"], &["x", "y"]),
                prop::option::of(prop::sample::select(&[80u16, 90, 100][..])),
            ),
            1..30,
        ),
    ) {
        let set = PolicySet::new(policies.iter().map(P::to_pa), ROOT).unwrap();
        for (ns, labels, port) in &queries {
            let want = reference(&policies, ns, labels, *port);
            let fast = set.resolve(ns, labels, *port);
            prop_assert_eq!((fast.mode(), fast.level(), fast.policy().map(|p| p.to_string())), want);
        }
    }
}

/// The label containers `Labels` accepts all give the same answer.
#[test]
fn label_containers_agree() {
    let policies = [P {
        ns: "shop".into(),
        name: "api".into(),
        ts: Some(1),
        selector: Some([("app".to_owned(), "api".to_owned())].into()),
        mode: Some(MtlsMode::Strict),
        ports: None,
    }];
    let set = PolicySet::new(policies.iter().map(P::to_pa), ROOT).unwrap();
    let btree: BTreeMap<String, String> = [("app".into(), "api".into())].into();
    let hash: std::collections::HashMap<&str, &str> = [("app", "api")].into();
    let vec = vec![("app".to_owned(), "api".to_owned())];
    let arr = [("app", "api")];
    for d in [
        set.resolve("shop", &btree, None),
        set.resolve("shop", &hash, None),
        set.resolve("shop", &vec, None),
        set.resolve("shop", &arr, None),
        set.resolve("shop", &arr[..], None),
    ] {
        assert_eq!((d.mode(), d.level()), (MtlsMode::Strict, Level::Workload));
    }
    let none: [(&str, &str); 0] = [];
    assert_eq!(set.resolve("shop", &none, None).level(), Level::Default);
}

/// A few explicit rules with the explanation wording the issue asks for.
#[test]
fn explanations_name_the_reason() {
    let at = |s: i64| Some(s);
    let sel = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    let policies = [
        P {
            ns: ROOT.into(),
            name: "x".into(),
            ts: at(0),
            selector: sel(&[("app", "foo")]),
            mode: Some(MtlsMode::Disable),
            ports: None,
        },
        P {
            ns: "app".into(),
            name: "old".into(),
            ts: at(0),
            selector: sel(&[("app", "foo")]),
            mode: Some(MtlsMode::Strict),
            ports: None,
        },
        P {
            ns: "app".into(),
            name: "new".into(),
            ts: at(5),
            selector: sel(&[("app", "foo"), ("v", "1")]),
            mode: Some(MtlsMode::Disable),
            ports: None,
        },
    ];
    let set = PolicySet::new(policies.iter().map(P::to_pa), ROOT).unwrap();
    let d = set.explain("app", &[("app", "foo"), ("v", "1")], None);
    assert_eq!(d.policy().unwrap().as_str(), "app/old");
    let text = d.explanation().join("\n");
    assert!(
        text.contains("istio-system/x ignored: selector in the root namespace"),
        "{text}"
    );
    assert!(text.contains("app/old wins over app/new: older"), "{text}");
    assert!(text.contains("no mesh-wide policy"), "{text}");
    assert!(
        text.ends_with("result: STRICT from app/old (workload level)"),
        "{text}"
    );
    assert_eq!(d.to_string(), "STRICT (workload level, app/old)");
}
