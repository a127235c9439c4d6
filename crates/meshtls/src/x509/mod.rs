//! The crate's one X.509 layer (crate-private): what `bundle`, `svid`, `ca` and `tls` build on.
//!
//! - [`der`]: the strict DER reader (definite, minimal lengths; borrowed slices; no
//!   allocation), tag and OID constants and the TLV writer;
//! - [`pem`]: the PEM reader and writer for certificate chains, bundles and private keys;
//! - [`cert`]: the strict certificate view (`CertInfo`) with one KeyUsage convention, read
//!   on every handshake by SVID verification and by the CA for the material it loads;
//! - [`name`]: distinguished names, built (Go's string-type choice) and rendered (RFC 4514);
//! - [`key`]: key kinds, key generation, the signing key, SubjectPublicKeyInfo and signature
//!   checks (aws-lc-rs);
//! - [`time`]: the UTCTime/GeneralizedTime codec;
//! - [`fs`]: atomic files with private-key permissions.
//!
//! Hand-written on purpose: path validation itself is rustls-webpki's, but webpki exposes none
//! of the extensions the SPIFFE profile is about, and the reader here refuses what DER
//! forbids (malformed BOOLEANs, duplicate extensions, non-minimal lengths) at well under a
//! microsecond per certificate.

pub(crate) mod cert;
pub(crate) mod der;
pub(crate) mod fs;
pub(crate) mod key;
pub(crate) mod name;
pub(crate) mod pem;
pub(crate) mod time;
