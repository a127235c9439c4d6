"""The SPIFFE Workload API from Python: serve X.509- and JWT-SVIDs to any SPIFFE workload
(go-spiffe, py-spiffe, rust-spiffe) on a unix socket, a test server for your own tests, and a
client of any Workload API (SPIRE's agent, or this module's server).

- :class:`WorkloadApiServer`: all five RPCs, callers attested by their socket's peer
  credentials (uid, gid, the binary's path through ``/proc``, with a pid-reuse guard),
  identities from registration entries (selectors ``unix:uid:<n>``, ``unix:gid:<n>``,
  ``unix:supplementary_gid:<n>``, ``unix:path:<path>``), X.509-SVIDs minted by a
  :class:`~meshtls.MeshCa` and renewed at half their lifetime (Istio's rule), pushed to every
  open stream.
- :class:`WorkloadApiClient`, :class:`X509Source`, :class:`JwtSource`: the client side
  (``SPIFFE_ENDPOINT_SOCKET`` parsed as the standard says; sources that stay current and feed
  :mod:`meshtls.tls` configs through ``X509Source.tls_material``).
- :func:`fake_server`: a context manager giving a :class:`FakeWorkloadApi`, an in-process server on
  a temporary socket that gives this process the identities you name, with scripted rotations
  and injected ``Unavailable`` / ``PermissionDenied``.

Example::

    import os
    from meshtls.workload_api import fake_server

    with fake_server("example.org", identities=["spiffe://example.org/app"]) as api:
        os.environ["SPIFFE_ENDPOINT_SOCKET"] = api.endpoint
        ...  # the code under test fetches its SVIDs
        api.rotate()  # open streams receive new SVIDs
        api.fail("unavailable", calls=2)  # the next two calls fail

Errors raise :class:`~meshtls.WorkloadApiError` (configuration, socket) and the usual
meshtls exceptions (:class:`~meshtls.InvalidSpiffeIdError`, :class:`~meshtls.FileError`, ...).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from . import _meshtls as _native
from ._meshtls import FakeWorkloadApi, JwtSigner, MeshCa
from ._workload_client import (
    InvalidEndpointError,
    JwtSource,
    JwtSvidToken,
    NoIdentityError,
    NoMatchingSvidError,
    SourceClosedError,
    WorkloadApiClient,
    WorkloadApiClientError,
    WorkloadApiConnectError,
    WorkloadApiStatusError,
    WorkloadApiTimeoutError,
    X509Context,
    X509Source,
    X509Svid,
)

__all__ = [
    "FakeWorkloadApi",
    "InvalidEndpointError",
    "JwtSource",
    "JwtSvidToken",
    "NoIdentityError",
    "NoMatchingSvidError",
    "SourceClosedError",
    "WorkloadApiClient",
    "WorkloadApiClientError",
    "WorkloadApiConnectError",
    "WorkloadApiServer",
    "WorkloadApiStatusError",
    "WorkloadApiTimeoutError",
    "X509Context",
    "X509Source",
    "X509Svid",
    "fake_server",
]


def _registration_text(entries: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"entries": [dict(e) for e in entries]})


class WorkloadApiServer:
    """A SPIFFE Workload API server, serving from construction until :meth:`stop` (or the end of
    a ``with`` block).

    Args:
        ca: the CA that mints the X.509-SVIDs (identities must be in its trust domain).
        socket: ``unix:///absolute/path`` or ``tcp://127.0.0.1:PORT`` (loopback only; port 0
            picks one, see :attr:`endpoint`).
        registration: a YAML/JSON registration file (``entries:`` of ``spiffe_id``,
            ``selectors``, ``hint``), re-read when it changes.
        entries: the entries themselves, e.g. ``[{"spiffe_id": "spiffe://example.org/web",
            "selectors": ["unix:uid:1000"], "hint": "web"}]`` (give this or ``registration``).
        jwt_signer: the JWT-SVID key (default: a fresh EC P-256 key of the CA's trust domain).
        federated: trust domain → SPIFFE bundle JSON file of a federated trust domain.
        x509_ttl: X.509-SVID lifetime (default 1 hour).
        jwt_ttl: JWT-SVID lifetime (default 5 minutes).
        max_connections: the most open connections (default 1024).
        max_streams_per_connection: the most concurrent calls per connection (default 128).

    Raises:
        WorkloadApiError: a bad socket address, option or registration entry, or a socket that
            cannot be bound.
    """

    def __init__(
        self,
        ca: MeshCa,
        *,
        socket: str,
        registration: str | os.PathLike[str] | None = None,
        entries: Sequence[Mapping[str, Any]] | None = None,
        jwt_signer: JwtSigner | None = None,
        federated: Mapping[str, str | os.PathLike[str]] | None = None,
        x509_ttl: _dt.timedelta | None = None,
        jwt_ttl: _dt.timedelta | None = None,
        max_connections: int | None = None,
        max_streams_per_connection: int | None = None,
    ) -> None:
        self._server = _native.WorkloadApiServer(
            ca,
            socket=socket,
            registration_file=os.fspath(registration) if registration is not None else None,
            registration_text=_registration_text(entries) if entries is not None else None,
            jwt_signer=jwt_signer,
            federated=[(td, os.fspath(p)) for td, p in (federated or {}).items()],
            x509_ttl=x509_ttl,
            jwt_ttl=jwt_ttl,
            max_connections=max_connections,
            max_streams_per_connection=max_streams_per_connection,
        )

    @property
    def endpoint(self) -> str:
        """The ``SPIFFE_ENDPOINT_SOCKET`` value that reaches this server."""
        return self._server.endpoint

    def rotate(self) -> None:
        """Renews every X.509-SVID now; returns once every open stream has them to send."""
        self._server.rotate()

    def set_entries(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Replaces the registration entries; callers that lost every identity see their streams
        end with ``PermissionDenied``."""
        self._server.set_registration_text(_registration_text(entries))

    def stop(self) -> None:
        """Stops serving (open streams end, the socket file is removed). Idempotent."""
        self._server.stop()

    def __enter__(self) -> WorkloadApiServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def fake_server(
    trust_domain: str = "example.org",
    *,
    identities: Sequence[str | tuple[str, str]] = ("spiffe://example.org/app",),
    transport: Literal["tcp", "unix"] = "unix",
    x509_ttl: _dt.timedelta | None = None,
    jwt_ttl: _dt.timedelta | None = None,
    rotate_every: _dt.timedelta | None = None,
) -> Iterator[FakeWorkloadApi]:
    """An in-process test Workload API on a fresh temporary socket, with its own CA and JWT
    key, giving this process (its uid) ``identities`` (SPIFFE IDs, or ``(spiffe_id, hint)``
    pairs; the first is the default). Stopped and removed on exit.

    Args:
        trust_domain: the trust domain of the test CA.
        identities: the identities served.
        transport: ``"unix"`` (a socket in a private temporary directory, the default) or
            ``"tcp"`` (``tcp://127.0.0.1:<port>``; callers attested by uid).
        x509_ttl: X.509-SVID lifetime (default 1 hour; renewed at half of it).
        jwt_ttl: JWT-SVID lifetime (default 5 minutes).
        rotate_every: rotate every X.509-SVID at this period (a scripted rotation).

    Raises:
        InvalidSpiffeIdError: a bad trust domain or SPIFFE ID.
        WorkloadApiError: the server could not start.
    """
    pairs = [(i, "") if isinstance(i, str) else (i[0], i[1]) for i in identities]
    api = FakeWorkloadApi(
        trust_domain,
        identities=pairs,
        transport=transport,
        x509_ttl=x509_ttl,
        jwt_ttl=jwt_ttl,
        rotate_every=rotate_every,
    )
    try:
        yield api
    finally:
        api.stop()
