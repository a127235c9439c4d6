"""Mesh mTLS with Python's :mod:`ssl`: contexts for both sides and a SPIFFE peer check.

Python's ``ssl`` module (OpenSSL) can speak mesh mTLS to an Istio sidecar, but it knows
nothing of SPIFFE. These helpers fill the gap:

- :func:`client_context` / :func:`server_context` build an :class:`ssl.SSLContext` from an
  :class:`~meshtls.Svid` (certificate chain and key) and trust bundles, with Istio's protocol
  versions, cipher list and ALPN values.
- :func:`check_peer` runs after the handshake: it verifies the peer's certificate as an
  X.509-SVID with meshtls (against the bundle of *its own* trust domain), checks the accepted
  trust domains and the expected SPIFFE IDs, and returns the peer's :class:`~meshtls.SpiffeId`
  or closes the socket and raises.

Limits of Python's ``ssl`` for SPIFFE, stated plainly:

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

import contextlib
import os
import socket
import ssl
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

from ._errors import TlsError

__all__ = [
    "ALPN_ISTIO",
    "ALPN_ISTIO_HTTP11",
    "ALPN_ISTIO_H2",
    "ALPN_ISTIO_PEER_EXCHANGE",
    "ISTIO_TLS12_CIPHERS",
    "PERMISSIVE_MTLS_ALPN",
    "check_peer",
    "client_context",
    "server_context",
]

ALPN_ISTIO = "istio"
ALPN_ISTIO_PEER_EXCHANGE = "istio-peer-exchange"
ALPN_ISTIO_HTTP10 = "istio-http/1.0"
ALPN_ISTIO_HTTP11 = "istio-http/1.1"
ALPN_ISTIO_H2 = "istio-h2"
#: A ClientHello offering one of these reaches a PERMISSIVE sidecar's mTLS chain.
PERMISSIVE_MTLS_ALPN = (
    ALPN_ISTIO,
    ALPN_ISTIO_PEER_EXCHANGE,
    ALPN_ISTIO_HTTP10,
    ALPN_ISTIO_HTTP11,
    ALPN_ISTIO_H2,
)
#: Istio's default TLS 1.2 cipher list (``SupportedCiphers``), in Istio's order. OpenSSL can
#: offer all six, including the two static-RSA suites that rustls (the Rust side) cannot.
ISTIO_TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
)

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
    raise TlsError(f"cannot read trust bundles from {type(bundles).__name__!r}: expected a BundleSet, a TrustBundle, PEM text or a mapping of trust domain to PEM")


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
        raise TlsError(f"{type(svid).__name__!r} is not an Svid: it needs cert_chain_pem and private_key_pem text")
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
    alpn: Sequence[str] = (ALPN_ISTIO_HTTP11, "http/1.1"),
    ciphers: Sequence[str] = ISTIO_TLS12_CIPHERS,
) -> ssl.SSLContext:
    """A gateway-side context: presents ``svid``, verifies the sidecar's chain against the
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
    alpn: Sequence[str] = ("http/1.1",),
    ciphers: Sequence[str] = ISTIO_TLS12_CIPHERS,
) -> ssl.SSLContext:
    """A sidecar-side context: presents ``svid`` and requires a client certificate chaining to
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
    """Verifies the peer of a finished handshake the SPIFFE way and returns its ``SpiffeId``.

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
