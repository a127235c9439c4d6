//! The client's transport: tonic's [`Channel`] over connections meshtls dials itself (TCP,
//! then TLS with the crate's rustls config and the mesh root), so that dial and handshake
//! failures come back as typed errors; the unary call is [`tonic::client::Grpc`] with
//! [`tonic_prost::ProstCodec`]. The server's is in [`super::service`].

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

use super::client::status_error;
use super::messages::{CREATE_CERTIFICATE_PATH, IstioCertificateRequest, IstioCertificateResponse};
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

/// A tonic channel to the CA server: one HTTP/2 connection, dialled again by the channel when
/// the server closed it (a restart, an idle timeout).
#[derive(Debug, Clone)]
pub(crate) struct CaChannel {
    grpc: tonic::client::Grpc<Channel>,
    address: String,
}

/// The failure of a dial or of the connection: the typed error of [`dial`] when it is in the
/// chain (tonic keeps it as the source of its own), else unreachable with the chain's text.
fn transport_error(address: &str, e: &(dyn std::error::Error + 'static)) -> CaProtocolError {
    let mut reasons = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(ours) = err.downcast_ref::<CaProtocolError>() {
            return ours.clone();
        }
        let text = err.to_string();
        if !reasons.contains(&text) {
            reasons.push(text);
        }
        cur = err.source();
    }
    CaProtocolError::Unreachable {
        address: address.to_owned(),
        reason: reasons.join(": "),
    }
}

impl CaChannel {
    /// Dials `address` (TLS with `tls`, checking `server_name`) and starts HTTP/2 on it; the
    /// connection runs as a task of the current runtime until every clone of the channel is
    /// dropped.
    pub(crate) async fn connect(
        address: &str,
        server_name: &ServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
        timeout: std::time::Duration,
    ) -> Result<Self, CaProtocolError> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| transport_error(address, &e))?
            .connect_timeout(timeout)
            .initial_stream_window_size(2 * 1024 * 1024)
            .initial_connection_window_size(5 * 1024 * 1024);
        let (to, name) = (address.to_owned(), server_name.clone());
        let connector = tower::service_fn(move |_: http::Uri| {
            let (to, name, tls) = (to.clone(), name.clone(), tls.clone());
            async move {
                dial(&to, &name, tls, timeout)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        });
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| transport_error(address, &e))?;
        Ok(CaChannel {
            grpc: tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_ANSWER),
            address: address.to_owned(),
        })
    }

    /// One unary gRPC call of `CreateCertificate` with `metadata`.
    pub(crate) async fn create_certificate(
        &self,
        metadata: MetadataMap,
        message: IstioCertificateRequest,
    ) -> Result<IstioCertificateResponse, CaProtocolError> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| transport_error(&self.address, &e))?;
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = metadata;
        let path = http::uri::PathAndQuery::from_static(CREATE_CERTIFICATE_PATH);
        match grpc
            .unary(request, path, tonic_prost::ProstCodec::default())
            .await
        {
            Ok(answer) => Ok(answer.into_inner()),
            // A status with a source came from the transport (the connection failed or was
            // closed, a stream was reset), not from the server: tonic makes the server's from
            // its trailers, its own decoding failures without one.
            Err(status) => match std::error::Error::source(&status) {
                Some(source) => Err(transport_error(&self.address, source)),
                None => Err(status_error(&status)),
            },
        }
    }
}
