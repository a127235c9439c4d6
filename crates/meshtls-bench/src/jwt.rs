//! JWT-SVIDs: `JwtSigner::mint` and `jwt::validate` against the ES256 sign / verify limit of
//! the same machine (aws-lc-rs signing / verifying a token-sized message with a parsed key),
//! goal ≥ 0.9×.

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use meshtls::ca::KeyKind;
use meshtls::jwt::{JwtBundleSet, JwtPolicy, JwtSigner, validate};
use meshtls::{SpiffeId, TrustDomain};

use crate::harness::Harness;

pub fn rows(h: &mut Harness) {
    let Ok(td) = TrustDomain::new("example.org") else {
        return;
    };
    let Ok(id) = SpiffeId::new("spiffe://example.org/ns/web/sa/frontend") else {
        return;
    };
    let Ok(signer) = JwtSigner::generate(td, KeyKind::EcP256) else {
        eprintln!("jwt: key generation failed");
        return;
    };
    let ttl = Duration::from_secs(300);
    let Ok(token) = signer.mint(&id, &["billing"], ttl) else {
        eprintln!("jwt: mint failed");
        return;
    };
    let bundles = JwtBundleSet::new().with(signer.bundle());
    let Ok(policy) = JwtPolicy::new(["billing"]) else {
        return;
    };
    if validate(&token, &bundles, &policy).is_err() {
        eprintln!("jwt: validate failed");
        return;
    }
    // The limit: the raw ES256 operation on the same signing input, key parsed once.
    let rng = SystemRandom::new();
    let Ok(pkcs8) = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng) else {
        return;
    };
    let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
    else {
        return;
    };
    let cut = token.rfind('.').unwrap_or(token.len());
    let input = token.as_bytes()[..cut].to_vec();
    let Ok(sig) = pair.sign(&rng, &input) else {
        return;
    };
    let public = UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        pair.public_key().as_ref().to_vec(),
    );

    let mint = h.measure("JwtSigner::mint (ES256, one audience)", || {
        signer.mint(&id, &["billing"], ttl).is_ok()
    });
    let sign = h.measure("aws-lc-rs ES256 sign (parsed key)", || {
        pair.sign(&rng, &input).is_ok()
    });
    h.pair(
        "jwt",
        mint,
        sign,
        Some(0.9),
        &format!("token {} bytes", token.len()),
    );
    let check = h.measure("jwt::validate (ES256, full policy)", || {
        validate(&token, &bundles, &policy).is_ok()
    });
    let verify = h.measure("aws-lc-rs ES256 verify (parsed key)", || {
        public.verify(&input, sig.as_ref()).is_ok()
    });
    h.pair("jwt", check, verify, Some(0.9), "");
}
