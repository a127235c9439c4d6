//! Trust bundles: the root certificates of one trust domain ([`TrustBundle`]) and a set of
//! them keyed by trust domain ([`BundleSet`]).
//!
//! Bundles of different trust domains are never merged: an SVID is verified only against the
//! bundle of its own trust domain (X509-SVID §5.1; SPIFFE Federation: bundles of different trust
//! domains MUST NOT be merged into one pool). Trust-domain
//! aliases (Istio's `trustDomainAliases`) are a lookup table in the [`BundleSet`]: an alias
//! uses the roots of the mesh's own trust domain, and no other domain's.
//!
//! Formats:
//! - PEM: concatenated `CERTIFICATE` blocks, one trust domain per text.
//! - SPIFFE bundle (SPIFFE Trust Domain and Bundle §4, X509-SVID §6): a JWK Set whose
//!   `x509-svid` entries each carry one root in `x5c` (standard base64 DER), with optional
//!   `spiffe_sequence` and `spiffe_refresh_hint`. Entries with an unknown `use` or `kty` (or no
//!   `use`) are ignored, as the standard requires; so are `x509-svid` entries without `x5c`.
//! - SPIFFE bundle map (`{"trust_domains": {"<td>": <bundle>, ...}}`, as gRPC A87 reads):
//!   duplicate trust domains are rejected, per-bundle refresh hints are ignored.
//!
//! Limits on hostile input: a PEM or JSON bundle text, or a PEM chain, is at most
//! [`MAX_BUNDLE_BYTES`] (16 MiB, [`BundleError::TooLarge`]
//! before any parsing), and a bundle map names at most [`MAX_BUNDLE_MAP_TRUST_DOMAINS`] (4,096)
//! trust domains. Roots are deduplicated and looked up by hash, and a bad value is quoted in a
//! message to at most 256 characters.
//!
//! ```
//! use meshtls::bundle::{BundleSet, TrustBundle};
//! use meshtls::TrustDomain;
//!
//! let mesh = TrustDomain::new("cluster.local")?;
//! let bundle = TrustBundle::from_pem(mesh.clone(), "")?; // no roots yet
//! let set = BundleSet::new()
//!     .with_bundle(bundle)?
//!     .with_aliases(&mesh, [TrustDomain::new("old.example")?])?;
//! let via_alias = set.bundle_for(&TrustDomain::new("old.example")?).map(|b| b.trust_domain().clone());
//! assert_eq!(via_alias, Some(mesh));
//! # Ok::<(), meshtls::Error>(())
//! ```

mod json;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::{CertificateDer, TrustAnchor};

use crate::TrustDomain;
use crate::error::BundleError;
use crate::identity::TrustDomains;
use crate::x509::cert::{self as der, CertInfo, KU_KEY_CERT_SIGN, PublicKey};
use crate::x509::pem::parse_pem_certificates;
use json::Json;

/// One root of a bundle, with what verification needs precomputed.
#[derive(Debug)]
pub(crate) struct Root {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// Why this root is no trust anchor (not a CA, a KeyUsage without keyCertSign, URI name
    /// constraints, an EKU without serverAuth and clientAuth).
    pub(crate) unusable: Option<String>,
    /// Why it is no anchor under [`crate::svid::VerifyOptions::strict_anchors`] (no KeyUsage,
    /// BasicConstraints not critical), when it is one by default.
    pub(crate) strict_problem: Option<String>,
}

#[derive(Debug)]
struct BundleInner {
    trust_domain: TrustDomain,
    roots: Vec<Root>,
    root_ders: Vec<CertificateDer<'static>>,
    /// webpki anchors of the usable roots, and for each the index into `roots`.
    anchors: Vec<TrustAnchor<'static>>,
    anchor_roots: Vec<usize>,
    /// The same for the roots that are anchors under the strict option too.
    strict_anchors: Vec<TrustAnchor<'static>>,
    strict_anchor_roots: Vec<usize>,
    sequence: Option<u64>,
    refresh_hint: Option<u64>,
    /// SHA-256 over the trust domain and the roots: what verification depends on.
    fingerprint: [u8; 32],
}

/// The X.509 roots of one trust domain.
///
/// Cheap to clone (shared). Roots are deduplicated, in the order first seen.
///
/// Each root is an RFC 5280 §6.1.1(d) trust anchor: its subject and key are what path
/// validation uses, so a root without KeyUsage, or with a BasicConstraints that is not
/// critical (Istio's sample root), is an anchor, as in rustls-webpki, Go, OpenSSL, BoringSSL
/// (Envoy) and GnuTLS. A root that every one of Go, OpenSSL and BoringSSL would refuse as an
/// issuer (no BasicConstraints or `cA=false`, a KeyUsage without `keyCertSign`, an EKU without
/// `serverAuth` and `clientAuth`) or whose URI name constraints rustls-webpki cannot honour is
/// kept (it round-trips) but never used as an anchor; verification errors name it.
#[derive(Clone)]
pub struct TrustBundle {
    inner: Arc<BundleInner>,
}

impl TrustBundle {
    /// A bundle of these DER roots.
    pub fn new<I>(trust_domain: TrustDomain, roots: I) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = CertificateDer<'static>>,
    {
        Self::build(trust_domain, roots.into_iter().collect(), None, None)
    }

    /// Reads PEM `CERTIFICATE` blocks. Text outside the blocks is ignored; whitespace-only text
    /// gives an empty bundle (as go-spiffe's `x509bundle.Parse`); any other block kind (e.g. a
    /// private key) and text with no block at all are errors.
    pub fn from_pem(trust_domain: TrustDomain, pem: &str) -> Result<Self, BundleError> {
        check_size(pem, "PEM bundle")?;
        let roots = parse_pem_certificates(pem).map_err(|reason| BundleError::Pem {
            trust_domain: trust_domain.to_string(),
            reason,
        })?;
        Self::new(trust_domain, roots)
    }

    /// Reads a SPIFFE bundle (a JWK Set) for `trust_domain`.
    pub fn from_spiffe_json(trust_domain: TrustDomain, json: &str) -> Result<Self, BundleError> {
        check_size(json, "SPIFFE bundle JSON")?;
        let doc = Json::parse(json).map_err(|reason| BundleError::Json { reason })?;
        bundle_from_json(trust_domain, &doc, None)
    }

    fn build(
        trust_domain: TrustDomain,
        ders: Vec<CertificateDer<'static>>,
        sequence: Option<u64>,
        refresh_hint: Option<u64>,
    ) -> Result<Self, BundleError> {
        let mut roots: Vec<Root> = Vec::with_capacity(ders.len());
        let mut root_ders: Vec<CertificateDer<'static>> = Vec::with_capacity(ders.len());
        let mut anchors = Vec::new();
        let mut anchor_roots = Vec::new();
        let mut strict_anchors = Vec::new();
        let mut strict_anchor_roots = Vec::new();
        // Duplicates are dropped in one pass (a hash set, not a scan per root).
        let first_seen: Vec<bool> = {
            let mut seen = HashSet::with_capacity(ders.len());
            ders.iter().map(|d| seen.insert(d.as_ref())).collect()
        };
        for (der, first) in ders.into_iter().zip(first_seen) {
            if !first {
                continue;
            }
            let index = roots.len();
            let bad = |reason: String| BundleError::BadCertificate {
                trust_domain: trust_domain.to_string(),
                index,
                reason,
            };
            let info = CertInfo::parse(der.as_ref()).map_err(bad)?;
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| bad(format!("{e:?}")))?
                .to_owned();
            let unusable = anchor_problem(&info);
            let strict_problem = strict_anchor_problem(&info);
            let (not_before, not_after) = (info.not_before, info.not_after);
            if unusable.is_none() {
                if strict_problem.is_none() {
                    strict_anchors.push(anchor.clone());
                    strict_anchor_roots.push(index);
                }
                anchors.push(anchor);
                anchor_roots.push(index);
            }
            roots.push(Root {
                der: der.clone(),
                not_before,
                not_after,
                unusable,
                strict_problem,
            });
            root_ders.push(der);
        }
        let fingerprint = fingerprint(&trust_domain, &root_ders);
        Ok(TrustBundle {
            inner: Arc::new(BundleInner {
                trust_domain,
                roots,
                root_ders,
                anchors,
                anchor_roots,
                strict_anchors,
                strict_anchor_roots,
                sequence,
                refresh_hint,
                fingerprint,
            }),
        })
    }

    /// The same roots with `spiffe_sequence` set.
    pub fn with_sequence(&self, sequence: u64) -> Self {
        self.with_meta(Some(sequence), self.inner.refresh_hint)
    }

    /// The same roots with `spiffe_refresh_hint` set (whole seconds).
    pub fn with_refresh_hint(&self, hint: Duration) -> Self {
        self.with_meta(self.inner.sequence, Some(hint.as_secs()))
    }

    fn with_meta(&self, sequence: Option<u64>, refresh_hint: Option<u64>) -> Self {
        let i = &self.inner;
        TrustBundle {
            inner: Arc::new(BundleInner {
                trust_domain: i.trust_domain.clone(),
                roots: i
                    .roots
                    .iter()
                    .map(|r| Root {
                        der: r.der.clone(),
                        not_before: r.not_before,
                        not_after: r.not_after,
                        unusable: r.unusable.clone(),
                        strict_problem: r.strict_problem.clone(),
                    })
                    .collect(),
                root_ders: i.root_ders.clone(),
                anchors: i.anchors.clone(),
                anchor_roots: i.anchor_roots.clone(),
                strict_anchors: i.strict_anchors.clone(),
                strict_anchor_roots: i.strict_anchor_roots.clone(),
                sequence,
                refresh_hint,
                fingerprint: i.fingerprint,
            }),
        }
    }

    /// The trust domain the roots belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.inner.trust_domain
    }

    /// The roots, DER, deduplicated in the order first seen.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.inner.root_ders
    }

    /// How many roots.
    pub fn len(&self) -> usize {
        self.inner.roots.len()
    }

    /// True when there are no roots: every SVID of the trust domain is then rejected.
    pub fn is_empty(&self) -> bool {
        self.inner.roots.is_empty()
    }

    /// `spiffe_sequence`, when the bundle came with one.
    pub fn sequence(&self) -> Option<u64> {
        self.inner.sequence
    }

    /// `spiffe_refresh_hint`, when the bundle came with one.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.inner.refresh_hint.map(Duration::from_secs)
    }

    /// The roots as PEM `CERTIFICATE` blocks.
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        for der in self.roots() {
            crate::x509::pem::pem_into(&mut out, "CERTIFICATE", der.as_ref());
        }
        out
    }

    /// The bundle as a SPIFFE bundle (JWK Set): one `x509-svid` entry per root with the key's
    /// JWK members and `x5c`, plus `spiffe_sequence` and `spiffe_refresh_hint` when set.
    pub fn to_spiffe_json(&self) -> Result<String, BundleError> {
        let value = self.to_json_value(true)?;
        serde_json::to_string_pretty(&value).map_err(|e| BundleError::Json {
            reason: e.to_string(),
        })
    }

    fn to_json_value(&self, with_refresh_hint: bool) -> Result<serde_json::Value, BundleError> {
        let mut keys = Vec::with_capacity(self.len());
        for (index, der) in self.roots().iter().enumerate() {
            let unsupported = |reason: String| BundleError::UnsupportedKey {
                trust_domain: self.trust_domain().to_string(),
                index,
                reason,
            };
            let info = CertInfo::parse(der.as_ref()).map_err(&unsupported)?;
            let key = der::public_key(info.spki).map_err(&unsupported)?;
            let mut jwk = serde_json::Map::new();
            jwk.insert("use".into(), "x509-svid".into());
            jwk.insert("kty".into(), key.kty().into());
            match key {
                PublicKey::Rsa { n, e } => {
                    jwk.insert("n".into(), URL_SAFE_NO_PAD.encode(n).into());
                    jwk.insert("e".into(), URL_SAFE_NO_PAD.encode(e).into());
                }
                PublicKey::Ec { crv, x, y } => {
                    jwk.insert("crv".into(), crv.into());
                    jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
                    jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
                }
                PublicKey::Okp { crv, x } => {
                    jwk.insert("crv".into(), crv.into());
                    jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
                }
            }
            jwk.insert(
                "x5c".into(),
                serde_json::Value::Array(vec![STANDARD.encode(der.as_ref()).into()]),
            );
            keys.push(serde_json::Value::Object(jwk));
        }
        let mut doc = serde_json::Map::new();
        doc.insert("keys".into(), serde_json::Value::Array(keys));
        if let Some(seq) = self.inner.sequence {
            doc.insert("spiffe_sequence".into(), seq.into());
        }
        if let (true, Some(hint)) = (with_refresh_hint, self.inner.refresh_hint) {
            doc.insert("spiffe_refresh_hint".into(), hint.into());
        }
        Ok(serde_json::Value::Object(doc))
    }

    /// The webpki anchors: every usable root, or (`strict`) those that also pass the strict
    /// anchor rules.
    pub(crate) fn anchors(&self, strict: bool) -> &[TrustAnchor<'static>] {
        if strict {
            &self.inner.strict_anchors
        } else {
            &self.inner.anchors
        }
    }

    /// The root behind the webpki anchor `anchor` (found by address in [`Self::anchors`]).
    pub(crate) fn root_of_anchor(&self, anchor: &TrustAnchor<'_>) -> Option<&Root> {
        let find = |anchors: &[TrustAnchor<'static>], index: &[usize]| {
            let pos = anchors.iter().position(|a| {
                std::ptr::eq(
                    a as *const TrustAnchor<'static> as *const u8,
                    anchor as *const TrustAnchor<'_> as *const u8,
                )
            })?;
            self.inner.roots.get(*index.get(pos)?)
        };
        find(&self.inner.anchors, &self.inner.anchor_roots)
            .or_else(|| find(&self.inner.strict_anchors, &self.inner.strict_anchor_roots))
    }

    /// `(index, reason)` of each root that is no anchor (`strict`: under the strict rules).
    pub(crate) fn unusable_roots(&self, strict: bool) -> impl Iterator<Item = (usize, &str)> {
        self.inner
            .roots
            .iter()
            .enumerate()
            .filter_map(move |(i, r)| {
                let why = match (&r.unusable, &r.strict_problem) {
                    (Some(u), _) => Some(u),
                    (None, Some(s)) if strict => Some(s),
                    _ => None,
                };
                why.map(|u| (i, u.as_str()))
            })
    }

    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        self.inner.fingerprint
    }
}

impl PartialEq for TrustBundle {
    fn eq(&self, other: &Self) -> bool {
        self.inner.trust_domain == other.inner.trust_domain
            && self.inner.root_ders == other.inner.root_ders
            && self.inner.sequence == other.inner.sequence
            && self.inner.refresh_hint == other.inner.refresh_hint
    }
}

impl Eq for TrustBundle {}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustBundle")
            .field("trust_domain", &self.inner.trust_domain.as_str())
            .field("roots", &self.len())
            .field("sequence", &self.inner.sequence)
            .field("refresh_hint", &self.inner.refresh_hint)
            .finish()
    }
}

/// The bundles of several trust domains, plus trust-domain aliases.
///
/// A lookup for trust domain `td` finds `td`'s own bundle, or, when `td` is an alias, the bundle
/// of the trust domain it aliases; never a union of several bundles.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BundleSet {
    bundles: BTreeMap<String, TrustBundle>,
    /// alias name → (alias, the trust domain whose roots it uses).
    aliases: BTreeMap<String, (TrustDomain, TrustDomain)>,
}

impl BundleSet {
    /// An empty set (every verification fails with "no bundle").
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of these bundles; two bundles for one trust domain are an error.
    pub fn from_bundles<I>(bundles: I) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = TrustBundle>,
    {
        let mut set = BundleSet::new();
        for b in bundles {
            if set.bundles.contains_key(b.trust_domain().as_str()) {
                return Err(BundleError::TrustDomain {
                    name: b.trust_domain().to_string(),
                    reason: "two bundles for the same trust domain".to_owned(),
                });
            }
            set.insert(b)?;
        }
        Ok(set)
    }

    /// Reads `(trust domain, PEM roots)` pairs (e.g. the `dict` the Python API takes).
    pub fn from_pem_map<I, K, V>(pairs: I) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut bundles = Vec::new();
        for (name, pem) in pairs {
            let td = parse_td(name.as_ref())?;
            bundles.push(TrustBundle::from_pem(td, pem.as_ref())?);
        }
        Self::from_bundles(bundles)
    }

    /// Each trust domain's roots as PEM, by trust-domain name (the inverse of
    /// [`BundleSet::from_pem_map`]; aliases are not included).
    pub fn to_pem_map(&self) -> BTreeMap<String, String> {
        self.bundles
            .iter()
            .map(|(name, b)| (name.clone(), b.to_pem()))
            .collect()
    }

    /// Reads a SPIFFE bundle map: `{"trust_domains": {"<td>": <SPIFFE bundle>, ...}}`.
    /// A trust domain named twice is an error; per-bundle `spiffe_refresh_hint` is ignored.
    pub fn from_spiffe_json(json: &str) -> Result<Self, BundleError> {
        check_size(json, "SPIFFE bundle map JSON")?;
        let doc = Json::parse(json).map_err(|reason| BundleError::Json { reason })?;
        let Json::Object(_) = doc else {
            return Err(BundleError::Member {
                member: "(document)".to_owned(),
                reason: format!("expected an object, found {}", doc.kind()),
            });
        };
        let map = doc
            .get("trust_domains")
            .ok_or_else(|| BundleError::Member {
                member: "trust_domains".to_owned(),
                reason: "required in a bundle map".to_owned(),
            })?;
        let Json::Object(entries) = map else {
            return Err(BundleError::Member {
                member: "trust_domains".to_owned(),
                reason: format!("expected an object, found {}", map.kind()),
            });
        };
        if entries.len() > MAX_BUNDLE_MAP_TRUST_DOMAINS {
            return Err(BundleError::TooManyTrustDomains {
                count: entries.len(),
                limit: MAX_BUNDLE_MAP_TRUST_DOMAINS,
            });
        }
        let mut bundles = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            let td = parse_td(name)?;
            let at = format!("trust_domains[{name:?}]");
            bundles.push(bundle_from_json(td, value, Some(&at))?);
        }
        Self::from_bundles(bundles)
    }

    /// Writes a SPIFFE bundle map (aliases are configuration, not bundle content, and are not
    /// written).
    pub fn to_spiffe_json(&self) -> Result<String, BundleError> {
        let mut map = serde_json::Map::new();
        for (name, bundle) in &self.bundles {
            map.insert(name.clone(), bundle.to_json_value(false)?);
        }
        let mut doc = serde_json::Map::new();
        doc.insert("trust_domains".into(), serde_json::Value::Object(map));
        serde_json::to_string_pretty(&serde_json::Value::Object(doc)).map_err(|e| {
            BundleError::Json {
                reason: e.to_string(),
            }
        })
    }

    /// Adds or replaces the bundle of its trust domain, returning the one replaced. A trust
    /// domain that is registered as an alias cannot get its own bundle.
    pub fn insert(&mut self, bundle: TrustBundle) -> Result<Option<TrustBundle>, BundleError> {
        let name = bundle.trust_domain().as_str();
        if let Some((_, primary)) = self.aliases.get(name) {
            return Err(BundleError::Alias {
                alias: name.to_owned(),
                reason: format!(
                    "it is an alias of {primary} and uses its roots, so it cannot have a bundle of its own"
                ),
            });
        }
        Ok(self.bundles.insert(name.to_owned(), bundle))
    }

    /// [`BundleSet::insert`] as a builder.
    pub fn with_bundle(mut self, bundle: TrustBundle) -> Result<Self, BundleError> {
        self.insert(bundle)?;
        Ok(self)
    }

    /// Removes a trust domain's bundle.
    pub fn remove(&mut self, trust_domain: &TrustDomain) -> Option<TrustBundle> {
        self.bundles.remove(trust_domain.as_str())
    }

    /// Registers `aliases` as other names of `primary`: an SVID of an alias trust domain is
    /// verified with `primary`'s roots. Refused when an alias has a bundle of its own, is
    /// `primary` itself, or already aliases another trust domain, and when `primary` is itself
    /// an alias.
    pub fn with_aliases<I>(mut self, primary: &TrustDomain, aliases: I) -> Result<Self, BundleError>
    where
        I: IntoIterator<Item = TrustDomain>,
    {
        if let Some((_, other)) = self.aliases.get(primary.as_str()) {
            return Err(BundleError::Alias {
                alias: primary.to_string(),
                reason: format!("it is itself an alias of {other}, so it cannot have aliases"),
            });
        }
        // Trust domains that already have aliases, looked up once per alias.
        let mut targets: HashSet<String> = self
            .aliases
            .values()
            .map(|(_, p)| p.as_str().to_owned())
            .collect();
        for alias in aliases {
            let name = alias.as_str();
            let conflict = if alias == *primary {
                Some("it is the trust domain it would alias".to_owned())
            } else if self.bundles.contains_key(name) {
                Some(format!(
                    "it has a bundle of its own; remove it before making it an alias of {primary}"
                ))
            } else if targets.contains(name) {
                Some("it has aliases of its own".to_owned())
            } else {
                match self.aliases.get(name) {
                    Some((_, p)) if p != primary => Some(format!("it is already an alias of {p}")),
                    _ => None,
                }
            };
            if let Some(reason) = conflict {
                return Err(BundleError::Alias {
                    alias: name.to_owned(),
                    reason,
                });
            }
            self.aliases
                .insert(name.to_owned(), (alias.clone(), primary.clone()));
            targets.insert(primary.as_str().to_owned());
        }
        Ok(self)
    }

    /// Registers a mesh's aliases: [`TrustDomains::aliases`] use the roots of
    /// [`TrustDomains::primary`].
    pub fn with_mesh_aliases(self, trust_domains: &TrustDomains) -> Result<Self, BundleError> {
        self.with_aliases(
            trust_domains.primary(),
            trust_domains.aliases().iter().cloned(),
        )
    }

    /// The bundle registered for exactly `trust_domain` (aliases not followed).
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&TrustBundle> {
        self.bundles.get(trust_domain.as_str())
    }

    /// The bundle that verifies SVIDs of `trust_domain`: its own, or its alias target's.
    pub fn bundle_for(&self, trust_domain: &TrustDomain) -> Option<&TrustBundle> {
        self.lookup(trust_domain.as_str())
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<&TrustBundle> {
        match self.bundles.get(name) {
            Some(b) => Some(b),
            None => self
                .aliases
                .get(name)
                .and_then(|(_, p)| self.bundles.get(p.as_str())),
        }
    }

    /// The trust domains that have a bundle, in name order.
    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> {
        self.bundles.values().map(TrustBundle::trust_domain)
    }

    /// The bundles, in trust-domain name order.
    pub fn bundles(&self) -> impl Iterator<Item = &TrustBundle> {
        self.bundles.values()
    }

    /// `(alias, trust domain whose roots it uses)`, in alias name order.
    pub fn aliases(&self) -> impl Iterator<Item = (&TrustDomain, &TrustDomain)> {
        self.aliases.values().map(|(a, p)| (a, p))
    }

    /// How many bundles.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// True when there are no bundles.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }
}

impl fmt::Debug for BundleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleSet")
            .field("bundles", &self.bundles.values().collect::<Vec<_>>())
            .field(
                "aliases",
                &self
                    .aliases
                    .values()
                    .map(|(a, p)| (a.as_str(), p.as_str()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn parse_td(name: &str) -> Result<TrustDomain, BundleError> {
    // A bundle map names trust domains, never IDs: `TrustDomain::new` would accept
    // `spiffe://td`, so refuse anything with a scheme first.
    if name.contains(':') {
        return Err(BundleError::TrustDomain {
            name: crate::error::quote(name),
            reason: "a trust-domain name, not a SPIFFE ID, is expected".to_owned(),
        });
    }
    TrustDomain::new(name).map_err(|e| BundleError::TrustDomain {
        name: crate::error::quote(name),
        reason: e.kind().rule().to_owned(),
    })
}

/// Why a root is no trust anchor by default, if it is not: what Go's `CheckSignatureFrom`,
/// OpenSSL and BoringSSL refuse in an issuer (no BasicConstraints or `cA=false`, a KeyUsage
/// without `keyCertSign`), an EKU the TLS peers would apply to the leaves (svid-cases A33),
/// and URI name constraints (rustls-webpki fails closed on them, A34).
pub(crate) fn anchor_problem(info: &CertInfo<'_>) -> Option<String> {
    match info.basic_constraints {
        None => {
            return Some(
                "it has no basic constraints extension (cA=true is required: Go, OpenSSL and \
                 BoringSSL refuse such an issuer)"
                    .into(),
            );
        }
        Some(bc) if !bc.ca => return Some("it is not a CA (cA=false)".into()),
        Some(_) => {}
    }
    if info.key_usage.is_some_and(|ku| !ku.has(KU_KEY_CERT_SIGN)) {
        return Some("its key usage lacks keyCertSign".into());
    }
    if info.ext_key_usage.is_some_and(|eku| !eku.has_both()) {
        return Some(
            "its extended key usage lacks serverAuth or clientAuth (svid-cases A33: a CA's EKU \
             applies to the leaves below it)"
                .into(),
        );
    }
    if info.uri_name_constraints {
        return Some(
            "it carries URI name constraints, which meshtls does not support (like rustls-webpki)"
                .into(),
        );
    }
    None
}

/// [`anchor_problem`] of a DER certificate (a malformed one is no anchor either).
pub(crate) fn anchor_problem_of_der(der: &[u8]) -> Option<String> {
    match CertInfo::parse(der) {
        Ok(info) => anchor_problem(&info).or_else(|| {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(der))
                .err()
                .map(|e| format!("rustls-webpki cannot use it as a trust anchor ({e:?})"))
        }),
        Err(reason) => Some(format!("malformed certificate ({reason})")),
    }
}

/// Why a root that is an anchor by default is none under the strict option (what OpenSSL's
/// `-x509_strict` refuses in a CA certificate: no KeyUsage, BasicConstraints not critical).
fn strict_anchor_problem(info: &CertInfo<'_>) -> Option<String> {
    if info.key_usage.is_none() {
        return Some(
            "it has no key usage extension (strict anchors need keyCertSign, as openssl \
             -x509_strict does)"
                .into(),
        );
    }
    if info.basic_constraints.is_some_and(|bc| !bc.critical) {
        return Some(
            "its basic constraints are not critical (strict anchors need them critical, as \
             openssl -x509_strict does)"
                .into(),
        );
    }
    None
}

fn fingerprint(td: &TrustDomain, roots: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&(td.as_str().len() as u64).to_be_bytes());
    ctx.update(td.as_str().as_bytes());
    for r in roots {
        ctx.update(&(r.as_ref().len() as u64).to_be_bytes());
        ctx.update(r.as_ref());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The largest PEM or JSON bundle text meshtls reads (16 MiB, as for manifests): far above a
/// real trust bundle (Istio's root ConfigMap is capped by etcd at 1.5 MiB) and small enough
/// that reading one stays well under a second. The one PEM reader applies the same cap.
pub const MAX_BUNDLE_BYTES: usize = crate::x509::pem::MAX_PEM_BYTES;

/// The most trust domains one SPIFFE bundle map may name (4,096): a federation has a handful
/// to hundreds. Each bundle costs a few microseconds to build even when empty, so the cap keeps
/// a 1 MB map of empty bundles (37,000 of them) a fast [`BundleError::TooManyTrustDomains`]
/// instead of a quarter of a second of work.
pub const MAX_BUNDLE_MAP_TRUST_DOMAINS: usize = 4_096;

fn check_size(text: &str, what: &'static str) -> Result<(), BundleError> {
    if text.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge {
            what,
            size: text.len(),
            limit: MAX_BUNDLE_BYTES,
        });
    }
    Ok(())
}

const KNOWN_KTY: [&str; 3] = ["EC", "RSA", "OKP"];

fn bundle_from_json(
    trust_domain: TrustDomain,
    doc: &Json<'_>,
    at: Option<&str>,
) -> Result<TrustBundle, BundleError> {
    let prefix = at.map(|a| format!("{a}.")).unwrap_or_default();
    let member = |m: &str, reason: String| BundleError::Member {
        member: format!("{prefix}{m}"),
        reason,
    };
    let Json::Object(_) = doc else {
        return Err(member(
            "(bundle)",
            format!("expected an object, found {}", doc.kind()),
        ));
    };
    let keys = doc.get("keys").ok_or_else(|| BundleError::MissingKeys {
        at: at.map(str::to_owned),
    })?;
    let Json::Array(keys) = keys else {
        return Err(member(
            "keys",
            format!("expected an array, found {}", keys.kind()),
        ));
    };
    let sequence = match doc.get("spiffe_sequence") {
        None => None,
        Some(Json::Number(n)) => Some(n.as_u64().ok_or_else(|| {
            member(
                "spiffe_sequence",
                format!("{n} is not an integer from 0 to 2^64-1"),
            )
        })?),
        Some(other) => {
            return Err(member(
                "spiffe_sequence",
                format!("expected an integer, found {}", other.kind()),
            ));
        }
    };
    // Inside a bundle map the per-bundle hint "should be ignored by consumers".
    let refresh_hint = match (at, doc.get("spiffe_refresh_hint")) {
        (Some(_), _) | (None, None) => None,
        (None, Some(Json::Number(n))) => {
            let secs = n.as_i64().filter(|s| *s >= 0).ok_or_else(|| {
                member(
                    "spiffe_refresh_hint",
                    format!("{n} is not a whole, non-negative number of seconds"),
                )
            })?;
            Some(secs.unsigned_abs())
        }
        (None, Some(other)) => {
            return Err(member(
                "spiffe_refresh_hint",
                format!("expected an integer, found {}", other.kind()),
            ));
        }
    };
    let mut roots = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let m = |field: &str| format!("keys[{i}]{field}");
        let Json::Object(_) = key else {
            return Err(member(
                &m(""),
                format!("expected a JWK object, found {}", key.kind()),
            ));
        };
        let text = |field: &str| -> Result<Option<&str>, BundleError> {
            match key.get(field) {
                None => Ok(None),
                Some(Json::String(s)) => Ok(Some(s)),
                Some(other) => Err(member(
                    &m(&format!(".{field}")),
                    format!("expected a string, found {}", other.kind()),
                )),
            }
        };
        // Unknown or missing `use`: ignore the entry (SPIFFE bundle §4.2.2).
        if text("use")? != Some("x509-svid") {
            continue;
        }
        let kty = text("kty")?.ok_or_else(|| {
            member(
                &m(".kty"),
                "required in every JWK (RFC 7517 §4.1, SPIFFE bundle §4.2.1)".to_owned(),
            )
        })?;
        // Unknown key type: ignore the entry (SPIFFE bundle §4.2.1).
        if !KNOWN_KTY.contains(&kty) {
            continue;
        }
        if key.get("kid").is_some() {
            return Err(member(
                &m(".kid"),
                "must not be set on an x509-svid entry (X509-SVID §6.1)".to_owned(),
            ));
        }
        // Missing or empty x5c: ignore the entry; more than one: use the first (X509-SVID §6.2).
        let first = match key.get("x5c") {
            None => continue,
            Some(Json::Array(certs)) => match certs.first() {
                None => continue,
                Some(Json::String(b64)) => b64,
                Some(other) => {
                    return Err(member(
                        &m(".x5c[0]"),
                        format!("expected a base64 string, found {}", other.kind()),
                    ));
                }
            },
            Some(other) => {
                return Err(member(
                    &m(".x5c"),
                    format!("expected an array, found {}", other.kind()),
                ));
            }
        };
        let der = STANDARD.decode(first.as_bytes()).map_err(|e| {
            member(
                &m(".x5c[0]"),
                format!("not standard (padded, non-URL) base64: {e}"),
            )
        })?;
        let info = CertInfo::parse(&der)
            .map_err(|e| member(&m(".x5c[0]"), format!("not a DER X.509 certificate: {e}")))?;
        check_jwk_matches(key, kty, info.spki).map_err(|reason| member(&m(""), reason))?;
        roots.push(CertificateDer::from(der));
    }
    TrustBundle::build(trust_domain, roots, sequence, refresh_hint)
}

/// RFC 7517 §4.7: the key in `x5c[0]` MUST match the JWK's own key members. Members that are
/// absent are not required (the certificate is what verification uses).
fn check_jwk_matches(jwk: &Json<'_>, kty: &str, spki: &[u8]) -> Result<(), String> {
    let key = der::public_key(spki).map_err(|e| format!("x5c[0] key: {e}"))?;
    if key.kty() != kty {
        return Err(format!(
            "kty {kty:?} does not match the certificate's {} key (RFC 7517 §4.7)",
            key.kty()
        ));
    }
    let same = |field: &str, expected: &[u8]| -> Result<(), String> {
        match jwk.get(field) {
            None => Ok(()),
            Some(Json::String(s)) => {
                let got = URL_SAFE_NO_PAD
                    .decode(s.as_bytes())
                    .map_err(|e| format!("{field}: not unpadded base64url: {e}"))?;
                let got = strip_leading_zeros(&got, field);
                if got == strip_leading_zeros(expected, field) {
                    Ok(())
                } else {
                    Err(format!(
                        "{field} does not match the key in x5c[0] (RFC 7517 §4.7)"
                    ))
                }
            }
            Some(other) => Err(format!(
                "{field}: expected a string, found {}",
                other.kind()
            )),
        }
    };
    let crv = |expected: &str| -> Result<(), String> {
        match jwk.get("crv") {
            None => Ok(()),
            Some(Json::String(c)) if c == expected => Ok(()),
            Some(Json::String(c)) => Err(format!(
                "crv {:?} does not match the certificate's {expected} key (RFC 7517 §4.7)",
                crate::error::quote(c)
            )),
            Some(other) => Err(format!("crv: expected a string, found {}", other.kind())),
        }
    };
    match key {
        PublicKey::Rsa { n, e } => {
            same("n", n)?;
            same("e", e)
        }
        PublicKey::Ec { crv: c, x, y } => {
            crv(c)?;
            same("x", x)?;
            same("y", y)
        }
        PublicKey::Okp { crv: c, x } => {
            crv(c)?;
            same("x", x)
        }
    }
}

/// RSA `n`/`e` are unsigned big-endian; producers differ on a leading zero byte.
fn strip_leading_zeros<'a>(v: &'a [u8], field: &str) -> &'a [u8] {
    if field != "n" && field != "e" {
        return v;
    }
    let mut v = v;
    while let [0, rest @ ..] = v {
        if rest.is_empty() {
            break;
        }
        v = rest;
    }
    v
}
