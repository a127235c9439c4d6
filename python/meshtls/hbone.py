"""HBONE, Istio ambient mode's tunnel, from Python: reach an ambient pod through ztunnel.

An ambient pod accepts mesh traffic only inside HBONE: mTLS (TLS 1.3, ALPN ``h2``, no SNI,
no session resumption) to the pod's port 15008, presenting an Istio-form identity
``spiffe://<td>/ns/<ns>/sa/<sa>`` of the pod's own trust domain, then one HTTP/2 ``CONNECT``
per TCP connection whose ``:authority`` is the target ``podIP:port``. The server must present
exactly the destination's SPIFFE ID.

- :func:`connect` returns a blocking, socket-like :class:`HboneSocket` (``sendall``,
  ``recv``, ``makefile``, ``shutdown``, a context manager), as :func:`meshtls.tls.connect`
  does for plain mesh mTLS.
- :func:`open_connection` is the asyncio form: ``reader, writer = await open_connection(...)``.

Connections are pooled per (own identity, server identity, address) in the native layer, at
most 100 streams each, closed after 5 idle minutes (ztunnel's defaults). Refusals raise
:class:`~meshtls.HboneError` subclasses: :class:`~meshtls.HboneTlsError`,
:class:`~meshtls.HbonePeerIdentityError`, :class:`~meshtls.HboneDeniedError` (401, an
authorization policy), :class:`~meshtls.HboneNoUpstreamError` (503),
:class:`~meshtls.HboneBadRequestError` (400, e.g. the target's IP is not the one dialled).

Example::

    import meshtls, meshtls.hbone
    with meshtls.hbone.connect("10.0.0.7:15008", "10.0.0.7:8080", svid, bundles,
                               expected="spiffe://cluster.local/ns/shop/sa/api") as tunnel:
        tunnel.sendall(b"GET / HTTP/1.1\\r\\nhost: api\\r\\nconnection: close\\r\\n\\r\\n")
        print(tunnel.makefile("rb").read())
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any, Optional

from . import _meshtls as _native
from .tls import DEFAULT_TIMEOUT, _material, _Stream

__all__ = ["HBONE_PORT", "HboneSocket", "connect", "connection_count", "open_connection"]

HBONE_PORT = 15008
"""The HBONE port inside every ambient pod (ztunnel's inbound listener)."""


def connection_count() -> int:
    """The number of open HBONE connections in the pools behind :func:`connect` and
    :func:`open_connection`. Tunnels opened with the same ``timeout`` and ``headers`` to the
    same server identity and address share a connection (up to 100 streams each, closed after
    5 idle minutes)."""
    return int(_native._hbone_connection_count())


def _headers(headers: Optional[Mapping[str, str]]) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of str to str, not {type(headers).__name__}")
    return [(str(k), str(v)) for k, v in headers.items()]


def _open(
    via: str, target: str, svid: Any, bundles: Any, expected: Any, timeout: Optional[float], headers: Any
) -> socket.socket:
    if not isinstance(via, str) or not isinstance(target, str):
        raise TypeError("via and target are 'ip:port' strings")
    material = _material(svid, bundles)
    fd = _native._hbone_connect(via, target, material, expected, timeout=timeout, headers=_headers(headers))
    return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd)


class HboneSocket(_Stream):
    """One HBONE tunnel as a blocking, socket-like stream (made by :func:`connect`).

    ``sendall``/``send`` write into the tunnel, ``recv`` returns ``b""`` once the server ended
    its side, ``shutdown(socket.SHUT_WR)`` ends ours (HTTP/2 END_STREAM) while reading goes on,
    ``close`` resets what is left. ``peer_spiffe_id`` is the server's identity (verified
    exactly), ``target`` the CONNECT authority.
    """

    def __init__(self, sock: socket.socket, target: str, peer: Any) -> None:
        self._sock = sock
        self._target = target
        self._peer = peer

    @property
    def target(self) -> str:
        """The CONNECT target, ``ip:port``."""
        return self._target

    @property
    def peer_spiffe_id(self) -> Any:
        """The server's SPIFFE ID (the ``expected`` one: anything else fails the handshake)."""
        return self._peer

    def sendall(self, data: Any) -> None:
        """Sends all of ``data`` through the tunnel."""
        self._sock.sendall(data)

    def recv(self, bufsize: int = 65536, flags: int = 0) -> bytes:
        """Receives at most ``bufsize`` bytes; ``b""`` when the server ended its side."""
        return self._sock.recv(bufsize, flags)

    def shutdown(self, how: int) -> None:
        """``socket.SHUT_WR`` ends our side of the tunnel (the server reads end of file)."""
        self._sock.shutdown(how)

    def close(self) -> None:
        """Closes the tunnel."""
        self._sock.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._sock.fileno() == -1

    def __repr__(self) -> str:
        return f"<HboneSocket target={self._target} peer={self._peer}>"


def connect(
    via: str,
    target: str,
    svid: Any,
    bundles: Any = None,
    *,
    expected: Any,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    headers: Optional[Mapping[str, str]] = None,
) -> HboneSocket:
    """Opens an HBONE tunnel to ``target`` (the pod's ``"ip:port"``) through ``via`` (the
    pod's ``"ip:15008"``) and returns it as a blocking :class:`HboneSocket`.

    Args:
        via: the HBONE endpoint, ``"ip:port"`` (``"[v6]:port"`` for IPv6).
        target: the CONNECT target; its IP must be the one of ``via`` (else 400).
        svid: your own :class:`~meshtls.Svid` (an Istio-form identity of the pod's trust
            domain) or a :class:`meshtls.tls.TlsMaterial` (then ``bundles=None``).
        bundles: a :class:`~meshtls.BundleSet` or a dict of trust domain to PEM roots.
        expected: the SPIFFE ID the server must present (the destination's service account).
        timeout: seconds each of TCP connect, TLS, HTTP/2 setup and the CONNECT answer may take
            (the stream itself has no timeout; use :meth:`HboneSocket.settimeout`).
        headers: extra CONNECT headers (``baggage``, ``traceparent``, ``forwarded``).

    Raises:
        HboneTlsError, HbonePeerIdentityError, HboneDeniedError, HboneNoUpstreamError,
        HboneBadRequestError, HboneError: the tunnel was refused (the message says why).
        InvalidArgumentError: ``via`` or ``target`` is not ``ip:port``.
    """
    from . import SpiffeId

    expected = expected if isinstance(expected, SpiffeId) else SpiffeId(expected)
    sock = _open(via, target, svid, bundles, expected, timeout, headers)
    return HboneSocket(sock, target, expected)


async def open_connection(
    via: str,
    target: str,
    svid: Any,
    bundles: Any = None,
    *,
    expected: Any,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    headers: Optional[Mapping[str, str]] = None,
    limit: int = 65536,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The asyncio form of :func:`connect`: ``reader, writer = await open_connection(...)``.

    The tunnel is opened off the event loop (the native layer releases the GIL);
    ``writer.write_eof()`` ends our side, ``reader.read()`` returns ``b""`` when the server
    ended its side. The server is ``expected`` (anything else fails the handshake). Raises as
    :func:`connect` does.
    """
    from . import SpiffeId

    expected = expected if isinstance(expected, SpiffeId) else SpiffeId(expected)
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(None, _open, via, target, svid, bundles, expected, timeout, headers)
    sock.setblocking(False)
    return await asyncio.open_unix_connection(sock=sock, limit=limit)
