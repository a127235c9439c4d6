//! JWT-SVIDs: minted with a trust domain's JWT key, validated by one documented policy.
//!
//! Signatures are made and checked by the `jsonwebtoken` crate on aws-lc-rs; this module is
//! the policy around it. [`validate`] applies these rules, in this order, each with its own
//! [`JwtError`] variant:
//!
//! 1. size: at most [`JwtPolicy::max_len`] bytes ([`JwtError::TooLong`]); JWS compact
//!    serialization with a JSON object header and claims ([`JwtError::Malformed`]);
//! 2. `alg` on the allow-list, **before anything else is read** ([`JwtError::Algorithm`]):
//!    RS256/384/512, PS256/384/512, ES256/384 by default (the JWT-SVID standard's list minus
//!    ES512, which the backend does not implement); `none` and HMAC are never allowed;
//! 3. `typ`, when present, is `JWT` or `JOSE` ([`JwtError::Type`]);
//! 4. no `crit` header ([`JwtError::CriticalHeader`]), and no header parameter other than
//!    `alg`, `kid`, `typ` (the standard: "any header not described here ... MUST NOT be
//!    included"; [`JwtError::UnknownHeader`], relax with [`JwtPolicy::allow_extra_headers`]);
//! 5. `kid` present ([`JwtError::MissingKid`]; go-spiffe, SPIRE and rust-spiffe require it;
//!    [`JwtPolicy::require_kid`] turns it off, then every key of the right type is tried);
//! 6. `sub` a SPIFFE ID ([`JwtError::Subject`]); the bundle of **its** trust domain, never a
//!    pool of every bundle ([`JwtError::NoBundle`]); a key of that bundle with the `kid` and a
//!    type that fits `alg` ([`JwtError::UnknownKey`]); the signature ([`JwtError::Signature`]);
//! 7. `aud` present and non-empty ([`JwtError::NoAudience`]) and containing **any** of the
//!    expected audiences (default) or **all** of them ([`AudienceMatch::AllOf`])
//!    ([`JwtError::Audience`]); an empty expected audience is refused when the policy is
//!    built, so the check can never be disabled by accident;
//! 8. `exp` present ([`JwtError::MissingExpiry`]) and `now <= exp + leeway`
//!    ([`JwtError::Expired`]); `nbf`, when present, `<= now + leeway`
//!    ([`JwtError::NotYetValid`]). The leeway is explicit: [`DEFAULT_LEEWAY`] (30 s) unless set.
//!    `iat` and `jti` are not checked (JWT-SVID §7.1).
//!
//! ```
//! use std::time::Duration;
//! use meshtls::ca::KeyKind;
//! use meshtls::jwt::{JwtBundleSet, JwtPolicy, JwtSigner, JwksShape, validate};
//! use meshtls::{SpiffeId, TrustDomain};
//!
//! let td = TrustDomain::new("example.org")?;
//! let signer = JwtSigner::generate(td.clone(), KeyKind::EcP256)?;
//! let id = SpiffeId::new("spiffe://example.org/ns/web/sa/frontend")?;
//! let token = signer.mint(&id, &["billing"], Duration::from_secs(300))?;
//!
//! // What a relying party has: the trust domain's JWKS (here in SPIFFE bundle shape).
//! let jwks = signer.bundle().to_jwks(JwksShape::SpiffeBundle);
//! let bundle = meshtls::jwt::JwtBundle::from_jwks(td, &jwks, JwksShape::SpiffeBundle)?;
//! let bundles = JwtBundleSet::new().with(bundle);
//! let svid = validate(&token, &bundles, &JwtPolicy::new(["billing"])?)?;
//! assert_eq!(svid.spiffe_id(), &id);
//!
//! let err = validate(&token, &bundles, &JwtPolicy::new(["payments"])?).unwrap_err();
//! assert!(err.to_string().contains("audience"));
//! # Ok::<(), meshtls::Error>(())
//! ```

mod keys;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

pub use self::keys::{
    JWT_KEY_FILE, JwksShape, JwtBundle, JwtBundleSet, JwtKey, JwtSigner, MAX_JWT_TTL,
};
use crate::error::{JwtError, quote};
use crate::identity::SpiffeId;
use crate::svid::own::{system_time, unix_seconds};

/// The default clock leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The default size limit of a token, in bytes.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

/// The JWS algorithms of the JWT-SVID standard that meshtls verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::upper_case_acronyms)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
}

impl JwtAlgorithm {
    /// Every algorithm, the default allow-list.
    pub const ALL: [JwtAlgorithm; 8] = [
        JwtAlgorithm::RS256,
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::PS256,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
    ];

    /// The JOSE name (`ES256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
            JwtAlgorithm::PS256 => "PS256",
            JwtAlgorithm::PS384 => "PS384",
            JwtAlgorithm::PS512 => "PS512",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::ES384 => "ES384",
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        !matches!(self, JwtAlgorithm::ES256 | JwtAlgorithm::ES384)
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JwtAlgorithm {
    type Err = JwtError;
    fn from_str(s: &str) -> Result<Self, JwtError> {
        JwtAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| JwtError::Algorithm {
                alg: quote(s),
                allowed: allow_list(&JwtAlgorithm::ALL),
            })
    }
}

fn allow_list(algs: &[JwtAlgorithm]) -> String {
    algs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

/// How the token's `aud` must match the expected audiences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AudienceMatch {
    /// At least one expected audience is in `aud` (go-spiffe, SPIRE, rust-spiffe, PyJWT).
    #[default]
    AnyOf,
    /// Every expected audience is in `aud`.
    AllOf,
}

/// The validation policy; see the [module docs](self) for the rules and their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtPolicy {
    audiences: Vec<String>,
    audience_match: AudienceMatch,
    leeway: Duration,
    require_kid: bool,
    allow_extra_headers: bool,
    algorithms: Vec<JwtAlgorithm>,
    max_len: usize,
}

impl JwtPolicy {
    /// A policy expecting these audiences (any of them), with the defaults above. No audience,
    /// or an empty string among them, is refused.
    pub fn new<I, S>(audiences: I) -> Result<JwtPolicy, JwtError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let audiences: Vec<String> = audiences.into_iter().map(Into::into).collect();
        if audiences.is_empty() {
            return Err(JwtError::Policy {
                what: "audience",
                value: String::new(),
                rule: "at least one expected audience is required".to_owned(),
            });
        }
        if let Some(bad) = audiences.iter().find(|a| a.is_empty()) {
            return Err(JwtError::Policy {
                what: "audience",
                value: bad.clone(),
                rule: "an expected audience must not be empty".to_owned(),
            });
        }
        Ok(JwtPolicy {
            audiences,
            audience_match: AudienceMatch::AnyOf,
            leeway: DEFAULT_LEEWAY,
            require_kid: true,
            allow_extra_headers: false,
            algorithms: JwtAlgorithm::ALL.to_vec(),
            max_len: DEFAULT_MAX_LEN,
        })
    }

    /// Sets how `aud` must match.
    pub fn audience_match(mut self, how: AudienceMatch) -> Self {
        self.audience_match = how;
        self
    }

    /// Sets the clock leeway for `exp` and `nbf`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Whether a `kid` is required (default `true`).
    pub fn require_kid(mut self, yes: bool) -> Self {
        self.require_kid = yes;
        self
    }

    /// Whether header parameters other than `alg`, `kid`, `typ` are tolerated (default
    /// `false`; `crit` is refused either way).
    pub fn allow_extra_headers(mut self, yes: bool) -> Self {
        self.allow_extra_headers = yes;
        self
    }

    /// Restricts the algorithms (an empty list is refused).
    pub fn algorithms(mut self, algs: &[JwtAlgorithm]) -> Result<Self, JwtError> {
        if algs.is_empty() {
            return Err(JwtError::Policy {
                what: "algorithms",
                value: String::new(),
                rule: "at least one algorithm is required".to_owned(),
            });
        }
        self.algorithms = algs.to_vec();
        Ok(self)
    }

    /// Sets the size limit in bytes.
    pub fn max_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// The expected audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The leeway.
    pub fn leeway_duration(&self) -> Duration {
        self.leeway
    }
}

/// A validated JWT-SVID.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSvid {
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    expiry: SystemTime,
    kid: String,
    algorithm: JwtAlgorithm,
    claims: Map<String, Value>,
}

impl JwtSvid {
    /// The subject.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
    /// The `aud` values.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }
    /// `exp`.
    pub fn expiry(&self) -> SystemTime {
        self.expiry
    }
    /// The key id that verified it (empty when the token had none).
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The algorithm.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }
    /// Every claim.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

fn malformed(reason: impl Into<String>) -> JwtError {
    JwtError::Malformed {
        reason: reason.into(),
    }
}

fn json_part(part: &str, what: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| malformed(format!("{what} is not base64url ({e})")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(format!("{what} is not a json object"))),
        Err(e) => Err(malformed(format!("{what} is not json ({e})"))),
    }
}

/// Validates `token` against `bundles` with `policy`, now.
pub fn validate(
    token: &str,
    bundles: &JwtBundleSet,
    policy: &JwtPolicy,
) -> Result<JwtSvid, JwtError> {
    validate_at(token, bundles, policy, SystemTime::now())
}

/// [`validate`] at `now`.
pub fn validate_at(
    token: &str,
    bundles: &JwtBundleSet,
    policy: &JwtPolicy,
    now: SystemTime,
) -> Result<JwtSvid, JwtError> {
    if token.len() > policy.max_len {
        return Err(JwtError::TooLong {
            len: token.len(),
            max: policy.max_len,
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "not three dot-separated parts (jws compact serialization)",
        ));
    };
    let header = json_part(h, "header")?;
    // 2. alg first.
    let alg_text = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = policy
        .algorithms
        .iter()
        .copied()
        .find(|a| a.name() == alg_text)
        .ok_or_else(|| JwtError::Algorithm {
            alg: quote(alg_text),
            allowed: allow_list(&policy.algorithms),
        })?;
    // 3. typ.
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t == "JWT" || t == "JOSE" => {}
        Some(other) => {
            return Err(JwtError::Type {
                typ: quote(
                    &other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_owned),
                ),
            });
        }
    }
    // 4. crit and unknown headers.
    if let Some(crit) = header.get("crit") {
        return Err(JwtError::CriticalHeader {
            names: quote(&crit.to_string()),
        });
    }
    if !policy.allow_extra_headers {
        if let Some(name) = header
            .keys()
            .find(|k| !matches!(k.as_str(), "alg" | "kid" | "typ"))
        {
            return Err(JwtError::UnknownHeader { name: quote(name) });
        }
    }
    // 5. kid.
    let kid = match header.get("kid") {
        Some(Value::String(k)) if !k.is_empty() => Some(k.as_str()),
        None if !policy.require_kid => None,
        None => return Err(JwtError::MissingKid),
        Some(_) => return Err(malformed("kid is not a non-empty string")),
    };
    // 6. subject, bundle, key, signature.
    let claims = json_part(c, "claims")?;
    let sub_text = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    let spiffe_id = SpiffeId::new(sub_text).map_err(|e| JwtError::Subject {
        sub: quote(sub_text),
        reason: e.to_string(),
    })?;
    let td = spiffe_id.trust_domain_name();
    let bundle = bundles.get_name(td).ok_or_else(|| JwtError::NoBundle {
        trust_domain: td.to_owned(),
        sub: spiffe_id.as_str().to_owned(),
    })?;
    let candidates: Vec<&JwtKey> = bundle
        .keys()
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.kid() == kid) && k.admits(alg))
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey {
            trust_domain: td.to_owned(),
            kid: quote(kid.unwrap_or("")),
            alg: alg.name().to_owned(),
        });
    }
    let mut validation = jsonwebtoken::Validation::new(alg.backend());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut verified = None;
    let mut last_err = String::new();
    for key in &candidates {
        match jsonwebtoken::decode::<Value>(token, key.decoding_key(), &validation) {
            Ok(_) => {
                verified = Some(*key);
                break;
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    let Some(key) = verified else {
        return Err(JwtError::Signature {
            trust_domain: td.to_owned(),
            kid: quote(kid.unwrap_or("")),
            reason: last_err,
        });
    };
    // 7. audience.
    let audience: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("aud has a value that is not a string"))?,
        None => Vec::new(),
        Some(_) => return Err(malformed("aud is neither a string nor an array")),
    };
    if audience.is_empty() || audience.iter().all(String::is_empty) {
        return Err(JwtError::NoAudience);
    }
    let contains = |want: &String| audience.contains(want);
    let (ok, rule) = match policy.audience_match {
        AudienceMatch::AnyOf => (policy.audiences.iter().any(contains), "any"),
        AudienceMatch::AllOf => (policy.audiences.iter().all(contains), "all"),
    };
    if !ok {
        return Err(JwtError::Audience {
            got: audience.iter().map(|a| quote(a)).collect(),
            expected: policy.audiences.clone(),
            rule,
        });
    }
    // 8. time.
    let now_s = unix_seconds(now);
    let leeway = i64::try_from(policy.leeway.as_secs()).unwrap_or(i64::MAX);
    let exp = claims
        .get("exp")
        .and_then(numeric_date)
        .ok_or(JwtError::MissingExpiry)?;
    if now_s > exp.saturating_add(leeway) {
        return Err(JwtError::Expired {
            exp,
            now: now_s,
            leeway_secs: policy.leeway.as_secs(),
        });
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric_date(nbf).ok_or_else(|| malformed("nbf is not a number"))?;
        if nbf > now_s.saturating_add(leeway) {
            return Err(JwtError::NotYetValid {
                nbf,
                now: now_s,
                leeway_secs: policy.leeway.as_secs(),
            });
        }
    }
    Ok(JwtSvid {
        spiffe_id,
        audience,
        expiry: system_time(exp),
        kid: key.kid().to_owned(),
        algorithm: alg,
        claims,
    })
}

/// A NumericDate: an integer, or a float rounded down (RFC 7519 allows fractions).
fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f.floor() as i64)
    })
}
