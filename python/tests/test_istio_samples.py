"""Istio's own sample plug-in CA (``tests/data/istio-samples``, Istio's ``samples/certs``; see its
NOTE.md): it loads with a trust domain, what it issues verifies under meshtls and under
pyca/cryptography's verifier, its sample workload certificates verify against its root, and
identities of other trust domains are refused."""

from __future__ import annotations

import datetime as dt
import pathlib
import shutil

import pytest
from cryptography import x509
from cryptography.x509 import verification

import meshtls

SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "istio-samples"


def sample_ca(tmp_path: pathlib.Path, suffix: str = "") -> pathlib.Path:
    d = tmp_path / f"cacerts{suffix}"
    d.mkdir()
    for name in ("ca-cert", "ca-key", "cert-chain", "root-cert"):
        shutil.copy(SAMPLES / f"{name}{suffix}.pem", d / f"{name}.pem")
    return d


def pyca_verify(chain_pem: str, root_pem: str) -> None:
    """pyca/cryptography's RFC 5280 client verifier (rust-webpki-like, independent of meshtls)."""
    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    roots = x509.load_pem_x509_certificates(root_pem.encode())
    store = verification.Store(roots)
    verifier = verification.PolicyBuilder().store(store).build_client_verifier()
    verifier.verify(certs[0], certs[1:])


@pytest.mark.parametrize("suffix", ["", "-alt"])
def test_sample_ca_issues_what_verifies(tmp_path, suffix):
    ca = meshtls.MeshCa.load(sample_ca(tmp_path, suffix), trust_domain="cluster.local")
    assert ca.trust_domain == meshtls.TrustDomain("cluster.local")
    bundles = {"cluster.local": ca.root_cert_pem}
    for key in ("ec-p256", "rsa-2048"):
        svid = ca.issue("spiffe://cluster.local/ns/shop/sa/checkout", key=key)
        assert meshtls.verify_svid(svid.cert_chain_pem, bundles) == svid.spiffe_id
        if suffix == "-alt":
            pyca_verify(svid.cert_chain_pem, ca.root_cert_pem)
        else:
            # pyca/cryptography's verifier is stricter than the mesh's peers (like
            # ``openssl verify -x509_strict``): the sample root's BasicConstraints is not
            # critical. meshtls follows webpki/Go/OpenSSL/BoringSSL by default.
            with pytest.raises(verification.VerificationError, match="criticality"):
                pyca_verify(svid.cert_chain_pem, ca.root_cert_pem)
    with pytest.raises(meshtls.CaError, match="other.example is not this ca's trust domain cluster.local"):
        ca.issue("spiffe://other.example/ns/a/sa/b")


def test_sample_ca_needs_a_trust_domain(tmp_path):
    d = sample_ca(tmp_path)
    with pytest.raises(meshtls.CaError, match="has no spiffe://<trust domain> uri san") as e:
        meshtls.MeshCa.load(d)
    assert str(d / "ca-cert.pem") in str(e.value)
    mesh = meshtls.MeshConfig.from_yaml("trustDomain: cluster.local\ntrustDomainAliases: [old.example]\n")
    ca = meshtls.MeshCa.load(d, mesh=mesh)
    assert ca.trust_domain_aliases == [meshtls.TrustDomain("old.example")]
    assert ca.issue("spiffe://old.example/ns/a/sa/b").spiffe_id == meshtls.SpiffeId("spiffe://old.example/ns/a/sa/b")
    with pytest.raises(TypeError):
        meshtls.MeshCa.load(d, mesh=mesh, trust_domain="cluster.local")


@pytest.mark.parametrize("name", ["foo", "bar"])
def test_sample_workload_certificates_verify_against_the_sample_root(name):
    chain = (SAMPLES / f"workload-{name}-cert.pem").read_text()
    root = (SAMPLES / "root-cert.pem").read_text()
    got = meshtls.verify_svid(chain, {f"trust-domain-{name}": root})
    assert got == meshtls.SpiffeId(f"spiffe://trust-domain-{name}/ns/{name}/sa/{name}")
    with pytest.raises(meshtls.SvidError, match="does not verify against the roots of"):
        meshtls.verify_svid(chain, {f"trust-domain-{name}": (SAMPLES / "root-cert-alt.pem").read_text()})
    # Its own key loads with it as an Svid.
    svid = meshtls.Svid.from_pem(chain, (SAMPLES / f"workload-{name}-key.pem").read_text())
    assert svid.not_after > dt.datetime.now(dt.timezone.utc)
