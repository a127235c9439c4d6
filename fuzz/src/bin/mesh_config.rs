//! Istio's mesh config (the `istio` ConfigMap or the bare `mesh` document), in layers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::MeshConfig;

fuzz_target!(|data: &[u8]| {
    let Some(s) = meshtls_fuzz::text(data) else {
        return;
    };
    match MeshConfig::from_yaml(s) {
        Ok(mesh) => {
            let tds = mesh.trust_domains_for_validation();
            let mut seen = std::collections::HashSet::new();
            for td in &tds {
                assert!(seen.insert(td), "duplicate trust domain for validation");
            }
            let _ = mesh
                .trust_domains()
                .expand_principals(&["cluster.local/ns/a/sa/b"]);
        }
        Err(e) => assert!(e.to_string().len() < 4096, "unbounded message"),
    }
    // Two layers: the text split at its middle line.
    if let Some(mid) = s
        .char_indices()
        .filter(|(_, c)| *c == '\n')
        .map(|(i, _)| i)
        .nth(1)
    {
        let _ = MeshConfig::from_layers(&[&s[..mid], &s[mid..]]);
    }
});
