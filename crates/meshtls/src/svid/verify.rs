//! Peer X.509-SVID verification: RFC 5280 path validation with rustls-webpki against the
//! bundle of the leaf's own trust domain, plus every MUST of the X509-SVID standard.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, SignatureVerificationAlgorithm, UnixTime};
use webpki::{ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use crate::bundle::BundleSet;
use crate::error::{Error, LeafRule, SigningRule, SvidError};
use crate::x509::cert::{CertInfo, KU_CRL_SIGN, KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN};
use crate::x509::der::oid;
pub(crate) use crate::x509::time::fmt_time;
use crate::x509::time::{unix_time, unix_time_seconds};
use crate::{SpiffeId, TrustDomain};

/// Most certificates a presented chain may have (leaf included), as rust-spiffe.
pub const MAX_CHAIN_LEN: usize = 16;

/// Longest URI SAN accepted, in bytes (SPIFFE-ID §2.3: IDs up to 2048 bytes).
pub const MAX_URI_SAN_LEN: usize = 2048;

/// The signature algorithms accepted in certificate chains: aws-lc-rs's, as rustls's default
/// provider lists them (ECDSA P-256/P-384/P-521, RSA PKCS#1 and PSS of 2048 to 8192 bits,
/// Ed25519).
static SIGNATURE_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P521_SHA256,
    webpki::aws_lc_rs::ECDSA_P521_SHA384,
    webpki::aws_lc_rs::ECDSA_P521_SHA512,
    webpki::aws_lc_rs::ED25519,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// A peer whose chain verified: its SPIFFE ID and the path that proved it.
///
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct VerifiedSvid {
    inner: Arc<Verified>,
}

#[derive(PartialEq, Eq)]
struct Verified {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    bundle_trust_domain: TrustDomain,
    not_before: i64,
    not_after: i64,
}

impl VerifiedSvid {
    /// The peer's SPIFFE ID (the leaf's URI SAN).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.inner.spiffe_id
    }

    /// The verified path: the leaf, the intermediates used (leaf-side first), and the root
    /// from the bundle.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.inner.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.inner.chain[0]
    }

    /// The bundle root the path ends at.
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.inner.chain[self.inner.chain.len() - 1]
    }

    /// The trust domain whose bundle verified the chain: the peer's own, or, for a peer in an
    /// alias trust domain, the trust domain it aliases.
    pub fn bundle_trust_domain(&self) -> &TrustDomain {
        &self.inner.bundle_trust_domain
    }

    /// From when every certificate of the path is valid (the latest NotBefore).
    pub fn valid_from(&self) -> UnixTime {
        unix_time(self.inner.not_before)
    }

    /// Until when every certificate of the path is valid (the earliest NotAfter, inclusive).
    pub fn valid_until(&self) -> UnixTime {
        unix_time(self.inner.not_after)
    }

    pub(crate) fn valid_at(&self, now: UnixTime) -> bool {
        let now = unix_time_seconds(now);
        self.inner.not_before <= now && now <= self.inner.not_after
    }
}

impl PartialEq for VerifiedSvid {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for VerifiedSvid {}

impl fmt::Debug for VerifiedSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSvid")
            .field("spiffe_id", &self.inner.spiffe_id.as_str())
            .field("chain_len", &self.inner.chain.len())
            .field(
                "bundle_trust_domain",
                &self.inner.bundle_trust_domain.as_str(),
            )
            .field("valid_from", &fmt_time(self.inner.not_before))
            .field("valid_until", &fmt_time(self.inner.not_after))
            .finish()
    }
}

/// Verifies a peer's X.509-SVID chain (leaf first) at time `now`.
///
/// 1. The chain is not empty and has at most [`MAX_CHAIN_LEN`] certificates.
/// 2. The leaf has exactly one URI SAN (any scheme counts), of at most [`MAX_URI_SAN_LEN`]
///    bytes, that is a strict SPIFFE ID with a non-root path.
/// 3. The leaf has BasicConstraints with `cA=false`; a critical KeyUsage with
///    `digitalSignature` and neither `keyCertSign` nor `cRLSign`; if it has an
///    ExtendedKeyUsage, both `serverAuth` and `clientAuth`; a critical SAN extension if its
///    subject is empty; and it is valid at `now`.
/// 4. Every later certificate is a signing certificate: BasicConstraints `cA=true`, a
///    KeyUsage (where present) with `keyCertSign`, no SPIFFE ID with a path, an EKU (if any)
///    with both `serverAuth` and `clientAuth` (svid-cases A33), no URI name constraints (A34).
/// 5. RFC 5280 path validation (rustls-webpki, aws-lc-rs signatures) to a root in the bundle
///    of the leaf's trust domain only (or of the trust domain it is an alias of). The root is a
///    trust anchor (RFC 5280 §6.1.1(d)): its subject and key count, so a root without
///    KeyUsage or with a non-critical BasicConstraints (Istio's sample root) is accepted, as
///    by webpki, Go, OpenSSL, BoringSSL and GnuTLS; see [`crate::bundle::TrustBundle`] for the
///    roots that are refused and [`VerifyOptions::strict_anchors`] for the stricter opt-in.
///    The root must be valid at `now`.
///
/// This is stricter than go-spiffe's `x509svid.Verify`, which accepts a root-only leaf ID,
/// a leaf without `digitalSignature`, KeyUsage or BasicConstraints, and any EKU (A21–A24,
/// A31). The signature fits rustls's verifiers: `chain` is `[end_entity, intermediates @ ..]`.
///
/// ```compile_fail
/// // A missing bundle source (go-spiffe's "bundleSource is required", case A2) cannot be
/// // expressed: the bundles argument is a reference, never null.
/// let chain: Vec<rustls_pki_types::CertificateDer<'static>> = Vec::new();
/// let _ = meshtls::svid::verify_svid(&chain, None, rustls_pki_types::UnixTime::now());
/// ```
pub fn verify_svid(
    chain: &[CertificateDer<'_>],
    bundles: &BundleSet,
    now: UnixTime,
) -> Result<VerifiedSvid, Error> {
    verify_svid_with(chain, bundles, now, &VerifyOptions::default())
}

/// Opt-in checks beyond what the TLS peers of a mesh enforce. The default (every field
/// `false`) accepts what rustls-webpki, Go, OpenSSL, BoringSSL (Envoy) and GnuTLS accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Use only bundle roots that carry a KeyUsage with `keyCertSign` and a critical
    /// BasicConstraints, as `openssl verify -x509_strict` (OpenSSL 3's
    /// `X509_V_FLAG_X509_STRICT`) demands of every CA certificate. rustls-webpki, Go,
    /// BoringSSL, GnuTLS and OpenSSL without the flag accept roots without KeyUsage or with a
    /// non-critical BasicConstraints, and Istio's own sample root has no KeyUsage: a mesh built
    /// from it fails every verification under this option.
    pub strict_anchors: bool,
}

impl VerifyOptions {
    /// The default options with [`VerifyOptions::strict_anchors`] set.
    pub fn strict() -> Self {
        VerifyOptions {
            strict_anchors: true,
        }
    }
}

/// [`verify_svid`] with [`VerifyOptions`].
pub fn verify_svid_with(
    chain: &[CertificateDer<'_>],
    bundles: &BundleSet,
    now: UnixTime,
    options: &VerifyOptions,
) -> Result<VerifiedSvid, Error> {
    let (end_entity, intermediates) = chain.split_first().ok_or(SvidError::EmptyChain)?;
    Ok(verify_parts(end_entity, intermediates, bundles, now, options)?.0)
}

/// [`verify_svid`] with the leaf and the rest of the chain apart, as rustls hands them to a
/// certificate verifier.
pub fn verify_svid_parts(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    bundles: &BundleSet,
    now: UnixTime,
) -> Result<VerifiedSvid, Error> {
    Ok(verify_parts(
        end_entity,
        intermediates,
        bundles,
        now,
        &VerifyOptions::default(),
    )?
    .0)
}

/// Verification proper; also returns the fingerprint of the bundle used (for the cache).
pub(crate) fn verify_parts(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    bundles: &BundleSet,
    now: UnixTime,
    options: &VerifyOptions,
) -> Result<(VerifiedSvid, [u8; 32]), SvidError> {
    let strict = options.strict_anchors;
    let len = 1 + intermediates.len();
    if len > MAX_CHAIN_LEN {
        return Err(SvidError::ChainTooLong {
            len,
            max: MAX_CHAIN_LEN,
        });
    }
    let now_secs = unix_time_seconds(now);
    let leaf = CertInfo::parse(end_entity.as_ref())
        .map_err(|reason| SvidError::Malformed { index: 0, reason })?;
    let id = leaf_spiffe_id(&leaf)?;
    check_leaf(&leaf, &id, now_secs)?;
    let mut infos: Vec<CertInfo<'_>> = Vec::with_capacity(intermediates.len());
    for (i, der) in intermediates.iter().enumerate() {
        let index = i + 1;
        let info = CertInfo::parse(der.as_ref())
            .map_err(|reason| SvidError::Malformed { index, reason })?;
        check_signing(&info).map_err(|rule| SvidError::Signing { index, rule })?;
        infos.push(info);
    }

    let td_name = id.trust_domain_name();
    let bundle = bundles.lookup(td_name).ok_or_else(|| SvidError::NoBundle {
        trust_domain: td_name.to_owned(),
    })?;
    let untrusted = |reason: String| SvidError::Untrusted {
        id: id.to_string(),
        trust_domain: bundle.trust_domain().to_string(),
        reason,
    };
    if bundle.is_empty() {
        return Err(SvidError::EmptyBundle {
            trust_domain: bundle.trust_domain().to_string(),
        });
    }
    if bundle.anchors(strict).is_empty() {
        return Err(untrusted(format!(
            "none of its roots is a trust anchor for SVIDs: {}",
            describe_unusable(bundle, strict)
        )));
    }

    let ee = webpki::EndEntityCert::try_from(end_entity).map_err(|e| SvidError::Malformed {
        index: 0,
        reason: webpki_reason(&e),
    })?;
    // The root must itself be valid now (as Go and OpenSSL require; webpki does not look at
    // an anchor's dates). Rejecting inside path building lets webpki try another root with
    // the same name and key, e.g. a renewed one.
    let root_problem: RefCell<Option<String>> = RefCell::new(None);
    let check_root = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let Some(root) = bundle.root_of_anchor(path.anchor()) else {
            return Err(webpki::Error::UnknownIssuer);
        };
        let problem = if now_secs < root.not_before {
            Some(format!(
                "the root that signs the chain is not valid before {} (verification time {})",
                fmt_time(root.not_before),
                fmt_time(now_secs)
            ))
        } else if now_secs > root.not_after {
            Some(format!(
                "the root that signs the chain expired at {} (verification time {})",
                fmt_time(root.not_after),
                fmt_time(now_secs)
            ))
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(p) => {
                *root_problem.borrow_mut() = Some(p);
                Err(webpki::Error::UnknownIssuer)
            }
        }
    };
    let path = ee
        .verify_for_usage(
            SIGNATURE_ALGORITHMS,
            bundle.anchors(strict),
            intermediates,
            now,
            SvidExtendedKeyUsage,
            None,
            Some(&check_root),
        )
        .map_err(|e| {
            let reason = match root_problem.borrow_mut().take() {
                Some(p) => p,
                None => path_reason(&e, bundle, now_secs, strict),
            };
            untrusted(reason)
        })?;

    let mut not_before = leaf.not_before;
    let mut not_after = leaf.not_after;
    let mut chain: Vec<CertificateDer<'static>> = Vec::with_capacity(len + 1);
    chain.push(end_entity.clone().into_owned());
    for cert in path.intermediate_certificates() {
        let der = cert.der();
        let Some(i) = intermediates
            .iter()
            .position(|c| std::ptr::eq(c.as_ref().as_ptr(), der.as_ref().as_ptr()))
        else {
            return Err(untrusted(
                "path validation used a certificate that was not presented".to_owned(),
            ));
        };
        not_before = not_before.max(infos[i].not_before);
        not_after = not_after.min(infos[i].not_after);
        chain.push(intermediates[i].clone().into_owned());
    }
    let Some(root) = bundle.root_of_anchor(path.anchor()) else {
        return Err(untrusted("path ended at an unknown anchor".to_owned()));
    };
    not_before = not_before.max(root.not_before);
    not_after = not_after.min(root.not_after);
    chain.push(root.der.clone());

    let verified = VerifiedSvid {
        inner: Arc::new(Verified {
            spiffe_id: id,
            chain,
            bundle_trust_domain: bundle.trust_domain().clone(),
            not_before,
            not_after,
        }),
    };
    Ok((verified, bundle.fingerprint()))
}

fn truncate(text: &str) -> String {
    if text.chars().count() > 256 {
        let cut: String = text.chars().take(256).collect();
        format!("{cut}...")
    } else {
        text.to_owned()
    }
}

/// The one leaf-SPIFFE-ID extraction (verification, [`crate::Svid`], `inspect`, the TLS peer
/// accessors): exactly one URI SAN of any scheme, at most [`MAX_URI_SAN_LEN`] bytes, a strict
/// SPIFFE ID with a non-root path.
pub(crate) fn leaf_spiffe_id(leaf: &CertInfo<'_>) -> Result<SpiffeId, SvidError> {
    let san = leaf.subject_alt_name.ok_or(SvidError::NoUriSan)?;
    match san.uri_count {
        0 => return Err(SvidError::NoUriSan),
        1 => {}
        count => {
            let uris: Vec<String> = san
                .uris()
                .map(|u| format!("{:?}", truncate(&String::from_utf8_lossy(u))))
                .collect();
            return Err(SvidError::MultipleUriSans {
                count,
                uris: uris.join(", "),
            });
        }
    }
    let uri = san.first_uri.ok_or(SvidError::NoUriSan)?;
    if uri.len() > MAX_URI_SAN_LEN {
        return Err(SvidError::UriSanTooLong { len: uri.len() });
    }
    let text = std::str::from_utf8(uri).map_err(|_| SvidError::InvalidSpiffeId {
        uri: truncate(&String::from_utf8_lossy(uri)),
        rule: "a URI SAN is ASCII (IA5String)".to_owned(),
    })?;
    let id = SpiffeId::new(text).map_err(|e| SvidError::InvalidSpiffeId {
        uri: truncate(text),
        rule: e.kind().rule().to_owned(),
    })?;
    if id.is_trust_domain_id() {
        return Err(SvidError::LeafWithoutPath { id: id.to_string() });
    }
    Ok(id)
}

pub(super) fn check_leaf(leaf: &CertInfo<'_>, id: &SpiffeId, now: i64) -> Result<(), SvidError> {
    let fail = |rule: LeafRule| SvidError::Leaf {
        id: id.to_string(),
        rule,
    };
    match leaf.basic_constraints {
        None => return Err(fail(LeafRule::BasicConstraintsMissing)),
        Some(bc) if bc.ca => return Err(fail(LeafRule::IsCa)),
        Some(_) => {}
    }
    let ku = leaf
        .key_usage
        .ok_or_else(|| fail(LeafRule::KeyUsageMissing))?;
    if ku.has(KU_KEY_CERT_SIGN) {
        return Err(fail(LeafRule::KeyCertSign));
    }
    if ku.has(KU_CRL_SIGN) {
        return Err(fail(LeafRule::CrlSign));
    }
    if !ku.has(KU_DIGITAL_SIGNATURE) {
        return Err(fail(LeafRule::NoDigitalSignature));
    }
    if !ku.critical {
        return Err(fail(LeafRule::KeyUsageNotCritical));
    }
    if let Some(eku) = leaf.ext_key_usage {
        if !eku.has_both() {
            return Err(fail(LeafRule::ExtendedKeyUsage {
                present: eku.names().join(", "),
            }));
        }
    }
    // The SAN is present here (the ID came from it).
    if leaf.subject.is_empty() && !leaf.subject_alt_name.is_some_and(|s| s.critical) {
        return Err(fail(LeafRule::SanNotCritical));
    }
    if now < leaf.not_before {
        return Err(fail(LeafRule::NotYetValid {
            not_before: fmt_time(leaf.not_before),
            now: fmt_time(now),
        }));
    }
    if now > leaf.not_after {
        return Err(fail(LeafRule::Expired {
            not_after: fmt_time(leaf.not_after),
            now: fmt_time(now),
        }));
    }
    Ok(())
}

fn check_signing(info: &CertInfo<'_>) -> Result<(), SigningRule> {
    match info.basic_constraints {
        None => return Err(SigningRule::BasicConstraintsMissing),
        Some(bc) if !bc.ca => return Err(SigningRule::NotCa),
        Some(_) => {}
    }
    // RFC 5280 §4.2.1.3: keyCertSign where KeyUsage is present (Go, OpenSSL, webpki alike);
    // an intermediate without KeyUsage signs, as Istio's sample chain shows.
    if info.key_usage.is_some_and(|ku| !ku.has(KU_KEY_CERT_SIGN)) {
        return Err(SigningRule::NoKeyCertSign);
    }
    if let Some(eku) = info.ext_key_usage {
        if !eku.has_both() {
            return Err(SigningRule::ExtendedKeyUsage {
                present: eku.names().join(", "),
            });
        }
    }
    if info.uri_name_constraints {
        return Err(SigningRule::UriNameConstraints);
    }
    if let Some(san) = info.subject_alt_name {
        for uri in san.uris() {
            let is_spiffe = uri.len() >= 7 && uri[..7].eq_ignore_ascii_case(b"spiffe:");
            if !is_spiffe {
                continue;
            }
            let text = String::from_utf8_lossy(uri);
            let id = SpiffeId::new(&text).map_err(|e| SigningRule::InvalidSpiffeId {
                uri: truncate(&text),
                rule: e.kind().rule().to_owned(),
            })?;
            if !id.is_trust_domain_id() {
                return Err(SigningRule::SpiffeIdWithPath { id: id.to_string() });
            }
        }
    }
    Ok(())
}

/// rustls-webpki checks EKU on every certificate of the path; an SVID authenticates both
/// clients and servers, so each EKU present must allow both (X509-SVID §4.4 for the leaf,
/// meshtls's A33 decision for signing certificates).
struct SvidExtendedKeyUsage;

impl ExtendedKeyUsageValidator for SvidExtendedKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let server = KeyPurposeId::new(oid::KP_SERVER_AUTH);
        let client = KeyPurposeId::new(oid::KP_CLIENT_AUTH);
        let (mut any, mut has_server, mut has_client) = (false, false, false);
        for purpose in iter {
            let purpose = purpose?;
            any = true;
            has_server |= purpose == server;
            has_client |= purpose == client;
        }
        if !any || (has_server && has_client) {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(
                webpki::RequiredEkuNotFoundContext {
                    required: webpki::KeyUsage::client_auth(),
                    present: Vec::new(),
                },
            ))
        }
    }
}

fn describe_unusable(bundle: &crate::bundle::TrustBundle, strict: bool) -> String {
    bundle
        .unusable_roots(strict)
        .map(|(i, why)| format!("root {i}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn path_reason(
    e: &webpki::Error,
    bundle: &crate::bundle::TrustBundle,
    now: i64,
    strict: bool,
) -> String {
    use webpki::Error as E;
    let mut reason = match e {
        E::UnknownIssuer => {
            "no path to any of its roots (unknown issuer: the chain was not signed by these roots)"
                .to_owned()
        }
        E::InvalidSignatureForPublicKey => "a certificate's signature does not verify".to_owned(),
        E::CertExpired { not_after, .. } => format!(
            "a signing certificate expired at {} (verification time {})",
            fmt_time(unix_time_seconds(*not_after)),
            fmt_time(now)
        ),
        E::CertNotValidYet { not_before, .. } => format!(
            "a signing certificate is not valid before {} (verification time {})",
            fmt_time(unix_time_seconds(*not_before)),
            fmt_time(now)
        ),
        E::EndEntityUsedAsCa => "a certificate that is not a CA signs another".to_owned(),
        E::CaUsedAsEndEntity => "the leaf is a CA certificate".to_owned(),
        E::PathLenConstraintViolated => {
            "a signing certificate's pathLenConstraint is exceeded".to_owned()
        }
        E::NameConstraintViolation => "a name constraint of a signing certificate excludes the \
             leaf (URI name constraints always do: meshtls, like rustls-webpki, does not \
             support them)"
            .to_owned(),
        E::RequiredEkuNotFoundContext(_) => {
            "a certificate's extended key usage lacks serverAuth or clientAuth".to_owned()
        }
        E::MaximumPathDepthExceeded => {
            "the path has more intermediates than rustls-webpki allows (6)".to_owned()
        }
        // webpki tried every anchor and intermediate named as the issuer and none had a key
        // of the kind the signature needs (e.g. an RSA-signed chain, an EC root of the same
        // subject): the signature algorithm itself is one meshtls accepts.
        E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "no root with a matching key (a certificate named as the issuer has a key of \
             another type than the one that signed the chain)"
                .to_owned()
        }
        other => webpki_reason(other),
    };
    let skipped = describe_unusable(bundle, strict);
    if !skipped.is_empty() {
        reason.push_str(&format!(
            "; roots skipped because they are no trust anchors for SVIDs: {skipped}"
        ));
    }
    reason
}

fn webpki_reason(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::BadDer | E::BadDerTime => "malformed DER".to_owned(),
        E::UnsupportedCertVersion => "not an X.509 v3 certificate".to_owned(),
        E::UnsupportedCriticalExtension => {
            "an extension marked critical is not understood (RFC 5280 §4.2)".to_owned()
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a signature algorithm that is not accepted (ECDSA P-256/384/521, RSA 2048-8192, Ed25519 are)"
                .to_owned()
        }
        other => format!("rustls-webpki: {other:?}"),
    }
}

/// [`leaf_spiffe_id`] of a DER certificate.
pub(crate) fn leaf_spiffe_id_of_der(der: &[u8]) -> Result<SpiffeId, SvidError> {
    let info = CertInfo::parse(der).map_err(|reason| SvidError::Malformed { index: 0, reason })?;
    leaf_spiffe_id(&info)
}

/// Checks that `private_key` belongs to the leaf certificate (svid-cases A38: go-spiffe's
/// `Parse` checks it, py-spiffe does not). The key is any PKCS#8, PKCS#1 or SEC1 key
/// aws-lc-rs can sign with; its public half is compared with the leaf's SubjectPublicKeyInfo,
/// as rustls's `CertifiedKey::keys_match` does.
pub fn check_private_key(
    leaf: &CertificateDer<'_>,
    private_key: &PrivateKeyDer<'_>,
) -> Result<(), Error> {
    let info = CertInfo::parse(leaf.as_ref())
        .map_err(|reason| SvidError::Malformed { index: 0, reason })?;
    key_matches_spki(private_key, info.spki)
        .map_err(|reason| SvidError::KeyMismatch { reason }.into())
}

/// The one key-matches-leaf comparison, shared by [`check_private_key`] and the
/// [`crate::Svid`] constructors: the private key's public half, as rustls derives it, must equal
/// the leaf's SubjectPublicKeyInfo byte for byte (what rustls's `CertifiedKey::keys_match`
/// later demands of the same pair). The error says why not.
pub(crate) fn key_matches_spki(
    private_key: &PrivateKeyDer<'_>,
    leaf_spki: &[u8],
) -> Result<(), String> {
    let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(private_key)
        .map_err(|e| format!("the private key cannot be loaded: {e}"))?;
    let public = key
        .public_key()
        .ok_or_else(|| "the private key's public half cannot be derived".to_owned())?;
    if public.as_ref() != leaf_spki {
        return Err("its public key differs from the leaf's subject public key".to_owned());
    }
    Ok(())
}
