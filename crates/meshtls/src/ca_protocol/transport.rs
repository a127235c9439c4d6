//! The client's transport: a connection meshtls dials itself (so that dial and handshake
//! failures come back as typed errors) with HTTP/2 spoken by h2 directly. The server's is in
//! [`super::h2_server`].

use std::sync::Arc;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::client::status_error;
use super::grpc::{Code, Status, frame, unframe};
use crate::error::CaProtocolError;

pub(crate) type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

/// Dials `address` and completes the TLS handshake, mapping failures to typed errors.
pub(crate) async fn dial(
    address: &str,
    server_name: &ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    timeout: std::time::Duration,
) -> Result<ClientTls, CaProtocolError> {
    let unreachable = |reason: String| CaProtocolError::Unreachable {
        address: address.to_owned(),
        reason,
    };
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| unreachable(format!("no connection within {timeout:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let connector = TlsConnector::from(config);
    let tls = tokio::time::timeout(timeout, connector.connect(server_name.clone(), tcp))
        .await
        .map_err(|_| unreachable(format!("no tls handshake within {timeout:?}")))?
        .map_err(|e| CaProtocolError::Tls {
            address: address.to_owned(),
            server_name: server_name.to_str().into_owned(),
            reason: e.to_string(),
        })?;
    Ok(tls)
}

/// The largest answer the client reads (4 MiB, gRPC's usual default).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One HTTP/2 connection to the CA server, driven by h2 directly: a call queues its HEADERS
/// and its one DATA frame (with END_STREAM) together, so they leave in one write, and no task
/// besides the connection's own runs per call.
#[derive(Clone)]
pub(crate) struct H2Channel {
    send: h2::client::SendRequest<Bytes>,
    uri: http::Uri,
}

impl std::fmt::Debug for H2Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Channel").field("uri", &self.uri).finish()
    }
}

fn h2_unreachable(address: &str, e: &h2::Error) -> CaProtocolError {
    CaProtocolError::Unreachable {
        address: address.to_owned(),
        reason: e.to_string(),
    }
}

/// An h2 failure of one call: the connection gone (unreachable) or the stream reset (the
/// gRPC code of the reset's reason, see [`Status::from_h2`]).
fn call_error(address: &str, e: h2::Error) -> CaProtocolError {
    if e.is_io() || e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return h2_unreachable(address, &e);
    }
    status_error(&Status::from_h2(&e))
}

/// The gRPC code of an answer without `grpc-status` that is not HTTP 200 (gRPC's mapping of
/// HTTP status codes).
fn http_status_code(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

impl H2Channel {
    /// Starts HTTP/2 on a dialled connection; the connection runs as a task of the current
    /// runtime until every clone of the channel is dropped or the peer closes it.
    pub(crate) async fn connect(tls: ClientTls, address: &str) -> Result<Self, CaProtocolError> {
        let uri = http::Uri::try_from(format!(
            "http://{address}{}",
            super::messages::CREATE_CERTIFICATE_PATH
        ))
        .map_err(|e| CaProtocolError::Unreachable {
            address: address.to_owned(),
            reason: e.to_string(),
        })?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(2 * 1024 * 1024)
            .initial_connection_window_size(5 * 1024 * 1024)
            .handshake::<_, Bytes>(tls)
            .await
            .map_err(|e| h2_unreachable(address, &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::debug!("ca client: connection ended: {e}");
            }
        });
        Ok(H2Channel { send, uri })
    }

    /// Whether the connection can take a new call now (waits for a stream slot).
    pub(crate) async fn ready(&self, address: &str) -> Result<(), CaProtocolError> {
        self.send
            .clone()
            .ready()
            .await
            .map(drop)
            .map_err(|e| h2_unreachable(address, &e))
    }

    /// One unary gRPC call of `CreateCertificate` with `headers` (the metadata), `message`
    /// encoded as its body.
    pub(crate) async fn create_certificate(
        &self,
        address: &str,
        headers: http::HeaderMap,
        message: &super::messages::IstioCertificateRequest,
    ) -> Result<super::messages::IstioCertificateResponse, CaProtocolError> {
        let body = frame(message).ok_or_else(|| CaProtocolError::Status {
            code: "RESOURCE_EXHAUSTED".to_owned(),
            message: format!("request of {} bytes", prost::Message::encoded_len(message)),
        })?;
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        let h = request.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        h.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("meshtls/", env!("CARGO_PKG_VERSION"))),
        );
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| h2_unreachable(address, &e))?;
        let (response, mut stream) = send
            .send_request(request, false)
            .map_err(|e| call_error(address, e))?;
        stream
            .send_data(Bytes::from(body), true)
            .map_err(|e| call_error(address, e))?;
        let response = response.await.map_err(|e| call_error(address, e))?;
        let (parts, mut body) = response.into_parts();
        // Trailers-Only (how errors come): the status is in the headers.
        if let Some(status) = Status::from_headers(&parts.headers) {
            if status.code != Code::Ok {
                return Err(status_error(&status));
            }
        }
        if parts.status != http::StatusCode::OK {
            return Err(status_error(&Status::new(
                http_status_code(parts.status),
                format!("http status {}", parts.status),
            )));
        }
        let mut answer: Vec<u8> = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| call_error(address, e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if answer.len() + chunk.len() > MAX_ANSWER + 5 {
                return Err(status_error(&Status::new(
                    Code::ResourceExhausted,
                    format!("answer larger than {MAX_ANSWER} bytes"),
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(|e| call_error(address, e))?;
        let status = trailers
            .as_ref()
            .and_then(Status::from_headers)
            .or_else(|| Status::from_headers(&parts.headers));
        match status {
            Some(s) if s.code == Code::Ok => {}
            Some(s) => return Err(status_error(&s)),
            None => {
                return Err(status_error(&Status::new(
                    Code::Unknown,
                    "answer without grpc-status",
                )));
            }
        }
        decode_answer(&answer)
    }
}

/// The one length-prefixed, uncompressed message of an answer's body.
fn decode_answer(
    body: &[u8],
) -> Result<super::messages::IstioCertificateResponse, CaProtocolError> {
    use prost::Message as _;
    let bad = |why: String| status_error(&Status::new(Code::Internal, why));
    let message = unframe(body, MAX_ANSWER).map_err(|e| bad(format!("answer {e}")))?;
    super::messages::IstioCertificateResponse::decode(message)
        .map_err(|e| bad(format!("answer message: {e}")))
}
