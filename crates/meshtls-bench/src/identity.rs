//! SPIFFE ID and trust-domain parsing against the `spiffe` crate (rust-spiffe).

use std::hint::black_box;

use crate::harness::Harness;

const VECTORS: &str = include_str!("../../../tests/data/spiffe-ids.json");

/// The `input` of every valid case in one section (`spiffe_ids` or `trust_domains`) of the vectors.
fn valid_vector_inputs(section: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(VECTORS).unwrap_or_default();
    doc[section]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["valid"].as_bool() == Some(true))
                .filter_map(|v| v["input"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn istio_ids() -> Vec<String> {
    (0..64)
        .map(|i| {
            format!(
                "spiffe://cluster.local/ns/team-{}/sa/service-account-{}",
                i % 7,
                i
            )
        })
        .collect()
}

pub fn rows(h: &mut Harness) {
    for (label, ids) in [
        ("valid vector IDs", valid_vector_inputs("spiffe_ids")),
        ("Istio-form IDs", istio_ids()),
    ] {
        let n = ids.len() as u64;
        let ours = h.measure_batch(&format!("SpiffeId::new, {label}"), n, || {
            for id in &ids {
                let _ = black_box(meshtls::SpiffeId::new(black_box(id)));
            }
        });
        let theirs = h.measure_batch(&format!("spiffe::SpiffeId::new, {label}"), n, || {
            for id in &ids {
                let _ = black_box(spiffe::SpiffeId::new(black_box(id.as_str())));
            }
        });
        h.pair(
            "identity",
            ours,
            theirs,
            Some(1.5),
            &format!("{n} IDs per batch"),
        );
    }
    let tds = valid_vector_inputs("trust_domains");
    let n = tds.len() as u64;
    let ours = h.measure_batch("TrustDomain::new, valid vector inputs", n, || {
        for td in &tds {
            let _ = black_box(meshtls::TrustDomain::new(black_box(td)));
        }
    });
    let theirs = h.measure_batch("spiffe::TrustDomain::new, valid vector inputs", n, || {
        for td in &tds {
            let _ = black_box(spiffe::TrustDomain::new(black_box(td.as_str())));
        }
    });
    h.pair(
        "identity",
        ours,
        theirs,
        None,
        &format!("{n} inputs per batch"),
    );
}
