//! Service-account token verification (`ca_protocol::jwt`) against fixed committed test keys
//! (fuzz/jwt/: an ES256 and an RS256 key in one JWKS). The first byte picks the mode: even,
//! the rest is a whole token; odd, the rest is `header JSON 0xff claims JSON`, which the
//! target signs with the ES256 key (RS256 when bit 1 is set) so that the claim rules are
//! reached with valid signatures. No panic, bounded messages, and an accepted token always
//! names `system:serviceaccount:<ns>:<sa>` of the configured issuer.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use meshtls::TrustDomain;
use meshtls::ca_protocol::jwt::{JwtVerifier, verify_claims, verify_token};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

struct Keys {
    verifier: JwtVerifier,
    es: EcdsaKeyPair,
    rs: RsaKeyPair,
    td: TrustDomain,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let verifier = JwtVerifier::new(
            include_str!("../../jwt/jwks.json"),
            ISSUER,
            &["istio-ca", "fuzz"],
        );
        let es = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            include_bytes!("../../jwt/es256-key.pk8"),
        );
        let rs = RsaKeyPair::from_pkcs8(include_bytes!("../../jwt/rs256-key.pk8"));
        match (verifier, es, rs, TrustDomain::new("cluster.local")) {
            (Ok(verifier), Ok(es), Ok(rs), Ok(td)) => {
                assert_eq!(verifier.key_count(), 2, "fuzz setup: fuzz/jwt/jwks.json");
                Keys {
                    verifier,
                    es,
                    rs,
                    td,
                }
            }
            _ => panic!("fuzz setup: cannot load fuzz/jwt/"),
        }
    })
}

/// A fixed "now" (2026-06-01), so that runs are reproducible; the seeds expire in 2096.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_272_000)
}

fn sign(k: &Keys, rsa: bool, header: &[u8], claims: &[u8]) -> Option<String> {
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let sig = if rsa {
        let mut sig = vec![0u8; k.rs.public_modulus_len()];
        k.rs.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .ok()?;
        sig
    } else {
        k.es.sign(&SystemRandom::new(), input.as_bytes())
            .ok()?
            .as_ref()
            .to_vec()
    };
    Some(format!("{input}.{}", B64.encode(sig)))
}

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    } else {
        let split = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
        let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
        match sign(k, mode & 2 != 0, header, claims) {
            Some(t) => t,
            None => return,
        }
    };
    match verify_claims(&k.verifier, &token, now()) {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.len() <= 4096, "unbounded message: {} bytes", msg.len());
        }
    }
    match verify_token(&k.verifier, &token, &k.td, now()) {
        Ok(id) => {
            let id = id.spiffe_id();
            assert!(
                id.as_str().starts_with("spiffe://cluster.local/ns/"),
                "{id}"
            );
            // Whatever else the token said, a verified one is one verify_claims accepts too.
            assert!(verify_claims(&k.verifier, &token, now()).is_ok());
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.len() <= 4096, "unbounded message: {} bytes", msg.len());
        }
    }
});
