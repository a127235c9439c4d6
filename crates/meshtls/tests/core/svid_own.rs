//! Your own X.509-SVID (`meshtls::Svid`): constructors that check the leaf and the key,
//! rotation timing, files and Kubernetes Secrets.

use crate::ca_support as support;

use std::time::Duration;

use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::error::CaError;
use meshtls::svid::RotationPolicy;
use meshtls::{Error, SpiffeId, Svid, TrustDomain};
use support::*;

fn ec_root() -> MeshCa {
    let mut p = CaParams::new(TrustDomain::new("cluster.local").unwrap());
    p.key = KeyKind::EcP256;
    MeshCa::create(&p).unwrap()
}

fn who() -> SpiffeId {
    SpiffeId::new("spiffe://cluster.local/ns/gateway/sa/agc").unwrap()
}

fn svid_err(r: Result<Svid, Error>) -> CaError {
    match r {
        Err(Error::Ca(e)) => e,
        Err(e) => panic!("expected CaError, got {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn pem_round_trip_keeps_every_fact() {
    let ca = ec_root();
    let svid = ca.issue(&who(), &IssueParams::default()).unwrap();
    let back = Svid::from_pem(&svid.cert_chain_pem(), &svid.private_key_pem()).unwrap();
    assert_eq!(back.spiffe_id(), svid.spiffe_id());
    assert_eq!(back.cert_chain_der(), svid.cert_chain_der());
    assert_eq!(back.not_before(), svid.not_before());
    assert_eq!(back.not_after(), svid.not_after());
    assert_eq!(back.serial(), svid.serial());
    assert_eq!(back.private_key_der(), svid.private_key_der());
    assert!(!svid.serial_hex().is_empty() && svid.serial_hex().len() <= 34);
}

#[test]
fn rsa_and_traditional_key_encodings_are_read_and_kept_as_pkcs8() {
    let ca = ec_root();
    for (kind, traditional_label) in [
        (KeyKind::Rsa2048, "RSA PRIVATE KEY"),
        (KeyKind::EcP384, "EC PRIVATE KEY"),
    ] {
        let svid = ca
            .issue(
                &who(),
                &IssueParams {
                    key: kind,
                    ..Default::default()
                },
            )
            .unwrap();
        let dir = Scratch::new("trad");
        let pkcs8 = dir.write("key.pem", &svid.private_key_pem());
        let out = dir.path("trad.pem");
        let alg = if kind == KeyKind::Rsa2048 {
            "rsa"
        } else {
            "ec"
        };
        let (input, output) = (pkcs8.display().to_string(), out.display().to_string());
        let mut args = vec![alg, "-in", &input, "-out", &output];
        if alg == "rsa" {
            // openssl 3 writes PKCS#8 unless asked; `openssl ec` writes SEC1 already.
            args.push("-traditional");
        }
        let (ok, text) = openssl(&args);
        assert!(ok, "{text}");
        let trad = std::fs::read_to_string(&out).unwrap();
        assert!(trad.contains(traditional_label), "{trad}");
        let back = Svid::from_pem(&svid.cert_chain_pem(), &trad).unwrap();
        assert_eq!(back.private_key_der(), svid.private_key_der(), "{kind}");
    }
}

#[test]
fn constructors_refuse_what_is_not_an_svid() {
    let ca = ec_root();
    let a = ca.issue(&who(), &IssueParams::default()).unwrap();
    let b = ca.issue(&who(), &IssueParams::default()).unwrap();
    // Key of another SVID.
    let e = svid_err(Svid::from_pem(&a.cert_chain_pem(), &b.private_key_pem()));
    assert!(matches!(e, CaError::KeyMismatch { .. }), "{e}");
    // Empty chain, no key, two keys.
    assert!(Svid::from_der(Vec::new(), &a.private_key_der()).is_err());
    let e = svid_err(Svid::from_pem(&a.cert_chain_pem(), ""));
    assert!(
        e.to_string().contains("no unencrypted pem private key"),
        "{e}"
    );
    let two = format!("{}{}", *a.private_key_pem(), *b.private_key_pem());
    let e = svid_err(Svid::from_pem(&a.cert_chain_pem(), &two));
    assert!(e.to_string().contains("more than one"), "{e}");
    // A CA certificate as the leaf.
    let e = svid_err(Svid::from_pem(&ca.ca_cert_pem(), &ca.ca_key_pem()));
    assert!(matches!(e, CaError::InvalidSvid { .. }), "{e}");

    // Leaves made by openssl: two URI SANs, no URI SAN, a root-only ID, a non-SPIFFE URI.
    let dir = Scratch::new("bad-leaves");
    let p = |f: &str| dir.path(f).display().to_string();
    for (name, san, needle) in [
        (
            "two",
            "URI:spiffe://cluster.local/a,URI:spiffe://cluster.local/b",
            "contains 2 URI SANs",
        ),
        ("none", "DNS:gw.example.com", "contains no URI SAN"),
        ("root", "URI:spiffe://cluster.local", "has no path"),
        (
            "https",
            "URI:https://cluster.local/a",
            "is not a valid SPIFFE ID",
        ),
        (
            "upper",
            "URI:spiffe://Cluster.local/a",
            "is not a valid SPIFFE ID",
        ),
    ] {
        let (ok, text) = openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &p(&format!("{name}.key")),
            "-out",
            &p(&format!("{name}.crt")),
            "-subj",
            "/O=x",
            "-days",
            "1",
            "-addext",
            &format!("subjectAltName={san}"),
            "-addext",
            "basicConstraints=critical,CA:false",
        ]);
        assert!(ok, "{text}");
        let e = svid_err(Svid::from_pem(
            &std::fs::read_to_string(p(&format!("{name}.crt"))).unwrap(),
            &std::fs::read_to_string(p(&format!("{name}.key"))).unwrap(),
        ));
        assert!(matches!(e, CaError::InvalidSvid { .. }), "{name}: {e}");
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
}

#[test]
fn should_rotate_after_half_the_lifetime_and_jitter_stays_in_bounds() {
    let ca = ec_root();
    let svid = ca.issue(&who(), &IssueParams::default()).unwrap();
    let nb = svid.not_before();
    let life = svid.not_after().duration_since(nb).unwrap();
    assert_eq!(life, Duration::from_secs(86400 + 120));
    assert!(!svid.should_rotate(nb));
    assert!(!svid.should_rotate(nb + life / 2 - Duration::from_secs(1)));
    assert!(svid.should_rotate(nb + life / 2));
    assert!(svid.should_rotate(svid.not_after() + Duration::from_secs(1)));
    let half = nb + life / 2;
    let policy = RotationPolicy::default();
    let mut seen_early = false;
    let mut seen_late = false;
    for _ in 0..200 {
        let t = svid.rotation_time(&policy);
        let bound = life.mul_f64(0.01) + Duration::from_secs(1);
        assert!(t >= half - bound && t <= half + bound);
        seen_early |= t < half;
        seen_late |= t > half;
    }
    assert!(seen_early && seen_late, "jitter goes both ways");
    let none = RotationPolicy {
        grace_ratio: 0.5,
        jitter: 0.0,
    };
    assert_eq!(svid.rotation_time(&none), half);
    let all = RotationPolicy {
        grace_ratio: 2.0,
        jitter: 0.0,
    };
    assert_eq!(svid.rotation_time(&all), nb, "ratio clamped to 1");
}

#[test]
fn secret_and_files_with_an_intermediate() {
    let root = ec_root();
    let mut ip = CaParams::intermediate(TrustDomain::new("cluster.local").unwrap());
    ip.key = KeyKind::EcP256;
    let inter = root.create_intermediate(&ip).unwrap();
    let svid = inter.issue(&who(), &IssueParams::default()).unwrap();
    let secret = svid.to_k8s_secret("agc-client", "gateway").unwrap();
    let tls_crt = String::from_utf8(secret.get("tls.crt").unwrap().to_vec()).unwrap();
    assert_eq!(
        tls_crt,
        pem(&svid.cert_chain_der()[..2]),
        "leaf + intermediate"
    );
    assert_eq!(
        secret.get("ca.crt").unwrap(),
        root.root_cert_pem().as_bytes()
    );

    let dir = Scratch::new("svid-files");
    svid.save(&dir.0).unwrap();
    assert_eq!(file_mode(&dir.path("key.pem")), 0o600);
    assert_eq!(file_mode(&dir.path("cert-chain.pem")), 0o644);
    assert_eq!(
        std::fs::read_to_string(dir.path("root-cert.pem")).unwrap(),
        root.root_cert_pem()
    );
    let (ok, text) = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        &dir.path("root-cert.pem").display().to_string(),
        "-untrusted",
        &dir.path("cert-chain.pem").display().to_string(),
        &dir.path("cert-chain.pem").display().to_string(),
    ]);
    assert!(ok, "{text}");
    let back = Svid::from_pem(
        &std::fs::read_to_string(dir.path("cert-chain.pem")).unwrap(),
        &std::fs::read_to_string(dir.path("key.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(back.spiffe_id(), &who());
    // Without a bundle, ca.crt comes from the chain's root.
    let secret = back.to_k8s_secret("x", "y").unwrap();
    assert_eq!(
        secret.get("ca.crt").unwrap(),
        root.root_cert_pem().as_bytes()
    );
}
