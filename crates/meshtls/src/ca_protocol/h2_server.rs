//! The server's transport: gRPC over HTTP/2 spoken by h2 directly on each TLS connection.
//!
//! One task per connection drives h2 and runs the first call in flight itself; calls that
//! arrive meanwhile get tasks of their own (so the calls of one connection are signed in
//! parallel). A unary call is one length-prefixed message in,
//! one out: the answer's HEADERS, DATA and trailers are queued together and leave in one TLS
//! record, one write; a refusal is a Trailers-Only answer (HEADERS with `grpc-status`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::grpc::{Code, Framing, frame, percent_encode, unframe};
use super::messages::{CREATE_CERTIFICATE_PATH, IstioCertificateRequest};
use super::server::{CallContext, IstioCaServer};

/// The largest request message accepted (64 KiB: a CSR is about 1 KiB).
const MAX_REQUEST_MESSAGE: usize = 64 * 1024;
/// How long a new connection may take to send HTTP/2's preface and settings.
const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call may take to send its request (a client that stops sending loses the
/// call, not the server's memory).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest DATA frame payload of an answer: h2 copies payloads below 256 bytes into its
/// write buffer and writes larger ones from their own buffer, flushing before the frames
/// after them, so small frames let HEADERS, DATA and trailers leave in one write.
const SMALL_FRAME: usize = 255;

/// Serves one TLS connection until the peer closes it, or until `stop` turns true (then it
/// sends GOAWAY and lets the calls in flight finish).
pub(crate) async fn serve_connection(
    server: IstioCaServer,
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    mut stop: watch::Receiver<bool>,
) {
    let chain: Arc<Vec<CertificateDer<'static>>> = Arc::new(
        tls.get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    );
    let handshake = h2::server::Builder::new()
        .initial_window_size(1024 * 1024)
        .initial_connection_window_size(1024 * 1024)
        .max_concurrent_streams(200)
        .max_header_list_size(16 * 1024)
        .max_send_buffer_size(400 * 1024)
        .handshake::<_, Bytes>(tls);
    let mut conn = match tokio::time::timeout(PREFACE_TIMEOUT, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            log::info!("ca server: http/2 handshake failed: {e}");
            return;
        }
        Err(_) => {
            log::info!("ca server: no http/2 preface within {PREFACE_TIMEOUT:?}");
            return;
        }
    };
    // The first call in flight runs inside this task (no task to spawn, no wake-up across
    // tasks for its answer); calls that arrive while it runs get tasks of their own, so a
    // connection that carries many calls at once still signs them in parallel.
    let mut inline: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    let mut calls = JoinSet::new();
    let mut stopping = false;
    loop {
        tokio::select! {
            () = async {
                if let Some(f) = inline.as_mut() {
                    f.await;
                }
            }, if inline.is_some() => inline = None,
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    let call = call(server.clone(), chain.clone(), request, respond);
                    if inline.is_none() {
                        inline = Some(Box::pin(call));
                    } else {
                        calls.spawn(call);
                    }
                }
                Some(Err(e)) => {
                    log::debug!("ca server: connection ended: {e}");
                    break;
                }
                None => break,
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.graceful_shutdown();
            }
        }
    }
}

/// A Trailers-Only answer: HTTP 200 with the gRPC status in the headers.
fn refuse(mut respond: h2::server::SendResponse<Bytes>, code: Code, message: &str) {
    let mut response = Response::new(());
    let h = response.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code as u16));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    let _ = respond.send_response(response, true);
}

/// Why a request could not be read, with its gRPC code (the reason is for the log).
struct BadRequest(Code, &'static str, String);

/// Reads the one request message of a unary call.
async fn read_request(body: &mut h2::RecvStream) -> Result<IstioCertificateRequest, BadRequest> {
    let mut data: Vec<u8> = Vec::new();
    let read = async {
        while let Some(chunk) = body.data().await {
            let chunk = chunk
                .map_err(|e| BadRequest(Code::Cancelled, "request stream failed", e.to_string()))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if data.len() + chunk.len() > 5 + MAX_REQUEST_MESSAGE {
                return Err(BadRequest(
                    Code::ResourceExhausted,
                    "request message too large",
                    format!(
                        "request body over {} bytes (limit {MAX_REQUEST_MESSAGE} bytes a message)",
                        5 + MAX_REQUEST_MESSAGE
                    ),
                ));
            }
            data.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(BadRequest(
                Code::DeadlineExceeded,
                "request not received in time",
                format!("request body not complete within {REQUEST_TIMEOUT:?}"),
            ));
        }
    }
    decode_request(&data)
}

/// The one length-prefixed, uncompressed message of a request body.
fn decode_request(data: &[u8]) -> Result<IstioCertificateRequest, BadRequest> {
    use prost::Message as _;
    let message = unframe(data, MAX_REQUEST_MESSAGE).map_err(|e| {
        let (code, message) = match e {
            Framing::NoMessage { .. } => (Code::Internal, "missing request message"),
            Framing::Compressed => (Code::Unimplemented, "compressed messages are not supported"),
            Framing::BadFlag(_) | Framing::Short { .. } => (Code::Internal, "bad message framing"),
            Framing::TooLarge { .. } => (Code::ResourceExhausted, "request message too large"),
            Framing::Trailing { .. } => (Code::Internal, "more than one request message"),
        };
        BadRequest(code, message, format!("request {e}"))
    })?;
    IstioCertificateRequest::decode(message).map_err(|e| {
        BadRequest(
            Code::Internal,
            "cannot decode the request message",
            e.to_string(),
        )
    })
}

/// One call: route, read, answer.
async fn call(
    server: IstioCaServer,
    chain: Arc<Vec<CertificateDer<'static>>>,
    request: Request<h2::RecvStream>,
    respond: h2::server::SendResponse<Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    if parts.method != Method::POST || parts.uri.path() != CREATE_CERTIFICATE_PATH {
        log::warn!(
            "ca server: UNIMPLEMENTED: {} {} is not a method of this service",
            parts.method,
            parts.uri.path()
        );
        refuse(respond, Code::Unimplemented, "unknown method");
        return;
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_grpc_content_type(content_type) {
        log::warn!("ca server: content-type {content_type:?} is not application/grpc");
        let mut respond = respond;
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        let _ = respond.send_response(response, true);
        return;
    }
    let message = match read_request(&mut body).await {
        Ok(m) => m,
        Err(BadRequest(code, message, reason)) => {
            log::warn!("ca server: {} ({message}): {reason}", code.name());
            refuse(respond, code, message);
            return;
        }
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let ctx = CallContext {
        peer_chain: &chain,
        authorization: header("authorization"),
        cluster_id: header("clusterid"),
    };
    match server.answer(&ctx, &message) {
        Ok((identity, ttl, answer)) => {
            log::info!(
                "ca server: OK: signed a certificate chain of {} entries for {identity}, ttl {}s",
                answer.cert_chain.len(),
                ttl.as_secs()
            );
            send_answer(respond, &answer);
        }
        Err(refusal) => {
            log::warn!(
                "ca server: {} ({}): {}",
                refusal.code,
                refusal.message,
                refusal.reason
            );
            refuse(respond, refusal.grpc_code(), refusal.message);
        }
    }
}

/// `application/grpc`, optionally with a `+format` or `;parameters` suffix.
fn is_grpc_content_type(value: &str) -> bool {
    match value.strip_prefix("application/grpc") {
        Some(rest) => rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'),
        None => false,
    }
}

/// HEADERS, the message in small DATA frames, and the OK trailers, queued together.
fn send_answer(
    mut respond: h2::server::SendResponse<Bytes>,
    answer: &super::messages::IstioCertificateResponse,
) {
    let Some(body) = frame(answer) else {
        refuse(respond, Code::Internal, "certificate signing failed");
        return;
    };
    let mut response = Response::new(());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let Ok(mut stream) = respond.send_response(response, false) else {
        return;
    };
    let mut body = Bytes::from(body);
    while !body.is_empty() {
        let piece = body.split_to(body.len().min(SMALL_FRAME));
        if stream.send_data(piece, false).is_err() {
            return;
        }
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
}

#[cfg(test)]
mod tests {
    use super::super::grpc::tests::framed;
    use super::*;
    use prost::Message as _;

    fn code_of(data: &[u8]) -> Option<Code> {
        decode_request(data).err().map(|BadRequest(c, _, _)| c)
    }

    #[test]
    fn request_framing_rules() {
        let request = IstioCertificateRequest {
            csr: "x".to_owned(),
            validity_duration: 60,
            metadata: None,
        };
        let good = framed(0, &request.encode_to_vec());
        assert_eq!(decode_request(&good).ok(), Some(request));
        assert_eq!(code_of(&[]), Some(Code::Internal));
        assert_eq!(code_of(&good[..4]), Some(Code::Internal));
        assert_eq!(code_of(&good[..good.len() - 1]), Some(Code::Internal));
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert_eq!(code_of(&two), Some(Code::Internal));
        assert_eq!(code_of(&framed(1, b"\x0a\x01x")), Some(Code::Unimplemented));
        assert_eq!(code_of(&framed(7, b"")), Some(Code::Internal));
        assert_eq!(
            code_of(&framed(0, b"\x0a\xff\xff\xff\xff\x0f")),
            Some(Code::Internal)
        );
        let mut huge = vec![0u8];
        huge.extend_from_slice(&(MAX_REQUEST_MESSAGE as u32 + 1).to_be_bytes());
        assert_eq!(code_of(&huge), Some(Code::ResourceExhausted));
    }

    #[test]
    fn grpc_content_type() {
        assert!(is_grpc_content_type("application/grpc"));
        assert!(is_grpc_content_type("application/grpc+proto"));
        assert!(is_grpc_content_type("application/grpc;charset=utf-8"));
        assert!(!is_grpc_content_type("application/grpcx"));
        assert!(!is_grpc_content_type("application/json"));
        assert!(!is_grpc_content_type(""));
    }
}
