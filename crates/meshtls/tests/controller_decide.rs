#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The controller's pure decision: mesh config + Secret spec + the Secret as it is + clock →
//! what the Secret must become. Certificates come from a real `MeshCa`; what the decision
//! writes is checked by OpenSSL (`openssl verify` of tls.crt against ca.crt, `openssl pkey`
//! of tls.key against the leaf).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use meshtls::ca::{CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::controller::{
    self, ANNOTATION_IDENTITY, ANNOTATION_NOT_AFTER, ANNOTATION_SOURCE, ANNOTATION_TRUST_DOMAIN,
    ANNOTATION_TRUST_DOMAIN_ALIASES, Action, DesiredSecret, Inputs, ObservedSecret, Reason,
    SecretSpec,
};
use meshtls::svid::RotationPolicy;
use meshtls::{Error, MeshConfig, Svid, TrustDomain};
use rustls_pki_types::CertificateDer;

const SOURCE: &str = "cacerts:istio-system/cacerts";

fn new_ca(td: &str, aliases: &[&str]) -> MeshCa {
    let mut params = CaParams::new(TrustDomain::new(td).unwrap());
    params.key = KeyKind::EcP256;
    MeshCa::create(&params)
        .unwrap()
        .with_trust_domain_aliases(aliases.iter().map(|a| TrustDomain::new(a).unwrap()))
}

fn spec() -> SecretSpec {
    SecretSpec::new(
        "alb-gateway-client-certificate-istio",
        "alb",
        "alb",
        "alb-gateway",
        SOURCE,
    )
    .unwrap()
}

fn mesh(yaml: &str) -> MeshConfig {
    MeshConfig::from_yaml(yaml).unwrap()
}

fn observed(d: &DesiredSecret) -> ObservedSecret {
    ObservedSecret {
        secret_type: d.secret_type().to_owned(),
        data: d
            .data()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect(),
        annotations: d.annotations().clone(),
    }
}

/// Runs one full round: decide → issue from `ca` → complete; returns the Secret written.
fn round(
    mesh: &MeshConfig,
    spec: &SecretSpec,
    ca: &MeshCa,
    current: Option<&ObservedSecret>,
    now: SystemTime,
) -> (Reason, ObservedSecret, SystemTime) {
    let roots = ca.root_certs_der().to_vec();
    let inputs = Inputs {
        mesh,
        spec,
        source_roots: &roots,
        current,
        now,
    };
    let Action::Issue {
        identity, reason, ..
    } = controller::decide(&inputs).unwrap()
    else {
        panic!("expected issue")
    };
    let params = IssueParams {
        ttl: spec.ttl(),
        ..IssueParams::default()
    };
    let svid = ca.issue_at(&identity, &params, now).unwrap();
    match controller::complete(&inputs, reason.clone(), &svid).unwrap() {
        Action::Write {
            secret, recheck_at, ..
        } => (reason, observed(&secret), recheck_at),
        other => panic!("expected write, got {other:?}"),
    }
}

fn decide(
    mesh: &MeshConfig,
    spec: &SecretSpec,
    roots: &[CertificateDer<'static>],
    current: Option<&ObservedSecret>,
    now: SystemTime,
) -> Action {
    controller::decide(&Inputs {
        mesh,
        spec,
        source_roots: roots,
        current,
        now,
    })
    .unwrap()
}

fn text(s: &ObservedSecret, key: &str) -> String {
    String::from_utf8(s.data[key].clone()).unwrap()
}

fn have_openssl() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

/// `openssl verify` of tls.crt (leaf, then intermediates as untrusted) against ca.crt, and
/// the key in tls.key belongs to the leaf.
fn openssl_accepts(dir: &Path, s: &ObservedSecret) -> bool {
    std::fs::write(dir.join("tls.crt"), &s.data["tls.crt"]).unwrap();
    std::fs::write(dir.join("tls.key"), &s.data["tls.key"]).unwrap();
    std::fs::write(dir.join("ca.crt"), &s.data["ca.crt"]).unwrap();
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca.crt"))
        .arg("-untrusted")
        .arg(dir.join("tls.crt"))
        .arg(dir.join("tls.crt"))
        .output()
        .unwrap();
    let leaf_pub = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(dir.join("tls.crt"))
        .output()
        .unwrap();
    let key_pub = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.join("tls.key"))
        .output()
        .unwrap();
    verify.status.success() && leaf_pub.status.success() && leaf_pub.stdout == key_pub.stdout
}

#[test]
fn configmap_then_secret_with_identity_chain_roots_and_annotations() {
    let ca = new_ca("cluster.local", &[]);
    let mesh = mesh("trustDomain: cluster.local\n");
    let spec = spec();
    let now = SystemTime::now();
    let (reason, secret, recheck) = round(&mesh, &spec, &ca, None, now);
    assert_eq!(reason, Reason::Missing);
    assert_eq!(secret.secret_type, "kubernetes.io/tls");
    assert_eq!(
        secret.data.keys().collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    assert_eq!(text(&secret, "ca.crt"), ca.root_cert_pem());
    let a = &secret.annotations;
    assert_eq!(
        a[ANNOTATION_IDENTITY],
        "spiffe://cluster.local/ns/alb/sa/alb-gateway"
    );
    assert_eq!(a[ANNOTATION_TRUST_DOMAIN], "cluster.local");
    assert_eq!(a[ANNOTATION_TRUST_DOMAIN_ALIASES], "");
    assert_eq!(a[ANNOTATION_SOURCE], SOURCE);
    let svid = Svid::from_pem(&text(&secret, "tls.crt"), &text(&secret, "tls.key")).unwrap();
    assert_eq!(a[ANNOTATION_NOT_AFTER].len(), "2026-12-08T20:00:00Z".len());
    assert!(a[ANNOTATION_NOT_AFTER].ends_with('Z'));
    // The rotation point: Istio's half lifetime, within the 1 % jitter.
    let nb = svid.not_before();
    let life = svid.not_after().duration_since(nb).unwrap().as_secs_f64();
    let at = recheck.duration_since(nb).unwrap().as_secs_f64() / life;
    assert!(
        (0.49..=0.51).contains(&at),
        "rotation at {at} of the lifetime"
    );
    // The same point for every replica.
    assert_eq!(
        controller::rotation_point(&svid, &RotationPolicy::default()),
        recheck
    );
    // Written → nothing to do until the rotation point.
    let roots = ca.root_certs_der().to_vec();
    assert_eq!(
        decide(&mesh, &spec, &roots, Some(&secret), now),
        Action::Nothing {
            recheck_at: recheck
        }
    );
    if have_openssl() {
        let dir = tempdir("written");
        assert!(openssl_accepts(&dir, &secret), "openssl refused the Secret");
    } else {
        eprintln!("skipped: openssl check (openssl not installed)");
    }
}

#[test]
fn trust_domain_change_reissues_at_once_in_the_new_domain() {
    let ca = new_ca("cluster.local", &["prod.example"]);
    let spec = spec();
    let now = SystemTime::now();
    let old = mesh("trustDomain: cluster.local\n");
    let (_, secret, _) = round(&old, &spec, &ca, None, now);
    let new = mesh("trustDomain: prod.example\ntrustDomainAliases: [cluster.local]\n");
    let (reason, secret2, _) = round(&new, &spec, &ca, Some(&secret), now);
    assert_eq!(
        reason,
        Reason::IdentityChanged {
            from: "spiffe://cluster.local/ns/alb/sa/alb-gateway".into(),
            to: "spiffe://prod.example/ns/alb/sa/alb-gateway".into(),
        }
    );
    assert_eq!(
        secret2.annotations[ANNOTATION_IDENTITY],
        "spiffe://prod.example/ns/alb/sa/alb-gateway"
    );
    assert_eq!(secret2.annotations[ANNOTATION_TRUST_DOMAIN], "prod.example");
    assert_eq!(
        secret2.annotations[ANNOTATION_TRUST_DOMAIN_ALIASES],
        "cluster.local"
    );
    let svid = Svid::from_pem(&text(&secret2, "tls.crt"), &text(&secret2, "tls.key")).unwrap();
    assert_eq!(svid.spiffe_id().trust_domain_name(), "prod.example");
}

#[test]
fn alias_and_ca_certificates_root_follow_without_reissue() {
    let ca = new_ca("cluster.local", &[]);
    let other = new_ca("old.example", &[]);
    let spec = spec();
    let now = SystemTime::now();
    let roots = ca.root_certs_der().to_vec();
    let (_, secret, recheck) = round(&mesh(""), &spec, &ca, None, now);
    let yaml = format!(
        "trustDomainAliases: [old.example]\ncaCertificates:\n- trustDomains: [old.example]\n  pem: |\n{}",
        other
            .root_cert_pem()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let with_alias = mesh(&yaml);
    let Action::Write {
        secret: w,
        reason,
        replace,
        recheck_at,
    } = decide(&with_alias, &spec, &roots, Some(&secret), now)
    else {
        panic!("expected a write")
    };
    assert_eq!(reason, Reason::MetadataChanged);
    assert!(!replace);
    assert_eq!(recheck_at, recheck);
    let w = observed(&w);
    // The certificate and key stay byte for byte.
    assert_eq!(w.data["tls.crt"], secret.data["tls.crt"]);
    assert_eq!(w.data["tls.key"], secret.data["tls.key"]);
    assert_eq!(
        w.annotations[ANNOTATION_TRUST_DOMAIN_ALIASES],
        "old.example"
    );
    assert_eq!(
        text(&w, "ca.crt"),
        format!("{}{}", ca.root_cert_pem(), other.root_cert_pem())
    );
    // Then nothing more; removing the alias takes both away again.
    assert_eq!(
        decide(&with_alias, &spec, &roots, Some(&w), now).kind(),
        "nothing"
    );
    let Action::Write { secret: back, .. } = decide(&mesh(""), &spec, &roots, Some(&w), now) else {
        panic!("expected a write")
    };
    assert_eq!(observed(&back), secret);
}

#[test]
fn hand_edits_are_undone() {
    let ca = new_ca("cluster.local", &[]);
    let m = mesh("");
    let spec = spec();
    let now = SystemTime::now();
    let roots = ca.root_certs_der().to_vec();
    let (_, secret, _) = round(&m, &spec, &ca, None, now);

    // Another key in tls.key: re-issue.
    let mut edited = secret.clone();
    let stranger = ca
        .issue(
            &"spiffe://cluster.local/ns/x/sa/y".parse_id(),
            &IssueParams::default(),
        )
        .unwrap();
    edited.data.insert(
        "tls.key".into(),
        stranger.private_key_pem().as_bytes().to_vec(),
    );
    match decide(&m, &spec, &roots, Some(&edited), now) {
        Action::Issue {
            reason: Reason::Unreadable { reason },
            ..
        } => assert!(reason.contains("key"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Garbage in tls.crt, tls.crt missing: re-issue.
    let mut garbage = secret.clone();
    garbage.data.insert("tls.crt".into(), b"hello".to_vec());
    assert!(matches!(
        decide(&m, &spec, &roots, Some(&garbage), now),
        Action::Issue {
            reason: Reason::Unreadable { .. },
            ..
        }
    ));
    let mut missing = secret.clone();
    missing.data.remove("tls.crt");
    match decide(&m, &spec, &roots, Some(&missing), now) {
        Action::Issue {
            reason: Reason::Unreadable { reason },
            ..
        } => assert_eq!(reason, "tls.crt is missing"),
        other => panic!("{other:?}"),
    }
    // Another identity's certificate put there by hand: re-issue.
    let mut other = secret.clone();
    other
        .data
        .insert("tls.crt".into(), stranger.cert_chain_pem().into_bytes());
    other.data.insert(
        "tls.key".into(),
        stranger.private_key_pem().as_bytes().to_vec(),
    );
    assert!(matches!(
        decide(&m, &spec, &roots, Some(&other), now),
        Action::Issue {
            reason: Reason::IdentityChanged { .. },
            ..
        }
    ));
    // ca.crt or an owned annotation edited: rewritten, certificate kept.
    for (key, edit) in [("ca.crt", true), (ANNOTATION_IDENTITY, false)] {
        let mut e = secret.clone();
        if edit {
            e.data.insert(key.into(), b"".to_vec());
        } else {
            e.annotations.insert(key.into(), "spiffe://evil/x".into());
        }
        let Action::Write { secret: w, .. } = decide(&m, &spec, &roots, Some(&e), now) else {
            panic!("expected a write after editing {key}")
        };
        assert_eq!(observed(&w), secret, "{key}");
    }
    // Foreign keys and annotations are left alone.
    let mut foreign = secret.clone();
    foreign.annotations.insert("team".into(), "gw".into());
    foreign.data.insert("extra".into(), b"x".to_vec());
    assert_eq!(
        decide(&m, &spec, &roots, Some(&foreign), now).kind(),
        "nothing"
    );
    // A Secret of another type is replaced.
    let mut opaque = secret.clone();
    opaque.secret_type = "Opaque".into();
    let roots_vec = roots.clone();
    let inputs = Inputs {
        mesh: &m,
        spec: &spec,
        source_roots: &roots_vec,
        current: Some(&opaque),
        now,
    };
    let Action::Issue {
        identity,
        reason,
        replace,
    } = controller::decide(&inputs).unwrap()
    else {
        panic!()
    };
    assert!(replace);
    assert_eq!(reason.kind(), "wrong-type");
    let svid = ca.issue(&identity, &IssueParams::default()).unwrap();
    let Action::Write { replace, .. } = controller::complete(&inputs, reason, &svid).unwrap()
    else {
        panic!()
    };
    assert!(replace);
}

trait ParseId {
    fn parse_id(&self) -> meshtls::SpiffeId;
}
impl ParseId for str {
    fn parse_id(&self) -> meshtls::SpiffeId {
        meshtls::SpiffeId::new(self).unwrap()
    }
}

#[test]
fn rotation_rounds_never_leave_the_secret_without_a_valid_certificate() {
    let ca = new_ca("cluster.local", &[]);
    let m = mesh("");
    let spec = spec().with_ttl(Duration::from_secs(600)).unwrap();
    let roots = ca.root_certs_der().to_vec();
    let start = SystemTime::now();
    let (_, mut secret, mut recheck) = round(&m, &spec, &ca, None, start);
    let mut serials = Vec::new();
    for i in 0..6 {
        let svid = Svid::from_pem(&text(&secret, "tls.crt"), &text(&secret, "tls.key")).unwrap();
        serials.push(svid.serial_hex());
        // One second before the rotation point: nothing; valid throughout.
        let before = recheck - Duration::from_secs(1);
        assert_eq!(
            decide(&m, &spec, &roots, Some(&secret), before).kind(),
            "nothing",
            "round {i}"
        );
        assert!(controller::holds_valid_certificate(
            &secret,
            &spec.identity(&m).unwrap(),
            before
        ));
        // At the rotation point: renew, while the old one is still valid.
        assert!(controller::holds_valid_certificate(
            &secret,
            &spec.identity(&m).unwrap(),
            recheck
        ));
        let (reason, next, next_recheck) = round(&m, &spec, &ca, Some(&secret), recheck);
        assert_eq!(reason, Reason::RotationDue, "round {i}");
        assert!(next_recheck > recheck);
        secret = next;
        recheck = next_recheck;
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 6, "every round a new certificate");
    // Long past: expired.
    let late = recheck + Duration::from_secs(3600);
    assert!(matches!(
        decide(&m, &spec, &roots, Some(&secret), late),
        Action::Issue {
            reason: Reason::Expired,
            ..
        }
    ));
}

#[test]
fn a_new_ca_reissues_and_a_failure_never_writes() {
    let ca1 = new_ca("cluster.local", &[]);
    let ca2 = new_ca("cluster.local", &[]);
    let m = mesh("");
    let spec = spec();
    let now = SystemTime::now();
    let (_, secret, recheck) = round(&m, &spec, &ca1, None, now);
    let roots2 = ca2.root_certs_der().to_vec();
    assert!(matches!(
        decide(&m, &spec, &roots2, Some(&secret), now),
        Action::Issue {
            reason: Reason::NotSignedByMeshRoots { .. },
            ..
        }
    ));
    // The CA is away: no write, a capped backoff, and never later than the rotation point.
    let inputs = Inputs {
        mesh: &m,
        spec: &spec,
        source_roots: &roots2,
        current: Some(&secret),
        now,
    };
    for attempt in 0..40 {
        let Action::Nothing { recheck_at } =
            controller::after_failure(&inputs, attempt, Duration::from_secs(300))
        else {
            panic!("a failure must never write")
        };
        let wait = recheck_at.duration_since(now).unwrap();
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(300));
        assert!(recheck_at <= recheck);
    }
    assert_eq!(
        controller::backoff(3, Duration::from_secs(300)),
        Duration::from_secs(8)
    );
    assert_eq!(
        controller::backoff(30, Duration::from_secs(300)),
        Duration::from_secs(300)
    );
    // Near the rotation point the retry comes at the rotation point.
    let late = Inputs {
        now: recheck - Duration::from_secs(2),
        ..inputs
    };
    let Action::Nothing { recheck_at } =
        controller::after_failure(&late, 10, Duration::from_secs(300))
    else {
        panic!()
    };
    assert_eq!(recheck_at, recheck);
}

#[test]
fn complete_refuses_a_certificate_that_does_not_fit() {
    let ca1 = new_ca("cluster.local", &[]);
    let ca2 = new_ca("cluster.local", &[]);
    let m = mesh("");
    let spec = spec();
    let now = SystemTime::now();
    let roots1 = ca1.root_certs_der().to_vec();
    let inputs = Inputs {
        mesh: &m,
        spec: &spec,
        source_roots: &roots1,
        current: None,
        now,
    };
    let wrong_id = ca1
        .issue(
            &"spiffe://cluster.local/ns/alb/sa/other".parse_id(),
            &IssueParams::default(),
        )
        .unwrap();
    let err = controller::complete(&inputs, Reason::Missing, &wrong_id).unwrap_err();
    assert!(matches!(err, Error::Controller(_)));
    assert_eq!(
        err.to_string(),
        "certificate for spiffe://cluster.local/ns/alb/sa/other does not fit secret \
         alb/alb-gateway-client-certificate-istio: the identity asked for is \
         spiffe://cluster.local/ns/alb/sa/alb-gateway"
    );
    let id = spec.identity(&m).unwrap();
    let foreign = ca2.issue(&id, &IssueParams::default()).unwrap();
    let err = controller::complete(&inputs, Reason::Missing, &foreign).unwrap_err();
    assert!(
        err.to_string().contains("does not chain to the mesh roots"),
        "{err}"
    );
    let old = ca1
        .issue_at(
            &id,
            &IssueParams::default(),
            now - Duration::from_secs(3 * 86400),
        )
        .unwrap();
    let err = controller::complete(&inputs, Reason::Missing, &old).unwrap_err();
    assert!(err.to_string().ends_with("it has already expired"), "{err}");
    // Source roots unknown: the root at the end of the returned chain is used.
    let none: Vec<CertificateDer<'static>> = Vec::new();
    let blind = Inputs {
        source_roots: &none,
        ..inputs
    };
    let good = ca1.issue(&id, &IssueParams::default()).unwrap();
    let Action::Write { secret, .. } =
        controller::complete(&blind, Reason::Missing, &good).unwrap()
    else {
        panic!()
    };
    let w = observed(&secret);
    assert_eq!(text(&w, "ca.crt"), ca1.root_cert_pem());
    // tls.crt holds the leaf (and intermediates), not the self-signed root.
    assert_eq!(text(&w, "tls.crt").matches("BEGIN CERTIFICATE").count(), 1);
}

#[test]
fn bad_settings_are_typed_errors_naming_the_value() {
    let e = SecretSpec::new("Bad_Name", "alb", "alb", "gw", SOURCE).unwrap_err();
    assert!(e.to_string().contains("\"Bad_Name\""), "{e}");
    let e = SecretSpec::new("gw", "alb", "alb", "a/b", SOURCE).unwrap_err();
    assert!(e.to_string().contains("a/b"), "{e}");
    let e = SecretSpec::new("gw", "alb", "alb", "gw", "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid controller setting source \"\": must be non-empty text without control characters"
    );
    let e = spec()
        .with_ttl(Duration::from_secs(91 * 86400))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid controller setting ttl \"7862400s\": must be more than 60 s and at most 90 days"
    );
    // A caCertificates entry that is not PEM: the decision names it (a path check never
    // reads it, so the mesh config itself still loads).
    let bad =
        MeshConfig::from_yaml("caCertificates:\n- pem: \"-----BEGIN CERTIFICATE-----\\nAA\\n\"\n")
            .unwrap();
    let ca = new_ca("cluster.local", &[]);
    let roots = ca.root_certs_der().to_vec();
    let spec = spec();
    let now = SystemTime::now();
    let (_, secret, _) = round(&mesh(""), &spec, &ca, None, now);
    let e = controller::decide(&Inputs {
        mesh: &bad,
        spec: &spec,
        source_roots: &roots,
        current: Some(&secret),
        now,
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read mesh config caCertificates[0].pem: "),
        "{e}"
    );
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meshtls-controller-{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
