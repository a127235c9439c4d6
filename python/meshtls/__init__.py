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
    IdentityError,
    InvalidSpiffeIdError,
    ManifestError,
    MeshConfigError,
    MeshTlsError,
    PolicyError,
    SvidError,
    TlsError,
)
from ._meshtls import (
    Decision,
    IstioIdentity,
    MeshConfig,
    PolicySet,
    SpiffeId,
    TrustDomain,
    __version__,
    expand_principals,
    expand_spiffe_ids,
    principal_matches,
    validate_peer_authentication,
)
from ._policy import MtlsMode

__all__ = [
    "AuthorizationError",
    "BundleError",
    "CaError",
    "Decision",
    "IdentityError",
    "InvalidSpiffeIdError",
    "IstioIdentity",
    "ManifestError",
    "MeshConfig",
    "MeshConfigError",
    "MeshTlsError",
    "MtlsMode",
    "PolicyError",
    "PolicySet",
    "SpiffeId",
    "SvidError",
    "TlsError",
    "TrustDomain",
    "__version__",
    "expand_principals",
    "expand_spiffe_ids",
    "principal_matches",
    "validate_peer_authentication",
]
