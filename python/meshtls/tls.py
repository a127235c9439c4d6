"""Mesh mTLS for Python, two ways: the rustls path (SPIFFE checks inside the handshake) and the
``ssl`` path (Python's :mod:`ssl` plus a check after the handshake).

**The rustls path** (recommended when Python owns the socket):

- :func:`connect` / :meth:`ClientConfig.connect` return a :class:`TlsSocket`
  (``sendall``/``recv``/``makefile``/``close``, a context manager) whose peer was verified as an
  X.509-SVID against the bundle of *its own* trust domain and authorized (expected SPIFFE IDs,
  an :class:`~meshtls.Authorizer` or a callable) **inside the handshake**, by the same rustls
  verifiers as the Rust core; a refused peer aborts the handshake with
  :class:`~meshtls.PeerAuthorizationError` or :class:`~meshtls.PeerVerificationError` and no
  application byte is ever sent to it.
- :func:`open_connection` / :meth:`ClientConfig.open_connection`: the same for asyncio, as an
  ``(asyncio.StreamReader, asyncio.StreamWriter)`` pair.
- :func:`serve` / :class:`Listener`: the sidecar side for tests and simple sidecars, applying a
  port's mode (STRICT, PERMISSIVE, DISABLE, or a resolved :class:`~meshtls.Decision`) exactly as
  the core's acceptor does: plaintext refused under STRICT, TLS without an Istio ALPN passed
  through under PERMISSIVE.
- :class:`TlsMaterial` holds the own SVID and the bundles; ``set_svid`` and ``set_bundles``
  rotate them in place for every config and listener built from it.
- Istio's ALPN values and TLS 1.2 cipher list are the core's (``meshtls::tls::params``).

The native pieces are sans-I/O (:class:`TlsSession`): Python moves the bytes, the core does
the TLS and the checks with the GIL released, so the same code serves blocking sockets and
asyncio without handing file descriptors to Rust.

**The ssl path** (kept for code built on :class:`ssl.SSLContext`):

- :func:`client_context` / :func:`server_context` build an :class:`ssl.SSLContext` from an
  :class:`~meshtls.Svid` (certificate chain and key) and trust bundles, with Istio's protocol
  versions, cipher list and ALPN values.
- :func:`check_peer` runs after the handshake: it verifies the peer's certificate as an
  X.509-SVID with meshtls (against the bundle of *its own* trust domain), checks the accepted
  trust domains and the expected SPIFFE IDs, and returns the peer's :class:`~meshtls.SpiffeId`
  or closes the socket and raises.

Limits of Python's ``ssl`` for SPIFFE, stated plainly (the rustls path has none of them):

- **One merged CA store.** OpenSSL verifies the chain against every root loaded into the
  context, whatever its trust domain; it cannot pick the bundle by the peer's trust domain
  during the handshake. :func:`check_peer` therefore verifies again with meshtls, bundle by
  trust domain, before any application data is trusted. Until it has run, a certificate from
  trust domain A that chains to trust domain B's root has been *accepted by OpenSSL*.
- **The SAN is checked only after the handshake.** ``check_hostname`` must be off (mesh
  certificates have no DNS names), so the SPIFFE ID is compared in :func:`check_peer`. Code
  that sends data before calling it sends data to an unauthenticated peer.
- **Intermediates.** Before Python 3.13 ``ssl`` does not expose the peer's chain, only its
  leaf; :func:`check_peer` then verifies the leaf alone, which works when the bundle holds
  the leaf's issuer (Istio's self-signed root, or a bundle that lists the intermediate) and
  fails closed otherwise.
- **Session resumption** is disabled on server contexts (``OP_NO_TICKET``); :func:`check_peer`
  re-verifies on every connection anyway, so a resumed session never skips authorization.
- **Private keys.** ``SSLContext.load_cert_chain`` only reads files. On Linux the key is
  handed over through an anonymous in-memory file (``os.memfd_create``) read via
  ``/proc/self/fd``: it never touches a file system and disappears when the descriptor is
  closed, right after loading. Elsewhere it goes to a ``0600`` file inside a fresh ``0700``
  temporary directory, removed (file and directory) immediately after loading. Python strings
  cannot be zeroized; the PEM text lives until garbage collection.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import io
import os
import select
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

from . import _meshtls as _native
from ._errors import InvalidArgumentError, MeshTlsError, TlsConnectionError, TlsError
from ._policy import MtlsMode

__all__ = [
    "ALPN_H2",
    "ALPN_HTTP11",
    "ALPN_ISTIO",
    "ALPN_ISTIO_H2",
    "ALPN_ISTIO_HTTP10",
    "ALPN_ISTIO_HTTP11",
    "ALPN_ISTIO_PEER_EXCHANGE",
    "DEFAULT_TIMEOUT",
    "GATEWAY_HTTP11_ALPN",
    "ISTIO_TLS12_CIPHERS",
    "MTLS_HTTP_ALPN",
    "PERMISSIVE_MTLS_ALPN",
    "SIDECAR_CLIENT_TCP_ALPN",
    "SIDECAR_HTTP_ALPN",
    "SIDECAR_TCP_ALPN",
    "ClientConfig",
    "ClientHello",
    "Listener",
    "Peer",
    "PlainSocket",
    "ServerConfig",
    "TlsMaterial",
    "TlsSession",
    "TlsSocket",
    "check_peer",
    "client_context",
    "connect",
    "open_connection",
    "serve",
    "server_context",
    "start_server",
]

# Istio's values, from the core (``meshtls::tls::params``): one source of truth.
ALPN_ISTIO: str = _native.ALPN_ISTIO
ALPN_ISTIO_PEER_EXCHANGE: str = _native.ALPN_ISTIO_PEER_EXCHANGE
ALPN_ISTIO_HTTP10: str = _native.ALPN_ISTIO_HTTP10
ALPN_ISTIO_HTTP11: str = _native.ALPN_ISTIO_HTTP11
ALPN_ISTIO_H2: str = _native.ALPN_ISTIO_H2
ALPN_H2: str = _native.ALPN_H2
ALPN_HTTP11: str = _native.ALPN_HTTP11
#: A ClientHello offering one of these reaches a PERMISSIVE sidecar's mTLS chain.
PERMISSIVE_MTLS_ALPN: tuple[str, ...] = _native.PERMISSIVE_MTLS_ALPN
#: Istio's ``mtlsHTTPALPNs``: what an outbound sidecar sends for HTTP.
MTLS_HTTP_ALPN: tuple[str, ...] = _native.MTLS_HTTP_ALPN
#: What an inbound sidecar advertises on TCP filter chains.
SIDECAR_TCP_ALPN: tuple[str, ...] = _native.SIDECAR_TCP_ALPN
#: What an inbound sidecar advertises on HTTP filter chains.
SIDECAR_HTTP_ALPN: tuple[str, ...] = _native.SIDECAR_HTTP_ALPN
#: What an outbound sidecar offers on ISTIO_MUTUAL TCP clusters.
SIDECAR_CLIENT_TCP_ALPN: tuple[str, ...] = _native.SIDECAR_CLIENT_TCP_ALPN
#: What a gateway offers by default: ``istio-http/1.1`` (so a PERMISSIVE sidecar picks its
#: mTLS chain), then ``http/1.1``.
GATEWAY_HTTP11_ALPN: tuple[str, ...] = _native.GATEWAY_HTTP11_ALPN
#: Istio's default TLS 1.2 cipher list (``SupportedCiphers``), in Istio's order. OpenSSL (the
#: ssl path) can offer all six; rustls offers the four ECDHE ones (no static-RSA key exchange).
ISTIO_TLS12_CIPHERS: tuple[str, ...] = _native.ISTIO_TLS12_CIPHERS

#: Seconds allowed for connecting and for each blocking socket operation afterwards.
DEFAULT_TIMEOUT = 30.0

TlsMaterial = _native.TlsMaterial
Peer = _native.Peer
ClientHello = _native.ClientHello
TlsSession = _native.TlsSession

_VERSIONS = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

Bundles = Any  # a meshtls.BundleSet, a meshtls.TrustBundle, PEM text, or {trust domain: PEM}


def _roots_pem(bundles: Bundles) -> str:
    """All roots of all trust domains, as one PEM string (OpenSSL's merged store)."""
    if isinstance(bundles, str):
        return bundles
    if isinstance(bundles, Mapping):
        return "".join(_roots_pem(v) for v in bundles.values())
    to_pem_map = getattr(bundles, "to_pem_map", None)  # BundleSet
    if callable(to_pem_map):
        return "".join(to_pem_map().values())
    to_pem = getattr(bundles, "to_pem", None)  # TrustBundle
    if callable(to_pem):
        text = to_pem()
        if isinstance(text, str):
            return text
    raise TypeError(f"cannot read trust bundles from {type(bundles).__name__!r}: expected a BundleSet, a TrustBundle, PEM text or a mapping of trust domain to PEM")


def _version(value: Union[str, ssl.TLSVersion]) -> ssl.TLSVersion:
    if isinstance(value, ssl.TLSVersion):
        return value
    try:
        return _VERSIONS[value]
    except KeyError:
        raise TlsError(f"unknown TLS version {value!r}: expected '1.2' or '1.3'") from None


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """A path from which ``text`` can be read once, without leaving a file behind."""
    data = text.encode("ascii")
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("meshtls-svid", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="meshtls-")  # mode 0700
    path = os.path.join(directory, "svid.pem")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.rmdir(directory)


def _load_svid(ctx: ssl.SSLContext, svid: Any) -> None:
    chain = getattr(svid, "cert_chain_pem", None)
    key = getattr(svid, "private_key_pem", None)
    if not isinstance(chain, str) or not isinstance(key, str):
        raise TypeError(f"{type(svid).__name__!r} is not an Svid: it needs cert_chain_pem and private_key_pem text")
    with _pem_file(key + chain) as path:
        try:
            ctx.load_cert_chain(path)
        except ssl.SSLError as e:
            raise TlsError(f"cannot load the SVID of {getattr(svid, 'spiffe_id', '?')}: {e}") from None


def _base_context(
    protocol: int,
    svid: Any,
    bundles: Bundles,
    min_version: Union[str, ssl.TLSVersion],
    max_version: Union[str, ssl.TLSVersion],
    alpn: Sequence[str],
    ciphers: Sequence[str],
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = _version(min_version)
    ctx.maximum_version = _version(max_version)
    if ctx.minimum_version > ctx.maximum_version:
        raise TlsError(f"protocol version range {min_version}..{max_version} is empty")
    try:
        ctx.set_ciphers(":".join(ciphers))
    except ssl.SSLError as e:
        raise TlsError(f"no usable cipher in {list(ciphers)}: {e}") from None
    roots = _roots_pem(bundles)
    if "-----BEGIN CERTIFICATE-----" not in roots:
        raise TlsError("the trust bundles hold no certificate")
    ctx.load_verify_locations(cadata=roots)
    _load_svid(ctx, svid)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_context(
    svid: Any,
    bundles: Bundles,
    *,
    min_version: Union[str, ssl.TLSVersion] = "1.2",
    max_version: Union[str, ssl.TLSVersion] = "1.3",
    alpn: Sequence[str] = GATEWAY_HTTP11_ALPN,
    ciphers: Sequence[str] = ISTIO_TLS12_CIPHERS,
) -> ssl.SSLContext:
    """The ssl path. A gateway-side context: presents ``svid``, verifies the sidecar's chain against the
    bundles' roots (merged, see the module notes), offers an Istio ALPN so that a PERMISSIVE
    sidecar selects its mTLS chain. Host names are not checked: call :func:`check_peer` with
    the expected SPIFFE IDs right after the handshake."""
    ctx = _base_context(ssl.PROTOCOL_TLS_CLIENT, svid, bundles, min_version, max_version, alpn, ciphers)
    ctx.check_hostname = False
    return ctx


def server_context(
    svid: Any,
    bundles: Bundles,
    *,
    min_version: Union[str, ssl.TLSVersion] = "1.2",
    max_version: Union[str, ssl.TLSVersion] = "1.3",
    alpn: Sequence[str] = (ALPN_HTTP11,),
    ciphers: Sequence[str] = ISTIO_TLS12_CIPHERS,
) -> ssl.SSLContext:
    """The ssl path. A sidecar-side context: presents ``svid`` and requires a client certificate chaining to
    the bundles' roots; session tickets are off. Call :func:`check_peer` after each
    handshake to apply the SPIFFE rules and the trust-domain allow-list."""
    ctx = _base_context(ssl.PROTOCOL_TLS_SERVER, svid, bundles, min_version, max_version, alpn, ciphers)
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def _peer_chain(sock: ssl.SSLSocket) -> list[bytes]:
    leaf = sock.getpeercert(binary_form=True)
    if not leaf:
        raise TlsError("the peer presented no certificate")
    get_chain = getattr(sock, "get_unverified_chain", None)  # Python 3.13+
    if get_chain is not None:
        ders = [c for c in (get_chain() or []) if isinstance(c, bytes)]
        if ders and ders[0] == leaf:
            return ders
    return [leaf]


def check_peer(
    sock: ssl.SSLSocket,
    bundles: Any,
    *,
    expected: Optional[Iterable[Any]] = None,
    trust_domains: Optional[Iterable[Any]] = None,
    authorize: Any = None,
    close: bool = True,
) -> Any:
    """The ssl path. Verifies the peer of a finished handshake the SPIFFE way and returns its ``SpiffeId``.

    ``bundles`` is a :class:`~meshtls.BundleSet` or a mapping of trust domain to PEM roots
    (verification uses the bundle of the peer's own trust domain only). ``expected`` lists
    acceptable SPIFFE IDs (exact match), ``trust_domains`` acceptable trust domains, and
    ``authorize`` is any :class:`~meshtls.Authorizer` or ``Callable[[SpiffeId], bool]``. On
    failure the socket is closed (unless ``close=False``) and :class:`~meshtls.SvidError`,
    :class:`~meshtls.AuthorizationError` or :class:`~meshtls.TlsError` is raised.
    """
    # the binding; imported late to keep this module importable
    from . import Authorizer, verify_svid

    try:
        # Every check is one of the core's authorizers, so the rules and the refusal messages
        # are the same as on the Rust side.
        checks: list[Any] = []
        if trust_domains is not None:
            checks.append(Authorizer.member_of(list(trust_domains)))
        if expected is not None:
            checks.append(Authorizer.one_of(list(expected)))
        if authorize is not None:
            checks.append(authorize)
        authorizer = checks[0] if len(checks) == 1 else Authorizer.all_of(checks) if checks else None
        chain = _peer_chain(sock)
        return verify_svid(chain, bundles, authorizer=authorizer)
    except BaseException:
        if close:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        raise


# ---- the rustls path ---------------------------------------------------------------------

_READ_SIZE = 65536
_Address = Any  # (host, port), as for socket.create_connection
_Versionish = Union[str, ssl.TLSVersion]


def _optional_version(value: Optional[_Versionish]) -> Optional[str]:
    return None if value is None else _version_text(value)


def _version_text(value: _Versionish) -> str:
    if isinstance(value, str):
        return value
    if value == ssl.TLSVersion.TLSv1_2:
        return "1.2"
    if value == ssl.TLSVersion.TLSv1_3:
        return "1.3"
    return value.name  # the core refuses it, naming it


def _material(svid: Any, bundles: Any) -> Any:
    if isinstance(svid, TlsMaterial):
        if bundles is not None:
            raise InvalidArgumentError("a TlsMaterial holds its own bundles: pass bundles=None (use TlsMaterial.set_bundles to change them)")
        return svid
    from . import Svid

    if not isinstance(svid, Svid):
        raise TypeError(f"{type(svid).__name__!r} is neither an Svid nor a TlsMaterial")
    if bundles is None:
        raise TypeError("bundles are required with an Svid: a BundleSet or a dict mapping trust domains to PEM roots")
    return TlsMaterial(svid, bundles)


def _ids(expected: Any) -> list[Any]:
    if expected is None:
        return []
    from . import SpiffeId

    if isinstance(expected, (str, SpiffeId)):
        return [expected]
    return list(expected)


def _mode_text(mode: Any) -> str:
    from . import Decision

    if isinstance(mode, Decision):
        mode = mode.mode
    return str(mode)


def _no_delay(sock: socket.socket) -> None:
    """Every write is a whole TLS flight or record: Nagle's algorithm would only hold the first
    application record back behind the client's Finished (a delayed-ACK wait of ~40 ms in TLS
    1.3, where the server answers nothing in between). asyncio sets this on its sockets too."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _send_alert(sock: socket.socket, session: Any) -> None:
    """Best effort: tell the peer why (the alert rustls queued), then give up."""
    out = session.take_outgoing()
    if out:
        with contextlib.suppress(OSError):
            sock.sendall(out)


def _handshake(sock: socket.socket, session: Any, initial: bytes = b"") -> None:
    """Drives ``session``'s handshake over a blocking socket. On any failure the alert is sent
    and the error raised; the caller closes the socket."""
    try:
        if initial:
            session.receive(initial)
        while True:
            out = session.take_outgoing()
            if out:
                sock.sendall(out)
            if not session.is_handshaking:
                return
            data = sock.recv(_READ_SIZE)
            if data:
                session.receive(data)
            else:
                session.receive_eof()
    except MeshTlsError:
        _send_alert(sock, session)
        raise
    except socket.timeout:
        raise TlsConnectionError(f"tls handshake timed out after {sock.gettimeout()} s") from None
    except OSError as e:
        raise TlsConnectionError(f"tls handshake failed: {e}") from e


class _SocketIO(io.RawIOBase):
    """The raw stream under :meth:`TlsSocket.makefile` (closing it leaves the socket open)."""

    def __init__(self, conn: Any, reading: bool, writing: bool) -> None:
        super().__init__()
        self._conn = conn
        self._reading = reading
        self._writing = writing

    def readable(self) -> bool:
        return self._reading

    def writable(self) -> bool:
        return self._writing

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._conn.recv(len(view))
        view[: len(data)] = data
        return len(data)

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._conn.sendall(data)
        return len(data)


class _Stream(abc.ABC):
    """What :class:`TlsSocket` and :class:`PlainSocket` share: the socket they run on. The
    byte-moving methods are abstract: each subclass defines them for its own stream."""

    _sock: socket.socket

    @abc.abstractmethod
    def recv(self, bufsize: int = _READ_SIZE, flags: int = 0) -> bytes:
        """Receives at most ``bufsize`` bytes; ``b""`` at the end of the stream."""

    @abc.abstractmethod
    def sendall(self, data: Any) -> None:
        """Sends all of ``data``."""

    def send(self, data: Any) -> int:
        """Sends all of ``data`` (like :meth:`sendall`) and returns its length."""
        view = memoryview(data)
        self.sendall(view)
        return view.nbytes

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receives up to ``nbytes`` (default: the buffer's size) into ``buffer``; returns the
        count, 0 at end of stream."""
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def makefile(
        self,
        mode: str = "r",
        buffering: Optional[int] = None,
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> Any:
        """A file object over the connection, as :meth:`socket.socket.makefile` returns
        (modes ``r``, ``w``, ``rw``, with ``b`` for bytes). Closing the file leaves the
        connection open."""
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r}: only 'r', 'w' and 'b' are supported")
        writing = "w" in mode
        reading = "r" in mode or not writing
        binary = "b" in mode
        raw = _SocketIO(self, reading, writing)
        if buffering is None or buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        buffer: Any
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        return io.TextIOWrapper(buffer, encoding, errors, newline)

    def fileno(self) -> int:
        """The underlying socket's file descriptor (-1 once closed)."""
        return self._sock.fileno()

    def getpeername(self) -> Any:
        """The remote address of the underlying socket."""
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        """The local address of the underlying socket."""
        return self._sock.getsockname()

    def settimeout(self, timeout: Optional[float]) -> None:
        """Sets the timeout of each blocking operation (``None``: block forever)."""
        self._sock.settimeout(timeout)

    def gettimeout(self) -> Optional[float]:
        """The timeout of each blocking operation."""
        return self._sock.gettimeout()

    @abc.abstractmethod
    def close(self) -> None:
        """Closes the stream and its socket."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TlsSocket(_Stream):
    """An established mesh mTLS connection over a blocking socket (the rustls path).

    Made by :func:`connect`, :meth:`ClientConfig.connect` and :meth:`Listener.accept`; its peer
    was verified and authorized inside the handshake. Socket-like: ``sendall``, ``send``,
    ``recv``, ``recv_into``, ``makefile``, ``close``, ``fileno``, ``settimeout``, and a context
    manager. ``recv`` returns ``b""`` once the peer has closed (with or without
    ``close_notify``, like :mod:`ssl`'s default). One thread may read while another writes.
    """

    def __init__(self, sock: socket.socket, session: Any) -> None:
        """Wraps a socket whose handshake ``session`` has completed (use :func:`connect`)."""
        if session.is_handshaking:
            raise TlsError("the session's handshake has not completed: use meshtls.tls.connect or Listener.accept")
        self._sock = sock
        self._session = session
        self._peer = session.peer
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._closed = False

    @property
    def session(self) -> Any:
        """The native :class:`TlsSession` (sans-I/O state) of this connection."""
        return self._session

    @property
    def peer(self) -> Any:
        """The verified and authorized peer (:class:`Peer`)."""
        return self._peer

    @property
    def peer_spiffe_id(self) -> Any:
        """The peer's :class:`~meshtls.SpiffeId`."""
        return self._peer.spiffe_id

    @property
    def version(self) -> Optional[str]:
        """The negotiated protocol: ``"TLSv1.2"`` or ``"TLSv1.3"``."""
        return self._peer.version  # type: ignore[no-any-return]

    @property
    def cipher(self) -> Optional[str]:
        """The negotiated cipher suite's IANA name (e.g. ``"TLS13_AES_128_GCM_SHA256"``)."""
        return self._peer.cipher  # type: ignore[no-any-return]

    @property
    def alpn(self) -> Optional[str]:
        """The negotiated ALPN protocol, or ``None``."""
        return self._peer.alpn  # type: ignore[no-any-return]

    @property
    def server_side(self) -> bool:
        """True for a connection accepted by a :class:`Listener`."""
        return not self._session.is_client  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def _flush(self) -> None:
        out = self._session.take_outgoing()
        if out:
            self._sock.sendall(out)

    def sendall(self, data: Any) -> None:
        """Encrypts and sends all of ``data`` (bytes-like)."""
        if self._closed:
            raise TlsError("the connection is closed")
        with self._send_lock:
            self._session.write(bytes(data))
            self._flush()

    def recv(self, bufsize: int = _READ_SIZE, flags: int = 0) -> bytes:
        """Up to ``bufsize`` bytes of application data; ``b""`` once the peer has closed.

        Raises:
            TlsConnectionError: the peer broke the protocol (the alert is sent back).
            ValueError: ``flags`` other than 0 (a TLS stream has no out-of-band data).
        """
        if flags:
            raise ValueError(f"flags={flags!r}: recv flags are not supported on a TLS connection")
        if bufsize < 0:
            raise ValueError(f"bufsize={bufsize!r} must not be negative")
        if bufsize == 0:
            return b""
        if self._closed:
            raise TlsError("the connection is closed")
        with self._recv_lock:
            while True:
                data = self._session.read(bufsize)
                if data is not None:
                    return bytes(data)
                received = self._sock.recv(_READ_SIZE)
                try:
                    if received:
                        self._session.receive(received)
                    else:
                        self._session.receive_eof()
                finally:
                    # replies to post-handshake messages, or the alert after an error
                    with self._send_lock, contextlib.suppress(OSError):
                        self._flush()

    def close(self) -> None:
        """Sends ``close_notify`` (best effort) and closes the socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._session.close()
            with self._send_lock, contextlib.suppress(OSError):
                self._flush()
        finally:
            self._sock.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.version} {self.cipher} alpn={self.alpn}"
        return f"<TlsSocket peer={self._peer.spiffe_id} {state}>"


class PlainSocket(_Stream):
    """An inbound connection a :class:`Listener` passed through without terminating TLS:
    plaintext under PERMISSIVE or DISABLE, or TLS without an Istio ALPN under PERMISSIVE (then
    :attr:`client_hello` is set and the bytes are raw TLS, as with Envoy). The bytes inspected
    to decide are replayed first."""

    def __init__(self, sock: socket.socket, first_bytes: bytes, client_hello: Any) -> None:
        """Wraps an accepted socket whose first bytes were already read (use :class:`Listener`)."""
        self._sock = sock
        self._prefix = first_bytes
        self._client_hello = client_hello

    @property
    def client_hello(self) -> Any:
        """The :class:`ClientHello` of passed-through TLS, else ``None``."""
        return self._client_hello

    @property
    def peer(self) -> None:
        """Always ``None``: nobody was authenticated."""
        return None

    def recv(self, bufsize: int = _READ_SIZE, flags: int = 0) -> bytes:
        """Up to ``bufsize`` bytes (the inspected first bytes come first); ``b""`` at EOF."""
        if self._prefix:
            data, self._prefix = self._prefix[:bufsize], self._prefix[bufsize:]
            return data
        return self._sock.recv(bufsize, flags)

    def sendall(self, data: Any) -> None:
        """Sends all of ``data``."""
        self._sock.sendall(data)

    def close(self) -> None:
        """Closes the socket."""
        self._sock.close()

    def __repr__(self) -> str:
        kind = "tls passthrough" if self._client_hello is not None else "plaintext"
        return f"<PlainSocket {kind} fd={self._sock.fileno()}>"


class ClientConfig:
    """A reusable gateway-side configuration for the rustls path.

    Presents ``svid`` (or the :class:`TlsMaterial`'s current SVID) and accepts a server only
    when its chain verifies against the bundle of its own trust domain and its SPIFFE ID is one
    of ``expected`` (exact match, expanded with ``trust_domain_aliases``) and/or accepted by
    ``authorizer``; both checks run inside the handshake. At least one of ``expected`` and
    ``authorizer`` is required: meshtls never verifies a mesh peer by DNS name.

    Args:
        svid: an :class:`~meshtls.Svid`, or a :class:`TlsMaterial` (then ``bundles=None``).
        bundles: a :class:`~meshtls.BundleSet` or a dict of trust domain to PEM roots.
        expected: the server's SPIFFE ID(s), as :class:`~meshtls.SpiffeId` or text.
        authorizer: an :class:`~meshtls.Authorizer` or a callable ``(SpiffeId) -> bool``.
        alpn: protocols to offer; the default offers Istio's ``istio-http/1.1`` first so that
            a PERMISSIVE sidecar selects its mTLS chain.
        trust_domain_aliases: trust domains each expected ID is also accepted in.
        min_version, max_version: ``"1.2"`` or ``"1.3"`` (or :class:`ssl.TLSVersion`);
            ``None`` (the default) keeps Istio's bound (TLS 1.2 to 1.3).

    Raises:
        TlsError: no expected ID nor authorizer, an empty version range, an invalid ALPN.
        TypeError: ``svid`` is neither an Svid nor a TlsMaterial, or an Svid without
            ``bundles``.

    Example::

        config = meshtls.tls.ClientConfig(svid, bundles, expected="spiffe://cluster.local/ns/demo/sa/api")
        with config.connect(("10.0.0.7", 8080)) as conn:
            conn.sendall(b"GET / HTTP/1.1\\r\\nHost: api\\r\\nConnection: close\\r\\n\\r\\n")
    """

    def __init__(
        self,
        svid: Any,
        bundles: Any = None,
        *,
        expected: Any = None,
        authorizer: Any = None,
        alpn: Sequence[str] = GATEWAY_HTTP11_ALPN,
        trust_domain_aliases: Iterable[Any] = (),
        min_version: Optional[_Versionish] = None,
        max_version: Optional[_Versionish] = None,
    ) -> None:
        self._native = _native.NativeClientConfig(
            _material(svid, bundles),
            expected=_ids(expected),
            trust_domain_aliases=list(trust_domain_aliases),
            authorizer=authorizer,
            alpn=list(alpn),
            min_version=_optional_version(min_version),
            max_version=_optional_version(max_version),
        )

    @property
    def material(self) -> Any:
        """The :class:`TlsMaterial` presented and verified with (rotate it in place)."""
        return self._native.material

    @property
    def expected(self) -> list[Any]:
        """The expected server IDs after alias expansion."""
        return self._native.expected  # type: ignore[no-any-return]

    def set_authorizer(self, authorizer: Any) -> None:
        """Replaces the authorizer for the next handshakes (the expected IDs stay in force)."""
        self._native.set_authorizer(authorizer)

    def session(self, server_name: Optional[str] = None) -> Any:
        """A fresh sans-I/O :class:`TlsSession`, for event loops other than asyncio."""
        return self._native.session(server_name)

    def connect(self, address: _Address, *, server_name: Optional[str] = None, timeout: Optional[float] = DEFAULT_TIMEOUT) -> TlsSocket:
        """Connects to ``address`` (``(host, port)``), completes the handshake and returns the
        :class:`TlsSocket`. ``server_name`` is sent as SNI only (never used to verify);
        ``timeout`` applies to connecting and to each socket operation afterwards.

        Raises:
            PeerAuthorizationError: the server's SPIFFE ID was refused (nothing was sent).
            PeerVerificationError: its chain does not verify against its trust domain's bundle.
            TlsConnectionError: the TCP connection could not be made (the message names the
                address and the cause), or any other handshake failure, a timeout, a reset.
        """
        session = self._native.session(server_name)
        sock = _tcp_connect(address, timeout)
        try:
            _no_delay(sock)
            _handshake(sock, session)
        except BaseException:
            sock.close()
            raise
        return TlsSocket(sock, session)

    async def open_connection(
        self,
        address: _Address,
        *,
        server_name: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        limit: int = 65536,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The asyncio form of :meth:`connect`: an ``(asyncio.StreamReader,
        asyncio.StreamWriter)`` pair once the handshake has completed. The writer's
        ``get_extra_info`` knows ``"peer"``, ``"peer_spiffe_id"``, ``"version"``, ``"cipher"``,
        ``"alpn"`` and the socket's keys. ``timeout`` covers connecting and the handshake.

        Raises the same errors as :meth:`connect`.
        """
        loop = asyncio.get_running_loop()
        session = self._native.session(server_name)
        reader = asyncio.StreamReader(limit=limit)
        app = asyncio.StreamReaderProtocol(reader)
        host, port = address[0], address[1]

        async def establish() -> _TlsProtocol:
            _, proto = await loop.create_connection(lambda: _TlsProtocol(session, app), host, port)
            try:
                await proto.handshake
            except BaseException:
                proto.abort()
                raise
            return proto

        try:
            proto = await asyncio.wait_for(establish(), timeout)
        except asyncio.TimeoutError:
            raise TlsConnectionError(f"tls connection to {host}:{port} timed out after {timeout} s") from None
        except TlsConnectionError:
            raise
        except OSError as e:
            raise TlsConnectionError(f"cannot connect to {host}:{port}: {e.strerror or e}") from e
        assert proto.transport is not None
        writer = asyncio.StreamWriter(proto.transport, app, reader, loop)
        return reader, writer


def _tcp_connect(address: _Address, timeout: Optional[float]) -> socket.socket:
    """Opens the TCP connection; a failure is a :class:`TlsConnectionError` naming the address."""
    try:
        return socket.create_connection(address, timeout=timeout)
    except OSError as e:
        raise TlsConnectionError(f"cannot connect to {address[0]}:{address[1]}: {e.strerror or e}") from e


def connect(
    address: _Address,
    svid: Any,
    bundles: Any = None,
    *,
    server_name: Optional[str] = None,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    **options: Any,
) -> TlsSocket:
    """Connects to a mesh workload over mTLS (the rustls path) and returns a :class:`TlsSocket`.

    The server is verified against the bundle of its own trust domain and must be one of
    ``expected`` and/or accepted by ``authorizer``, inside the handshake: a wrong peer gets an
    alert and no application byte. ``options`` are the keyword arguments of
    :class:`ClientConfig` (``expected``, ``authorizer``, ``alpn``, ``trust_domain_aliases``,
    ``min_version``, ``max_version``; build one to reuse it across connections); see
    :meth:`ClientConfig.connect` for ``server_name``, ``timeout`` and the errors.

    Example::

        with meshtls.tls.connect(("127.0.0.1", 15006), svid, bundles,
                                 expected="spiffe://cluster.local/ns/demo/sa/api") as conn:
            print(conn.peer_spiffe_id, conn.version, conn.cipher, conn.alpn)
    """
    config = ClientConfig(svid, bundles, **options)
    return config.connect(address, server_name=server_name, timeout=timeout)


async def open_connection(
    address: _Address,
    svid: Any,
    bundles: Any = None,
    *,
    server_name: Optional[str] = None,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    limit: int = 65536,
    **options: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The asyncio form of :func:`connect`: ``reader, writer = await open_connection(...)``.

    ``options`` are the keyword arguments of :class:`ClientConfig`; see
    :meth:`ClientConfig.open_connection` for the result and errors.
    """
    config = ClientConfig(svid, bundles, **options)
    return await config.open_connection(address, server_name=server_name, timeout=timeout, limit=limit)


class _TlsTransport(asyncio.Transport):
    """The application's view of a :class:`_TlsProtocol`: writes are encrypted."""

    def __init__(self, proto: _TlsProtocol) -> None:
        super().__init__()
        self._proto = proto
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        peer = self._proto.session.peer
        if name == "peer":
            return peer
        if name == "peer_spiffe_id":
            return peer.spiffe_id
        if name in ("version", "cipher", "alpn"):
            return getattr(peer, name)
        if name == "tls_session":
            return self._proto.session
        raw = self._proto.raw
        return raw.get_extra_info(name, default) if raw is not None else default

    def write(self, data: Any) -> None:
        if self._closing:
            return
        self._proto.session.write(bytes(data))
        self._proto.flush()

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        raw = self._proto.raw
        return self._closing or raw is None or raw.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._proto.session.close()
        self._proto.flush()
        if self._proto.raw is not None:
            self._proto.raw.close()

    def abort(self) -> None:
        self._closing = True
        self._proto.abort()

    def pause_reading(self) -> None:
        if self._proto.raw is not None:
            self._proto.raw.pause_reading()

    def resume_reading(self) -> None:
        if self._proto.raw is not None:
            self._proto.raw.resume_reading()

    def is_reading(self) -> bool:
        raw = self._proto.raw
        return raw is not None and raw.is_reading()

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        if self._proto.raw is not None:
            self._proto.raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        raw = self._proto.raw
        return raw.get_write_buffer_size() if raw is not None else 0

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._proto.app

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._proto.app = protocol


class _TlsProtocol(asyncio.Protocol):
    """Drives a :class:`TlsSession` over an asyncio transport and feeds the application
    protocol (an ``asyncio.StreamReaderProtocol``) once the peer has been accepted."""

    def __init__(self, session: Any, app: asyncio.BaseProtocol) -> None:
        self.session = session
        self.app: Any = app
        self.raw: Optional[asyncio.Transport] = None
        self.transport: Optional[_TlsTransport] = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # server side: nobody awaits the handshake; a failure is reported through on_error
        self.handshake.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._error: Optional[BaseException] = None
        self._eof_delivered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        self.flush()  # the ClientHello

    def flush(self) -> None:
        out = self.session.take_outgoing()
        if out and self.raw is not None and not self.raw.is_closing():
            self.raw.write(out)

    def abort(self) -> None:
        if self.raw is not None:
            self.raw.abort()

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        self.flush()  # the alert
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self.raw is not None:
            self.raw.close()

    def _progress(self) -> None:
        if self.transport is None and not self.session.is_handshaking:
            self.transport = _TlsTransport(self)
            self.app.connection_made(self.transport)
            if not self.handshake.done():
                self.handshake.set_result(None)
        if self.transport is None:
            return
        while True:
            data = self.session.read(_READ_SIZE)
            if data is None:
                return
            if not data:
                if not self._eof_delivered:
                    self._eof_delivered = True
                    if not self.app.eof_received():
                        self.transport.close()
                return
            self.app.data_received(data)

    def data_received(self, data: bytes) -> None:
        try:
            self.session.receive(data)
        except MeshTlsError as e:
            self._fail(e)
            return
        self.flush()
        self._progress()

    def eof_received(self) -> Optional[bool]:
        try:
            self.session.receive_eof()
        except MeshTlsError as e:
            self._fail(e)
            return None
        self._progress()
        return None

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(
                self._error or exc or TlsConnectionError("tls handshake failed: the peer closed the connection during the handshake")
            )
            # retrieved by establish(); keep asyncio from warning if it was cancelled
            self.handshake.exception()
        if self.transport is not None:
            err = self._error if isinstance(self._error, Exception) else exc
            self.app.connection_lost(err)

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.app.resume_writing()


class _InboundProtocol(asyncio.Protocol):
    """The asyncio twin of :meth:`Listener.accept`: sniffs the first bytes with the core's
    acceptor, then hands the connection to a :class:`_TlsProtocol` (mTLS) or straight to the
    application's ``StreamReaderProtocol`` (passed through)."""

    def __init__(self, acceptor: Any, cb: Any, timeout: Optional[float], limit: int) -> None:
        self._sniffer = acceptor.sniffer()
        self._cb = cb
        self._limit = limit
        self._timeout = timeout
        self._raw: Optional[asyncio.Transport] = None
        self._inner: Any = None
        self._tls: Optional[_TlsProtocol] = None
        self._timer: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._raw = transport
        if self._timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)
        self._decide(self._sniffer.verdict)

    def _expire(self) -> None:
        pending = self._inner is None or (self._tls is not None and self._tls.transport is None)
        if pending and self._raw is not None:
            self._raw.abort()

    def _decide(self, step: Callable[[], Any]) -> None:
        assert self._raw is not None
        try:
            verdict = step()
        except MeshTlsError:
            self._raw.close()  # refused by the mode (or closed before a decision)
            return
        if verdict is None:
            return
        kind, session, first, _hello = verdict
        reader = asyncio.StreamReader(limit=self._limit)
        app = asyncio.StreamReaderProtocol(reader, self._cb)
        if kind == "mtls":
            self._tls = _TlsProtocol(session, app)
            self._inner = self._tls
            self._tls.connection_made(self._raw)
        else:
            self._inner = app
            app.connection_made(self._raw)
            if self._timer is not None:
                self._timer.cancel()
        if first:
            self._inner.data_received(first)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
            if self._tls is not None and self._tls.transport is not None and self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        self._decide(lambda: self._sniffer.receive(data))

    def eof_received(self) -> Optional[bool]:
        if self._inner is not None:
            return self._inner.eof_received()  # type: ignore[no-any-return]
        self._decide(lambda: self._sniffer.receive(b""))
        return None

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class ServerConfig:
    """A reusable sidecar-side configuration for the rustls path.

    Presents ``svid`` and requires a client certificate that verifies against the bundle of its
    own trust domain, which must be one of ``trust_domains`` (default: the mesh's accepted
    trust domains when ``mesh`` is given, else the own SVID's), then asks ``authorizer``
    (default: any such peer, which is what PeerAuthentication alone enforces) — all inside the
    handshake.

    Args:
        svid: an :class:`~meshtls.Svid`, or a :class:`TlsMaterial` (then ``bundles=None``).
        bundles: a :class:`~meshtls.BundleSet` or a dict of trust domain to PEM roots.
        trust_domains: accepted client trust domains.
        authorizer: an :class:`~meshtls.Authorizer` or a callable ``(SpiffeId) -> bool``.
        alpn: protocols to select from (a client offering none of them still connects, without
            ALPN, as with Envoy).
        min_version: ``None`` for Istio's (TLS 1.2, or the mesh's ``minProtocolVersion``).
        max_version: ``None`` for Istio's (TLS 1.3), or ``"1.2"`` to test TLS 1.2.
        mesh: a :class:`~meshtls.MeshConfig` whose ``meshMTLS`` and trust domains apply.
    """

    def __init__(
        self,
        svid: Any,
        bundles: Any = None,
        *,
        trust_domains: Optional[Iterable[Any]] = None,
        authorizer: Any = None,
        alpn: Sequence[str] = (ALPN_HTTP11,),
        min_version: Optional[_Versionish] = None,
        max_version: Optional[_Versionish] = None,
        mesh: Any = None,
    ) -> None:
        self._native = _native.NativeServerConfig(
            _material(svid, bundles),
            trust_domains=None if trust_domains is None else list(trust_domains),
            authorizer=authorizer,
            alpn=list(alpn),
            min_version=_optional_version(min_version),
            max_version=_optional_version(max_version),
            mesh=mesh,
        )

    @property
    def material(self) -> Any:
        """The :class:`TlsMaterial` presented and verified with (rotate it in place)."""
        return self._native.material

    def set_authorizer(self, authorizer: Any) -> None:
        """Replaces the authorizer for the next handshakes."""
        self._native.set_authorizer(authorizer)

    def session(self) -> Any:
        """A fresh sans-I/O server :class:`TlsSession` (mTLS only, no mode)."""
        return self._native.session()

    async def start_server(
        self,
        client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
        address: _Address,
        *,
        mode: Any = MtlsMode.STRICT,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        limit: int = 65536,
        backlog: int = 128,
    ) -> asyncio.AbstractServer:
        """The asyncio form of :meth:`listen`, like :func:`asyncio.start_server`: each
        connection gets the port's ``mode``; ``client_connected_cb(reader, writer)`` is called
        once it is plaintext (passed through) or mTLS with a verified and authorized peer
        (``writer.get_extra_info("peer")``, ``None`` for plaintext). Refused connections and
        failed handshakes are closed without calling it; ``timeout`` bounds the time until that
        decision."""
        loop = asyncio.get_running_loop()
        acceptor = self._native.acceptor(_mode_text(mode))
        host, port = address[0], address[1]
        return await loop.create_server(
            lambda: _InboundProtocol(acceptor, client_connected_cb, timeout, limit), host, port, backlog=backlog
        )

    def listen(
        self,
        address: _Address,
        *,
        mode: Any = MtlsMode.STRICT,
        backlog: int = 128,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
    ) -> Listener:
        """A :class:`Listener` on ``address`` applying ``mode``."""
        return Listener(address, self, mode=mode, backlog=backlog, timeout=timeout)


class Listener:
    """A listening socket that applies a port's mTLS mode to each connection, as an Istio
    sidecar does (the core's acceptor decides; this class only moves bytes).

    ============  ============================================  ================
    mode          TLS ClientHello                               plaintext
    ============  ============================================  ================
    STRICT        mTLS (any ALPN)                               refused
    PERMISSIVE    mTLS with an Istio ALPN, else passed through  passed through
    DISABLE       passed through                                passed through
    ============  ============================================  ================

    Args:
        address: ``(host, port)`` to bind (port 0: any free port, see :attr:`address`).
        config: the :class:`ServerConfig`.
        mode: an :class:`~meshtls.MtlsMode`, its name, or a resolved :class:`~meshtls.Decision`
            (its mode is used; UNSET means PERMISSIVE).
        backlog: the listen backlog.
        timeout: seconds for reading the first bytes, the handshake and each operation of the
            accepted socket afterwards.

    Example::

        decision = policies.resolve("demo", {"app": "api"}, port=8080)
        with meshtls.tls.serve(("127.0.0.1", 15006), svid, bundles, mode=decision) as listener:
            conn, addr = listener.accept()
            print(conn.peer_spiffe_id if conn.peer else "plaintext")
    """

    def __init__(
        self,
        address: _Address,
        config: ServerConfig,
        *,
        mode: Any = MtlsMode.STRICT,
        backlog: int = 128,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
    ) -> None:
        self._config = config
        self._acceptor = config._native.acceptor(_mode_text(mode))
        self._timeout = timeout
        self._closed = False
        self._sock = socket.create_server(address, backlog=backlog)

    @property
    def address(self) -> Any:
        """The bound ``(host, port)``."""
        return self._sock.getsockname()

    @property
    def mode(self) -> MtlsMode:
        """The mode applied to new connections (never UNSET)."""
        return MtlsMode(self._acceptor.mode)

    @property
    def config(self) -> ServerConfig:
        """The server configuration."""
        return self._config

    def set_mode(self, mode: Any) -> None:
        """Applies ``mode`` (an MtlsMode, its name, or a Decision) to connections accepted from
        now on."""
        self._acceptor = self._config._native.acceptor(_mode_text(mode))

    def accept(self) -> tuple[Union[TlsSocket, PlainSocket], Any]:
        """Accepts one connection and applies the mode: returns ``(conn, address)`` where
        ``conn`` is a :class:`TlsSocket` (mTLS, peer verified and authorized) or a
        :class:`PlainSocket` (passed through). The first bytes and the handshake are read
        here, within ``timeout``; :meth:`serve_forever` does them in a thread per connection.

        Raises:
            TlsConnectionError: the mode refused the connection ("connection refused under
                STRICT: plaintext connection ..."), or the handshake failed.
            PeerAuthorizationError, PeerVerificationError: the client was refused in the
                handshake; nothing it sent reached the application.
        """
        raw, addr = self._sock.accept()
        try:
            raw.settimeout(self._timeout)
            _no_delay(raw)
            return self._start(raw), addr
        except BaseException:
            raw.close()
            raise

    def _start(self, raw: socket.socket) -> Union[TlsSocket, PlainSocket]:
        sniffer = self._acceptor.sniffer()
        try:
            verdict = sniffer.verdict()
            while verdict is None:
                verdict = sniffer.receive(raw.recv(2048))
        except socket.timeout:
            raise TlsConnectionError(f"no decision on the connection after {raw.gettimeout()} s: the client sent too little") from None
        except MeshTlsError:
            raise
        except OSError as e:
            raise TlsConnectionError(f"reading the first bytes failed: {e}") from e
        kind, session, first, hello = verdict
        if kind == "mtls":
            _handshake(raw, session, first)
            return TlsSocket(raw, session)
        return PlainSocket(raw, first, hello)

    def serve_forever(
        self,
        handler: Callable[[Union[TlsSocket, PlainSocket], Any], None],
        *,
        on_error: Optional[Callable[[BaseException, Any], None]] = None,
    ) -> None:
        """Accepts connections until :meth:`close` is called, each in its own thread: the
        mode, the handshake and ``handler(conn, address)`` run there (so one slow client does
        not hold up the others), and ``conn`` is closed afterwards. A connection that is
        refused or fails calls ``on_error(exc, address)`` (default: ignore it)."""

        def run(raw: socket.socket, addr: Any) -> None:
            try:
                raw.settimeout(self._timeout)
                _no_delay(raw)
                conn = self._start(raw)
            except BaseException as e:
                raw.close()
                if on_error is not None:
                    on_error(e, addr)
                return
            with conn:
                try:
                    handler(conn, addr)
                except BaseException as e:
                    if on_error is not None:
                        on_error(e, addr)

        while not self._closed:
            # poll, so that close() from another thread ends the loop on every platform
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.2)
                if not ready:
                    continue
                raw, addr = self._sock.accept()
            except (OSError, ValueError):
                if self._closed:
                    return
                raise
            threading.Thread(target=run, args=(raw, addr), daemon=True).start()

    def fileno(self) -> int:
        """The listening socket's file descriptor."""
        return self._sock.fileno()

    def close(self) -> None:
        """Stops listening (and ends :meth:`serve_forever`); accepted connections stay open."""
        self._closed = True
        self._sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Listener {self.address} {self.mode}>"


def serve(
    address: _Address,
    svid: Any,
    bundles: Any = None,
    *,
    mode: Any = MtlsMode.STRICT,
    backlog: int = 128,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    **options: Any,
) -> Listener:
    """A :class:`Listener` on ``address`` for a :class:`ServerConfig` built from ``svid``,
    ``bundles`` and ``options`` (its keyword arguments: ``trust_domains``, ``authorizer``,
    ``alpn``, ``min_version``, ``max_version``, ``mesh``). Call :meth:`Listener.accept` in a
    loop."""
    config = ServerConfig(svid, bundles, **options)
    return Listener(address, config, mode=mode, backlog=backlog, timeout=timeout)


async def start_server(
    client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
    address: _Address,
    svid: Any,
    bundles: Any = None,
    *,
    mode: Any = MtlsMode.STRICT,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    limit: int = 65536,
    backlog: int = 128,
    **options: Any,
) -> asyncio.AbstractServer:
    """The asyncio form of :func:`serve`: ``server = await start_server(cb, address, svid,
    bundles, mode=...)``, then ``async with server: await server.serve_forever()``. ``options``
    are the keyword arguments of :class:`ServerConfig`; see :meth:`ServerConfig.start_server`."""
    config = ServerConfig(svid, bundles, **options)
    return await config.start_server(client_connected_cb, address, mode=mode, timeout=timeout, limit=limit, backlog=backlog)
