//! SVID verification: meshtls's full check (path validation plus the SPIFFE profile) against
//! rustls-webpki's bare path validation of the same chain, and the verification cache against
//! an uncached verification.

use std::hint::black_box;
use std::time::Instant;

use meshtls::bundle::{BundleSet, TrustBundle};
use meshtls::svid::{SvidVerifier, verify_svid};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

use crate::harness::{Harness, Stat};

/// Times `a` and `b` in alternating batches, so both see the same machine load (the machine
/// running the benchmarks is shared); reports each side's median per operation.
fn measure_interleaved(
    h: &Harness,
    name_a: &str,
    mut a: impl FnMut() -> bool,
    name_b: &str,
    mut b: impl FnMut() -> bool,
) -> (Stat, Stat) {
    let calibrate = |f: &mut dyn FnMut() -> bool| -> u64 {
        let mut iters: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let el = t.elapsed();
            if el >= h.target / 20 || iters >= 1 << 30 {
                let per = el.as_secs_f64() / iters as f64;
                return ((h.target.as_secs_f64() / 2.0 / per.max(1e-12)) as u64).max(1);
            }
            iters *= 4;
        }
    };
    let (na, nb) = (calibrate(&mut a), calibrate(&mut b));
    let samples = h.samples * 2 + 1;
    let (mut ta, mut tb) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for _ in 0..samples {
        let t = Instant::now();
        for _ in 0..na {
            black_box(a());
        }
        ta.push(t.elapsed().as_nanos() as f64 / na as f64);
        let t = Instant::now();
        for _ in 0..nb {
            black_box(b());
        }
        tb.push(t.elapsed().as_nanos() as f64 / nb as f64);
    }
    let stat = |name: &str, mut v: Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        let median = v[v.len() / 2];
        Stat {
            name: name.to_owned(),
            median_ns: median,
            min_ns: v[0],
            ops_per_sec: 1e9 / median,
        }
    };
    (stat(name_a, ta), stat(name_b, tb))
}

struct Chain {
    leaf: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    root: CertificateDer<'static>,
}

fn uri(s: &str) -> Option<SanType> {
    Some(SanType::URI(s.try_into().ok()?))
}

fn ca_params(cn: &str) -> Option<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.subject_alt_names = vec![uri("spiffe://cluster.local")?];
    Some(p)
}

/// leaf (Istio workload profile) ← intermediate ← root, keys of algorithm `alg`.
fn chain(alg: &'static SignatureAlgorithm) -> Option<Chain> {
    let root_key = KeyPair::generate_for(alg).ok()?;
    let root_params = ca_params("root")?;
    let root = root_params.self_signed(&root_key).ok()?;
    let int_key = KeyPair::generate_for(alg).ok()?;
    let int_params = ca_params("intermediate")?;
    let int = int_params
        .signed_by(&int_key, &Issuer::from_params(&root_params, &root_key))
        .ok()?;
    let leaf_key = KeyPair::generate_for(alg).ok()?;
    let mut lp = CertificateParams::default();
    lp.distinguished_name = DistinguishedName::new();
    lp.is_ca = IsCa::ExplicitNoCa;
    lp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    lp.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    lp.subject_alt_names = vec![uri("spiffe://cluster.local/ns/shop/sa/checkout")?];
    let leaf = lp
        .signed_by(&leaf_key, &Issuer::from_params(&int_params, &int_key))
        .ok()?;
    Some(Chain {
        leaf: leaf.der().clone(),
        intermediate: int.der().clone(),
        root: root.der().clone(),
    })
}

pub fn rows(h: &mut Harness) {
    let algs = rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all;
    let now = UnixTime::now();
    let mut cached_row = None;
    for (label, alg) in [
        ("EC P-256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("RSA-2048", &rcgen::PKCS_RSA_SHA256),
    ] {
        let Some(c) = chain(alg) else {
            eprintln!("meshtls-bench: cannot generate the {label} chain");
            return;
        };
        let td = match meshtls::TrustDomain::new("cluster.local") {
            Ok(td) => td,
            Err(e) => {
                eprintln!("meshtls-bench: {e}");
                return;
            }
        };
        let bundles = match TrustBundle::new(td, [c.root.clone()])
            .and_then(|b| BundleSet::from_bundles([b]))
        {
            Ok(b) => b,
            Err(e) => {
                eprintln!("meshtls-bench: {e}");
                return;
            }
        };
        let presented = vec![c.leaf.clone(), c.intermediate.clone()];
        if let Err(e) = verify_svid(&presented, &bundles, now) {
            eprintln!("meshtls-bench: the {label} chain does not verify: {e}");
            return;
        }
        let anchors: Vec<TrustAnchor<'static>> = match webpki::anchor_from_trusted_cert(&c.root) {
            Ok(a) => vec![a.to_owned()],
            Err(e) => {
                eprintln!("meshtls-bench: {e:?}");
                return;
            }
        };
        let intermediates = vec![c.intermediate.clone()];
        let (ours, theirs) = measure_interleaved(
            h,
            &format!("verify_svid, {label} leaf+intermediate, uncached"),
            || verify_svid(black_box(&presented), &bundles, now).is_ok(),
            &format!("webpki verify_for_usage, same {label} chain"),
            || {
                let Ok(ee) = webpki::EndEntityCert::try_from(black_box(&c.leaf)) else {
                    return false;
                };
                ee.verify_for_usage(
                    algs,
                    &anchors,
                    &intermediates,
                    now,
                    webpki::KeyUsage::client_auth(),
                    None,
                    None,
                )
                .is_ok()
            },
        );
        let uncached = ours.clone();
        h.pair(
            "svid",
            ours,
            theirs,
            Some(0.9),
            "meshtls adds the SPIFFE profile, bundle lookup and root validity",
        );
        if cached_row.is_none() {
            cached_row = Some((label, presented, bundles, uncached));
        }
    }
    if let Some((label, presented, bundles, uncached)) = cached_row {
        let bundles_again = bundles.clone();
        let verifier = SvidVerifier::new(bundles);
        if verifier.verify(&presented, now).is_err() {
            eprintln!("meshtls-bench: the cached verifier refused the chain");
            return;
        }
        let (cached, uncached) = measure_interleaved(
            h,
            &format!("SvidVerifier::verify, {label}, cached"),
            || verifier.verify(black_box(&presented), now).is_ok(),
            &uncached.name,
            || verify_svid(black_box(&presented), &bundles_again, now).is_ok(),
        );
        h.pair(
            "svid",
            cached,
            uncached,
            Some(20.0),
            "same leaf and chain again; alternative = uncached verify_svid",
        );
    }
}
