//! The server's cache of verified service-account tokens.
//!
//! An ES256 or RS256 signature check costs about as much as signing the certificate itself,
//! and an agent sends the same projected token with every request until the kubelet rotates
//! it. The cache remembers *positive* results only, keyed by the SHA-256 of the whole token,
//! so its answers are the ones a fresh verification would give:
//!
//! - a different token (one byte changed anywhere: header, claims or signature) has another
//!   key and is verified afresh;
//! - `exp` and `nbf` are re-checked with the verifier's leeway on every hit (the same rule as
//!   [`super::jwt::verify_claims`]); a hit that fails them is dropped and the token verified
//!   afresh, so the caller sees the same refusal either way;
//! - an entry lives at most [`TOKEN_CACHE_MAX_AGE`], however far away `exp` is;
//! - the cache belongs to one set of issuer keys: replacing them
//!   ([`super::IstioCaServer::set_jwt`]) starts an empty cache;
//! - it holds at most [`TOKEN_CACHE_CAPACITY`] entries: when full, stale entries go first, then
//!   the oldest.
//!
//! Refusals are never cached: a bad token costs a full verification every time, exactly as
//! without the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::jwt::{JwtVerifier, PodClaim, check_times, verify_token_claims};
use crate::identity::{SpiffeId, TrustDomain};

/// The longest an entry is trusted before its token is verified again.
pub const TOKEN_CACHE_MAX_AGE: Duration = Duration::from_secs(5 * 60);
/// The most entries kept (a few hundred bytes each).
pub const TOKEN_CACHE_CAPACITY: usize = 4096;

type Key = [u8; 32];

#[derive(Debug, Clone)]
struct Entry {
    identity: SpiffeId,
    pod: Option<PodClaim>,
    exp: i64,
    nbf: Option<i64>,
    inserted: SystemTime,
}

/// Issuer keys together with the tokens verified against them.
#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    verifier: JwtVerifier,
    entries: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
    /// Full verifications done (for tests and the benchmark).
    verifications: AtomicU64,
}

fn key_of(token: &str) -> Key {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

/// Whether an entry inserted at `inserted` is too old at `now` (a clock that went back
/// counts as too old).
fn too_old(inserted: SystemTime, now: SystemTime) -> bool {
    now.duration_since(inserted)
        .map_or(true, |age| age > TOKEN_CACHE_MAX_AGE)
}

impl VerifiedTokens {
    pub(crate) fn new(verifier: JwtVerifier) -> Self {
        Self::with_capacity(verifier, TOKEN_CACHE_CAPACITY)
    }

    pub(crate) fn with_capacity(verifier: JwtVerifier, capacity: usize) -> Self {
        VerifiedTokens {
            verifier,
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            verifications: AtomicU64::new(0),
        }
    }

    /// The identity `token` names in `trust_domain` at `now`: from the cache when a valid
    /// entry exists, else by full verification (and cached when it succeeds).
    #[cfg(test)]
    pub(crate) fn verify(
        &self,
        token: &str,
        trust_domain: &TrustDomain,
        now: SystemTime,
    ) -> Result<SpiffeId, crate::Error> {
        self.verify_caller(token, trust_domain, now)
            .map(|(id, _)| id)
    }

    /// [`VerifiedTokens::verify`], also returning the pod the token names (its
    /// `kubernetes.io.pod` claim), for the node authorization of impersonation.
    pub(crate) fn verify_caller(
        &self,
        token: &str,
        trust_domain: &TrustDomain,
        now: SystemTime,
    ) -> Result<(SpiffeId, Option<PodClaim>), crate::Error> {
        let key = key_of(token);
        if let Ok(mut entries) = self.entries.lock() {
            if let Some(e) = entries.get(&key) {
                if !too_old(e.inserted, now)
                    && check_times(&self.verifier, e.exp, e.nbf, now).is_ok()
                {
                    return Ok((e.identity.clone(), e.pod.clone()));
                }
                entries.remove(&key);
            }
        }
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let (identity, claims) = verify_token_claims(&self.verifier, token, trust_domain, now)?;
        let identity = identity.spiffe_id();
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.retain(|_, e| {
                    !too_old(e.inserted, now)
                        && check_times(&self.verifier, e.exp, e.nbf, now).is_ok()
                });
            }
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.inserted)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
            entries.insert(
                key,
                Entry {
                    identity: identity.clone(),
                    pod: claims.pod.clone(),
                    exp: claims.exp,
                    nbf: claims.nbf,
                    inserted: now,
                },
            );
        }
        Ok((identity, claims.pod))
    }

    /// The issuer keys and claim rules.
    pub(crate) fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// The number of cached tokens.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Full verifications done so far.
    #[cfg(test)]
    pub(crate) fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use std::time::UNIX_EPOCH;

    const ISS: &str = "https://issuer.example";
    /// A fixed "now": 2030-01-01.
    const T: u64 = 1_893_456_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
    }

    fn jwks(k: &EcdsaKeyPair) -> String {
        let p = k.public_key().as_ref();
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}]}}"#,
            B64.encode(&p[1..33]),
            B64.encode(&p[33..65])
        )
    }

    fn token(k: &EcdsaKeyPair, sa: &str, exp: u64, nbf: Option<u64>) -> String {
        let nbf = nbf.map(|n| format!(r#","nbf":{n}"#)).unwrap_or_default();
        let claims = format!(
            r#"{{"iss":"{ISS}","sub":"system:serviceaccount:ns:{sa}","aud":"istio-ca","exp":{exp}{nbf}}}"#
        );
        let input = format!(
            "{}.{}",
            B64.encode(r#"{"alg":"ES256"}"#),
            B64.encode(claims)
        );
        let sig = k.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    fn verifier(k: &EcdsaKeyPair, leeway: u64) -> JwtVerifier {
        JwtVerifier::new(&jwks(k), ISS, &["istio-ca"])
            .unwrap()
            .with_leeway(Duration::from_secs(leeway))
    }

    fn td() -> TrustDomain {
        TrustDomain::new("cluster.local").unwrap()
    }

    #[test]
    fn a_cached_token_is_refused_once_expired() {
        let k = key();
        let cache = VerifiedTokens::new(verifier(&k, 60));
        let t = token(&k, "sa", T + 100, None);
        let id = cache.verify(&t, &td(), at(T)).unwrap();
        assert_eq!(id.as_str(), "spiffe://cluster.local/ns/ns/sa/sa");
        assert_eq!((cache.len(), cache.verifications()), (1, 1));
        // Within exp + leeway: answered from the cache.
        assert_eq!(cache.verify(&t, &td(), at(T + 160)).unwrap(), id);
        assert_eq!(cache.verifications(), 1, "a hit must not verify again");
        // Past exp + leeway: refused, with the same reason a fresh verification gives.
        let err = cache
            .verify(&t, &td(), at(T + 161))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
        assert_eq!(cache.len(), 0, "the stale entry is dropped");
        let fresh = VerifiedTokens::new(verifier(&k, 60));
        let direct = fresh
            .verify(&t, &td(), at(T + 161))
            .unwrap_err()
            .to_string();
        assert_eq!(err, direct);
    }

    #[test]
    fn nbf_is_rechecked_and_a_clock_gone_back_verifies_afresh() {
        let k = key();
        let cache = VerifiedTokens::new(verifier(&k, 0));
        let t = token(&k, "sa", T + 3600, Some(T + 100));
        assert!(cache.verify(&t, &td(), at(T + 100)).is_ok());
        let err = cache.verify(&t, &td(), at(T + 50)).unwrap_err().to_string();
        assert!(err.contains("not valid before"), "{err}");
    }

    #[test]
    fn an_entry_lives_at_most_five_minutes() {
        let k = key();
        let cache = VerifiedTokens::new(verifier(&k, 0));
        let t = token(&k, "sa", T + 86_400, None);
        cache.verify(&t, &td(), at(T)).unwrap();
        cache.verify(&t, &td(), at(T + 300)).unwrap();
        assert_eq!(cache.verifications(), 1);
        cache.verify(&t, &td(), at(T + 301)).unwrap();
        assert_eq!(
            cache.verifications(),
            2,
            "older than 5 min: verified afresh"
        );
    }

    #[test]
    fn a_token_with_one_byte_changed_is_verified_afresh() {
        let k = key();
        let cache = VerifiedTokens::new(verifier(&k, 0));
        let t = token(&k, "sa", T + 3600, None);
        cache.verify(&t, &td(), at(T)).unwrap();
        let (head, sig) = t.rsplit_once('.').unwrap();
        let (h, p) = head.split_once('.').unwrap();
        // A changed signature byte, a changed claims byte, a changed header byte.
        let flip = |s: &str, i: usize| {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        for bad in [
            format!("{head}.{}", flip(sig, 5)),
            format!("{h}.{}.{sig}", flip(p, 5)),
            format!("{}.{p}.{sig}", flip(h, 2)),
        ] {
            let before = cache.verifications();
            assert!(cache.verify(&bad, &td(), at(T)).is_err(), "{bad}");
            assert_eq!(cache.verifications(), before + 1);
        }
        assert_eq!(cache.len(), 1, "refusals are never cached");
        // A trailing byte more is another token too.
        assert!(cache.verify(&format!("{t}A"), &td(), at(T)).is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let k = key();
        let cache = VerifiedTokens::with_capacity(verifier(&k, 0), 2);
        let tokens: Vec<String> = (0..3)
            .map(|i| token(&k, &format!("sa{i}"), T + 3600, None))
            .collect();
        for (i, t) in tokens.iter().enumerate() {
            cache.verify(t, &td(), at(T + i as u64)).unwrap();
        }
        assert_eq!(cache.len(), 2);
        // The oldest went: it is verified again; the newest is still a hit.
        cache.verify(&tokens[2], &td(), at(T + 3)).unwrap();
        assert_eq!(cache.verifications(), 3);
        cache.verify(&tokens[0], &td(), at(T + 3)).unwrap();
        assert_eq!(cache.verifications(), 4);
    }

    #[test]
    fn new_issuer_keys_drop_every_cached_token() {
        use crate::ca::{CaParams, KeyKind, MeshCa};
        use crate::ca_protocol::{CallContext, IstioCaServer, ServerConfig};
        let (old, new) = (key(), key());
        let mut p = CaParams::new(td());
        p.key = KeyKind::EcP256;
        let ca = std::sync::Arc::new(MeshCa::create(&p).unwrap());
        let config = ServerConfig {
            jwt: Some(verifier(&old, 0)),
            ..Default::default()
        };
        let server = IstioCaServer::new(ca, config).unwrap();
        let now = SystemTime::now();
        let exp = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
        let bearer = format!("Bearer {}", token(&old, "sa", exp, None));
        let ctx = CallContext {
            authorization: Some(&bearer),
            ..Default::default()
        };
        assert!(server.authenticate_at(&ctx, now).is_ok());
        assert!(server.authenticate_at(&ctx, now).is_ok());
        // The issuer rotated its key: the old token no longer verifies, cached or not.
        let clone = server.clone();
        clone.set_jwt(Some(verifier(&new, 0)));
        let refusal = server.authenticate_at(&ctx, now).unwrap_err();
        assert_eq!(refusal.code, "UNAUTHENTICATED");
        assert!(
            refusal.reason.contains("does not verify"),
            "{}",
            refusal.reason
        );
        // No JWT rule at all: tokens are not accepted.
        server.set_jwt(None);
        assert!(server.authenticate_at(&ctx, now).is_err());
        assert_eq!(server.jwt_key_count(), 0);
        server.set_jwt(Some(verifier(&old, 0)));
        assert!(server.authenticate_at(&ctx, now).is_ok());
        assert_eq!(server.jwt_key_count(), 1);
    }
}
