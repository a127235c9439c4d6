//! Authorizers and the verification cache.

use std::sync::Arc;
use std::thread;

use crate::svid_support::*;
use meshtls::authz::{self, Authorizer};
use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::error::{AuthzError, LeafRule, SvidError};
use meshtls::svid::{SvidVerifier, verify_svid};
use meshtls::{Error, SpiffeId, TrustDomain, TrustDomains};

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::new(s).unwrap()
}

fn denied(a: &dyn Authorizer, peer: &str) -> (String, String) {
    match a.authorize(&id(peer)).unwrap_err() {
        AuthzError::Denied {
            presented,
            expected,
        } => (presented, expected),
        other => panic!("{other:?}"),
    }
}

#[test]
fn any_and_exact_ids() {
    authz::any().authorize(&id("spiffe://x.example/a")).unwrap();
    let one = authz::id(id("spiffe://x.example/a"));
    one.authorize(&id("spiffe://x.example/a")).unwrap();
    let err = one.authorize(&id("spiffe://x.example/b")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "peer spiffe://x.example/b is not authorized: expected spiffe://x.example/a"
    );
    let several = authz::one_of([id("spiffe://x.example/a"), id("spiffe://x.example/b")]);
    several.authorize(&id("spiffe://x.example/b")).unwrap();
    assert_eq!(
        denied(&*several, "spiffe://x.example/c").1,
        "one of spiffe://x.example/a, spiffe://x.example/b"
    );
    // Exact means exact: a longer path or another trust domain is refused.
    assert!(one.authorize(&id("spiffe://x.example/a/b")).is_err());
    assert!(one.authorize(&id("spiffe://y.example/a")).is_err());
}

#[test]
fn member_of_with_mesh_aliases() {
    let mesh = TrustDomains::new(td("cluster.local"), [td("old.example")]);
    let a = authz::member_of_mesh(&mesh);
    a.authorize(&id("spiffe://cluster.local/ns/a/sa/b"))
        .unwrap();
    a.authorize(&id("spiffe://old.example/ns/a/sa/b")).unwrap();
    let (presented, expected) = denied(&*a, "spiffe://evil.example/ns/a/sa/b");
    assert_eq!(presented, "spiffe://evil.example/ns/a/sa/b");
    assert_eq!(
        expected,
        "a member of one of the trust domains cluster.local, old.example"
    );
    // Trust-domain names are compared whole: no suffix or prefix tricks.
    assert!(a.authorize(&id("spiffe://cluster.local.evil/x")).is_err());
    assert!(a.authorize(&id("spiffe://xcluster.local/x")).is_err());
}

#[test]
fn namespaces_and_service_accounts() {
    let tds = [td("cluster.local")];
    let ns = authz::namespace(tds.clone(), &["shop", "team-*"]).unwrap();
    ns.authorize(&id("spiffe://cluster.local/ns/shop/sa/web"))
        .unwrap();
    ns.authorize(&id("spiffe://cluster.local/ns/team-a/sa/web"))
        .unwrap();
    assert!(
        ns.authorize(&id("spiffe://cluster.local/ns/bank/sa/web"))
            .is_err()
    );
    // Only the Istio form counts, and only in the listed trust domains.
    assert!(
        ns.authorize(&id("spiffe://cluster.local/shop/web"))
            .is_err()
    );
    assert!(
        ns.authorize(&id("spiffe://cluster.local/ns/shop/sa/web/extra"))
            .is_err()
    );
    assert!(
        ns.authorize(&id("spiffe://other.example/ns/shop/sa/web"))
            .is_err()
    );
    assert!(authz::namespace(tds.clone(), &["a*b"]).is_err());

    let sa = authz::service_account(tds.clone(), "shop", "web").unwrap();
    sa.authorize(&id("spiffe://cluster.local/ns/shop/sa/web"))
        .unwrap();
    let (_, expected) = denied(&*sa, "spiffe://cluster.local/ns/shop/sa/api");
    assert_eq!(
        expected,
        "service account web in namespace shop of trust domain cluster.local"
    );
    assert!(matches!(
        authz::service_account(tds, "sh/op", "web").unwrap_err(),
        Error::SpiffeId(_)
    ));
}

#[test]
fn istio_principals_expand_with_aliases() {
    let tds = [td("prod.example"), td("old.example")];
    let p = authz::principals(&["cluster.local/ns/shop/sa/*", "*/sa/admin"], &tds).unwrap();
    p.authorize(&id("spiffe://prod.example/ns/shop/sa/web"))
        .unwrap();
    p.authorize(&id("spiffe://old.example/ns/shop/sa/api"))
        .unwrap();
    p.authorize(&id("spiffe://anything.example/ns/x/sa/admin"))
        .unwrap();
    let (_, expected) = denied(&*p, "spiffe://cluster.local/ns/shop/sa/web");
    assert_eq!(
        expected,
        "a principal matching prod.example/ns/shop/sa/*, old.example/ns/shop/sa/*, */sa/admin (written as cluster.local/ns/shop/sa/*, */sa/admin)"
    );
    assert!(authz::principals(&["a*b"], &tds).is_err());
}

#[test]
fn combinators_and_closures() {
    let mesh = authz::member_of([td("cluster.local")]);
    let not_admin = authz::not(authz::id(id("spiffe://cluster.local/ns/ops/sa/admin"))).unwrap();
    let both = authz::all_of(vec![mesh.clone(), not_admin.clone()]).unwrap();
    both.authorize(&id("spiffe://cluster.local/ns/a/sa/b"))
        .unwrap();
    // all_of reports the member that refused.
    assert_eq!(
        denied(&*both, "spiffe://cluster.local/ns/ops/sa/admin").1,
        "not (spiffe://cluster.local/ns/ops/sa/admin)"
    );
    assert_eq!(
        denied(&*both, "spiffe://x.example/a").1,
        "a member of trust domain cluster.local"
    );
    let either = authz::any_of(vec![
        authz::id(id("spiffe://x.example/a")),
        authz::from_fn("a path under /batch/", |peer: &SpiffeId| {
            peer.path().starts_with("/batch/")
        }),
    ])
    .unwrap();
    either.authorize(&id("spiffe://x.example/a")).unwrap();
    either
        .authorize(&id("spiffe://y.example/batch/job"))
        .unwrap();
    assert_eq!(
        denied(&*either, "spiffe://y.example/web").1,
        "any of [spiffe://x.example/a; a path under /batch/]"
    );
    // Empty combinators: all_of accepts, any_of refuses.
    authz::all_of(vec![])
        .unwrap()
        .authorize(&id("spiffe://x.example/a"))
        .unwrap();
    assert!(
        authz::any_of(vec![])
            .unwrap()
            .authorize(&id("spiffe://x.example/a"))
            .is_err()
    );
    // Object-safe, Send + Sync, usable from threads.
    let shared: Arc<dyn Authorizer> = both;
    let handle = thread::spawn(move || shared.authorize(&id("spiffe://cluster.local/ns/a/sa/b")));
    handle.join().unwrap().unwrap();
}

#[test]
fn authorizers_see_the_verified_chain() {
    let root = Ca::root("cluster.local");
    let leaf = root.leaf("spiffe://cluster.local/ns/a/sa/b", |_| {});
    let set = BundleSet::from_bundles([
        TrustBundle::new(td("cluster.local"), [root.der.clone()]).unwrap()
    ])
    .unwrap();
    let verified = verify_svid(std::slice::from_ref(&leaf.der), &set, now()).unwrap();
    authz::member_of([td("cluster.local")])
        .authorize_verified(&verified)
        .unwrap();
    let err = authz::member_of([td("other.example")])
        .authorize_verified(&verified)
        .unwrap_err();
    assert_eq!(
        Error::from(err).to_string(),
        "peer spiffe://cluster.local/ns/a/sa/b is not authorized: expected a member of trust domain other.example"
    );
}

// ---- cache ------------------------------------------------------------------------------------

fn set_of(ca: &Ca, name: &str) -> BundleSet {
    BundleSet::from_bundles([TrustBundle::new(td(name), [ca.der.clone()]).unwrap()]).unwrap()
}

#[test]
fn cached_answers_equal_fresh_ones_and_respect_every_validity_window() {
    let root = Ca::root("cluster.local");
    // The intermediate expires first: the cache must not outlive it.
    let int = root.intermediate("cluster.local", |p| p.not_after = ts(NOW + 100));
    let leaf = int.leaf("spiffe://cluster.local/ns/a/sa/b", |_| {});
    let chain = vec![leaf.der.clone(), int.der.clone()];
    let set = set_of(&root, "cluster.local");
    let verifier = SvidVerifier::new(set.clone());
    let first = verifier.verify(&chain, now()).unwrap();
    assert_eq!(verifier.cached(), 1);
    let second = verifier.verify(&chain, at(NOW + 100)).unwrap();
    assert_eq!(first, second);
    let stats = verifier.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    assert_eq!(first, verify_svid(&chain, &set, now()).unwrap());
    assert_eq!(second.valid_until().as_secs() as i64, NOW + 100);
    // One second later the cached entry is not used: the fresh verification fails.
    let err = verifier.verify(&chain, at(NOW + 101)).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    // Before the leaf's NotBefore, likewise.
    let err = verifier.verify(&chain, at(1_700_000_000)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Svid(SvidError::Leaf {
                rule: LeafRule::NotYetValid { .. },
                ..
            })
        ),
        "{err:?}"
    );
    // A different chain (leaf only) is a different entry, and fails on its own.
    assert!(verifier.verify(&chain[..1], now()).is_err());
    assert_eq!(verifier.cached(), 1);
    assert_eq!(verifier.stats().hits, 1);
}

#[test]
fn a_bundle_change_invalidates_only_that_trust_domain() {
    let mesh = Ca::root("cluster.local");
    let partner = Ca::root("partner.example");
    let mesh_leaf = mesh.leaf("spiffe://cluster.local/ns/a/sa/b", |_| {});
    let partner_leaf = partner.leaf("spiffe://partner.example/x", |_| {});
    let both = BundleSet::from_bundles([
        TrustBundle::new(td("cluster.local"), [mesh.der.clone()]).unwrap(),
        TrustBundle::new(td("partner.example"), [partner.der.clone()]).unwrap(),
    ])
    .unwrap();
    let verifier = SvidVerifier::new(both);
    verifier
        .verify(std::slice::from_ref(&mesh_leaf.der), now())
        .unwrap();
    verifier
        .verify(std::slice::from_ref(&partner_leaf.der), now())
        .unwrap();

    // The mesh rotates to a new root: its old leaves must fail even though they are cached.
    let new_mesh = Ca::root("cluster.local");
    verifier.set_bundles(
        BundleSet::from_bundles([
            TrustBundle::new(td("cluster.local"), [new_mesh.der.clone()]).unwrap(),
            TrustBundle::new(td("partner.example"), [partner.der.clone()]).unwrap(),
        ])
        .unwrap(),
    );
    assert!(matches!(
        verifier
            .verify(std::slice::from_ref(&mesh_leaf.der), now())
            .unwrap_err(),
        Error::Svid(SvidError::Untrusted { .. })
    ));
    verifier
        .verify(std::slice::from_ref(&partner_leaf.der), now())
        .unwrap();
    // Removing a bundle removes the answers too.
    verifier.set_bundles(BundleSet::new());
    assert!(matches!(
        verifier
            .verify(std::slice::from_ref(&partner_leaf.der), now())
            .unwrap_err(),
        Error::Svid(SvidError::NoBundle { .. })
    ));
    // Only the sequence number changing keeps the entries valid (same roots).
    let set = set_of(&partner, "partner.example");
    verifier.set_bundles(set.clone());
    verifier
        .verify(std::slice::from_ref(&partner_leaf.der), now())
        .unwrap();
    let bumped =
        BundleSet::from_bundles([set.get(&td("partner.example")).unwrap().with_sequence(9)])
            .unwrap();
    verifier.set_bundles(bumped);
    verifier
        .verify(std::slice::from_ref(&partner_leaf.der), now())
        .unwrap();
}

#[test]
fn the_cache_is_bounded_and_can_be_disabled() {
    let root = Ca::root("cluster.local");
    let verifier = SvidVerifier::with_capacity(set_of(&root, "cluster.local"), 3);
    let leaves: Vec<_> = (0..5)
        .map(|i| root.leaf(&format!("spiffe://cluster.local/w{i}"), |_| {}))
        .collect();
    for l in &leaves {
        verifier
            .verify(std::slice::from_ref(&l.der), now())
            .unwrap();
    }
    assert_eq!(verifier.cached(), 3);
    verifier.clear_cache();
    assert_eq!(verifier.cached(), 0);
    let off = SvidVerifier::with_capacity(set_of(&root, "cluster.local"), 0);
    off.verify(&[leaves[0].der.clone()], now()).unwrap();
    assert_eq!(off.cached(), 0);
    // Failures are never cached.
    let stranger = Ca::root("cluster.local").leaf("spiffe://cluster.local/x", |_| {});
    assert!(
        verifier
            .verify(std::slice::from_ref(&stranger.der), now())
            .is_err()
    );
    assert_eq!(verifier.cached(), 0);
}

#[test]
fn a_shared_verifier_works_across_threads() {
    let root = Ca::root("cluster.local");
    let verifier = Arc::new(SvidVerifier::new(set_of(&root, "cluster.local")));
    let leaf = root.leaf("spiffe://cluster.local/ns/a/sa/b", |_| {});
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let v = Arc::clone(&verifier);
            let chain = vec![leaf.der.clone()];
            thread::spawn(move || {
                (0..50)
                    .map(|_| v.verify(&chain, now()).unwrap().spiffe_id().to_string())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(
            h.join()
                .unwrap()
                .iter()
                .all(|s| s == "spiffe://cluster.local/ns/a/sa/b")
        );
    }
    assert_eq!(verifier.cached(), 1);
    let stats = verifier.stats();
    assert_eq!(stats.hits + stats.misses, 200);
    assert!(stats.hits >= 196, "{stats:?}");
}
