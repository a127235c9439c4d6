//! The demo's `--ca-protocol` mode (cargo feature `grpc`): the gateway gets its certificate
//! from a CA server over Istio's CA protocol, as it would from istiod, authenticated with a
//! service-account token, and keeps it fresh in the background.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use meshtls::ca::KeyKind;
use meshtls::ca_protocol::{
    ClientConfig, IstioCaClient, IstioCaServer, JwtVerifier, RefreshParams, RunningServer,
    ServerConfig, TokenSource,
};
use meshtls::tls::TlsMaterial;
use meshtls::{BundleSet, SpiffeId};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A stand-in for the Kubernetes API server's service-account token signer.
struct TokenIssuer(EcdsaKeyPair);

impl TokenIssuer {
    fn new() -> Res<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "cannot generate the token key")?;
        Ok(TokenIssuer(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|_| "cannot load the token key")?,
        ))
    }

    /// The JWKS the API server publishes at /openid/v1/jwks.
    fn jwks(&self) -> String {
        let p = self.0.public_key().as_ref();
        serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "demo", "alg": "ES256",
            "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])}]})
        .to_string()
    }

    /// A projected token (audience istio-ca) for namespace/service account.
    fn token(&self, ns: &str, sa: &str) -> Res<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let h = B64.encode(br#"{"alg":"ES256","kid":"demo","typ":"JWT"}"#);
        let p = B64.encode(
            serde_json::json!({"iss": ISSUER, "sub": format!("system:serviceaccount:{ns}:{sa}"),
                "aud": ["istio-ca"], "iat": now, "nbf": now, "exp": now + 43200})
            .to_string(),
        );
        let sig = self
            .0
            .sign(&SystemRandom::new(), format!("{h}.{p}").as_bytes())
            .map_err(|_| "cannot sign the token")?;
        Ok(format!("{h}.{p}.{}", B64.encode(sig.as_ref())))
    }
}

/// Starts a CA server for `ca` and fetches the gateway's SVID from it; returns the material
/// (kept fresh by a background task) and the server (stop it by dropping).
pub async fn gateway_material(
    ca: &super::ca::Ca,
    gateway_id: &SpiffeId,
    bundles: BundleSet,
) -> Res<(TlsMaterial, RunningServer)> {
    let tokens = TokenIssuer::new()?;
    let mut config = ServerConfig::default();
    config.jwt = Some(JwtVerifier::new(&tokens.jwks(), ISSUER, &["istio-ca"])?);
    let server = IstioCaServer::new(ca.shared(), config)?.start("127.0.0.1:0".parse()?)?;
    println!(
        "   CA server (Istio's CA protocol, as istiod on :15012) on {}",
        server.local_addr()
    );
    let istio = meshtls::IstioIdentity::from_spiffe_id(gateway_id)?;
    let mut client = ClientConfig::new(ca.shared().root_cert_pem());
    client.address = format!("localhost:{}", server.local_addr().port());
    client.token = TokenSource::Fixed(
        tokens
            .token(istio.namespace(), istio.service_account())?
            .into(),
    );
    let client = IstioCaClient::new(client)?;
    let svid = client
        .fetch_svid(gateway_id, Duration::from_secs(24 * 3600), KeyKind::EcP256)
        .await?;
    println!(
        "   the gateway sent a CSR with its service-account token and got {} (serial {}), renewing at half its lifetime",
        svid.spiffe_id(),
        svid.serial_hex()
    );
    let material = TlsMaterial::new(&svid, bundles)?;
    let fresh = material.clone();
    tokio::spawn(async move {
        if let Err(e) = client
            .keep_fresh(&fresh, svid, &RefreshParams::default())
            .await
        {
            eprintln!("gateway certificate renewal stopped: {e}");
        }
    });
    Ok((material, server))
}
