//! [`SvidVerifier`]: verification with a cache for peers that come back.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls_pki_types::{CertificateDer, UnixTime};

use super::verify::{VerifiedSvid, VerifyOptions, verify_parts};
use crate::bundle::BundleSet;
use crate::error::{Error, SvidError};

/// How many chains a verifier remembers unless told otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

struct Entry {
    verified: VerifiedSvid,
    /// Fingerprint of the bundle that verified it (trust domain + roots).
    bundle: [u8; 32],
}

#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Entry>,
    order: VecDeque<[u8; 32]>,
}

/// Verifies SVID chains against a [`BundleSet`] it holds, remembering chains that verified.
///
/// A repeated chain (same leaf and same intermediates, byte for byte) is answered from the
/// cache only while `now` lies within the validity of every certificate of its verified path
/// (leaf, intermediates and root) and the bundle that verified it is unchanged (same trust
/// domain and same roots; replacing the bundle set with [`SvidVerifier::set_bundles`] or
/// changing the roots invalidates the entry). Anything else is verified in full. Failures are
/// never cached. Cached answers are identical to fresh ones.
///
/// Keys are SHA-256 digests of the chain; at most `capacity` chains are kept, oldest evicted
/// first. `Send + Sync`: share one verifier (e.g. in an `Arc`) between connections.
///
/// ```no_run
/// use meshtls::bundle::BundleSet;
/// use meshtls::svid::SvidVerifier;
/// # fn chain() -> Vec<rustls_pki_types::CertificateDer<'static>> { vec![] }
/// let verifier = SvidVerifier::new(BundleSet::from_pem_map([("cluster.local", "...")])?);
/// let peer = verifier.verify(&chain(), rustls_pki_types::UnixTime::now())?;
/// println!("{}", peer.spiffe_id());
/// # Ok::<(), meshtls::Error>(())
/// ```
pub struct SvidVerifier {
    bundles: RwLock<Arc<BundleSet>>,
    cache: Mutex<Cache>,
    capacity: usize,
    options: VerifyOptions,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often a [`SvidVerifier`] answered from its cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Verifications answered from the cache.
    pub hits: u64,
    /// Verifications done in full (with caching enabled).
    pub misses: u64,
    /// Chains cached now.
    pub entries: usize,
}

impl SvidVerifier {
    /// A verifier with room for [`DEFAULT_CACHE_CAPACITY`] chains.
    pub fn new(bundles: BundleSet) -> Self {
        Self::with_capacity(bundles, DEFAULT_CACHE_CAPACITY)
    }

    /// A verifier with room for `capacity` chains (0 disables caching).
    pub fn with_capacity(bundles: BundleSet, capacity: usize) -> Self {
        SvidVerifier {
            bundles: RwLock::new(Arc::new(bundles)),
            cache: Mutex::new(Cache::default()),
            capacity,
            options: VerifyOptions::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The same verifier verifying with `options` (e.g. [`VerifyOptions::strict`]).
    pub fn with_options(mut self, options: VerifyOptions) -> Self {
        self.options = options;
        self
    }

    /// The options in use.
    pub fn options(&self) -> VerifyOptions {
        self.options
    }

    /// The bundles in use.
    pub fn bundles(&self) -> Arc<BundleSet> {
        Arc::clone(&self.bundles.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the bundles. Cached chains of a trust domain whose roots changed are verified
    /// again on their next use; the others stay valid.
    pub fn set_bundles(&self, bundles: BundleSet) {
        *self.bundles.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(bundles);
    }

    /// Verifies `chain` (leaf first) at `now`; see [`super::verify_svid`] for the rules.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedSvid, Error> {
        let (end_entity, intermediates) = chain.split_first().ok_or(SvidError::EmptyChain)?;
        self.verify_parts(end_entity, intermediates, now)
    }

    /// [`SvidVerifier::verify`] with the leaf and the intermediates apart, as rustls passes
    /// them.
    pub fn verify_parts(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedSvid, Error> {
        let bundles = self.bundles();
        if self.capacity == 0 {
            return Ok(verify_parts(end_entity, intermediates, &bundles, now, &self.options)?.0);
        }
        let key = chain_key(end_entity, intermediates);
        if let Some(hit) = self.lookup(&key, &bundles, now) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (verified, bundle) =
            verify_parts(end_entity, intermediates, &bundles, now, &self.options)?;
        self.store(key, verified.clone(), bundle, now);
        Ok(verified)
    }

    fn lookup(&self, key: &[u8; 32], bundles: &BundleSet, now: UnixTime) -> Option<VerifiedSvid> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.entries.get(key)?;
        if !entry.verified.valid_at(now) {
            return None;
        }
        let current = bundles.lookup(entry.verified.spiffe_id().trust_domain_name())?;
        if current.fingerprint() != entry.bundle {
            return None;
        }
        Some(entry.verified.clone())
    }

    fn store(&self, key: [u8; 32], verified: VerifiedSvid, bundle: [u8; 32], now: UnixTime) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let cache = &mut *cache;
        if let Some(existing) = cache.entries.get_mut(&key) {
            *existing = Entry { verified, bundle };
            return;
        }
        if cache.entries.len() >= self.capacity {
            // Drop what can never be answered again first, then the oldest.
            cache.entries.retain(|_, e| e.verified.valid_until() >= now);
            let entries = &cache.entries;
            cache.order.retain(|k| entries.contains_key(k));
            while cache.entries.len() >= self.capacity {
                match cache.order.pop_front() {
                    Some(old) => {
                        cache.entries.remove(&old);
                    }
                    None => break,
                }
            }
        }
        cache.entries.insert(key, Entry { verified, bundle });
        cache.order.push_back(key);
    }

    /// How many chains are cached.
    pub fn cached(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    /// Hit and miss counts since the verifier was made.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cached(),
        }
    }

    /// Forgets every cached chain.
    pub fn clear_cache(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.entries.clear();
        cache.order.clear();
    }
}

impl fmt::Debug for SvidVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidVerifier")
            .field("bundles", &self.bundles())
            .field("cached", &self.cached())
            .field("capacity", &self.capacity)
            .finish()
    }
}

fn chain_key(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for cert in std::iter::once(end_entity).chain(intermediates) {
        ctx.update(&(cert.as_ref().len() as u64).to_be_bytes());
        ctx.update(cert.as_ref());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
