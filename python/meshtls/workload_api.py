"""The SPIFFE Workload API from Python: the client side (:class:`WorkloadApiClient`,
:class:`X509Source`, :class:`JwtSource`; see ``meshtls._workload_client``). The server side joins
this module when the two halves are merged."""

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
    "InvalidEndpointError",
    "JwtSource",
    "JwtSvidToken",
    "NoIdentityError",
    "NoMatchingSvidError",
    "SourceClosedError",
    "WorkloadApiClient",
    "WorkloadApiClientError",
    "WorkloadApiConnectError",
    "WorkloadApiStatusError",
    "WorkloadApiTimeoutError",
    "X509Context",
    "X509Source",
    "X509Svid",
]
