//! Shared pieces of the CA protocol tests: a CA, an ES256 token issuer with its JWKS, a server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use meshtls::TrustDomain;
use meshtls::ca::{CaParams, KeyKind, MeshCa};
use meshtls::ca_protocol::{
    ClientConfig, IstioCaServer, JwtVerifier, RunningServer, ServerConfig, TokenSource,
};

pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

pub struct Issuer {
    pair: EcdsaKeyPair,
}

impl Issuer {
    pub fn new() -> Issuer {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        Issuer {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap(),
        }
    }

    pub fn jwks(&self) -> String {
        let point = self.pair.public_key().as_ref();
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        }]})
        .to_string()
    }

    pub fn sign(&self, claims: serde_json::Value) -> String {
        let header = B64.encode(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
        let payload = B64.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    /// A valid projected token for ns/sa.
    pub fn token(&self, ns: &str, sa: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.sign(serde_json::json!({
            "iss": ISSUER, "sub": format!("system:serviceaccount:{ns}:{sa}"), "aud": ["istio-ca"],
            "iat": now, "nbf": now, "exp": now + 3600,
        }))
    }
}

pub fn ca() -> Arc<MeshCa> {
    let mut p = CaParams::new(TrustDomain::new("cluster.local").unwrap());
    p.key = KeyKind::EcP256;
    Arc::new(MeshCa::create(&p).unwrap())
}

pub fn server_config(issuer: &Issuer) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.jwt = Some(JwtVerifier::new(&issuer.jwks(), ISSUER, &["istio-ca"]).unwrap());
    config
}

pub fn start(ca: &Arc<MeshCa>, config: ServerConfig) -> RunningServer {
    IstioCaServer::new(ca.clone(), config)
        .unwrap()
        .start("127.0.0.1:0".parse().unwrap())
        .unwrap()
}

pub fn client_config(ca: &MeshCa, server: &RunningServer, token: Option<String>) -> ClientConfig {
    let mut c = ClientConfig::new(ca.root_cert_pem());
    c.address = format!("localhost:{}", server.local_addr().port());
    c.token = match token {
        Some(t) => TokenSource::Fixed(t.into()),
        None => TokenSource::None,
    };
    c
}
