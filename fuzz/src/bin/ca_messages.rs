//! Istio's CA protocol messages: protobuf `decode_request` / `decode_response`, then the
//! server's whole `create_certificate` on a decoded request (the fuzzing CA, a valid ES256
//! token of fuzz/jwt/ as the caller's credentials, one trusted node agent), and the client's
//! `check_response` on a decoded response. The first byte picks the mode: 0 request, 1
//! response, 2 request to a server in istio-csr's strict CSR mode, 3 request from the node
//! agent (ImpersonatedIdentity honoured). No panic; refusals carry one of the opaque messages
//! and a bounded reason; a signed chain names the caller (or the identity the node agent may
//! impersonate) and verifies against the CA.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use meshtls::ca::KeyKind;
use meshtls::ca_protocol::messages::{decode_request, decode_response};
use meshtls::ca_protocol::{
    CallContext, IstioCaServer, JwtVerifier, NodeAccount, ServerConfig, check_response,
};
use meshtls::{Csr, CsrParams, MeshCa, SpiffeId};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const CALLER: &str = "spiffe://cluster.local/ns/fuzz/sa/jwt";
const NODE: &str = "spiffe://cluster.local/ns/istio-system/sa/ztunnel";
const IMPERSONATED: &str = "spiffe://cluster.local/ns/other/sa/x";

struct Setup {
    lax: IstioCaServer,
    strict: IstioCaServer,
    bearer: String,
    node_bearer: String,
    caller: SpiffeId,
}

fn token(key: &EcdsaKeyPair, sub: &str) -> String {
    let claims =
        format!(r#"{{"iss":"{ISSUER}","sub":"{sub}","aud":["istio-ca"],"exp":4000000000}}"#);
    let input = format!(
        "{}.{}",
        B64.encode(br#"{"alg":"ES256","kid":"es"}"#),
        B64.encode(claims)
    );
    match key.sign(&SystemRandom::new(), input.as_bytes()) {
        Ok(sig) => format!("Bearer {input}.{}", B64.encode(sig.as_ref())),
        Err(_) => panic!("fuzz setup: cannot sign"),
    }
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let fixed = meshtls_fuzz::ca();
        let ca = MeshCa::from_pem(
            include_str!("../../ca/ca-cert.pem"),
            include_str!("../../ca/ca-key.pem"),
            include_str!("../../ca/cert-chain.pem"),
            include_str!("../../ca/root-cert.pem"),
            fixed.trust_domain().clone(),
        );
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            include_bytes!("../../jwt/es256-key.pk8"),
        );
        let verifier = JwtVerifier::new(include_str!("../../jwt/jwks.json"), ISSUER, &["istio-ca"]);
        let (Ok(ca), Ok(key), Ok(verifier), Ok(node), Ok(other), Ok(caller)) = (
            ca,
            key,
            verifier,
            SpiffeId::new(NODE),
            SpiffeId::new(IMPERSONATED),
            SpiffeId::new(CALLER),
        ) else {
            panic!("fuzz setup: cannot load fuzz/ca or fuzz/jwt");
        };
        let ca = Arc::new(ca);
        let server = |strict: bool| {
            let mut config = ServerConfig::default();
            config.jwt = Some(verifier.clone());
            config.strict_csr = strict;
            config.trusted_node_accounts =
                vec![NodeAccount::new(node.clone(), vec![other.clone()])];
            match IstioCaServer::new(ca.clone(), config) {
                Ok(s) => s,
                Err(e) => panic!("fuzz setup: {e}"),
            }
        };
        Setup {
            lax: server(false),
            strict: server(true),
            bearer: token(&key, "system:serviceaccount:fuzz:jwt"),
            node_bearer: token(&key, "system:serviceaccount:istio-system:ztunnel"),
            caller,
        }
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_272_000)
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 1 {
        let Ok(response) = decode_response(rest) else {
            return;
        };
        // A fresh key per input (check_response consumes the CSR; the answer's leaf never
        // holds this key, so only the chain's parsing and verification are reached).
        let Ok(csr) = Csr::new(&s.caller, &CsrParams::with_key(KeyKind::EcP256)) else {
            return;
        };
        let roots = meshtls_fuzz::ca().root_certs_der().to_vec();
        if let Err(e) = check_response(csr, &response, &roots, now()) {
            let msg = e.to_string();
            assert!(msg.len() <= 8192, "unbounded message: {} bytes", msg.len());
        }
        return;
    }
    let request = match decode_request(rest) {
        Ok(r) => r,
        Err(e) => {
            assert!(e.to_string().len() <= 4096);
            return;
        }
    };
    let (server, bearer) = match mode % 4 {
        2 => (&s.strict, &s.bearer),
        3 => (&s.lax, &s.node_bearer),
        _ => (&s.lax, &s.bearer),
    };
    let ctx = CallContext {
        authorization: Some(bearer),
        ..Default::default()
    };
    match server.create_certificate(&ctx, &request) {
        Ok(resp) => {
            assert!(resp.cert_chain.len() >= 2);
            assert!(resp.cert_chain.iter().all(|e| e.ends_with('\n')));
            let chain: Vec<_> = resp
                .cert_chain
                .iter()
                .flat_map(|e| meshtls::svid::parse_pem_chain(e).unwrap_or_default())
                .collect();
            let verified = meshtls::verify_svid(
                &chain,
                meshtls_fuzz::bundles(),
                rustls_pki_types::UnixTime::now(),
            );
            let Ok(verified) = verified else {
                panic!("a signed chain that does not verify: {:?}", verified.err());
            };
            let id = verified.spiffe_id().as_str();
            if mode % 4 == 3 {
                assert!(id == NODE || id == IMPERSONATED, "{id}");
            } else {
                assert_eq!(id, CALLER);
            }
        }
        Err(refusal) => {
            assert!(
                [
                    "request authenticate failure",
                    "request impersonation authentication failure",
                    "invalid certificate request",
                    "certificate signing failed"
                ]
                .contains(&refusal.message),
                "{}",
                refusal.message
            );
            assert!(
                refusal.reason.len() <= 8192,
                "unbounded reason: {} bytes",
                refusal.reason.len()
            );
        }
    }
});
