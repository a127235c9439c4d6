//! TLS-or-plaintext sniffing on real, partial and malformed first bytes.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use meshtls::tls::params;
use meshtls::tls::sniff::{ClientHelloInfo, MAX_CLIENT_HELLO_LEN, Sniffed, sniff};

/// A real ClientHello from rustls with SNI and ALPN.
fn rustls_hello(sni: &str, alpn: &[&[u8]], tls12_only: bool) -> Vec<u8> {
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ClientConfig::builder_with_provider(params::istio_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), sni.to_owned().try_into().unwrap())
            .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

fn hello(bytes: &[u8]) -> ClientHelloInfo {
    match sniff(bytes) {
        Sniffed::ClientHello(h) => h,
        other => panic!("expected a ClientHello, got {other:?}"),
    }
}

fn malformed_reason(bytes: &[u8]) -> String {
    match sniff(bytes) {
        Sniffed::Malformed(m) => m.to_string(),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn plaintext_is_recognised_from_the_first_byte() {
    assert_eq!(sniff(b"G"), Sniffed::Plaintext);
    assert_eq!(sniff(b"GET /api/headers HTTP/1.1\r\n"), Sniffed::Plaintext);
    assert_eq!(
        sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Sniffed::Plaintext
    );
    // SSLv2-compatible hello and a TLS alert record are not ClientHellos either.
    assert_eq!(sniff(&[0x80, 0x2e, 0x01, 0x03, 0x01]), Sniffed::Plaintext);
    assert_eq!(
        sniff(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
        Sniffed::Plaintext
    );
    // 0x16 followed by something that is not TLS's major version.
    assert_eq!(sniff(&[0x16, 0x00]), Sniffed::Plaintext);
    assert_eq!(sniff(b""), Sniffed::NeedMoreBytes { at_least: 1 });
    assert_eq!(sniff(&[0x16]), Sniffed::NeedMoreBytes { at_least: 2 });
}

#[test]
fn rustls_hello_with_sni_and_istio_alpn() {
    let bytes = rustls_hello(
        "outbound_.8080_._.api.demo.svc.cluster.local",
        &[params::ALPN_ISTIO_HTTP11, params::ALPN_HTTP11],
        false,
    );
    let h = hello(&bytes);
    assert_eq!(
        h.server_name.as_deref(),
        Some("outbound_.8080_._.api.demo.svc.cluster.local")
    );
    assert_eq!(h.alpn_strings(), ["istio-http/1.1", "http/1.1"]);
    assert!(h.offers_any_alpn(params::PERMISSIVE_MTLS_ALPN));
    assert!(h.offers_tls13());
    assert_eq!(h.legacy_version, 0x0303);
    assert_eq!(h.len, bytes.len());

    let h = hello(&rustls_hello("api", &[], true));
    assert!(h.alpn.is_empty());
    assert!(!h.offers_tls13());
    assert!(!h.offers_any_alpn(params::PERMISSIVE_MTLS_ALPN));
}

#[test]
fn every_prefix_of_a_real_hello_asks_for_more() {
    let bytes = rustls_hello("api.demo", &[params::ALPN_ISTIO], false);
    for cut in 0..bytes.len() {
        match sniff(&bytes[..cut]) {
            Sniffed::NeedMoreBytes { at_least } => {
                assert!(at_least > cut, "cut {cut}: at_least {at_least}");
                assert!(at_least <= bytes.len(), "cut {cut}: at_least {at_least}");
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    // Bytes after the hello (early data, the next flight) are ignored.
    let mut more = bytes.clone();
    more.extend_from_slice(b"\x17\x03\x03\x00\x01x");
    assert_eq!(hello(&more).len, bytes.len());
}

/// Re-frames one record's handshake payload into records of at most `size` bytes.
fn fragment(bytes: &[u8], size: usize) -> Vec<u8> {
    let payload = &bytes[5..];
    let mut out = Vec::new();
    for chunk in payload.chunks(size) {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[test]
fn a_hello_split_over_several_records_is_reassembled() {
    let bytes = rustls_hello("api.demo", &[params::ALPN_ISTIO_H2], false);
    for size in [1, 3, 100] {
        let split = fragment(&bytes, size);
        let h = hello(&split);
        assert_eq!(h.server_name.as_deref(), Some("api.demo"));
        assert_eq!(h.alpn_strings(), ["istio-h2"]);
        assert_eq!(h.len, split.len());
        for cut in 0..split.len() {
            assert!(
                matches!(sniff(&split[..cut]), Sniffed::NeedMoreBytes { .. }),
                "size {size} cut {cut}"
            );
        }
    }
}

#[test]
fn malformed_hellos_are_named() {
    let good = rustls_hello("api.demo", &[params::ALPN_ISTIO], false);

    // A handshake record holding a ServerHello (type 2): known from the first body byte.
    let mut wrong_type = good[..6].to_vec();
    wrong_type[5] = 2;
    assert!(malformed_reason(&wrong_type).contains("not a ClientHello"));

    // Record length over 2^14.
    assert!(malformed_reason(&[0x16, 0x03, 0x01, 0x40, 0x01, 0x01]).contains("16384"));
    // Empty record.
    assert!(malformed_reason(&[0x16, 0x03, 0x01, 0x00, 0x00]).contains("empty"));

    // The handshake length claims more than the hello holds, and the next record is not a
    // handshake record.
    let mut long = good.clone();
    long[8] = long[8].wrapping_add(1);
    long.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
    assert!(malformed_reason(&long).contains("content type 23"));

    // A handshake length shorter than the record: bytes after the hello in its record.
    let mut short = good.clone();
    short[8] = short[8].wrapping_sub(1);
    assert!(malformed_reason(&short).contains("after the ClientHello"));

    // A hello over the reassembly limit.
    let mut huge = vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x01];
    huge.extend_from_slice(&((MAX_CLIENT_HELLO_LEN as u32).to_be_bytes()[1..]));
    assert!(malformed_reason(&huge).contains("exceeds the limit"));

    // Structure inside the hello: an extension block whose length runs past the end.
    let body_len = good.len();
    let mut cut = good.clone();
    cut.truncate(body_len - 1);
    // Fix the lengths so the record and message are consistent but the extensions are short.
    let rec_len = (cut.len() - 5) as u16;
    cut[3..5].copy_from_slice(&rec_len.to_be_bytes());
    let msg_len = (cut.len() - 9) as u32;
    cut[6..9].copy_from_slice(&msg_len.to_be_bytes()[1..]);
    let reason = malformed_reason(&cut);
    assert!(reason.contains("runs past the end"), "{reason}");

    // A ClientHello with an empty ALPN name and one with two ALPN extensions.
    let alpn_ext = |names: &[&[u8]]| {
        let mut list = Vec::new();
        for n in names {
            list.push(n.len() as u8);
            list.extend_from_slice(n);
        }
        let mut ext = vec![0x00, 0x10];
        ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
        ext
    };
    let build = |exts: Vec<u8>| {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![0x01];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        rec.extend_from_slice(&msg);
        rec
    };
    assert_eq!(
        hello(&build(alpn_ext(&[b"istio"]))).alpn_strings(),
        ["istio"]
    );
    assert!(malformed_reason(&build(alpn_ext(&[b"istio", b""]))).contains("empty protocol name"));
    let mut twice = alpn_ext(&[b"istio"]);
    twice.extend(alpn_ext(&[b"h2"]));
    assert!(malformed_reason(&build(twice)).contains("appears twice"));
    // No extensions at all is a legal (TLS 1.2) hello.
    let mut bare = build(Vec::new());
    bare.truncate(bare.len() - 2);
    let rec_len = (bare.len() - 5) as u16;
    bare[3..5].copy_from_slice(&rec_len.to_be_bytes());
    let msg_len = (bare.len() - 9) as u32;
    bare[6..9].copy_from_slice(&msg_len.to_be_bytes()[1..]);
    let h = hello(&bare);
    assert!(h.alpn.is_empty() && h.server_name.is_none());
}

#[test]
fn sniffing_never_panics_on_arbitrary_input() {
    // Deterministic pseudo-random mutations of a real hello.
    let good = rustls_hello("api.demo", &[params::ALPN_ISTIO], false);
    let mut state: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = good.clone();
        let pos = (state as usize) % bytes.len();
        bytes[pos] = (state >> 32) as u8;
        let cut = ((state >> 16) as usize) % (bytes.len() + 1);
        let _ = sniff(&bytes[..cut]);
    }
}

/// Accepts one connection and returns the first bytes the client sends.
fn capture(client: impl FnOnce(u16) -> std::process::Child) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = client(port);
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Sniffed::ClientHello(_) | Sniffed::Malformed(_) | Sniffed::Plaintext = sniff(&buf) {
            break;
        }
        let n = sock.read(&mut chunk).unwrap();
        assert!(n > 0, "client closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
    drop(sock);
    let _ = child.kill();
    let _ = child.wait();
    buf
}

#[test]
fn openssl_s_client_hellos() {
    crate::tls_common::require("openssl");
    for (flag, tls13) in [("-tls1_2", false), ("-tls1_3", true)] {
        let bytes = capture(|port| {
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
                .args(["-servername", "api.demo.svc.cluster.local"])
                .args(["-alpn", "istio-peer-exchange,istio", flag])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        let h = hello(&bytes);
        assert_eq!(h.server_name.as_deref(), Some("api.demo.svc.cluster.local"));
        assert_eq!(h.alpn_strings(), ["istio-peer-exchange", "istio"]);
        assert_eq!(h.offers_tls13(), tls13, "{flag}");
    }
}

#[test]
fn curl_hello_and_plaintext_request() {
    crate::tls_common::require("curl");
    let bytes = capture(|port| {
        Command::new("curl")
            .args(["-sk", "--max-time", "5", "--http1.1"])
            .arg(format!("https://localhost:{port}/api/headers"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    let h = hello(&bytes);
    assert_eq!(h.server_name.as_deref(), Some("localhost"));
    assert_eq!(h.alpn_strings(), ["http/1.1"]);
    let bytes = capture(|port| {
        Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/api/headers"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    assert_eq!(sniff(&bytes), Sniffed::Plaintext);
}
