//! X.509-SVIDs: your own SVID (certificate chain and private key, [`own`]) and the verification
//! of a peer's chain against per-trust-domain bundles, strictly by the SPIFFE standard.

pub mod own;
