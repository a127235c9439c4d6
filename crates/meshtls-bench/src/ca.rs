//! The mesh CA against the crypto it cannot avoid, measured in the same run on one core:
//!
//! - issuing a fresh-key P-256 SVID vs the limit `1 / (1/keygen + 1/sign)` (aws-lc-rs key
//!   generation and one CA signature over a TBS-sized message, nothing else);
//! - the straightforward rcgen path (`KeyPair::generate_for` + `signed_by`) for comparison;
//! - batch issuance on every core vs one core;
//! - CSR signing vs (CSR signature verification + one CA signature).
//!
//! The machine these run on is shared, so the operations compared with each other are
//! measured in alternation (one sample of each in turn): load from elsewhere falls on all of
//! them alike instead of on whichever happened to run during a burst.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, UnparsedPublicKey,
};
use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::{SpiffeId, TrustDomain};

use crate::harness::{Harness, Stat};

/// One operation to measure: its name, how many operations one call performs, the call.
type Op<'a> = (String, u64, Box<dyn FnMut() + 'a>);

/// Measures `ops` in alternation and returns one [`Stat`] per operation, in order.
fn interleaved(h: &Harness, ops: &mut [Op<'_>]) -> Vec<Stat> {
    let per_sample = h.target / 2;
    // Calibrate each operation's batch to about `per_sample`.
    let mut iters: Vec<u64> = Vec::with_capacity(ops.len());
    for (_, _, f) in ops.iter_mut() {
        let mut n: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            let el = t.elapsed();
            if el >= per_sample / 10 || n >= 1 << 30 {
                let per = el.as_secs_f64() / n as f64;
                iters.push(((per_sample.as_secs_f64() / per.max(1e-12)) as u64).max(1));
                break;
            }
            n *= 4;
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(h.samples); ops.len()];
    for _ in 0..h.samples {
        for (i, (_, per_call, f)) in ops.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters[i] {
                f();
            }
            samples[i].push(t.elapsed().as_nanos() as f64 / (iters[i] * *per_call) as f64);
        }
    }
    ops.iter()
        .zip(samples)
        .map(|((name, _, _), mut s)| {
            s.sort_by(|a, b| a.total_cmp(b));
            let median = s[s.len() / 2];
            Stat {
                name: name.clone(),
                median_ns: median,
                min_ns: s[0],
                ops_per_sec: 1e9 / median,
            }
        })
        .collect()
}

fn op<'a>(name: impl Into<String>, per_call: u64, f: impl FnMut() + 'a) -> Op<'a> {
    (name.into(), per_call, Box::new(f))
}

enum CaSigner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl CaSigner {
    fn new(kind: KeyKind) -> Option<Self> {
        Some(match kind {
            KeyKind::EcP256 => {
                CaSigner::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).ok()?)
            }
            _ => CaSigner::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).ok()?),
        })
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            CaSigner::Ec(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            CaSigner::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                let _ = k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig);
                sig
            }
        }
    }
}

fn ca_of(kind: KeyKind) -> Option<MeshCa> {
    let mut p = CaParams::new(TrustDomain::new("cluster.local").ok()?);
    p.key = kind;
    MeshCa::create(&p).ok()
}

/// The time of doing `a` then `b`.
fn combine(name: &str, a: &Stat, b: &Stat) -> Stat {
    let ns = a.median_ns + b.median_ns;
    Stat {
        name: name.to_owned(),
        median_ns: ns,
        min_ns: a.min_ns + b.min_ns,
        ops_per_sec: 1e9 / ns,
    }
}

pub fn rows(h: &mut Harness) {
    let Ok(id) = SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc") else {
        return;
    };
    let params = IssueParams::default();
    for ca_kind in [KeyKind::EcP256, KeyKind::Rsa2048] {
        let (Some(ca), Some(signer)) = (ca_of(ca_kind), CaSigner::new(ca_kind)) else {
            eprintln!("meshtls-bench: cannot create a {ca_kind} CA");
            return;
        };
        issue_rows(h, &ca, ca_kind, &signer, &id, &params);
        if ca_kind == KeyKind::EcP256 {
            batch_rows(h, &ca, &params);
            csr_rows(h, &ca, &id, &signer);
        }
    }
}

fn issue_rows(
    h: &mut Harness,
    ca: &MeshCa,
    ca_kind: KeyKind,
    signer: &CaSigner,
    id: &SpiffeId,
    params: &IssueParams,
) {
    // Sign a message as long as a real leaf's TBS certificate.
    let tbs_len = ca
        .issue(id, params)
        .map(|s| s.cert_chain_der()[0].len().saturating_sub(90))
        .unwrap_or(400);
    let msg = vec![0x5au8; tbs_len];
    let mut ops = vec![
        op("aws-lc-rs P-256 keygen (EcdsaKeyPair::generate)", 1, || {
            let _ = black_box(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING));
        }),
        op(format!("aws-lc-rs {ca_kind} sign, {tbs_len} B"), 1, || {
            black_box(signer.sign(black_box(&msg)));
        }),
        op(format!("MeshCa::issue P-256 leaf, {ca_kind} CA"), 1, || {
            let _ = black_box(ca.issue(black_box(id), params));
        }),
    ];
    if ca_kind == KeyKind::EcP256 {
        if let Some(f) = rcgen_issue(ca) {
            ops.push(op("rcgen generate_for + signed_by (same profile)", 1, f));
        }
    }
    let stats = interleaved(h, &mut ops);
    let (keygen, sign, ours) = (&stats[0], &stats[1], &stats[2]);
    let limit = combine(&format!("limit: keygen + {ca_kind} sign"), keygen, sign);
    let ratio = limit.median_ns / ours.median_ns;
    h.derived(
        "ca",
        ours.clone(),
        limit,
        ratio,
        Some(0.85),
        &format!(
            "keygen {:.1} µs, sign {:.1} µs",
            keygen.median_ns / 1e3,
            sign.median_ns / 1e3
        ),
    );
    if let Some(rcgen) = stats.get(3) {
        h.pair(
            "ca",
            ours.clone(),
            rcgen.clone(),
            None,
            "rcgen path, same profile",
        );
    }
}

/// The straightforward rcgen path with the same profile, as a closure.
fn rcgen_issue(ca: &MeshCa) -> Option<impl FnMut() + '_> {
    use rcgen::{
        CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, SanType, SerialNumber,
    };
    let ca_key = KeyPair::from_pem(&ca.ca_key_pem()).ok()?;
    let issuer = Issuer::from_ca_cert_der(ca.ca_cert_der(), ca_key).ok()?;
    let uri =
        rcgen::string::Ia5String::try_from("spiffe://cluster.local/ns/gateway/sa/agc").ok()?;
    let issue = move || -> Option<(rcgen::Certificate, Vec<u8>)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).ok()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::URI(uri.clone())];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).ok()?;
        serial[0] &= 0x7f;
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - Duration::from_secs(120);
        p.not_after = now + Duration::from_secs(86400);
        let cert = p.signed_by(&key, &issuer).ok()?;
        Some((cert, key.serialize_der()))
    };
    Some(move || {
        black_box(issue());
    })
}

fn batch_rows(h: &mut Harness, ca: &MeshCa, params: &IssueParams) {
    let ids: Vec<SpiffeId> = (0..256)
        .filter_map(|i| {
            SpiffeId::new(&format!("spiffe://cluster.local/ns/n{}/sa/s{i}", i % 8)).ok()
        })
        .collect();
    let n = ids.len() as u64;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut ops = vec![
        op(format!("issue_many, {n} P-256 SVIDs, 1 thread"), n, || {
            let _ = black_box(ca.issue_many_on(&ids, params, 1));
        }),
        op(
            format!("issue_many, {n} P-256 SVIDs, {cores} threads"),
            n,
            || {
                let _ = black_box(ca.issue_many(&ids, params));
            },
        ),
    ];
    let stats = interleaved(h, &mut ops);
    h.pair(
        "ca",
        stats[1].clone(),
        stats[0].clone(),
        Some(if cores >= 2 { 1.8 } else { 1.0 }),
        &format!("speed-up on {cores} cores (per SVID)"),
    );
}

fn csr_rows(h: &mut Harness, ca: &MeshCa, id: &SpiffeId, signer: &CaSigner) {
    // A CSR as istio-agent sends one: P-256 key, a SPIFFE SAN that istiod ignores.
    let Ok(requester) = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256) else {
        return;
    };
    let Ok(mut p) = rcgen::CertificateParams::new(Vec::<String>::new()) else {
        return;
    };
    if let Ok(uri) = rcgen::string::Ia5String::try_from(id.as_str()) {
        p.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    }
    let Ok(csr) = p.serialize_request(&requester) else {
        return;
    };
    let csr_der = csr.der().as_ref().to_vec();
    let Ok(csr_pem) = csr.pem() else {
        return;
    };
    // The same verification on its own: the CSR's P-256 signature over its
    // CertificationRequestInfo, checked with aws-lc-rs directly.
    let Some((info, sig)) = split_csr(&csr_der) else {
        return;
    };
    let public = requester.public_key_raw().to_vec();
    let tbs_len = ca
        .sign_csr_der(&csr_der, id, Duration::from_secs(86400))
        .map(|c| c.cert_chain_der()[0].len().saturating_sub(90))
        .unwrap_or(400);
    let msg = vec![0x5au8; tbs_len];
    let ttl = Duration::from_secs(86400);
    let mut ops = vec![
        op("aws-lc-rs P-256 verify of the CSR", 1, || {
            let _ = black_box(
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, black_box(&public))
                    .verify(black_box(info), sig),
            );
        }),
        op(format!("aws-lc-rs ec-p256 sign, {tbs_len} B"), 1, || {
            black_box(signer.sign(black_box(&msg)));
        }),
        op("MeshCa::sign_csr (PEM in), P-256 CA", 1, || {
            let _ = black_box(ca.sign_csr(black_box(&csr_pem), id, ttl));
        }),
        op("MeshCa::sign_csr_der, P-256 CA", 1, || {
            let _ = black_box(ca.sign_csr_der(black_box(&csr_der), id, ttl));
        }),
    ];
    let stats = interleaved(h, &mut ops);
    let limit = combine("limit: CSR verify + P-256 sign", &stats[0], &stats[1]);
    for (ours, note) in [(&stats[2], "PEM decoding included"), (&stats[3], "")] {
        let ratio = limit.median_ns / ours.median_ns;
        h.derived("ca", ours.clone(), limit.clone(), ratio, Some(0.9), note);
    }
}

/// The signed part and the signature of a DER CSR (for the reference verification).
fn split_csr(der: &[u8]) -> Option<(&[u8], &[u8])> {
    fn tlv(b: &[u8]) -> Option<(usize, usize)> {
        // (header length, content length)
        let first = *b.get(1)?;
        if first < 0x80 {
            return Some((2, usize::from(first)));
        }
        let n = usize::from(first & 0x7f);
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        Some((2 + n, len))
    }
    let (h, _) = tlv(der)?;
    let body = der.get(h..)?;
    let (ih, il) = tlv(body)?;
    let info = body.get(..ih + il)?;
    let rest = body.get(ih + il..)?;
    let (ah, al) = tlv(rest)?;
    let sig_tlv = rest.get(ah + al..)?;
    let (sh, sl) = tlv(sig_tlv)?;
    // Skip the BIT STRING's unused-bits byte.
    let sig = sig_tlv.get(sh + 1..sh + sl)?;
    Some((info, sig))
}
