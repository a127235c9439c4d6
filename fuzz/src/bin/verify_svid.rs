//! `verify_svid` on DER chains (each certificate prefixed with a two-byte length) against a
//! fixed bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::UnixTime;

fuzz_target!(|data: &[u8]| {
    let chain = meshtls_fuzz::split_ders(data, 12);
    let _ = meshtls::verify_svid(&chain, meshtls_fuzz::bundles(), UnixTime::now());
});
