"""The SPIFFE Workload API client side, re-exported by :mod:`meshtls.workload_api`.

- :class:`WorkloadApiClient`: the five RPCs (X.509-SVIDs and bundles, JWT-SVIDs, JWT bundles,
  ``ValidateJWTSVID``) against SPIRE's agent or any other Workload API, the address from
  ``SPIFFE_ENDPOINT_SOCKET`` unless given (``unix:///path`` or ``tcp://ip:port``, parsed as the
  standard says).
- :class:`X509Source`: SVIDs and bundles kept current by a native background task;
  ``source.tls_material`` is a :class:`meshtls.tls.TlsMaterial` that follows every rotation,
  so ``meshtls.tls.ServerConfig(source.tls_material)`` and
  ``meshtls.tls.ClientConfig(source.tls_material, expected=...)`` present the new SVID at their
  next handshake.
- :class:`JwtSource`: JWT bundles kept current, JWT-SVIDs on demand, local validation by
  meshtls's JWT-SVID policy.

Errors follow SPIFFE Workload Endpoint §6: the sources retry ``PermissionDenied``
(:class:`NoIdentityError`) and ``Unavailable`` with backoff, and stop on ``InvalidArgument``.

Example::

    from meshtls.workload_api import X509Source
    import meshtls.tls

    with X509Source("unix:///run/spire/agent.sock", hint="internal") as source:
        server = meshtls.tls.ServerConfig(source.tls_material)
        ...
"""

from __future__ import annotations

from typing import Optional

from ._errors import MeshTlsError
from ._meshtls import (
    JwtSource,
    JwtSvidToken,
    WorkloadApiClient,
    X509Context,
    X509Source,
    X509Svid,
)

__all__ = [
    "WorkloadApiClient",
    "X509Source",
    "JwtSource",
    "X509Context",
    "X509Svid",
    "JwtSvidToken",
    "WorkloadApiClientError",
    "InvalidEndpointError",
    "WorkloadApiConnectError",
    "WorkloadApiStatusError",
    "NoIdentityError",
    "WorkloadApiTimeoutError",
    "NoMatchingSvidError",
    "SourceClosedError",
]


class WorkloadApiClientError(MeshTlsError):
    """A Workload API call failed or a source stopped. ``code`` is the gRPC status name
    (``"PermissionDenied"``, ...) when the server answered with one, else ``None``."""

    code: Optional[str] = None


class InvalidEndpointError(WorkloadApiClientError, ValueError):
    """The address (or ``SPIFFE_ENDPOINT_SOCKET``) breaks SPIFFE Workload Endpoint §4, or none
    was given and the variable is unset; the message names the value and the rule."""


class WorkloadApiConnectError(WorkloadApiClientError, ConnectionError):
    """Nothing answers at the address (no socket, connection refused)."""


class WorkloadApiStatusError(WorkloadApiClientError):
    """The server answered with a gRPC error status (``code``)."""


class NoIdentityError(WorkloadApiStatusError, PermissionError):
    """``PermissionDenied``: the server has no identity for this process (no registration
    entry yet). The sources retry it with backoff before raising it."""


class WorkloadApiTimeoutError(WorkloadApiClientError, TimeoutError):
    """No answer within the deadline."""


class NoMatchingSvidError(WorkloadApiClientError, LookupError):
    """No SVID has the hint or SPIFFE ID asked for; the message lists what the server sent."""


class SourceClosedError(WorkloadApiClientError):
    """The source was closed."""
