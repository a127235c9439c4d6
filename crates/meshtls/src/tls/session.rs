//! Sans-I/O mesh mTLS: a connection whose bytes the caller moves.
//!
//! [`MtlsSession`] wraps a rustls client or server connection built from meshtls's configs, for
//! runtimes that own the socket themselves (Python's blocking sockets and asyncio transports,
//! an embedded event loop): feed received bytes with [`MtlsSession::receive`], send what
//! [`MtlsSession::take_outgoing`] hands out, read and write application data once the
//! handshake is over. The peer is verified and authorized inside the handshake by the same
//! verifiers as every other meshtls config, and [`MtlsSession::write`] refuses application
//! data until the handshake has completed and the peer has been checked, so nothing is ever
//! sent to a peer meshtls did not accept.
//!
//! [`Sniffer`] is the same for the inbound side of a port with an mTLS mode: it applies
//! [`InboundAcceptor::route`] to the first bytes as they arrive and starts the right path.

use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::{CertificateError, Connection, OtherError};

use super::acceptor::{InboundAcceptor, Route, append_first_read};
use super::client::MtlsClientConfig;
use super::common::{check_connection, config_error};
use super::peer::Peer;
use super::server::MtlsServerConfig;
use super::sniff::ClientHelloInfo;
use super::verifier::{PeerPolicy, explain};
use crate::error::{Error, TlsError};

/// What [`MtlsSession::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plaintext {
    /// This many bytes were copied into the buffer.
    Data(usize),
    /// Nothing is buffered: receive more bytes first.
    NeedMoreBytes,
    /// The peer closed the connection. `clean` is false when the transport ended without a
    /// TLS `close_notify` (a truncation the application may care about).
    Closed {
        /// Whether the peer sent `close_notify`.
        clean: bool,
    },
}

/// A mesh mTLS connection driven by the caller's I/O: feed it what the network delivered
/// ([`MtlsSession::receive`]), send what [`MtlsSession::take_outgoing`] hands out, and read
/// and write application data once the peer has been verified and authorized.
///
/// ```
/// # fn demo(client: &meshtls::tls::MtlsClientConfig, server: &meshtls::tls::MtlsServerConfig)
/// #     -> Result<(), meshtls::Error> {
/// let mut c = client.session(None)?;
/// let mut s = server.session()?;
/// let mut wire = Vec::new();
/// while c.is_handshaking() || s.is_handshaking() {
///     wire.clear();
///     c.take_outgoing(&mut wire);
///     s.receive(&wire)?;
///     wire.clear();
///     s.take_outgoing(&mut wire);
///     c.receive(&wire)?;
/// }
/// assert_eq!(c.peer().map(|p| p.spiffe_id()), Some(&server.material().spiffe_id()));
/// # Ok(()) }
/// ```
pub struct MtlsSession {
    conn: Connection,
    policy: Arc<PeerPolicy>,
    peer: Option<Peer>,
    plaintext: Vec<u8>,
    read_pos: usize,
    closed: Option<bool>,
    failed: Option<String>,
}

impl std::fmt::Debug for MtlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsSession")
            .field("client", &self.is_client())
            .field("handshaking", &self.is_handshaking())
            .field(
                "peer",
                &self.peer.as_ref().map(|p| p.spiffe_id().to_string()),
            )
            .finish_non_exhaustive()
    }
}

const NOT_ESTABLISHED: &str = "the handshake has not completed: no application data is sent before the peer is verified and authorized";

impl MtlsSession {
    fn new(conn: Connection, policy: Arc<PeerPolicy>) -> Self {
        let mut conn = conn;
        // Plaintext written by the caller is encrypted into the outgoing buffer at once; the
        // caller holds the data anyway and drains the buffer with `take_outgoing`.
        conn.set_buffer_limit(None);
        MtlsSession {
            conn,
            policy,
            peer: None,
            plaintext: Vec::new(),
            read_pos: 0,
            closed: None,
            failed: None,
        }
    }

    /// True for the client (gateway) side.
    pub fn is_client(&self) -> bool {
        matches!(self.conn, Connection::Client(_))
    }

    /// True until the handshake has completed and the peer has been checked.
    pub fn is_handshaking(&self) -> bool {
        self.peer.is_none()
    }

    /// The verified and authorized peer, once the handshake has completed.
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    /// Feeds bytes received from the network.
    ///
    /// Handshake failures carry the verifier's own error when it refused the peer
    /// ([`Error::Authz`] for an unauthorized SPIFFE ID, [`Error::Svid`] for a chain that does
    /// not verify against the bundle of its trust domain), otherwise [`TlsError::Handshake`].
    /// After an error, send what [`MtlsSession::take_outgoing`] returns (the alert telling the
    /// peer why) and close the transport.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(reason) = &self.failed {
            return Err(TlsError::Handshake {
                reason: reason.clone(),
            }
            .into());
        }
        let mut rest = data;
        while !rest.is_empty() {
            self.conn
                .read_tls(&mut rest)
                .map_err(|e| self.fail_io("reading tls records", &e))?;
            self.process()?;
        }
        Ok(())
    }

    /// Tells the session that the transport reached end of file.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        if self.closed.is_some() {
            return Ok(());
        }
        // A zero-length read is how rustls learns of EOF.
        self.conn
            .read_tls(&mut io::empty())
            .map_err(|e| self.fail_io("reading tls records", &e))?;
        self.process()?;
        if self.peer.is_none() {
            let reason = "the peer closed the connection during the handshake".to_owned();
            self.failed = Some(reason.clone());
            return Err(TlsError::Handshake { reason }.into());
        }
        if self.closed.is_none() {
            self.closed = Some(false);
        }
        Ok(())
    }

    fn fail_io(&mut self, during: &'static str, e: &io::Error) -> Error {
        let reason = e.to_string();
        self.failed = Some(reason.clone());
        TlsError::Io { during, reason }.into()
    }

    fn process(&mut self) -> Result<(), Error> {
        let state = match self.conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                self.failed = Some(explain(&e));
                return Err(handshake_error(&e));
            }
        };
        if self.peer.is_none() && !self.conn.is_handshaking() {
            match check_connection(&self.policy, &self.conn) {
                Ok(peer) => self.peer = Some(peer),
                Err(e) => {
                    self.failed = Some(e.to_string());
                    self.conn.send_close_notify();
                    return Err(e);
                }
            }
        }
        if state.plaintext_bytes_to_read() > 0 {
            let mut chunk = vec![0u8; state.plaintext_bytes_to_read()];
            let mut filled = 0;
            while filled < chunk.len() {
                match self.conn.reader().read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(_) => break,
                }
            }
            self.plaintext.extend_from_slice(&chunk[..filled]);
        }
        if state.peer_has_closed() {
            self.closed = Some(true);
        }
        Ok(())
    }

    /// Appends the bytes to send to the network (handshake messages, encrypted application
    /// data, alerts) to `out`.
    pub fn take_outgoing(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// True when [`MtlsSession::take_outgoing`] has bytes to hand out.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Copies received application data into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> Plaintext {
        let available = &self.plaintext[self.read_pos..];
        if !available.is_empty() {
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            self.read_pos += n;
            if self.read_pos == self.plaintext.len() {
                self.plaintext.clear();
                self.read_pos = 0;
            }
            return Plaintext::Data(n);
        }
        match self.closed {
            Some(clean) => Plaintext::Closed { clean },
            None => Plaintext::NeedMoreBytes,
        }
    }

    /// How many bytes of application data are buffered for [`MtlsSession::read`].
    pub fn buffered(&self) -> usize {
        self.plaintext.len() - self.read_pos
    }

    /// Encrypts application data for sending (then call [`MtlsSession::take_outgoing`]).
    /// Refused until the handshake has completed and the peer has been accepted.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(reason) = &self.failed {
            return Err(TlsError::Handshake {
                reason: reason.clone(),
            }
            .into());
        }
        if self.peer.is_none() {
            return Err(TlsError::Handshake {
                reason: NOT_ESTABLISHED.to_owned(),
            }
            .into());
        }
        let written = self.conn.writer().write_all(data);
        written.map_err(|e| self.fail_io("writing application data", &e))
    }

    /// Queues a TLS `close_notify` (send it with [`MtlsSession::take_outgoing`]).
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }
}

/// A handshake error, keeping meshtls's typed verdict when its verifier refused the peer.
fn handshake_error(e: &rustls::Error) -> Error {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = e {
        match inner.downcast_ref::<Error>() {
            Some(Error::Authz(a)) => return a.clone().into(),
            Some(Error::Svid(s)) => return s.clone().into(),
            Some(Error::Tls(t)) => return t.clone().into(),
            _ => {}
        }
    }
    TlsError::Handshake { reason: explain(e) }.into()
}

impl MtlsClientConfig {
    /// A sans-I/O client session (see [`MtlsSession`]); `server_name` goes into SNI only, as
    /// in [`MtlsClientConfig::connect`].
    pub fn session(&self, server_name: Option<&str>) -> Result<MtlsSession, Error> {
        let conn = self.connect(server_name)?;
        Ok(MtlsSession::new(
            Connection::Client(conn),
            Arc::clone(self.policy()),
        ))
    }
}

impl MtlsServerConfig {
    /// A sans-I/O server session on [`MtlsServerConfig::rustls_config`].
    pub fn session(&self) -> Result<MtlsSession, Error> {
        Ok(MtlsSession::new(
            Connection::Server(self.new_connection()?),
            Arc::clone(self.policy()),
        ))
    }

    /// A sans-I/O server session for a connection whose ClientHello is `hello` (see
    /// [`MtlsServerConfig::config_for`]).
    pub fn session_for(&self, hello: &ClientHelloInfo) -> Result<MtlsSession, Error> {
        let conn = rustls::ServerConnection::new(self.config_for(hello)).map_err(config_error)?;
        Ok(MtlsSession::new(
            Connection::Server(conn),
            Arc::clone(self.policy()),
        ))
    }
}

/// Where [`Sniffer`] sends a connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Started {
    /// Terminate mTLS: feed `first_bytes` (the bytes the sniffer saw) into `session` first,
    /// then continue with the connection.
    Mtls {
        /// A fresh server session for this ClientHello.
        session: Box<MtlsSession>,
        /// The bytes read so far, to be fed into the session.
        first_bytes: Vec<u8>,
    },
    /// Pass the connection through: `first_bytes` come before the rest of the stream.
    Plaintext {
        /// The bytes read so far, to be replayed to the application.
        first_bytes: Vec<u8>,
        /// The ClientHello of TLS without an Istio ALPN under PERMISSIVE.
        tls: Option<ClientHelloInfo>,
    },
}

/// The sans-I/O form of [`InboundAcceptor::accept`]: feed it the first bytes of a connection
/// as they arrive until it says where the connection goes.
#[derive(Debug, Clone)]
pub struct Sniffer {
    acceptor: InboundAcceptor,
    first: Vec<u8>,
}

impl InboundAcceptor {
    /// A [`Sniffer`] for one inbound connection, applying this acceptor's mode.
    pub fn sniffer(&self) -> Sniffer {
        Sniffer {
            acceptor: self.clone(),
            first: Vec::new(),
        }
    }
}

impl Sniffer {
    /// The verdict on the bytes seen so far: `None` means "receive more". DISABLE decides
    /// before any byte arrives (protocols where the server speaks first keep working).
    /// A refusal is [`TlsError::Refused`].
    pub fn verdict(&mut self) -> Result<Option<Started>, Error> {
        let Some(route) = self.acceptor.route(&self.first) else {
            return Ok(None);
        };
        let first_bytes = std::mem::take(&mut self.first);
        match route {
            Route::Refuse(reason) => Err(self.acceptor.refused(reason)),
            Route::Plaintext { tls } => Ok(Some(Started::Plaintext { first_bytes, tls })),
            Route::Mtls(hello) => Ok(Some(Started::Mtls {
                session: Box::new(self.acceptor.server().session_for(&hello)?),
                first_bytes,
            })),
        }
    }

    /// Adds bytes received from the connection and returns [`Sniffer::verdict`]. An empty
    /// `data` means the peer closed the connection before the route was known (an error).
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Started>, Error> {
        append_first_read(&mut self.first, data)?;
        self.verdict()
    }
}
