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
    IssuedCertificate,
    IstioIdentity,
    MeshCa,
    MeshConfig,
    SpiffeId,
    Svid,
    TrustDomain,
    __version__,
    expand_principals,
    expand_spiffe_ids,
    principal_matches,
)

__all__ = [
    "AuthorizationError",
    "BundleError",
    "CaError",
    "IdentityError",
    "InvalidSpiffeIdError",
    "IssuedCertificate",
    "IstioIdentity",
    "ManifestError",
    "MeshCa",
    "MeshConfig",
    "MeshConfigError",
    "MeshTlsError",
    "PolicyError",
    "SpiffeId",
    "Svid",
    "SvidError",
    "TlsError",
    "TrustDomain",
    "__version__",
    "expand_principals",
    "expand_spiffe_ids",
    "principal_matches",
]
