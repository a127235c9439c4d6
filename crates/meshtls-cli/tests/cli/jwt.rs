//! `meshtls jwt init|mint|bundle|verify`: a CA's JWT key, tokens minted and verified, exit
//! codes (0 valid, 1 rejected, 2 usage) and `--json` output. (PyJWT and py-spiffe check
//! the same tokens in python/tests/test_jwt_svid.py.)

use crate::support::{Scratch, meshtls, s};

#[test]
fn init_mint_bundle_verify() {
    let scratch = Scratch::new("jwt");
    let dir = scratch.path();
    let ca = dir.join("ca");
    let (code, out, err) = meshtls(&["--json", "jwt", "init", "--ca", s(&ca), "--key", "ec-p384"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["alg"], "ES384");
    let kid = v["kid"].as_str().unwrap().to_owned();
    // A second init without --force is refused (exit 2), keeping the key.
    let (code, _, err) = meshtls(&["jwt", "init", "--ca", s(&ca)]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");

    let (code, token, err) = meshtls(&[
        "jwt",
        "mint",
        "spiffe://example.org/web",
        "--ca",
        s(&ca),
        "--audience",
        "billing",
        "--ttl",
        "2m",
    ]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    for shape in ["spiffe", "workload-api"] {
        let (code, jwks, _) = meshtls(&[
            "jwt",
            "bundle",
            "--ca",
            s(&ca),
            "--trust-domain",
            "example.org",
            "--shape",
            shape,
        ]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&jwks).unwrap();
        assert_eq!(v["keys"][0]["kid"], kid.as_str());
        assert_eq!(v["keys"][0].get("use").is_some(), shape == "spiffe");
        let file = dir.join(format!("{shape}.json"));
        std::fs::write(&file, &jwks).unwrap();
        let bundle = format!("example.org={}", s(&file));
        // `meshtls --json jwt verify TOKEN --bundle example.org=JWKS --audience AUDIENCE`.
        let verify = |audience: &str| {
            meshtls(&[
                "--json",
                "jwt",
                "verify",
                &token,
                "--bundle",
                &bundle,
                "--audience",
                audience,
            ])
        };
        let (code, out, _) = verify("billing");
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["spiffe_id"], "spiffe://example.org/web");
        assert_eq!(v["kid"], kid.as_str());
        // Wrong audience: a verdict of no (exit 1) naming the rule.
        let (code, out, _) = verify("payments");
        assert_eq!(code, 1);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["kind"], "jwt");
        assert!(v["error"].as_str().unwrap().contains("audience"), "{v}");
        // The bundle under another trust domain name: never pooled, so no bundle.
        let other = format!("other.org={}", s(&file));
        let (code, out, _) = meshtls(&[
            "jwt",
            "verify",
            &token,
            "--bundle",
            &other,
            "--audience",
            "billing",
        ]);
        assert_eq!(code, 1);
        assert!(
            out.contains("no jwt bundle for trust domain example.org"),
            "{out}"
        );
    }

    // Usage errors: empty audience, a subject of no trust domain, a bad --bundle.
    let (code, _, err) = meshtls(&[
        "jwt",
        "mint",
        "spiffe://example.org/web",
        "--ca",
        s(&ca),
        "--audience",
        "",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("audience"), "{err}");
    let (code, _, _) = meshtls(&[
        "jwt",
        "verify",
        &token,
        "--bundle",
        "nofile",
        "--audience",
        "a",
    ]);
    assert_eq!(code, 2);
}
