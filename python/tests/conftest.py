from __future__ import annotations

import json
import pathlib

import pytest

import meshtls

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SHARED_SPEC = REPO.parent / "shared" / "spec"


def load_vectors(name: str):
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="session")
def spiffe_vectors():
    return load_vectors("spiffe-ids.json")


# ---- the TLS suites' CAs (test_tls.py: the ssl path; test_tls_rustls.py: the rustls path) ----


@pytest.fixture(scope="module")
def ca() -> meshtls.MeshCa:
    """The mesh CA of ``cluster.local`` (P-256, fast to create)."""
    return meshtls.MeshCa.create("cluster.local", key="ec-p256")


@pytest.fixture(scope="module")
def foreign() -> meshtls.MeshCa:
    """A CA of another trust domain, ``foreign.example``."""
    return meshtls.MeshCa.create("foreign.example", key="ec-p256")


def bundles_of(*cas: meshtls.MeshCa) -> meshtls.BundleSet:
    """One bundle per CA's trust domain."""
    return meshtls.BundleSet.from_pem_map({str(c.trust_domain): c.root_cert_pem for c in cas})
