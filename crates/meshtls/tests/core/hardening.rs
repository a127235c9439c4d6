//! Large and hostile inputs (issue 13): hashed dedup keeps order, limits give typed errors,
//! messages quote a bounded prefix, deep authorizer trees are refused before they can exhaust
//! the stack. Times are measured in crates/meshtls-bench (`hardening` rows), not here.

use std::sync::Arc;

use meshtls::authz::{self, Authorizer, MAX_DEPTH};
use meshtls::error::{AuthzError, BundleError, IdentityError};
use meshtls::identity::{MAX_EXPANSION, expand_principals, expand_spiffe_ids};
use meshtls::{
    BundleSet, Error, IstioIdentity, MeshConfig, PrincipalPattern, SpiffeId, TrustBundle,
    TrustDomain,
};

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::new(s).unwrap()
}

fn mesh_with_aliases(n: usize) -> MeshConfig {
    let mut yaml = String::from("trustDomain: cluster.local\ntrustDomainAliases:\n");
    for i in 0..n {
        // Every alias twice, and the primary among them: dedup must keep first occurrences.
        yaml.push_str(&format!("- td{i}.example\n- td{i}.example\n"));
    }
    yaml.push_str(
        "- cluster.local\ncaCertificates:\n- trustDomains: [td1.example, extra.example]\n",
    );
    MeshConfig::from_yaml(&yaml).unwrap()
}

#[test]
fn many_aliases_dedup_in_order() {
    let mesh = mesh_with_aliases(20_000);
    let tds = mesh.trust_domains_for_validation();
    // primary, 20,000 aliases (sorted by the config), then the one new caCertificates entry.
    assert_eq!(tds.len(), 20_002);
    assert_eq!(tds[0].as_str(), "cluster.local");
    assert_eq!(tds.last().unwrap().as_str(), "extra.example");
    let all = mesh.trust_domains();
    assert_eq!(all.all().len(), 20_001);
    assert!(all.contains(&td("td19999.example")));
    // Membership is a hash lookup; the last alias is found as the first.
    let member = authz::member_of_mesh(&all);
    assert!(member.allows(&id("spiffe://td19999.example/ns/a/sa/b")));
    assert!(!member.allows(&id("spiffe://nope.example/ns/a/sa/b")));
    let set = BundleSet::new().with_mesh_aliases(&all).unwrap();
    assert_eq!(set.aliases().count(), 20_000);
}

#[test]
fn a_mesh_config_has_a_node_budget() {
    // A worst-case 1 MB mesh config (500,000 one-character aliases) is refused by the budget.
    let text = format!("trustDomainAliases: [{}a]\n", "a,".repeat(500_000));
    let err = MeshConfig::from_yaml(&text).unwrap_err();
    assert!(matches!(err, Error::Manifest(_)), "{err}");
    assert!(err.to_string().contains("budget"), "{err}");
}

#[test]
fn expansions_keep_order_and_refuse_past_the_limit() {
    let tds: Vec<TrustDomain> = (0..300).map(|i| td(&format!("td{i}.example"))).collect();
    let principals: Vec<String> = (0..300)
        .map(|i| format!("td{}.example/ns/n{i}/sa/s", i % 3))
        .collect();
    let out = expand_principals(&principals, &tds).unwrap();
    assert_eq!(out.len(), 300 * 300);
    assert_eq!(out[0], "td0.example/ns/n0/sa/s");
    assert_eq!(out[1], "td1.example/ns/n0/sa/s");
    let ids: Vec<SpiffeId> = (0..300)
        .map(|i| id(&format!("spiffe://td0.example/w{i}")))
        .collect();
    let out = expand_spiffe_ids(&ids, &tds).unwrap();
    // The 300 inputs, then one copy per (id, alias) not seen yet (alias td0 repeats the input).
    assert_eq!(out.len(), 300 * 300);
    assert_eq!(out[300].as_str(), "spiffe://td1.example/w0");

    let many: Vec<TrustDomain> = (0..2_000).map(|i| td(&format!("a{i}.example"))).collect();
    let ids: Vec<SpiffeId> = (0..2_000)
        .map(|i| id(&format!("spiffe://x.example/w{i}")))
        .collect();
    let err = expand_spiffe_ids(&ids, &many).unwrap_err();
    assert!(
        matches!(
            err,
            IdentityError::TooLarge {
                limit: MAX_EXPANSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("2000 SPIFFE IDs with 2000 trust domains"),
        "{err}"
    );
    let principals: Vec<String> = (0..2_000)
        .map(|i| format!("x.example/ns/{i}/sa/s"))
        .collect();
    assert!(expand_principals(&principals, &many).is_err());
    // Repeated aliases count once.
    let same = vec![td("a.example"); 5_000];
    assert_eq!(expand_spiffe_ids(&ids[..1], &same).unwrap().len(), 2);
}

#[test]
fn bundle_roots_dedup_and_size_cap() {
    let text = include_str!("../../../../tests/data/go-spiffe/spiffebundle_valid_1.json");
    let bundle = TrustBundle::from_spiffe_json(td("example.org"), text).unwrap();
    let root = bundle.roots()[0].clone();
    let many = TrustBundle::new(td("example.org"), vec![root.clone(); 10_000]).unwrap();
    assert_eq!(many.len(), 1);
    let pem = bundle.to_pem();
    let big = pem.repeat(meshtls::bundle::MAX_BUNDLE_BYTES / pem.len() + 1);
    let err = TrustBundle::from_pem(td("example.org"), &big).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::TooLarge {
                what: "PEM bundle",
                ..
            }
        ),
        "{err}"
    );
    let padded = format!("{text}{}", " ".repeat(meshtls::bundle::MAX_BUNDLE_BYTES));
    let err = TrustBundle::from_spiffe_json(td("example.org"), &padded).unwrap_err();
    assert!(matches!(err, BundleError::TooLarge { .. }), "{err}");
    assert!(matches!(
        BundleSet::from_spiffe_json(&padded).unwrap_err(),
        BundleError::TooLarge { .. }
    ));
    // The PEM chain reader shares the cap.
    assert!(meshtls::svid::parse_pem_chain(&big).is_err());
}

#[test]
fn bad_values_are_quoted_with_a_bounded_prefix() {
    let long = "a".repeat(1_000_000);
    let err = IstioIdentity::from_principal(&long)
        .unwrap_err()
        .to_string();
    assert!(err.len() < 600, "{} bytes", err.len());
    assert!(err.contains("aaaa..."), "{err}");
    let err = PrincipalPattern::parse(&format!("a*b{long}"))
        .unwrap_err()
        .to_string();
    assert!(err.len() < 600, "{} bytes", err.len());
    let err = SpiffeId::new(&format!("spiffe://{long}"))
        .unwrap_err()
        .to_string();
    assert!(err.len() < 600, "{} bytes", err.len());
    let long_id = id(&format!("spiffe://x.example/{long}"));
    let err = IstioIdentity::from_spiffe_id(&long_id)
        .unwrap_err()
        .to_string();
    assert!(err.len() < 600, "{} bytes", err.len());

    // A `crv` that is a 500,000-element array: a short message naming the member, no dump.
    let text = include_str!("../../../../tests/data/go-spiffe/spiffebundle_valid_1.json");
    let crv = format!("[{}]", vec!["1"; 500_000].join(","));
    let hostile = text.replacen("\"P-384\"", &crv, 1);
    let err = TrustBundle::from_spiffe_json(td("example.org"), &hostile)
        .unwrap_err()
        .to_string();
    assert!(
        err.len() < 300,
        "{} bytes: {}",
        err.len(),
        &err[..300.min(err.len())]
    );
    assert!(err.contains("crv: expected a string, found"), "{err}");
    let hostile = text.replacen("\"P-384\"", &format!("\"{long}\""), 1);
    let err = TrustBundle::from_spiffe_json(td("example.org"), &hostile)
        .unwrap_err()
        .to_string();
    assert!(err.len() < 600, "{} bytes", err.len());

    // A refusal quotes at most MAX_DESCRIPTION_CHARS of what was expected.
    let ids: Vec<SpiffeId> = (0..100_000)
        .map(|i| id(&format!("spiffe://x.example/w{i}")))
        .collect();
    let one_of = authz::one_of(ids);
    assert!(one_of.allows(&id("spiffe://x.example/w99999")));
    let err = one_of.authorize(&long_id).unwrap_err().to_string();
    assert!(err.len() < 1_600, "{} bytes", err.len());
    assert!(err.contains("more bytes)"), "{err}");
}

#[test]
fn authorizer_trees_have_a_depth_limit() {
    let peer = id("spiffe://cluster.local/ns/a/sa/b");
    let mut a: Arc<dyn Authorizer> = authz::member_of([td("cluster.local")]);
    for level in 2..=MAX_DEPTH {
        a = if level % 2 == 0 {
            authz::not(a).unwrap()
        } else {
            authz::all_of(vec![a]).unwrap()
        };
    }
    assert_eq!(a.depth(), MAX_DEPTH);
    // MAX_DEPTH - 1 combinators: an odd number of `not`s ((MAX_DEPTH - 1) / 2 + 1... ) decide.
    let nots = (2..=MAX_DEPTH).filter(|l| l % 2 == 0).count();
    assert_eq!(a.allows(&peer), nots % 2 == 0);
    let refused = if nots % 2 == 0 {
        id("spiffe://other.example/x")
    } else {
        peer.clone()
    };
    let err = a.authorize(&refused).unwrap_err().to_string();
    assert!(err.len() < 1_600, "{} bytes", err.len());
    // One more level is refused, with the typed error, by each combinator.
    for e in [
        authz::not(Arc::clone(&a)).unwrap_err(),
        authz::all_of(vec![authz::any(), Arc::clone(&a)]).unwrap_err(),
        authz::any_of(vec![Arc::clone(&a)]).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::Authz(AuthzError::TooDeep { depth, limit }) if depth == MAX_DEPTH + 1 && limit == MAX_DEPTH),
            "{e}"
        );
    }
    // Building, evaluating and dropping the deepest tree works on a small thread stack.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut t: Arc<dyn Authorizer> = authz::any();
            for _ in 1..MAX_DEPTH {
                t = authz::not(t).unwrap();
            }
            let verdict = t.allows(&peer);
            let _ = t.authorize(&peer);
            drop(t);
            verdict
        })
        .unwrap();
    // MAX_DEPTH - 1 = 127 `not`s over `any`: refused.
    assert!(!handle.join().unwrap());
}

#[test]
fn json_with_a_long_key_reads_the_same_everywhere() {
    // YAML caps implicit keys at 1,024 characters; JSON does not, and every reader takes JSON
    // through the same JSON parser (issue 13: validate refused what PolicySet accepted).
    let key = "k".repeat(2_000);
    let text = format!(
        r#"{{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {{"name": "p", "namespace": "a", "annotations": {{"{key}": "v"}}}},
            "spec": {{"mtls": {{"mode": "STRICT"}}}}}}"#
    );
    let validated = meshtls::policy::validate_peer_authentication(&text);
    assert!(
        !matches!(validated, Err(Error::Manifest(_))),
        "{validated:?}"
    );
    let checked = meshtls::policy::check_manifests(&text).unwrap();
    assert_eq!(checked.reports.len(), 1);
    let set = meshtls::PolicySet::from_yaml(&text, "istio-system").unwrap();
    assert_eq!(set.len(), 1);
    // The same document as YAML is refused by both, with the same message.
    let yaml = format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: p\n  namespace: a\n  annotations:\n    {key}: v\n"
    );
    let a = meshtls::policy::validate_peer_authentication(&yaml)
        .unwrap_err()
        .to_string();
    let b = meshtls::PolicySet::from_yaml(&yaml, "istio-system")
        .unwrap_err()
        .to_string();
    assert_eq!(a, b);
}

#[test]
fn a_bundle_map_names_at_most_max_trust_domains() {
    use meshtls::bundle::MAX_BUNDLE_MAP_TRUST_DOMAINS;
    let map = |n: usize| {
        let entries: Vec<String> = (0..n)
            .map(|i| format!("\"t{i}.example\": {{\"keys\": []}}"))
            .collect();
        format!("{{\"trust_domains\": {{{}}}}}", entries.join(","))
    };
    let set = BundleSet::from_spiffe_json(&map(MAX_BUNDLE_MAP_TRUST_DOMAINS)).unwrap();
    assert_eq!(set.trust_domains().count(), MAX_BUNDLE_MAP_TRUST_DOMAINS);
    let err = BundleSet::from_spiffe_json(&map(MAX_BUNDLE_MAP_TRUST_DOMAINS + 1)).unwrap_err();
    assert_eq!(
        err,
        meshtls::error::BundleError::TooManyTrustDomains {
            count: MAX_BUNDLE_MAP_TRUST_DOMAINS + 1,
            limit: MAX_BUNDLE_MAP_TRUST_DOMAINS
        }
    );
    assert!(err.to_string().contains("4096"), "{err}");
}
