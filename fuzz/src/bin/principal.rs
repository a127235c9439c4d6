//! Istio principal patterns and trust-domain alias expansion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::identity::{PrincipalPattern, expand_principals};
use meshtls::{SpiffeId, TrustDomain};

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    // Lines: principals; a line starting with '@' is a trust domain of the mesh.
    let mut tds = Vec::new();
    let mut principals = Vec::new();
    for line in s.lines().take(64) {
        match line.strip_prefix('@') {
            Some(name) => tds.extend(TrustDomain::new(name).ok()),
            None => principals.push(line),
        }
    }
    let expanded = expand_principals(&principals, &tds).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for p in &expanded {
        assert!(seen.insert(p.as_str()), "duplicate in the expansion");
    }
    for p in principals
        .iter()
        .copied()
        .chain(expanded.iter().map(String::as_str))
    {
        match PrincipalPattern::parse(p) {
            Ok(pattern) => {
                assert_eq!(pattern.to_string(), p);
                if let Ok(id) = SpiffeId::new(&format!("spiffe://{p}")) {
                    let _ = pattern.matches(&id);
                }
            }
            Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
        }
    }
    let authz = meshtls::authz::principals(&principals, &tds);
    if let (Ok(a), Ok(id)) = (authz, SpiffeId::new("spiffe://cluster.local/ns/a/sa/b")) {
        let _ = a.authorize(&id);
    }
});
