//! Placeholder: the `Svid` type (own X.509-SVID: chain + private key) is being built by the CA
//! work (issue 4).
