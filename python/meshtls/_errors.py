"""The exception hierarchy of meshtls, defined in Python so that it can be subclassed,
pickled and documented like any other Python exception. The Rust layer raises these."""

from __future__ import annotations

__all__ = [
    "MeshTlsError",
    "WorkloadApiError",
    "InvalidSpiffeIdError",
    "IdentityError",
    "ManifestError",
    "MeshConfigError",
    "PolicyError",
    "AuthorizationPolicyError",
    "CaError",
    "SvidError",
    "BundleError",
    "AuthorizationError",
    "TlsError",
    "CaProtocolError",
    "ControllerError",
    "JwtError",
    "TlsConnectionError",
    "PeerVerificationError",
    "PeerAuthorizationError",
    "InvalidArgumentError",
    "FileError",
    "HboneError",
    "HboneTlsError",
    "HbonePeerIdentityError",
    "HboneDeniedError",
    "HboneNoUpstreamError",
    "HboneBadRequestError",
]


class MeshTlsError(Exception):
    """Base class of every error meshtls raises."""


class InvalidSpiffeIdError(MeshTlsError, ValueError):
    """A SPIFFE ID or trust domain broke the strict SPIFFE grammar."""


class IdentityError(MeshTlsError, ValueError):
    """A valid SPIFFE ID did not have the required shape (e.g. not ns/<ns>/sa/<sa>)."""


class ManifestError(MeshTlsError, ValueError):
    """A YAML or JSON document could not be parsed, or broke a resource limit."""


class MeshConfigError(MeshTlsError, ValueError):
    """Istio's mesh config had a field of the wrong type or value."""


class PolicyError(MeshTlsError, ValueError):
    """A PeerAuthentication is invalid; the message carries Istio's reason."""


class AuthorizationPolicyError(MeshTlsError, ValueError):
    """An AuthorizationPolicy (or a DestinationRule read for a path check) is invalid, or a
    request to evaluate is unusable; the message names the object, the field and the rule.
    A sibling of :class:`PolicyError` (PeerAuthentication), not a kind of it: ``except
    PolicyError`` does not catch it."""


class CaError(MeshTlsError):
    """The mesh CA refused an operation or its material was unusable."""


class SvidError(MeshTlsError):
    """An X.509-SVID failed verification; the message says which rule failed."""


class BundleError(MeshTlsError, ValueError):
    """A trust bundle could not be read."""


class AuthorizationError(MeshTlsError):
    """A verified peer was not authorized; the message says what was expected."""


class TlsError(MeshTlsError):
    """A TLS configuration could not be built, or a handshake check failed."""


class TlsConnectionError(TlsError, ConnectionError):
    """A mesh mTLS connection (rustls path) failed: the handshake did not complete, the port's
    mode refused the connection, or the peer broke the protocol. The message is the core's
    (e.g. ``"tls handshake failed: received fatal alert: BadCertificate"``). It is also a
    :class:`ConnectionError`, so code that handles socket errors handles it too."""


class PeerVerificationError(TlsConnectionError, SvidError):
    """The handshake was aborted because the peer's X.509-SVID chain did not verify against
    the bundle of its own trust domain; the message says which rule failed."""


class PeerAuthorizationError(TlsConnectionError, AuthorizationError):
    """The handshake was aborted because the peer's verified SPIFFE ID was not authorized
    (``"peer spiffe://... is not authorized: expected ..."``); nothing was sent to it."""


class InvalidArgumentError(MeshTlsError, ValueError):
    """An argument had the right type but an unusable value: an integer out of range (a port
    above 65535, a ``path_len`` above 255), a naive datetime, a negative lifetime, text that is
    not valid Unicode, options that exclude each other. The message (or its note) names the
    argument. An argument of the wrong type is a :class:`TypeError` instead."""


class FileError(MeshTlsError, OSError):
    """A file or directory could not be read or written; the message names it and says what
    the operating system reported. Also an ``OSError``, so ``except OSError`` still works."""


class CaProtocolError(MeshTlsError):
    """Istio's CA protocol failed: the server was unreachable, the TLS handshake or server
    name check failed, the server refused the request (the message carries its gRPC code and
    message), or it returned a certificate chain that does not check out."""


class HboneError(MeshTlsError, ConnectionError):
    """An HBONE tunnel (Istio ambient's HTTP/2 CONNECT over mTLS) failed: the endpoint was
    unreachable, the connection closed, the stream was reset, or the CONNECT got an answer
    other than 200 (the message names the status). The subclasses are the refusals a caller
    branches on."""


class HboneTlsError(HboneError):
    """The TLS handshake with the HBONE endpoint failed, or the endpoint closed the new
    connection at once (it refused the client certificate, TLS 1.2, or ALPN)."""


class HbonePeerIdentityError(HboneError):
    """The HBONE endpoint's certificate verified but is not the expected SPIFFE ID."""


class HboneDeniedError(HboneError):
    """The CONNECT was answered 401: an authorization policy denied the caller."""


class HboneNoUpstreamError(HboneError):
    """The CONNECT was answered 503: nothing listens on the target port."""


class HboneBadRequestError(HboneError):
    """The CONNECT was answered 400: a malformed request, or a target whose IP is not the
    address dialled."""


class ControllerError(MeshTlsError):
    """The gateway-certificate controller could not decide or act: a bad setting, a
    certificate from the source that does not fit the Secret (wrong identity, expired, not
    signed by the mesh roots), an unreadable ``caCertificates`` entry, or the Kubernetes API
    or the certificate source failing."""


class JwtError(MeshTlsError, ValueError):
    """A JWT-SVID was rejected (the message names the rule: algorithm, typ, header, kid,
    subject, bundle, key, signature, audience, expiry), could not be minted, or a JWKS or
    expected audience was unusable."""


class WorkloadApiError(MeshTlsError):
    """The SPIFFE Workload API server could not be configured or started: a bad socket address
    or option, a registration entry that breaks a rule (the message names the entry, the field
    and the rule), a socket that cannot be bound, or a server used after ``stop()``."""
