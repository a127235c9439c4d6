//! Istio's plug-in `cacerts` layout and the kubernetes.io/tls layout: saving (atomic, key 0600),
//! loading what openssl's tooling writes (Istio's "plug in CA certificates" guide), the typed
//! error for each broken layout, and root rotation that keeps the key.

use crate::ca_support as support;

use std::time::{Duration, SystemTime};

use meshtls::ca::{CaLayout, CaParams, IssueParams, KeyKind, MeshCa};
use meshtls::error::CaError;
use meshtls::{Error, SpiffeId, TrustDomain};
use support::*;
use x509_parser::prelude::FromDer as _;

fn td() -> TrustDomain {
    TrustDomain::new("cluster.local").unwrap()
}

fn ec_root() -> MeshCa {
    let mut p = CaParams::new(td());
    p.key = KeyKind::EcP256;
    MeshCa::create(&p).unwrap()
}

fn ec_intermediate(root: &MeshCa) -> MeshCa {
    let mut p = CaParams::intermediate(td());
    p.key = KeyKind::EcP256;
    root.create_intermediate(&p).unwrap()
}

fn who() -> SpiffeId {
    SpiffeId::new("spiffe://cluster.local/ns/shop/sa/checkout").unwrap()
}

fn ca_err(r: Result<MeshCa, Error>) -> CaError {
    match r {
        Err(Error::Ca(e)) => e,
        Err(other) => panic!("expected a CaError, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn save_then_load_round_trips_in_both_layouts() {
    let root = ec_root();
    let inter = ec_intermediate(&root);
    for layout in [CaLayout::Istio, CaLayout::KubernetesTls] {
        for ca in [&root, &inter] {
            let dir = Scratch::new("save");
            ca.save_as(&dir.0, layout).unwrap();
            let (key_file, files): (&str, &[&str]) = match layout {
                CaLayout::Istio => (
                    "ca-key.pem",
                    &["ca-cert.pem", "cert-chain.pem", "root-cert.pem"],
                ),
                _ => ("tls.key", &["tls.crt", "ca.crt"]),
            };
            assert_eq!(file_mode(&dir.path(key_file)), 0o600);
            for f in files {
                assert_eq!(file_mode(&dir.path(f)), 0o644, "{f}");
            }
            // Nothing but the layout's files: no temporary files left behind.
            assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), files.len() + 1);
            let loaded = MeshCa::load(&dir.0, &td()).unwrap();
            assert_eq!(loaded.ca_cert_der(), ca.ca_cert_der());
            assert_eq!(loaded.cert_chain_der(), ca.cert_chain_der());
            assert_eq!(loaded.root_certs_der(), ca.root_certs_der());
            assert_eq!(*loaded.ca_key_pem(), *ca.ca_key_pem());
            let svid = loaded.issue(&who(), &IssueParams::default()).unwrap();
            assert_eq!(svid.cert_chain_der().len(), ca.cert_chain_der().len() + 1);
            openssl_verify(svid.cert_chain_der(), root.root_certs_der(), "sslclient");
        }
    }
}

#[test]
fn saving_over_an_existing_layout_replaces_each_file_and_fixes_the_key_mode() {
    let dir = Scratch::new("overwrite");
    let first = ec_root();
    first.save(&dir.0).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        dir.path("ca-key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let second = ec_root();
    second.save(&dir.0).unwrap();
    assert_eq!(file_mode(&dir.path("ca-key.pem")), 0o600);
    let loaded = MeshCa::load(&dir.0, &td()).unwrap();
    assert_eq!(loaded.ca_cert_der(), second.ca_cert_der());
}

/// Builds Istio's plug-in layout with openssl alone, like Istio's `tools/certs` Makefile:
/// an RSA root, an intermediate signed with `openssl x509 -req`, `cert-chain.pem` =
/// intermediate + root, keys in the formats openssl writes.
fn openssl_plugin_layout(dir: &Scratch, key_format: &str) {
    let p = |f: &str| dir.path(f).display().to_string();
    dir.write(
        "root.conf",
        "[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=ext\n[dn]\nO=Istio\nCN=Root CA\n\
         [ext]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign\n\
         subjectKeyIdentifier=hash\n",
    );
    dir.write(
        "inter.ext",
        "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,keyCertSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=DNS:istiod.istio-system.svc\n",
    );
    let ok = |args: &[&str]| {
        let (ok, text) = openssl(args);
        assert!(ok, "openssl {args:?}: {text}");
    };
    ok(&["genrsa", "-out", &p("root-key.pem"), "2048"]);
    ok(&[
        "req",
        "-new",
        "-x509",
        "-sha256",
        "-days",
        "30",
        "-key",
        &p("root-key.pem"),
        "-config",
        &p("root.conf"),
        "-out",
        &p("root-cert.pem"),
    ]);
    match key_format {
        "pkcs1" => ok(&["genrsa", "-traditional", "-out", &p("ca-key.pem"), "2048"]),
        "pkcs8-rsa" => ok(&["genrsa", "-out", &p("ca-key.pem"), "2048"]),
        "sec1" => ok(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &p("ca-key.pem"),
        ]),
        "pkcs8-ec" => ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            &p("ca-key.pem"),
        ]),
        other => panic!("{other}"),
    }
    ok(&[
        "req",
        "-new",
        "-key",
        &p("ca-key.pem"),
        "-subj",
        "/O=Istio/CN=Intermediate CA/L=cluster1",
        "-out",
        &p("inter.csr"),
    ]);
    ok(&[
        "x509",
        "-req",
        "-sha256",
        "-days",
        "10",
        "-in",
        &p("inter.csr"),
        "-CA",
        &p("root-cert.pem"),
        "-CAkey",
        &p("root-key.pem"),
        "-CAcreateserial",
        "-extfile",
        &p("inter.ext"),
        "-out",
        &p("ca-cert.pem"),
    ]);
    let chain = std::fs::read_to_string(dir.path("ca-cert.pem")).unwrap()
        + &std::fs::read_to_string(dir.path("root-cert.pem")).unwrap();
    dir.write("cert-chain.pem", &chain);
    for f in [
        "root.conf",
        "inter.ext",
        "inter.csr",
        "root-key.pem",
        "root-cert.srl",
    ] {
        let _ = std::fs::remove_file(dir.path(f));
    }
}

#[test]
fn loads_the_layout_istios_openssl_tooling_writes_in_every_key_format() {
    for format in ["pkcs1", "pkcs8-rsa", "sec1", "pkcs8-ec"] {
        let dir = Scratch::new("plugin");
        openssl_plugin_layout(&dir, format);
        let ca = MeshCa::load(&dir.0, &td()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert!(!ca.is_self_signed());
        assert_eq!(
            ca.cert_chain_der().len(),
            2,
            "intermediate, root (not repeated)"
        );
        assert_eq!(ca.trust_domain(), &td());
        let svid = ca.issue(&who(), &IssueParams::default()).unwrap();
        assert_eq!(svid.cert_chain_der().len(), 3);
        openssl_verify(svid.cert_chain_der(), ca.root_certs_der(), "sslclient");
        openssl_verify(svid.cert_chain_der(), ca.root_certs_der(), "sslserver");
        webpki_verify(svid.cert_chain_der(), ca.root_certs_der());
        // Saved back, the key is PKCS#8 and still matches.
        let out = Scratch::new("resave");
        ca.save(&out.0).unwrap();
        assert!(
            std::fs::read_to_string(out.path("ca-key.pem"))
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        MeshCa::load(&out.0, &td()).unwrap();
    }
}

#[test]
fn each_broken_layout_is_a_typed_error_naming_the_file() {
    let root = ec_root();
    let inter = ec_intermediate(&root);
    let other_root = ec_root();
    let good = Scratch::new("good");
    inter.save(&good.0).unwrap();
    let copy = |tag: &str| {
        let d = Scratch::new(tag);
        for f in [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem",
        ] {
            std::fs::copy(good.path(f), d.path(f)).unwrap();
        }
        d
    };

    // Missing files: listed by name.
    let d = copy("missing");
    std::fs::remove_file(d.path("ca-key.pem")).unwrap();
    std::fs::remove_file(d.path("root-cert.pem")).unwrap();
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::MissingFiles { missing, .. } => assert_eq!(missing, "ca-key.pem, root-cert.pem"),
        e => panic!("{e}"),
    }
    let empty = Scratch::new("empty");
    let e = ca_err(MeshCa::load(&empty.0, &td()));
    assert!(matches!(e, CaError::MissingFiles { .. }), "{e}");
    let d = Scratch::new("tls-missing");
    d.write("tls.crt", &inter.ca_cert_pem());
    let e = ca_err(MeshCa::load(&d.0, &td()));
    assert!(e.to_string().contains("tls.key, ca.crt"), "{e}");

    // Key of another CA.
    let d = copy("mismatch");
    d.write("ca-key.pem", &other_root.ca_key_pem());
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::KeyMismatch { key, cert } => {
            assert!(key.ends_with("ca-key.pem") && cert.ends_with("ca-cert.pem"));
        }
        e => panic!("{e}"),
    }

    // Signing certificate that is not a CA (a workload certificate and its key).
    let d = copy("not-ca");
    let svid = root.issue(&who(), &IssueParams::default()).unwrap();
    d.write("ca-cert.pem", &pem(&svid.cert_chain_der()[..1]));
    d.write("ca-key.pem", &svid.private_key_pem());
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::NotCa { what, reason } => {
            assert!(what.ends_with("ca-cert.pem"));
            assert!(reason.contains("cA"), "{reason}");
        }
        e => panic!("{e}"),
    }

    // Chain file from another hierarchy: the signing certificate does not chain through it.
    let d = copy("chain");
    let foreign = ec_intermediate(&other_root);
    d.write(
        "cert-chain.pem",
        &(foreign.ca_cert_pem() + &other_root.root_cert_pem()),
    );
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::BrokenChain { what, reason } => {
            assert!(what.ends_with("ca-cert.pem"), "{what}");
            assert!(reason.contains("cert-chain.pem"), "{reason}");
        }
        e => panic!("{e}"),
    }

    // Root file of another CA.
    let d = copy("root");
    d.write("root-cert.pem", &other_root.root_cert_pem());
    d.write("cert-chain.pem", &inter.ca_cert_pem());
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::BrokenChain { reason, .. } => {
            assert!(reason.contains("root-cert.pem"), "{reason}")
        }
        e => panic!("{e}"),
    }

    // Garbage, a key where a certificate belongs, two certificates in ca-cert.pem.
    let d = copy("garbage");
    d.write("ca-cert.pem", "not pem at all\n");
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::Material { what, reason } => {
            assert!(what.ends_with("ca-cert.pem"));
            assert!(reason.contains("no CERTIFICATE PEM block"), "{reason}");
        }
        e => panic!("{e}"),
    }
    let d = copy("swapped");
    d.write("cert-chain.pem", &inter.ca_key_pem());
    let e = ca_err(MeshCa::load(&d.0, &td()));
    assert!(
        e.to_string().contains("cert-chain.pem")
            && e.to_string().contains("only CERTIFICATE blocks"),
        "{e}"
    );
    let d = copy("two");
    d.write("ca-cert.pem", &inter.cert_chain_pem());
    let e = ca_err(MeshCa::load(&d.0, &td()));
    assert!(e.to_string().contains("holds 2 certificates"), "{e}");
    let d = copy("corrupt-der");
    d.write(
        "ca-cert.pem",
        "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
    );
    let e = ca_err(MeshCa::load(&d.0, &td()));
    assert!(
        matches!(e, CaError::Material { .. }) && e.to_string().contains("malformed"),
        "{e}"
    );
    let d = copy("nokey");
    d.write("ca-key.pem", &inter.ca_cert_pem());
    let e = ca_err(MeshCa::load(&d.0, &td()));
    assert!(e.to_string().contains("ca-key.pem"), "{e}");

    // A weak RSA key.
    let d = Scratch::new("weak");
    let p = |f: &str| d.path(f).display().to_string();
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        &p("ca-key.pem"),
        "-out",
        &p("ca-cert.pem"),
        "-subj",
        "/O=weak",
        "-days",
        "1",
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    assert!(ok, "{text}");
    let e = ca_err(MeshCa::from_pem(
        &std::fs::read_to_string(d.path("ca-cert.pem")).unwrap(),
        &std::fs::read_to_string(d.path("ca-key.pem")).unwrap(),
        "",
        "",
        td(),
    ));
    assert!(
        matches!(e, CaError::UnsupportedKey { .. }) && e.to_string().contains("1024"),
        "{e}"
    );
}

#[test]
fn expired_material_is_refused_at_load() {
    let mut p = CaParams::new(td());
    p.key = KeyKind::EcP256;
    p.ttl = Duration::from_secs(60);
    let old = MeshCa::create_at(&p, SystemTime::now() - Duration::from_secs(3600)).unwrap();
    let d = Scratch::new("expired");
    old.save(&d.0).unwrap();
    match ca_err(MeshCa::load(&d.0, &td())) {
        CaError::Expired { what, .. } => assert!(what.ends_with("ca-cert.pem"), "{what}"),
        e => panic!("{e}"),
    }
    // Not yet valid too.
    let future = MeshCa::create_at(&p, SystemTime::now() + Duration::from_secs(3600)).unwrap();
    let e = ca_err(MeshCa::from_pem(
        &future.ca_cert_pem(),
        &future.ca_key_pem(),
        "",
        &future.root_cert_pem(),
        td(),
    ));
    assert!(matches!(e, CaError::NotYetValid { .. }), "{e}");
}

#[test]
fn from_pem_accepts_a_self_signed_root_without_chain_or_root_files() {
    let root = ec_root();
    let ca = MeshCa::from_pem(&root.ca_cert_pem(), &root.ca_key_pem(), "", "", td()).unwrap();
    assert!(ca.is_self_signed());
    assert_eq!(ca.root_certs_der(), root.root_certs_der());
    // An intermediate without any root is refused.
    let inter = ec_intermediate(&root);
    let e = ca_err(MeshCa::from_pem(
        &inter.ca_cert_pem(),
        &inter.ca_key_pem(),
        "",
        "",
        td(),
    ));
    assert!(e.to_string().contains("root-cert.pem"), "{e}");
    // An intermediate directly under the root needs no chain file.
    let ca = MeshCa::from_pem(
        &inter.ca_cert_pem(),
        &inter.ca_key_pem(),
        "",
        &root.root_cert_pem(),
        td(),
    )
    .unwrap();
    assert_eq!(ca.cert_chain_der(), inter.cert_chain_der());
}

#[test]
fn root_rotation_keeps_the_key_so_old_and_new_leaves_verify_against_either_root() {
    let mut p = CaParams::new(td());
    p.key = KeyKind::Rsa2048;
    let old = MeshCa::create(&p).unwrap();
    let old_leaf = old.issue(&who(), &IssueParams::default()).unwrap();
    let new = old.rotate_root(Duration::from_secs(3650 * 86400)).unwrap();
    assert_ne!(new.ca_cert_der(), old.ca_cert_der());
    assert_eq!(*new.ca_key_pem(), *old.ca_key_pem());
    assert_eq!(new.root_certs_der().len(), 1);
    let new_leaf = new.issue(&who(), &IssueParams::default()).unwrap();
    // Old leaf against the new root, new leaf against the old root.
    openssl_verify(
        &old_leaf.cert_chain_der()[..1],
        new.root_certs_der(),
        "sslclient",
    );
    openssl_verify(
        &new_leaf.cert_chain_der()[..1],
        old.root_certs_der(),
        "sslserver",
    );
    webpki_verify(&old_leaf.cert_chain_der()[..1], new.root_certs_der());
    webpki_verify(&new_leaf.cert_chain_der()[..1], old.root_certs_der());

    // Only roots rotate in place.
    let inter = ec_intermediate(&old);
    let e = ca_err(inter.rotate_root(Duration::from_secs(86400)));
    assert!(matches!(e, CaError::Rotation { .. }), "{e}");

    // istiod's rule: rotate once less than 20% of the lifetime is left.
    let nb = old.not_before();
    let life = old.not_after().duration_since(nb).unwrap();
    assert!(!old.needs_rotation(nb + life.mul_f64(0.79)));
    assert!(old.needs_rotation(nb + life.mul_f64(0.81)));
}

#[test]
fn csr_signing_uses_the_csr_key_and_the_callers_identity_only() {
    let ca = ec_intermediate(&ec_root());
    let d = Scratch::new("csr");
    let p = |f: &str| d.path(f).display().to_string();
    let make_csr = |name: &str, alg: &[&str]| {
        let mut args = vec!["req", "-new", "-nodes", "-newkey"];
        args.extend_from_slice(alg);
        let key = p(&format!("{name}.key"));
        let csr = p(&format!("{name}.csr"));
        args.extend_from_slice(&[
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=evil/O=attacker",
            "-addext",
            "subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:evil.example",
        ]);
        let (ok, text) = openssl(&args);
        assert!(ok, "{text}");
        (
            std::fs::read_to_string(&csr).unwrap(),
            std::fs::read_to_string(&key).unwrap(),
        )
    };
    let me = who();
    for (name, alg) in [
        ("p256", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..]),
        ("p384", &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..]),
        ("rsa2048", &["rsa:2048"][..]),
    ] {
        let (csr, key) = make_csr(name, alg);
        let issued = ca.sign_csr(&csr, &me, Duration::from_secs(3600)).unwrap();
        let chain = issued.cert_chain_der();
        assert_eq!(chain.len(), 3);
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        assert_eq!(
            leaf.subject().as_raw(),
            &[0x30, 0x00],
            "CSR subject ignored"
        );
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names.len(), 1, "CSR SANs ignored");
        assert!(matches!(
            san.value.general_names[0],
            x509_parser::extensions::GeneralName::URI("spiffe://cluster.local/ns/shop/sa/checkout")
        ));
        // The CSR's public key, verbatim.
        let csr_der: Vec<u8> = rustls_pki_types::pem::PemObject::from_pem_slice(csr.as_bytes())
            .map(|c: rustls_pki_types::CertificateSigningRequestDer<'_>| c.as_ref().to_vec())
            .unwrap();
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&csr_der)
                .unwrap();
        assert_eq!(
            leaf.public_key().raw,
            req.certification_request_info.subject_pki.raw
        );
        assert_eq!(
            unix(issued.not_after()) - unix(issued.not_before()),
            3600 + 120
        );
        openssl_verify(chain, ca.root_certs_der(), "sslclient");
        // With the requester's key it is a complete SVID.
        let key_der = rustls_pki_types::pem::PemObject::from_pem_slice(key.as_bytes()).unwrap();
        let svid = issued.into_svid(&key_der).unwrap();
        assert_eq!(svid.spiffe_id(), &me);
        assert_eq!(svid.trust_bundle_der(), ca.root_certs_der());
    }

    // Refused: weak RSA, unsupported curves and algorithms, a forged signature, a bad TTL.
    for (name, alg, needle) in [
        ("rsa1024", &["rsa:1024"][..], "1024 bits"),
        (
            "p521",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
            "1.3.132.0.35",
        ),
        (
            "k256",
            &["ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"][..],
            "1.3.132.0.10",
        ),
        ("ed25519", &["ed25519"][..], "ed25519"),
    ] {
        let (csr, _) = make_csr(name, alg);
        let err = ca
            .sign_csr(&csr, &me, Duration::from_secs(3600))
            .unwrap_err();
        assert!(
            matches!(err, Error::Ca(CaError::UnsupportedKey { .. })),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert!(err.to_string().contains("csr public key"), "{err}");
    }
    let (csr, _) = make_csr("forge", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let mut der: Vec<u8> = rustls_pki_types::pem::PemObject::from_pem_slice(csr.as_bytes())
        .map(|c: rustls_pki_types::CertificateSigningRequestDer<'_>| c.as_ref().to_vec())
        .unwrap();
    // Flip a byte inside the subject (offset 20 is within CertificationRequestInfo).
    der[20] ^= 0x01;
    let err = ca
        .sign_csr_der(&der, &me, Duration::from_secs(3600))
        .unwrap_err();
    assert!(matches!(err, Error::Ca(CaError::Csr { .. })), "{err}");
    let err = ca
        .sign_csr_der(&der[..der.len() - 3], &me, Duration::from_secs(3600))
        .unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    let (csr, _) = make_csr("ttl", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let err = ca
        .sign_csr(&csr, &me, Duration::from_secs(91 * 86400))
        .unwrap_err();
    assert!(
        matches!(err, Error::Ca(CaError::InvalidTtl { .. })),
        "{err}"
    );
    let err = ca
        .sign_csr("hello", &me, Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, Error::Ca(CaError::Csr { .. })), "{err}");
}
