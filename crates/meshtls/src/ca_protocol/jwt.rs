//! Kubernetes service-account tokens verified offline, as istiod's JWT rule does
//! (`security/pkg/server/ca/authenticate/oidc.go`): the signature against the issuer's keys
//! (a JWKS as the API server publishes at `/openid/v1/jwks`), `iss`, `aud`, `exp`/`nbf` with a
//! small leeway, and `sub` = `system:serviceaccount:<ns>:<sa>`.
//!
//! Signatures are checked by the same JWS stack as JWT-SVIDs ([`crate::jwt`]: `jsonwebtoken`
//! on aws-lc-rs) against the same allow-list, [`JwtAlgorithm`]: RS256/384/512, PS256/384/512,
//! ES256/384. `none` and every HMAC algorithm are refused before any key is looked at, and a
//! key is only used with the algorithm its type admits (an RSA key never verifies an ES256
//! token, a key's own `alg` must match), so the classic "HS256 with the public key as secret"
//! confusion cannot happen. The claim rules here are istiod's, not the JWT-SVID ones (`sub` is
//! `system:serviceaccount:...`, `iss` is checked, `kid` is optional).
//!
//! ```
//! use meshtls::ca_protocol::jwt::{JwtVerifier, verify_token};
//! let v = JwtVerifier::new(r#"{"keys":[]}"#, "https://kubernetes.default.svc", &["istio-ca"])?;
//! let td = meshtls::TrustDomain::new("cluster.local")?;
//! let err = verify_token(&v, "a.b.c", &td, std::time::SystemTime::now()).unwrap_err();
//! assert!(err.to_string().starts_with("token rejected"));
//! # Ok::<(), meshtls::Error>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::error::{CaProtocolError, quote};
use crate::identity::{IstioIdentity, TrustDomain};
use crate::jwt::JwtAlgorithm;

/// The largest token accepted, in bytes (projected tokens are about 1 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The default clock leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The audience istiod accepts when none is configured (`TOKEN_AUDIENCES`' default): what the
/// front ends use when the caller names no audience.
pub const DEFAULT_AUDIENCE: &str = "istio-ca";

fn reject(reason: impl Into<String>) -> CaProtocolError {
    CaProtocolError::Token {
        reason: reason.into(),
    }
}

type Alg = JwtAlgorithm;

fn parse_alg(name: &str) -> Result<Alg, CaProtocolError> {
    JwtAlgorithm::ALL
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| {
            reject(format!(
                "algorithm {:?} is not allowed (RS256/384/512, PS256/384/512, ES256/384)",
                quote(name)
            ))
        })
}

/// A key's type (what algorithms it admits) and the verifier-ready key.
#[derive(Clone)]
enum PublicKey {
    Rsa(jsonwebtoken::DecodingKey),
    Ec(Alg, jsonwebtoken::DecodingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKey::Rsa(_) => f.write_str("Rsa"),
            PublicKey::Ec(alg, _) => write!(f, "Ec({alg})"),
        }
    }
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: PublicKey,
}

/// The issuer's keys and the claims a token must carry.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: Vec<Jwk>,
    issuer: String,
    audiences: Vec<String>,
    leeway: Duration,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, CaProtocolError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| reject(format!("{field} is not base64url ({e})")))
}

fn jwks_error(rule: impl Into<String>) -> CaProtocolError {
    CaProtocolError::Config {
        what: "jwks",
        value: String::new(),
        rule: rule.into(),
    }
}

impl JwtVerifier {
    /// A verifier for tokens from `issuer` with one of `audiences` (istiod's default:
    /// `istio-ca`), checked against the keys of a JWKS document (`{"keys": [...]}`).
    ///
    /// Keys of other types (`oct`, `OKP`) or uses (`use: enc`) are skipped; RSA keys below
    /// 2048 bits will never verify.
    pub fn new<S: AsRef<str>>(
        jwks: &str,
        issuer: &str,
        audiences: &[S],
    ) -> Result<JwtVerifier, CaProtocolError> {
        if issuer.is_empty() {
            return Err(CaProtocolError::Config {
                what: "issuer",
                value: String::new(),
                rule: "must not be empty".to_owned(),
            });
        }
        let audiences: Vec<String> = audiences.iter().map(|a| a.as_ref().to_owned()).collect();
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(CaProtocolError::Config {
                what: "audiences",
                value: audiences.join(","),
                rule: "at least one non-empty audience is required".to_owned(),
            });
        }
        let doc: Value =
            serde_json::from_str(jwks).map_err(|e| jwks_error(format!("not json ({e})")))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| jwks_error("no \"keys\" array"))?;
        let mut keys = Vec::new();
        for (i, k) in list.iter().enumerate() {
            let s = |name: &str| k.get(name).and_then(Value::as_str);
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let bad = |r: String| jwks_error(format!("key {i}: {r}"));
            let key = match s("kty") {
                Some("RSA") => {
                    let n = b64("n", s("n").ok_or_else(|| bad("rsa key without n".into()))?)
                        .map_err(|e| bad(e.to_string()))?;
                    let e = b64("e", s("e").ok_or_else(|| bad("rsa key without e".into()))?)
                        .map_err(|e| bad(e.to_string()))?;
                    PublicKey::Rsa(jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e))
                }
                Some("EC") => {
                    let (curve, len) = match s("crv") {
                        Some("P-256") => (Alg::ES256, 32),
                        Some("P-384") => (Alg::ES384, 48),
                        other => {
                            return Err(bad(format!("unsupported curve {other:?}")));
                        }
                    };
                    let x = b64("x", s("x").ok_or_else(|| bad("ec key without x".into()))?)
                        .map_err(|e| bad(e.to_string()))?;
                    let y = b64("y", s("y").ok_or_else(|| bad("ec key without y".into()))?)
                        .map_err(|e| bad(e.to_string()))?;
                    if x.len() != len || y.len() != len {
                        return Err(bad(format!("ec coordinates must be {len} bytes")));
                    }
                    let key = jsonwebtoken::DecodingKey::from_ec_components(
                        &URL_SAFE_NO_PAD.encode(&x),
                        &URL_SAFE_NO_PAD.encode(&y),
                    )
                    .map_err(|e| bad(format!("ec key rejected ({e})")))?;
                    PublicKey::Ec(curve, key)
                }
                _ => continue,
            };
            keys.push(Jwk {
                kid: s("kid").map(str::to_owned),
                alg: s("alg").map(str::to_owned),
                key,
            });
        }
        Ok(JwtVerifier {
            keys,
            issuer: issuer.to_owned(),
            audiences,
            leeway: DEFAULT_LEEWAY,
        })
    }

    /// Sets the clock leeway for `exp` and `nbf` (default one minute).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The number of usable keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// The signature check, by `jsonwebtoken` (`sig` is the token's third part, base64url).
fn verify_with(key: &PublicKey, alg: Alg, message: &[u8], sig: &str) -> bool {
    let key = match key {
        PublicKey::Rsa(k) if alg.is_rsa() => k,
        PublicKey::Ec(curve, k) if *curve == alg => k,
        _ => return false,
    };
    jsonwebtoken::crypto::verify(sig, message, key, alg.backend()).unwrap_or(false)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn numeric(claims: &Value, name: &str) -> Result<Option<i64>, CaProtocolError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(f as i64))
            .ok_or_else(|| reject(format!("claim {name} is not a number"))),
    }
}

/// Verifies a service-account token and returns the Istio identity it names in
/// `trust_domain`: the signature, then `iss`, `aud`, `exp` (required), `nbf`, `sub`.
pub fn verify_token(
    verifier: &JwtVerifier,
    token: &str,
    trust_domain: &TrustDomain,
    now: SystemTime,
) -> Result<IstioIdentity, crate::Error> {
    verify_token_claims(verifier, token, trust_domain, now).map(|(id, _)| id)
}

/// [`verify_token`], also returning the verified claims (the server's token cache keeps
/// `exp`/`nbf` to re-check them on every hit).
pub(crate) fn verify_token_claims(
    verifier: &JwtVerifier,
    token: &str,
    trust_domain: &TrustDomain,
    now: SystemTime,
) -> Result<(IstioIdentity, Claims), crate::Error> {
    let claims = verify_claims(verifier, token, now)?;
    let sub = claims.sub.as_str();
    let rest = sub.strip_prefix("system:serviceaccount:").ok_or_else(|| {
        reject(format!(
            "sub {:?} is not system:serviceaccount:<ns>:<sa>",
            quote(sub)
        ))
    })?;
    let (ns, sa) = rest
        .split_once(':')
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'))
        .ok_or_else(|| {
            reject(format!(
                "sub {:?} is not system:serviceaccount:<ns>:<sa>",
                quote(sub)
            ))
        })?;
    let id = IstioIdentity::new(trust_domain.clone(), ns, sa)?;
    Ok((id, claims))
}

/// The time rule of a token: `exp` (with the verifier's leeway) has not passed and `nbf`
/// (with the leeway), if any, has come. One place for the rule: [`verify_claims`] and the
/// server's token cache both call it.
pub(crate) fn check_times(
    verifier: &JwtVerifier,
    exp: i64,
    nbf: Option<i64>,
    now: SystemTime,
) -> Result<(), CaProtocolError> {
    let now = unix(now);
    let leeway = i64::try_from(verifier.leeway.as_secs()).unwrap_or(i64::MAX);
    if now > exp.saturating_add(leeway) {
        return Err(reject(format!("token expired at {exp} (unix time)")));
    }
    if let Some(nbf) = nbf {
        if now < nbf.saturating_sub(leeway) {
            return Err(reject(format!("token not valid before {nbf} (unix time)")));
        }
    }
    Ok(())
}

/// The claims meshtls reads from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`.
    pub sub: String,
    /// `exp`, seconds since the Unix epoch.
    pub exp: i64,
    /// `nbf`, seconds since the Unix epoch, if the token has one.
    pub nbf: Option<i64>,
    /// The pod a bound token names (`kubernetes.io.pod.name`/`uid`), if any: the token of a
    /// pod's projected volume carries it, a token made with `kubectl create token` does not.
    pub pod: Option<PodClaim>,
}

/// The pod a bound service-account token was issued for (its `kubernetes.io.pod` claim);
/// the pod is in the namespace of the token's service account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodClaim {
    /// `kubernetes.io.pod.name`.
    pub name: String,
    /// `kubernetes.io.pod.uid`.
    pub uid: String,
}

/// The `kubernetes.io.pod` claim: both `name` and `uid` as non-empty strings, else none.
fn pod_claim(claims: &Value) -> Option<PodClaim> {
    let pod = claims.get("kubernetes.io")?.get("pod")?;
    let field = |n: &str| {
        pod.get(n)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(PodClaim {
        name: field("name")?,
        uid: field("uid")?,
    })
}

/// Verifies signature, `iss`, `aud`, `exp`, `nbf` and the presence of `sub`; returns the
/// claims (a plain function over untrusted input: a fuzz target calls it directly).
pub fn verify_claims(
    verifier: &JwtVerifier,
    token: &str,
    now: SystemTime,
) -> Result<Claims, CaProtocolError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(reject(format!(
            "token of {} bytes is longer than {MAX_TOKEN_LEN}",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject("not a compact jws (three dot-separated parts)"));
    };
    let header: Value = serde_json::from_slice(&b64("header", h)?)
        .map_err(|e| reject(format!("header is not json ({e})")))?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("header has no alg"))?;
    let alg = parse_alg(alg_name)?;
    if header.get("crit").is_some() {
        return Err(reject("header has crit parameters, none are understood"));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    b64("signature", s)?;
    let message = &token.as_bytes()[..h.len() + 1 + p.len()];
    let candidates = verifier.keys.iter().filter(|k| {
        kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
            && k.alg.as_deref().is_none_or(|a| a == alg.name())
    });
    let mut verified = false;
    for k in candidates {
        if verify_with(&k.key, alg, message, s) {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(reject(format!(
            "{} signature does not verify with any key of the issuer{}",
            alg.name(),
            kid.map(|k| format!(" (kid {:?})", quote(k)))
                .unwrap_or_default()
        )));
    }
    let claims: Value = serde_json::from_slice(&b64("payload", p)?)
        .map_err(|e| reject(format!("payload is not json ({e})")))?;
    let iss = claims.get("iss").and_then(Value::as_str);
    if iss != Some(verifier.issuer.as_str()) {
        return Err(reject(format!(
            "iss {:?} is not the configured issuer {:?}",
            iss.map(quote),
            verifier.issuer
        )));
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds
        .iter()
        .any(|a| verifier.audiences.iter().any(|w| w == a))
    {
        // At most 8 audiences quoted, each at most QUOTE_CHARS characters.
        let shown: Vec<String> = auds.iter().take(8).map(|a| quote(a)).collect();
        let more = if auds.len() > 8 { " and more" } else { "" };
        return Err(reject(format!(
            "aud {shown:?}{more} contains none of {:?}",
            verifier.audiences
        )));
    }
    let exp = numeric(&claims, "exp")?.ok_or_else(|| reject("token has no exp"))?;
    let nbf = numeric(&claims, "nbf")?;
    check_times(verifier, exp, nbf, now)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("token has no sub"))?;
    Ok(Claims {
        sub: sub.to_owned(),
        exp,
        nbf,
        pod: pod_claim(&claims),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    const ISS: &str = "https://issuer.example";

    fn key() -> EcdsaKeyPair {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
    }

    fn jwks(k: &EcdsaKeyPair, extra: &str) -> String {
        let p = k.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k1","x":"{}","y":"{}"{extra}}}]}}"#,
            URL_SAFE_NO_PAD.encode(&p[1..33]),
            URL_SAFE_NO_PAD.encode(&p[33..65])
        )
    }

    fn token(k: &EcdsaKeyPair, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = k.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn claims(extra: &str) -> String {
        format!(
            r#"{{"iss":"{ISS}","sub":"system:serviceaccount:ns:sa","aud":"istio-ca","exp":4000000000{extra}}}"#
        )
    }

    #[test]
    fn a_good_token_names_its_service_account() {
        let k = key();
        let v = JwtVerifier::new(&jwks(&k, ""), ISS, &["istio-ca"]).unwrap();
        let t = token(&k, r#"{"alg":"ES256","kid":"k1"}"#, &claims(""));
        let td = TrustDomain::new("prod.example").unwrap();
        let id = verify_token(&v, &t, &td, SystemTime::now()).unwrap();
        assert_eq!(id.spiffe_id().as_str(), "spiffe://prod.example/ns/ns/sa/sa");
    }

    #[test]
    fn every_rule_refuses() {
        let k = key();
        let v = JwtVerifier::new(&jwks(&k, r#","alg":"ES256""#), ISS, &["istio-ca"]).unwrap();
        let now = SystemTime::now();
        let reason = |t: &str| verify_claims(&v, t, now).unwrap_err().to_string();
        let good_header = r#"{"alg":"ES256","kid":"k1"}"#;
        for (header, claims, why) in [
            (r#"{"alg":"none"}"#, claims(""), "\"none\" is not allowed"),
            (r#"{"alg":"HS256"}"#, claims(""), "\"HS256\" is not allowed"),
            (
                r#"{"alg":"RS256","kid":"k1"}"#,
                claims(""),
                "RS256 signature does not verify",
            ),
            (r#"{"alg":"ES256","kid":"k2"}"#, claims(""), "(kid \"k2\")"),
            (r#"{"alg":"ES256","crit":["x"]}"#, claims(""), "crit"),
            (
                good_header,
                claims(r#","nbf":4000000000"#),
                "not valid before",
            ),
            (
                good_header,
                r#"{"iss":"https://issuer.example","sub":"x","aud":"istio-ca","exp":1}"#.to_owned(),
                "expired",
            ),
            (
                good_header,
                r#"{"iss":"https://other","sub":"x","aud":"istio-ca","exp":4000000000}"#.to_owned(),
                "is not the configured issuer",
            ),
            (
                good_header,
                r#"{"iss":"https://issuer.example","sub":"x","aud":["a","b"],"exp":4000000000}"#
                    .to_owned(),
                "contains none of",
            ),
            (
                good_header,
                r#"{"iss":"https://issuer.example","aud":"istio-ca","exp":4000000000}"#.to_owned(),
                "no sub",
            ),
            (
                good_header,
                r#"{"iss":"https://issuer.example","sub":"x","aud":"istio-ca"}"#.to_owned(),
                "no exp",
            ),
        ] {
            let t = token(&k, header, &claims);
            let r = reason(&t);
            assert!(r.contains(why), "{header} {claims}: {r}");
        }
        // A key's own alg binds it: an ES384 header never uses this ES256 key.
        let t = token(&k, r#"{"alg":"ES384","kid":"k1"}"#, &claims(""));
        assert!(reason(&t).contains("does not verify"));
        // Structure.
        for junk in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(verify_claims(&v, junk, now).is_err(), "{junk:.20}");
        }
        // A bad sub is refused by verify_token.
        let t = token(
            &k,
            good_header,
            &claims("").replace(
                "system:serviceaccount:ns:sa",
                "system:serviceaccount:ns:sa:extra",
            ),
        );
        let td = TrustDomain::new("cluster.local").unwrap();
        assert!(verify_token(&v, &t, &td, now).is_err());
    }

    #[test]
    fn messages_stay_bounded_whatever_the_token_says() {
        let k = key();
        let v = JwtVerifier::new(&jwks(&k, ""), ISS, &["istio-ca"]).unwrap();
        let td = TrustDomain::new("cluster.local").unwrap();
        let long = "x".repeat(5000);
        let many: Vec<String> = (0..50)
            .map(|i| format!("aud-{i}-{}", "y".repeat(200)))
            .collect();
        let many = serde_json::to_string(&many).unwrap();
        let good = r#"{"alg":"ES256","kid":"k1"}"#;
        for (header, claims) in [
            (format!(r#"{{"alg":"{long}"}}"#), claims("")),
            (format!(r#"{{"alg":"ES256","kid":"{long}"}}"#), claims("")),
            (
                good.to_owned(),
                format!(r#"{{"iss":"{long}","sub":"s","aud":"istio-ca","exp":4000000000}}"#),
            ),
            (
                good.to_owned(),
                format!(r#"{{"iss":"{ISS}","sub":"s","aud":{many},"exp":4000000000}}"#),
            ),
            (
                good.to_owned(),
                format!(r#"{{"iss":"{ISS}","sub":"{long}","aud":"istio-ca","exp":4000000000}}"#),
            ),
            (
                good.to_owned(),
                format!(
                    r#"{{"iss":"{ISS}","sub":"system:serviceaccount:{long}","aud":"istio-ca","exp":4000000000}}"#
                ),
            ),
        ] {
            let t = token(&k, &header, &claims);
            assert!(
                t.len() <= MAX_TOKEN_LEN,
                "the claims rule, not the length rule"
            );
            let err = verify_token(&v, &t, &td, SystemTime::now())
                .unwrap_err()
                .to_string();
            // Without quoting, each of these is over 4 KiB (the aud one over 10 KiB).
            assert!(err.len() < 4096, "{} bytes: {:.200}", err.len(), err);
        }
    }

    #[test]
    fn jwks_and_settings_are_checked() {
        assert!(JwtVerifier::new("nope", ISS, &["a"]).is_err());
        assert!(JwtVerifier::new(r#"{"nokeys":1}"#, ISS, &["a"]).is_err());
        assert!(JwtVerifier::new(r#"{"keys":[]}"#, "", &["a"]).is_err());
        assert!(JwtVerifier::new(r#"{"keys":[]}"#, ISS, &[] as &[&str]).is_err());
        let v = JwtVerifier::new(
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","use":"enc","n":"AQ","e":"AQAB"}]}"#,
            ISS,
            &["a"],
        )
        .unwrap();
        assert_eq!(
            v.key_count(),
            0,
            "symmetric and encryption keys are never used"
        );
        assert!(
            JwtVerifier::new(
                r#"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}"#,
                ISS,
                &["a"]
            )
            .is_err()
        );
    }
}
