"""meshtls: speak a service mesh's mTLS from outside the mesh.

Istio/SPIFFE identities, Istio's mesh config and PeerAuthentication policy, a mesh CA that
issues X.509-SVIDs with Istio's workload profile, strict SVID verification, and TLS contexts
that a sidecar accepts.
"""

from __future__ import annotations

from ._errors import (
    AuthorizationError,
    BundleError,
    CaError,
    FileError,
    IdentityError,
    InvalidArgumentError,
    InvalidSpiffeIdError,
    ManifestError,
    MeshConfigError,
    MeshTlsError,
    PolicyError,
    SvidError,
    TlsError,
)
from ._meshtls import (
    IssuedCertificate,
    Decision,
    Authorizer,
    BundleSet,
    IstioIdentity,
    MeshCa,
    MeshConfig,
    PolicySet,
    SpiffeId,
    Svid,
    SvidVerifier,
    TrustBundle,
    TrustDomain,
    VerifiedSvid,
    __version__,
    check_private_key,
    expand_principals,
    expand_spiffe_ids,
    inspect_certificate,
    principal_matches,
    validate_peer_authentication,
    verify_svid,
)
from ._policy import MtlsMode

__all__ = [
    "AuthorizationError",
    "Authorizer",
    "BundleError",
    "BundleSet",
    "CaError",
    "Decision",
    "FileError",
    "IdentityError",
    "InvalidArgumentError",
    "InvalidSpiffeIdError",
    "IssuedCertificate",
    "IstioIdentity",
    "ManifestError",
    "MeshCa",
    "MeshConfig",
    "MeshConfigError",
    "MeshTlsError",
    "MtlsMode",
    "PolicyError",
    "PolicySet",
    "SpiffeId",
    "Svid",
    "SvidError",
    "SvidVerifier",
    "TlsError",
    "TrustBundle",
    "TrustDomain",
    "VerifiedSvid",
    "__version__",
    "check_private_key",
    "expand_principals",
    "expand_spiffe_ids",
    "inspect_certificate",
    "principal_matches",
    "validate_peer_authentication",
    "verify_svid",
]
