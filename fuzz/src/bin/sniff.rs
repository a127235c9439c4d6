//! The ClientHello sniffer (plaintext vs TLS on a PERMISSIVE port), fed whole and byte by byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtls::tls::sniff::{Sniffed, sniff};

fuzz_target!(|data: &[u8]| {
    let whole = sniff(data);
    // A prefix never asks for fewer bytes than it has, and a verdict on a prefix is final
    // unless it asked for more.
    for cut in [1, 5, 9, data.len() / 2] {
        if cut < data.len()
            && let Sniffed::NeedMoreBytes { at_least } = sniff(&data[..cut])
        {
            assert!(at_least > cut, "asked for {at_least} with {cut} in hand");
        }
    }
    if let Sniffed::ClientHello(hello) = whole {
        let _ = hello.alpn_strings();
        let _ = hello.offers_tls13();
    }
});
