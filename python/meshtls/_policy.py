"""PeerAuthentication's mutual TLS mode, as a Python enum so that it compares, hashes and
pickles like any enum and equals its Istio spelling."""

from __future__ import annotations

import enum

__all__ = ["MtlsMode"]


class MtlsMode(str, enum.Enum):
    """``spec.mtls.mode`` of a PeerAuthentication. ``str()`` gives Istio's spelling and a
    member equals that string: ``MtlsMode.STRICT == "STRICT"``."""

    UNSET = "UNSET"
    """Take the parent's mode; PERMISSIVE when there is no parent."""
    DISABLE = "DISABLE"
    """Plaintext only: the sidecar does not terminate mTLS."""
    PERMISSIVE = "PERMISSIVE"
    """Plaintext and mTLS are both accepted."""
    STRICT = "STRICT"
    """mTLS only, with a client certificate."""

    def __str__(self) -> str:
        return str(self.value)
