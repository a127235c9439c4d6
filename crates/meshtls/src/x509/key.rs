//! Key kinds, key generation and the CA's signing key, all on aws-lc-rs.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls_pki_types::PrivateKeyDer;
use zeroize::Zeroizing;

use super::der::{self, Reader, oid, tag};
use crate::error::CaError;

/// The key algorithms meshtls generates, for CAs and for workloads.
///
/// The names are the ones the CLI and the Python API take: `ec-p256`, `ec-p384`, `rsa-2048`,
/// `rsa-3072`, `rsa-4096`. Istio's defaults are RSA 2048 for its self-signed root and for
/// workloads (istio-agent), ECDSA P-256 when `ECC_SIGNATURE_ALGORITHM=ECDSA`; meshtls issues
/// workload keys as P-256 by default (fast, and accepted by every sidecar).
///
/// ```
/// use meshtls::ca::KeyKind;
/// let kind: KeyKind = "ec-p384".parse()?;
/// assert_eq!(kind, KeyKind::EcP384);
/// assert_eq!(kind.to_string(), "ec-p384");
/// assert!("rsa-1024".parse::<KeyKind>().is_err());
/// # Ok::<(), meshtls::error::CaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256, signing with SHA-256.
    EcP256,
    /// ECDSA on NIST P-384, signing with SHA-384.
    EcP384,
    /// RSA with a 2048-bit modulus, PKCS#1 v1.5 signatures with SHA-256.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
}

impl KeyKind {
    /// Every kind, in the order of the names above.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::EcP256,
        KeyKind::EcP384,
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
    ];

    /// The kind's name (`ec-p256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::EcP256 => "ec-p256",
            KeyKind::EcP384 => "ec-p384",
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
            KeyKind::Rsa4096 => "rsa-4096",
        }
    }

    /// Parses a kind's name.
    pub fn parse(name: &str) -> Result<Self, CaError> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| CaError::UnknownKeyKind {
                name: name.to_owned(),
            })
    }

    fn ecdsa_alg(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            KeyKind::EcP256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
            KeyKind::EcP384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
            _ => None,
        }
    }

    fn rsa_size(self) -> Option<KeySize> {
        match self {
            KeyKind::Rsa2048 => Some(KeySize::Rsa2048),
            KeyKind::Rsa3072 => Some(KeySize::Rsa3072),
            KeyKind::Rsa4096 => Some(KeySize::Rsa4096),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyKind {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self, CaError> {
        KeyKind::parse(s)
    }
}

/// `SubjectPublicKeyInfo` prefix of an uncompressed P-256 point (the 65 point bytes follow).
const SPKI_P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// `SubjectPublicKeyInfo` prefix of an uncompressed P-384 point (the 97 point bytes follow).
const SPKI_P384_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
/// `AlgorithmIdentifier` of rsaEncryption (with its NULL parameters).
const ALG_RSA_ENCRYPTION: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// `AlgorithmIdentifier` of sha256WithRSAEncryption (Go's choice for every RSA CA key).
const ALG_SHA256_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
/// `AlgorithmIdentifier` of ecdsa-with-SHA256.
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// `AlgorithmIdentifier` of ecdsa-with-SHA384.
const ALG_ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];

/// A freshly generated key: its public key as a `SubjectPublicKeyInfo` and its PKCS#8 DER.
pub(crate) struct GeneratedKey {
    pub(crate) spki: Vec<u8>,
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
}

fn crypto(action: &'static str) -> impl Fn(aws_lc_rs::error::Unspecified) -> CaError {
    move |_| CaError::Crypto { action }
}

fn ec_spki(kind: KeyKind, point: &[u8]) -> Vec<u8> {
    let prefix = if kind == KeyKind::EcP384 {
        SPKI_P384_PREFIX
    } else {
        SPKI_P256_PREFIX
    };
    let mut spki = Vec::with_capacity(prefix.len() + point.len());
    spki.extend_from_slice(prefix);
    spki.extend_from_slice(point);
    spki
}

/// PKCS#8 `PrivateKeyInfo` of an EC key: the algorithm with its named curve, then an RFC 5915
/// `ECPrivateKey` with the scalar and the public point (the same bytes aws-lc's own PKCS#8
/// export writes, without its cost, which is about a tenth of issuing a certificate).
fn ec_pkcs8(kind: KeyKind, scalar: &[u8], point: &[u8]) -> Zeroizing<Vec<u8>> {
    let curve = if kind == KeyKind::EcP384 {
        oid::SECP384R1
    } else {
        oid::SECP256R1
    };
    let alg_len = der::tlv_size(oid::EC_PUBLIC_KEY.len()) + der::tlv_size(curve.len());
    let public_len = der::tlv_size(point.len() + 1);
    let ec_key_len = 3 + der::tlv_size(scalar.len()) + der::tlv_size(public_len);
    let info_len = 3 + der::tlv_size(alg_len) + der::tlv_size(der::tlv_size(ec_key_len));
    let mut out = Zeroizing::new(Vec::with_capacity(der::tlv_size(info_len)));
    der::header(&mut out, tag::SEQUENCE, info_len);
    out.extend_from_slice(&[tag::INTEGER, 1, 0]);
    der::header(&mut out, tag::SEQUENCE, alg_len);
    der::tlv(&mut out, tag::OID, oid::EC_PUBLIC_KEY);
    der::tlv(&mut out, tag::OID, curve);
    der::header(&mut out, tag::OCTET_STRING, der::tlv_size(ec_key_len));
    der::header(&mut out, tag::SEQUENCE, ec_key_len);
    out.extend_from_slice(&[tag::INTEGER, 1, 1]);
    der::tlv(&mut out, tag::OCTET_STRING, scalar);
    der::header(&mut out, tag::CONTEXT_1, public_len);
    der::header(&mut out, tag::BIT_STRING, point.len() + 1);
    out.push(0);
    out.extend_from_slice(point);
    out
}

fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    let bits = der::bit_string(rsa_public_key);
    der::sequence(&[ALG_RSA_ENCRYPTION, &bits])
}

/// Generates a workload key of `kind`: the issuance fast path (one key generation, one PKCS#8
/// export, the SPKI assembled from the public point without re-parsing anything).
pub(crate) fn generate(kind: KeyKind) -> Result<GeneratedKey, CaError> {
    if let Some(alg) = kind.ecdsa_alg() {
        let pair = EcdsaKeyPair::generate(alg).map_err(crypto("generating an ec key"))?;
        let scalar = pair
            .private_key()
            .as_be_bytes()
            .map_err(crypto("exporting an ec key"))?;
        let point = pair.public_key().as_ref();
        Ok(GeneratedKey {
            spki: ec_spki(kind, point),
            pkcs8: ec_pkcs8(kind, scalar.as_ref(), point),
        })
    } else {
        let size = kind.rsa_size().ok_or(CaError::Crypto {
            action: "choosing a key size",
        })?;
        let pair = RsaKeyPair::generate(size).map_err(crypto("generating an rsa key"))?;
        let doc = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
            .map_err(crypto("exporting an rsa key"))?;
        Ok(GeneratedKey {
            spki: rsa_spki(pair.public_key().as_ref()),
            pkcs8: Zeroizing::new(doc.as_ref().to_vec()),
        })
    }
}

/// A CA's private key, able to sign certificates.
pub(crate) enum SigningKey {
    Ecdsa {
        pair: EcdsaKeyPair,
        kind: KeyKind,
        pkcs8: Zeroizing<Vec<u8>>,
    },
    Rsa {
        pair: RsaKeyPair,
        pkcs8: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.describe())
    }
}

impl SigningKey {
    /// Generates a CA key.
    pub(crate) fn generate(kind: KeyKind) -> Result<Self, CaError> {
        let key = generate(kind)?;
        SigningKey::from_pkcs8(&key.pkcs8, "generated key")
    }

    /// Reads a PKCS#8 private key (EC P-256/P-384 or RSA of at least 2048 bits).
    pub(crate) fn from_pkcs8(pkcs8: &[u8], what: &str) -> Result<Self, CaError> {
        let bad = |reason: &str| CaError::Material {
            what: what.to_owned(),
            reason: reason.to_owned(),
        };
        let (alg_oid, curve) = pkcs8_algorithm(pkcs8)
            .map_err(|e| bad(&format!("not a pkcs#8 private key ({})", e)))?;
        if alg_oid == oid::EC_PUBLIC_KEY {
            let kind = curve_kind(curve, what)?;
            let alg = kind.ecdsa_alg().ok_or_else(|| bad("unsupported curve"))?;
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8)
                .map_err(|e| bad(&format!("ec private key rejected ({e})")))?;
            Ok(SigningKey::Ecdsa {
                pair,
                kind,
                pkcs8: Zeroizing::new(pkcs8.to_vec()),
            })
        } else if alg_oid == oid::RSA_ENCRYPTION {
            let bits = pkcs8_private_key(pkcs8)
                .and_then(rsa_private_key_bits)
                .map_err(|e| bad(&format!("malformed rsa private key ({})", e)))?;
            check_rsa_bits(bits, what)?;
            let pair = RsaKeyPair::from_pkcs8(pkcs8)
                .map_err(|e| bad(&format!("rsa private key rejected ({e})")))?;
            check_rsa_bits(pair.public_modulus_len() * 8, what)?;
            Ok(SigningKey::Rsa {
                pair,
                pkcs8: Zeroizing::new(pkcs8.to_vec()),
            })
        } else {
            Err(CaError::UnsupportedKey {
                what: what.to_owned(),
                reason: format!(
                    "key algorithm {} is not supported (use ec-p256, ec-p384 or rsa-2048 and up)",
                    oid::dotted(alg_oid)
                ),
            })
        }
    }

    /// Reads a private key in any of the PEM/DER forms Istio's tooling writes: PKCS#8,
    /// PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
    pub(crate) fn from_key_der(key: &PrivateKeyDer<'_>, what: &str) -> Result<Self, CaError> {
        let pkcs8 = to_pkcs8(key, what)?;
        SigningKey::from_pkcs8(&pkcs8, what)
    }

    /// The key's `SubjectPublicKeyInfo`.
    pub(crate) fn spki(&self) -> Vec<u8> {
        match self {
            SigningKey::Ecdsa { pair, kind, .. } => ec_spki(*kind, pair.public_key().as_ref()),
            SigningKey::Rsa { pair, .. } => rsa_spki(pair.public_key().as_ref()),
        }
    }

    /// The key as PKCS#8 DER.
    pub(crate) fn pkcs8(&self) -> &[u8] {
        match self {
            SigningKey::Ecdsa { pkcs8, .. } | SigningKey::Rsa { pkcs8, .. } => pkcs8,
        }
    }

    /// `ec-p256`, `rsa-2048`, ... (RSA keys loaded from disk may have other sizes).
    pub(crate) fn describe(&self) -> String {
        match self {
            SigningKey::Ecdsa { kind, .. } => kind.name().to_owned(),
            SigningKey::Rsa { pair, .. } => format!("rsa-{}", pair.public_modulus_len() * 8),
        }
    }

    /// The `AlgorithmIdentifier` of this key's certificate signatures (Go's defaults).
    pub(crate) fn signature_algorithm(&self) -> &'static [u8] {
        match self {
            SigningKey::Ecdsa {
                kind: KeyKind::EcP384,
                ..
            } => ALG_ECDSA_SHA384,
            SigningKey::Ecdsa { .. } => ALG_ECDSA_SHA256,
            SigningKey::Rsa { .. } => ALG_SHA256_WITH_RSA,
        }
    }

    /// Upper bound of a signature's length.
    pub(crate) fn max_signature_len(&self) -> usize {
        match self {
            SigningKey::Ecdsa { kind, .. } => {
                if *kind == KeyKind::EcP384 {
                    104
                } else {
                    72
                }
            }
            SigningKey::Rsa { pair, .. } => pair.public_modulus_len(),
        }
    }

    /// Signs `message`, appending the signature bytes to `out`.
    pub(crate) fn sign_into(&self, message: &[u8], out: &mut Vec<u8>) -> Result<(), CaError> {
        match self {
            SigningKey::Ecdsa { pair, .. } => {
                let sig = pair
                    .sign(&SystemRandom::new(), message)
                    .map_err(crypto("signing"))?;
                out.extend_from_slice(sig.as_ref());
            }
            SigningKey::Rsa { pair, .. } => {
                let start = out.len();
                out.resize(start + pair.public_modulus_len(), 0);
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut out[start..],
                )
                .map_err(crypto("signing"))?;
            }
        }
        Ok(())
    }
}

/// rcgen signs CA certificates with the CA's own aws-lc-rs key through these two traits.
impl rcgen::PublicKeyData for SigningKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            SigningKey::Ecdsa { pair, .. } => pair.public_key().as_ref(),
            SigningKey::Rsa { pair, .. } => pair.public_key().as_ref(),
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            SigningKey::Ecdsa {
                kind: KeyKind::EcP384,
                ..
            } => &rcgen::PKCS_ECDSA_P384_SHA384,
            SigningKey::Ecdsa { .. } => &rcgen::PKCS_ECDSA_P256_SHA256,
            SigningKey::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for SigningKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut out = Vec::with_capacity(self.max_signature_len());
        self.sign_into(msg, &mut out)
            .map_err(|_| rcgen::Error::RingUnspecified)?;
        Ok(out)
    }
}

fn check_rsa_bits(bits: usize, what: &str) -> Result<(), CaError> {
    if bits < 2048 {
        return Err(CaError::UnsupportedKey {
            what: what.to_owned(),
            reason: format!("rsa key of {bits} bits is weaker than the 2048-bit minimum"),
        });
    }
    Ok(())
}

fn curve_kind(curve: Option<&[u8]>, what: &str) -> Result<KeyKind, CaError> {
    match curve {
        Some(c) if c == oid::SECP256R1 => Ok(KeyKind::EcP256),
        Some(c) if c == oid::SECP384R1 => Ok(KeyKind::EcP384),
        Some(c) => Err(CaError::UnsupportedKey {
            what: what.to_owned(),
            reason: format!(
                "elliptic curve {} is not supported (only P-256 and P-384)",
                oid::dotted(c)
            ),
        }),
        None => Err(CaError::UnsupportedKey {
            what: what.to_owned(),
            reason: "ec key without a named curve is not supported".to_owned(),
        }),
    }
}

/// The algorithm OID and (for EC) the named-curve OID of a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_algorithm(pkcs8: &[u8]) -> Result<(&[u8], Option<&[u8]>), der::DerError> {
    let mut outer = Reader::new(pkcs8);
    let mut info = Reader::new(outer.read(tag::SEQUENCE)?);
    outer.finish()?;
    info.read(tag::INTEGER)?;
    let mut alg = Reader::new(info.read(tag::SEQUENCE)?);
    let alg_oid = alg.read(tag::OID)?;
    let curve = if alg.peek_tag() == Some(tag::OID) {
        Some(alg.read(tag::OID)?)
    } else {
        None
    };
    Ok((alg_oid, curve))
}

/// The `privateKey` octets of a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs8_private_key(pkcs8: &[u8]) -> Result<&[u8], der::DerError> {
    let mut outer = Reader::new(pkcs8);
    let mut info = Reader::new(outer.read(tag::SEQUENCE)?);
    info.read(tag::INTEGER)?;
    info.read(tag::SEQUENCE)?;
    info.read(tag::OCTET_STRING)
}

/// Modulus size of a PKCS#1 `RSAPrivateKey`.
fn rsa_private_key_bits(der_bytes: &[u8]) -> Result<usize, der::DerError> {
    let mut outer = Reader::new(der_bytes);
    let mut key = Reader::new(outer.read(tag::SEQUENCE)?);
    key.read(tag::INTEGER)?;
    Ok(integer_bits(key.read(tag::INTEGER)?))
}

/// Significant bits of a non-negative INTEGER's content.
fn integer_bits(content: &[u8]) -> usize {
    let digits = &content[content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len())..];
    match digits.first() {
        Some(&top) => digits.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// Converts a private key in any supported encoding to PKCS#8 DER.
pub(crate) fn to_pkcs8(key: &PrivateKeyDer<'_>, what: &str) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let bad = |reason: String| CaError::Material {
        what: what.to_owned(),
        reason,
    };
    match key {
        PrivateKeyDer::Pkcs8(k) => Ok(Zeroizing::new(k.secret_pkcs8_der().to_vec())),
        PrivateKeyDer::Pkcs1(k) => {
            let bits = rsa_private_key_bits(k.secret_pkcs1_der())
                .map_err(|e| bad(format!("malformed rsa private key ({})", e)))?;
            check_rsa_bits(bits, what)?;
            let pair = RsaKeyPair::from_der(k.secret_pkcs1_der())
                .map_err(|e| bad(format!("rsa private key rejected ({e})")))?;
            check_rsa_bits(pair.public_modulus_len() * 8, what)?;
            let doc = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
                .map_err(crypto("exporting an rsa key"))?;
            Ok(Zeroizing::new(doc.as_ref().to_vec()))
        }
        PrivateKeyDer::Sec1(k) => {
            let der = k.secret_sec1_der();
            let curve =
                sec1_curve(der).map_err(|e| bad(format!("not an ec private key ({})", e)))?;
            let kinds: &[KeyKind] = match curve {
                Some(_) => &[curve_kind(curve, what)?],
                None => &[KeyKind::EcP256, KeyKind::EcP384],
            };
            for kind in kinds {
                let Some(alg) = kind.ecdsa_alg() else {
                    continue;
                };
                if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, der) {
                    let doc = pair.to_pkcs8v1().map_err(crypto("exporting an ec key"))?;
                    return Ok(Zeroizing::new(doc.as_ref().to_vec()));
                }
            }
            Err(bad("ec private key rejected".to_owned()))
        }
        _ => Err(bad("unsupported private key encoding".to_owned())),
    }
}

/// The named curve in a SEC1 `ECPrivateKey`, when its optional parameters carry one.
fn sec1_curve(der: &[u8]) -> Result<Option<&[u8]>, der::DerError> {
    let mut outer = Reader::new(der);
    let mut key = Reader::new(outer.read(tag::SEQUENCE)?);
    key.read(tag::INTEGER)?;
    key.read(tag::OCTET_STRING)?;
    if key.peek_tag() == Some(tag::CONTEXT_0) {
        let mut params = Reader::new(key.read(tag::CONTEXT_0)?);
        return Ok(Some(params.read(tag::OID)?));
    }
    Ok(None)
}

/// What a `SubjectPublicKeyInfo` holds, for key checks and signature verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublicKeyKind {
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// RSA with this many modulus bits.
    Rsa(usize),
}

/// A parsed `SubjectPublicKeyInfo`: the kind, and the key bytes aws-lc-rs verifies with (the
/// EC point, or the PKCS#1 `RSAPublicKey`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicKeyInfo<'a> {
    pub(crate) kind: PublicKeyKind,
    pub(crate) key: &'a [u8],
}

/// Reads a `SubjectPublicKeyInfo`, refusing keys istiod would refuse for workloads (RSA below
/// 2048 bits) and kinds meshtls cannot verify (curves other than P-256/P-384, Ed25519, DSA).
pub(crate) fn parse_spki<'a>(spki: &'a [u8], what: &str) -> Result<PublicKeyInfo<'a>, CaError> {
    let malformed = |e: der::DerError| CaError::Material {
        what: what.to_owned(),
        reason: format!("malformed subject public key info ({})", e),
    };
    let unsupported = |reason: String| CaError::UnsupportedKey {
        what: what.to_owned(),
        reason,
    };
    let mut outer = Reader::new(spki);
    let mut info = Reader::new(outer.read(tag::SEQUENCE).map_err(malformed)?);
    outer.finish().map_err(malformed)?;
    let mut alg = Reader::new(info.read(tag::SEQUENCE).map_err(malformed)?);
    let key = info.read_bit_string().map_err(malformed)?;
    info.finish().map_err(malformed)?;
    let alg_oid = alg.read(tag::OID).map_err(malformed)?;
    if alg_oid == oid::EC_PUBLIC_KEY {
        let curve = if alg.peek_tag() == Some(tag::OID) {
            Some(alg.read(tag::OID).map_err(malformed)?)
        } else {
            None
        };
        let kind = match curve_kind(curve, what)? {
            KeyKind::EcP384 => PublicKeyKind::EcP384,
            _ => PublicKeyKind::EcP256,
        };
        return Ok(PublicKeyInfo { kind, key });
    }
    if alg_oid == oid::RSA_ENCRYPTION {
        let mut rsa_outer = Reader::new(key);
        let mut rsa = Reader::new(rsa_outer.read(tag::SEQUENCE).map_err(malformed)?);
        let bits = integer_bits(rsa.read(tag::INTEGER).map_err(malformed)?);
        if bits < 2048 {
            return Err(unsupported(format!(
                "rsa key of {bits} bits is weaker than the 2048-bit minimum"
            )));
        }
        if bits > 8192 {
            return Err(unsupported(format!(
                "rsa key of {bits} bits is larger than the 8192-bit maximum"
            )));
        }
        return Ok(PublicKeyInfo {
            kind: PublicKeyKind::Rsa(bits),
            key,
        });
    }
    let name = if alg_oid == oid::ED25519 {
        "ed25519".to_owned()
    } else if alg_oid == oid::ED448 {
        "ed448".to_owned()
    } else {
        oid::dotted(alg_oid)
    };
    Err(unsupported(format!(
        "key algorithm {name} is not supported (only ec p-256, ec p-384 and rsa of 2048 bits or more)"
    )))
}

/// Verifies `signature` over `message` by the key in `spki`, with the signature algorithm
/// given as the content of its `AlgorithmIdentifier`.
pub(crate) fn verify_signature(
    public_key: &PublicKeyInfo<'_>,
    signature_algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use aws_lc_rs::signature as sig;
    let mut alg = Reader::new(signature_algorithm);
    let alg_oid = alg
        .read(tag::OID)
        .map_err(|e| format!("malformed signature algorithm ({})", e))?;
    let verifier: &'static dyn sig::VerificationAlgorithm = match public_key.kind {
        PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => {
            let p384 = public_key.kind == PublicKeyKind::EcP384;
            match alg_oid {
                o if o == oid::ECDSA_WITH_SHA256 && p384 => &sig::ECDSA_P384_SHA256_ASN1,
                o if o == oid::ECDSA_WITH_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
                o if o == oid::ECDSA_WITH_SHA384 && p384 => &sig::ECDSA_P384_SHA384_ASN1,
                o if o == oid::ECDSA_WITH_SHA384 => &sig::ECDSA_P256_SHA384_ASN1,
                o if o == oid::ECDSA_WITH_SHA512 && p384 => &sig::ECDSA_P384_SHA512_ASN1,
                o if o == oid::ECDSA_WITH_SHA512 => &sig::ECDSA_P256_SHA512_ASN1,
                o => return Err(unsupported_signature(o, "an ec key")),
            }
        }
        PublicKeyKind::Rsa(_) => match alg_oid {
            o if o == oid::SHA256_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA256,
            o if o == oid::SHA384_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA384,
            o if o == oid::SHA512_WITH_RSA => &sig::RSA_PKCS1_2048_8192_SHA512,
            o if o == oid::SHA1_WITH_RSA => {
                return Err(
                    "sha1WithRSAEncryption signatures are refused (sha-1 is broken)".into(),
                );
            }
            o if o == oid::RSASSA_PSS => {
                return Err("rsassa-pss signatures are not supported".into());
            }
            o => return Err(unsupported_signature(o, "an rsa key")),
        },
    };
    sig::UnparsedPublicKey::new(verifier, public_key.key)
        .verify(message, signature)
        .map_err(|_| "signature does not verify".to_owned())
}

fn unsupported_signature(alg_oid: &[u8], key: &str) -> String {
    format!(
        "signature algorithm {} is not supported with {key}",
        oid::dotted(alg_oid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_spki_matches_aws_lc_encoding() {
        for kind in [KeyKind::EcP256, KeyKind::EcP384, KeyKind::Rsa2048] {
            let key = SigningKey::generate(kind).unwrap();
            let theirs: Vec<u8> = match &key {
                SigningKey::Ecdsa { pair, .. } => {
                    pair.public_key().as_der().unwrap().as_ref().to_vec()
                }
                SigningKey::Rsa { pair, .. } => {
                    pair.public_key().as_der().unwrap().as_ref().to_vec()
                }
            };
            assert_eq!(key.spki(), theirs, "{kind}");
            let info = parse_spki(&theirs, "test").unwrap();
            let mut sig = Vec::new();
            key.sign_into(b"hello", &mut sig).unwrap();
            let mut alg = Reader::new(key.signature_algorithm());
            let alg_content = alg.read(tag::SEQUENCE).unwrap();
            verify_signature(&info, alg_content, b"hello", &sig).unwrap();
            assert!(verify_signature(&info, alg_content, b"hellO", &sig).is_err());
        }
    }

    #[test]
    fn hand_built_pkcs8_is_byte_identical_to_aws_lc_export() {
        for kind in [KeyKind::EcP256, KeyKind::EcP384] {
            let alg = kind.ecdsa_alg().unwrap();
            let pair = EcdsaKeyPair::generate(alg).unwrap();
            let scalar = pair.private_key().as_be_bytes().unwrap();
            let ours = ec_pkcs8(kind, scalar.as_ref(), pair.public_key().as_ref());
            let theirs = pair.to_pkcs8v1().unwrap();
            assert_eq!(&ours[..], theirs.as_ref(), "{kind}");
            EcdsaKeyPair::from_pkcs8(alg, &ours).unwrap();
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in KeyKind::ALL {
            assert_eq!(KeyKind::parse(kind.name()).unwrap(), kind);
        }
        assert!(matches!(
            KeyKind::parse("ed25519"),
            Err(CaError::UnknownKeyKind { .. })
        ));
    }
}
