//! JWT signing keys, public keys, JWT bundles and their JWKS forms.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::JwtAlgorithm;
use crate::ca::KeyKind;
use crate::error::{Error, JwtError, quote};
use crate::identity::{SpiffeId, TrustDomain};
use crate::svid::own::unix_seconds;
use crate::x509::key::{SigningKey, pkcs8_private_key};
use crate::x509::{fs, pem};

/// The two shapes of a JWKS that carries JWT-SVID keys.
///
/// A SPIFFE bundle (federation, `SPIFFE_Trust_Domain_and_Bundle.md` §4) marks every key with
/// `use: "jwt-svid"` and ignores elements without it; the Workload API serves plain JWKS
/// without `use` (SPIRE's `StandardJWKS`), and clients must not filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwksShape {
    /// SPIFFE bundle JSON: `use: "jwt-svid"` written; on reading, only keys with that `use`
    /// are taken (X.509 keys and unknown uses are skipped).
    SpiffeBundle,
    /// The Workload API's JWKS: no `use` written; on reading, keys without `use` or with
    /// `use: "jwt-svid"` are taken, other uses skipped.
    WorkloadApi,
}

#[derive(Clone, PartialEq, Eq)]
enum PublicParams {
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// One public key of a JWT bundle: its `kid`, its parameters and a verifier-ready key.
#[derive(Clone)]
pub struct JwtKey {
    kid: String,
    alg: Option<String>,
    params: PublicParams,
    decoding: DecodingKey,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("kty", &self.kty())
            .finish()
    }
}

impl PartialEq for JwtKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.alg == other.alg && self.params == other.params
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key_err(what: impl Into<String>, reason: impl Into<String>) -> JwtError {
    JwtError::Key {
        what: what.into(),
        reason: reason.into(),
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

impl JwtKey {
    fn new(kid: String, alg: Option<String>, params: PublicParams) -> Result<JwtKey, JwtError> {
        let decoding = match &params {
            PublicParams::Ec { x, y, .. } => DecodingKey::from_ec_components(&b64(x), &b64(y))
                .map_err(|e| key_err(format!("kid {:?}", quote(&kid)), e.to_string()))?,
            PublicParams::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
        };
        Ok(JwtKey {
            kid,
            alg,
            params,
            decoding,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK key type: `EC` or `RSA`.
    pub fn kty(&self) -> &'static str {
        match self.params {
            PublicParams::Ec { .. } => "EC",
            PublicParams::Rsa { .. } => "RSA",
        }
    }

    /// Whether a token signed with `alg` may be verified with this key: the key type must
    /// fit (EC keys only for their own curve's ES algorithm, RSA keys for RS and PS), and a
    /// JWK's own `alg`, when given, must be `alg`.
    pub fn admits(&self, alg: JwtAlgorithm) -> bool {
        if let Some(own) = &self.alg {
            if own != alg.name() {
                return false;
            }
        }
        match (&self.params, alg) {
            (PublicParams::Ec { crv, .. }, JwtAlgorithm::ES256) => *crv == "P-256",
            (PublicParams::Ec { crv, .. }, JwtAlgorithm::ES384) => *crv == "P-384",
            (PublicParams::Rsa { .. }, a) => a.is_rsa(),
            _ => false,
        }
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): what meshtls uses as `kid` for its keys.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.params)
    }

    /// The key as a JWK object in `shape`.
    pub fn to_jwk(&self, shape: JwksShape) -> Value {
        let mut jwk = Map::new();
        match &self.params {
            PublicParams::Ec { crv, x, y } => {
                jwk.insert("kty".into(), json!("EC"));
                jwk.insert("crv".into(), json!(crv));
                jwk.insert("x".into(), json!(b64(x)));
                jwk.insert("y".into(), json!(b64(y)));
            }
            PublicParams::Rsa { n, e } => {
                jwk.insert("kty".into(), json!("RSA"));
                jwk.insert("n".into(), json!(b64(n)));
                jwk.insert("e".into(), json!(b64(e)));
            }
        }
        jwk.insert("kid".into(), json!(self.kid));
        if let Some(alg) = &self.alg {
            jwk.insert("alg".into(), json!(alg));
        }
        if shape == JwksShape::SpiffeBundle {
            jwk.insert("use".into(), json!("jwt-svid"));
        }
        Value::Object(jwk)
    }

    /// Reads one JWK (EC P-256/P-384 or RSA of at least 2048 bits; `kid` required).
    pub fn from_jwk(jwk: &Value) -> Result<JwtKey, JwtError> {
        let obj = jwk
            .as_object()
            .ok_or_else(|| key_err("jwk", "not a json object"))?;
        let kid = match obj.get("kid") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => return Err(key_err("jwk", "kid is missing or not a non-empty string")),
        };
        let what = format!("kid {:?}", quote(&kid));
        let field = |name: &str| -> Result<Vec<u8>, JwtError> {
            let text = obj
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| key_err(&what, format!("{name} is missing or not a string")))?;
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|e| key_err(&what, format!("{name} is not base64url ({e})")))
        };
        let alg = match obj.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(a.clone()),
            Some(_) => return Err(key_err(&what, "alg is not a string")),
        };
        let params = match obj.get("kty").and_then(Value::as_str) {
            Some("EC") => {
                let (crv, len) = match obj.get("crv").and_then(Value::as_str) {
                    Some("P-256") => ("P-256", 32),
                    Some("P-384") => ("P-384", 48),
                    other => {
                        return Err(key_err(
                            &what,
                            format!("curve {other:?} is not supported (P-256, P-384)"),
                        ));
                    }
                };
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != len || y.len() != len {
                    return Err(key_err(
                        &what,
                        format!("{crv} coordinates must be {len} bytes"),
                    ));
                }
                PublicParams::Ec { crv, x, y }
            }
            Some("RSA") => {
                let n = strip_zeros(&field("n")?).to_vec();
                let e = strip_zeros(&field("e")?).to_vec();
                if n.len() * 8 < 2048 {
                    return Err(key_err(
                        &what,
                        format!("rsa modulus of {} bits is below 2048", n.len() * 8),
                    ));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err(key_err(&what, "rsa exponent out of range"));
                }
                PublicParams::Rsa { n, e }
            }
            other => {
                return Err(key_err(
                    &what,
                    format!("key type {other:?} is not supported (EC, RSA)"),
                ));
            }
        };
        JwtKey::new(kid, alg, params)
    }
}

fn thumbprint(params: &PublicParams) -> String {
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
    let canonical = match params {
        PublicParams::Ec { crv, x, y } => format!(
            r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(x),
            b64(y)
        ),
        PublicParams::Rsa { n, e } => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
        }
    };
    b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

/// A trust domain's JWT signing key: EC P-256 (ES256), EC P-384 (ES384) or RSA (RS256),
/// with its `kid` (the RFC 7638 thumbprint unless given).
///
/// It mints JWT-SVIDs for SPIFFE IDs of its trust domain and publishes its public key as a
/// [`JwtBundle`].
pub struct JwtSigner {
    trust_domain: TrustDomain,
    alg: JwtAlgorithm,
    public: JwtKey,
    encoding: JwsKey,
    pkcs8: Zeroizing<Vec<u8>>,
    issuer: Option<String>,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("trust_domain", &self.trust_domain.as_str())
            .field("alg", &self.alg)
            .field("kid", &self.public.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// The signing half of a JWS, parsed once.
///
/// Minting signs the JWS input with this aws-lc-rs key (the crate's one backend, as
/// `jsonwebtoken`'s `aws_lc_rs` provider does) instead of `jsonwebtoken::encode`, which
/// re-parses the PKCS#8 key on every call: measured with `meshtls-bench --only jwt`, that
/// costs 0.59x the ES256 signing limit against about 0.9x for a parsed key. Every verifier
/// (jsonwebtoken here, PyJWT, py-spiffe, go-spiffe in the tests) checks what it writes.
enum JwsKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl JwsKey {
    fn ec(kind: KeyKind, pkcs8: &[u8]) -> Result<JwsKey, JwtError> {
        let alg = if kind == KeyKind::EcP384 {
            &ECDSA_P384_SHA384_FIXED_SIGNING
        } else {
            &ECDSA_P256_SHA256_FIXED_SIGNING
        };
        EcdsaKeyPair::from_pkcs8(alg, pkcs8)
            .map(JwsKey::Ec)
            .map_err(|e| key_err("jwt signing key", format!("ec key rejected ({e})")))
    }

    fn rsa(pkcs1: &[u8]) -> Result<JwsKey, JwtError> {
        RsaKeyPair::from_der(pkcs1)
            .map(JwsKey::Rsa)
            .map_err(|e| key_err("jwt signing key", format!("rsa key rejected ({e})")))
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match self {
            JwsKey::Ec(pair) => pair
                .sign(&rng, input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| format!("ecdsa signing failed ({e})")),
            JwsKey::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input, &mut out)
                    .map_err(|e| format!("rsa signing failed ({e})"))?;
                Ok(out)
            }
        }
    }
}

/// The file name of a CA's JWT signing key in its directory.
pub const JWT_KEY_FILE: &str = "jwt-key.pem";

/// The longest TTL [`JwtSigner::mint`] accepts (SPIRE's default JWT-SVID TTL is 5 minutes).
pub const MAX_JWT_TTL: Duration = Duration::from_secs(24 * 3600);

impl JwtSigner {
    /// Generates a key of `kind` (`ec-p256`, `ec-p384`, `rsa-2048`, ...) for `trust_domain`.
    pub fn generate(trust_domain: TrustDomain, kind: KeyKind) -> Result<JwtSigner, Error> {
        let key = SigningKey::generate(kind)?;
        JwtSigner::from_signing_key(trust_domain, key, None)
    }

    /// Reads a private key from PEM (PKCS#8, PKCS#1 or SEC1), with an optional `kid` (the
    /// key's thumbprint when `None`).
    pub fn from_pem(
        trust_domain: TrustDomain,
        pem_text: &str,
        kid: Option<&str>,
    ) -> Result<JwtSigner, Error> {
        let der = pem::private_key_from_pem(pem_text, "jwt signing key")?;
        let key = SigningKey::from_key_der(&der, "jwt signing key")?;
        JwtSigner::from_signing_key(trust_domain, key, kid)
    }

    fn from_signing_key(
        trust_domain: TrustDomain,
        key: SigningKey,
        kid: Option<&str>,
    ) -> Result<JwtSigner, Error> {
        let (alg, params, encoding) = match &key {
            SigningKey::Ecdsa { pair, kind, pkcs8 } => {
                let point = pair.public_key().as_ref();
                let (alg, crv) = match kind {
                    KeyKind::EcP384 => (JwtAlgorithm::ES384, "P-384"),
                    _ => (JwtAlgorithm::ES256, "P-256"),
                };
                let len = (point.len().saturating_sub(1)) / 2;
                let params = PublicParams::Ec {
                    crv,
                    x: point.get(1..1 + len).unwrap_or_default().to_vec(),
                    y: point.get(1 + len..).unwrap_or_default().to_vec(),
                };
                (alg, params, JwsKey::ec(*kind, pkcs8)?)
            }
            SigningKey::Rsa { pair, pkcs8 } => {
                let public = pair.public_key();
                let params = PublicParams::Rsa {
                    n: public.modulus().big_endian_without_leading_zero().to_vec(),
                    e: public.exponent().big_endian_without_leading_zero().to_vec(),
                };
                let pkcs1 = pkcs8_private_key(pkcs8)
                    .map_err(|e| key_err("jwt signing key", format!("malformed pkcs#8 ({e})")))?;
                (JwtAlgorithm::RS256, params, JwsKey::rsa(pkcs1)?)
            }
        };
        let kid = match kid {
            Some("") => {
                return Err(key_err("jwt signing key", "kid must not be empty").into());
            }
            Some(k) => k.to_owned(),
            None => thumbprint(&params),
        };
        let public = JwtKey::new(kid, None, params)?;
        Ok(JwtSigner {
            trust_domain,
            alg,
            public,
            encoding,
            pkcs8: Zeroizing::new(key.pkcs8().to_vec()),
            issuer: None,
        })
    }

    /// Writes the private key to `<dir>/`[`JWT_KEY_FILE`] (PKCS#8 PEM, mode 0600, atomically),
    /// beside a CA's `ca-key.pem`.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        fs::ensure_dir(dir)?;
        fs::write_atomic(
            &dir.join(JWT_KEY_FILE),
            self.private_key_pem().as_bytes(),
            fs::KEY_MODE,
        )
    }

    /// Reads `<dir>/`[`JWT_KEY_FILE`] as the JWT key of `trust_domain`.
    pub fn load(dir: &Path, trust_domain: TrustDomain) -> Result<JwtSigner, Error> {
        let text = fs::read_text(&dir.join(JWT_KEY_FILE))?;
        JwtSigner::from_pem(trust_domain, &text, None)
    }

    /// Sets the `iss` claim written into minted tokens (none by default).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The trust domain it signs for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The signing algorithm (ES256, ES384 or RS256).
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.alg
    }

    /// The key id written into every token's header.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public key.
    pub fn public_key(&self) -> &JwtKey {
        &self.public
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::pem("PRIVATE KEY", &self.pkcs8))
    }

    /// A JWT bundle of this trust domain holding only this key.
    pub fn bundle(&self) -> JwtBundle {
        let mut bundle = JwtBundle::new(self.trust_domain.clone());
        bundle.keys.push(self.public.clone());
        bundle
    }

    /// Mints a JWT-SVID for `spiffe_id` (of this signer's trust domain) valid for `ttl` from now.
    pub fn mint(
        &self,
        spiffe_id: &SpiffeId,
        audiences: &[&str],
        ttl: Duration,
    ) -> Result<String, JwtError> {
        self.mint_at(spiffe_id, audiences, ttl, SystemTime::now())
    }

    /// [`JwtSigner::mint`] at `now`: header `{alg, kid, typ: "JWT"}` (SPIRE's), claims `sub`,
    /// `aud` (a string for one audience, else an array), `exp`, `iat`, and `iss` when set.
    pub fn mint_at(
        &self,
        spiffe_id: &SpiffeId,
        audiences: &[&str],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, JwtError> {
        let mint_err = |reason: String| JwtError::Mint { reason };
        if spiffe_id.trust_domain_name() != self.trust_domain.as_str() {
            return Err(mint_err(format!(
                "{} is not in trust domain {}",
                spiffe_id.as_str(),
                self.trust_domain.as_str()
            )));
        }
        if audiences.is_empty() {
            return Err(mint_err("at least one audience is required".to_owned()));
        }
        if let Some(bad) = audiences.iter().find(|a| a.is_empty()) {
            return Err(mint_err(format!("audience {bad:?} is empty")));
        }
        if ttl.is_zero() || ttl > MAX_JWT_TTL {
            return Err(mint_err(format!(
                "ttl of {}s is outside 1s..={}s",
                ttl.as_secs(),
                MAX_JWT_TTL.as_secs()
            )));
        }
        let iat = unix_seconds(now);
        let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(spiffe_id.as_str()));
        claims.insert(
            "aud".into(),
            if audiences.len() == 1 {
                json!(audiences[0])
            } else {
                json!(audiences)
            },
        );
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(iat));
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), json!(iss));
        }
        let header = json!({"alg": self.alg.name(), "kid": self.public.kid, "typ": "JWT"});
        let mut token = b64(header.to_string().as_bytes());
        token.push('.');
        token.push_str(&b64(Value::Object(claims).to_string().as_bytes()));
        let signature = self.encoding.sign(token.as_bytes()).map_err(mint_err)?;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }
}

/// The JWT keys of one trust domain (keys by `kid`, in the order read).
#[derive(Debug, Clone, PartialEq)]
pub struct JwtBundle {
    trust_domain: TrustDomain,
    keys: Vec<JwtKey>,
}

impl JwtBundle {
    /// An empty bundle (every token of the trust domain is rejected).
    pub fn new(trust_domain: TrustDomain) -> Self {
        JwtBundle {
            trust_domain,
            keys: Vec::new(),
        }
    }

    /// Reads a JWKS in `shape` (see [`JwksShape`] for which elements are taken). Elements of
    /// unknown `kty` are skipped as the SPIFFE bundle format says; a taken element without
    /// `kid` or with bad parameters is an error; duplicate `kid`s are refused.
    pub fn from_jwks(
        trust_domain: TrustDomain,
        json: &str,
        shape: JwksShape,
    ) -> Result<JwtBundle, JwtError> {
        let what = format!("jwks of {}", trust_domain.as_str());
        let doc: Value =
            serde_json::from_str(json).map_err(|e| key_err(&what, format!("not json ({e})")))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| key_err(&what, "no \"keys\" array"))?;
        let mut bundle = JwtBundle::new(trust_domain);
        for jwk in keys {
            let taken = match (shape, jwk.get("use")) {
                (_, Some(Value::String(u))) if u == "jwt-svid" => true,
                (JwksShape::WorkloadApi, None) => true,
                _ => false,
            };
            let kty = jwk.get("kty").and_then(Value::as_str);
            if !taken || !matches!(kty, Some("EC" | "RSA")) {
                continue;
            }
            bundle.insert(JwtKey::from_jwk(jwk)?)?;
        }
        Ok(bundle)
    }

    /// The bundle as a JWKS in `shape`.
    pub fn to_jwks(&self, shape: JwksShape) -> String {
        let keys: Vec<Value> = self.keys.iter().map(|k| k.to_jwk(shape)).collect();
        json!({ "keys": keys }).to_string()
    }

    /// Adds a key; a key with the same `kid` is refused.
    pub fn insert(&mut self, key: JwtKey) -> Result<(), JwtError> {
        if self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(key_err(
                format!("jwks of {}", self.trust_domain.as_str()),
                format!("duplicate kid {:?}", quote(&key.kid)),
            ));
        }
        self.keys.push(key);
        Ok(())
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The keys.
    pub fn keys(&self) -> &[JwtKey] {
        &self.keys
    }

    /// The key with this `kid`.
    pub fn key(&self, kid: &str) -> Option<&JwtKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// JWT bundles keyed by trust domain; a token is checked only against its subject's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JwtBundleSet {
    bundles: BTreeMap<String, JwtBundle>,
}

impl JwtBundleSet {
    /// An empty set.
    pub fn new() -> Self {
        JwtBundleSet::default()
    }

    /// Adds or replaces the bundle of its trust domain, returning the old one.
    pub fn insert(&mut self, bundle: JwtBundle) -> Option<JwtBundle> {
        self.bundles
            .insert(bundle.trust_domain.as_str().to_owned(), bundle)
    }

    /// Builder form of [`JwtBundleSet::insert`].
    pub fn with(mut self, bundle: JwtBundle) -> Self {
        self.insert(bundle);
        self
    }

    /// The bundle of a trust domain.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&JwtBundle> {
        self.bundles.get(trust_domain.as_str())
    }

    pub(crate) fn get_name(&self, trust_domain: &str) -> Option<&JwtBundle> {
        self.bundles.get(trust_domain)
    }

    /// Every bundle, by trust domain name.
    pub fn bundles(&self) -> impl Iterator<Item = &JwtBundle> {
        self.bundles.values()
    }

    /// The Workload API's `JWTBundlesResponse.bundles` map: `spiffe://<td>` → plain JWKS.
    pub fn to_workload_api_map(&self) -> BTreeMap<String, String> {
        self.bundles
            .values()
            .map(|b| {
                (
                    b.trust_domain.id().as_str().to_owned(),
                    b.to_jwks(JwksShape::WorkloadApi),
                )
            })
            .collect()
    }
}

impl JwtAlgorithm {
    pub(crate) fn backend(self) -> Algorithm {
        match self {
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::RS384 => Algorithm::RS384,
            JwtAlgorithm::RS512 => Algorithm::RS512,
            JwtAlgorithm::PS256 => Algorithm::PS256,
            JwtAlgorithm::PS384 => Algorithm::PS384,
            JwtAlgorithm::PS512 => Algorithm::PS512,
            JwtAlgorithm::ES256 => Algorithm::ES256,
            JwtAlgorithm::ES384 => Algorithm::ES384,
        }
    }
}
