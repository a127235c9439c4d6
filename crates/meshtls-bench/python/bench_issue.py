"""Issuing Istio-profile X.509-SVIDs from Python: meshtls against pyca/cryptography building the
same certificate in the same process.

Both sides start from the same CA key and certificate and produce the same outputs: a fresh
P-256 key (PKCS#8 PEM) and the chain PEM (leaf, then the CA), with empty subject, a critical
SAN holding the SPIFFE ID, KU digitalSignature+keyEncipherment (critical), EKU
serverAuth+clientAuth, basic constraints CA:false, AKI, a random 128-bit serial, NotBefore two
minutes back and NotAfter 24 h ahead. The operations alternate sample by sample so that load
from other processes falls on both alike.

    python crates/meshtls-bench/python/bench_issue.py [--samples N] [--ca-key ec-p256|rsa-2048] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

import meshtls

WORKLOAD = "spiffe://cluster.local/ns/gateway/sa/agc"
PEM = serialization.Encoding.PEM


def make_cryptography_issuer(ca: meshtls.MeshCa):
    ca_key = serialization.load_pem_private_key(ca.ca_key_pem.encode(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert_pem.encode())
    ca_chain_pem = ca.cert_chain_pem
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    san_uri = x509.UniformResourceIdentifier(WORKLOAD)
    ku = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    bc = x509.BasicConstraints(ca=False, path_length=None)
    hash_alg = hashes.SHA256() if not isinstance(ca_key, ec.EllipticCurvePrivateKey) or ca_key.curve.name == "secp256r1" else hashes.SHA384()

    def issue() -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(secrets.randbits(128) or 1)
            .not_valid_before(now - dt.timedelta(minutes=2))
            .not_valid_after(now + dt.timedelta(hours=24))
            .add_extension(ku, critical=True)
            .add_extension(eku, critical=False)
            .add_extension(bc, critical=True)
            .add_extension(aki, critical=False)
            .add_extension(x509.SubjectAlternativeName([san_uri]), critical=True)
            .sign(ca_key, hash_alg)
        )
        chain = cert.public_bytes(PEM).decode() + ca_chain_pem
        key_pem = key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return chain, key_pem

    return issue


def make_meshtls_issuer(ca: meshtls.MeshCa):
    def issue() -> tuple[str, str]:
        svid = ca.issue(WORKLOAD)
        return svid.cert_chain_pem, svid.private_key_pem

    return issue


BATCH = 64


def make_meshtls_batch(ca: meshtls.MeshCa):
    ids = [WORKLOAD] * BATCH

    def issue_batch() -> list[tuple[str, str]]:
        return [(s.cert_chain_pem, s.private_key_pem) for s in ca.issue_many(ids)]

    return issue_batch


def make_cryptography_batch(one):
    def issue_batch() -> list[tuple[str, str]]:
        return [one() for _ in range(BATCH)]

    return issue_batch


def measure(samples: int, target_s: float, fns: dict[str, object]) -> dict[str, float]:
    """Median seconds per call of each function, sampled in alternation."""
    iters = {}
    for name, fn in fns.items():
        n = 1
        while True:
            t = time.perf_counter()
            for _ in range(n):
                fn()
            el = time.perf_counter() - t
            if el >= target_s / 10:
                iters[name] = max(1, int(target_s / (el / n)))
                break
            n *= 4
    per_call: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            n = iters[name]
            t = time.perf_counter()
            for _ in range(n):
                fn()
            per_call[name].append((time.perf_counter() - t) / n)
    return {name: statistics.median(v) for name, v in per_call.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--target", type=float, default=0.2, help="seconds per sample")
    ap.add_argument("--ca-key", default="ec-p256")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    ca = meshtls.MeshCa.create("cluster.local", key=args.ca_key)
    ours = make_meshtls_issuer(ca)
    theirs = make_cryptography_issuer(ca)
    # Same outputs: both chains verify to the same root and carry the same SPIFFE ID.
    for chain_pem, key_pem in (ours(), theirs()):
        svid = meshtls.Svid.from_pem(chain_pem, key_pem)
        assert str(svid.spiffe_id) == WORKLOAD

    med = measure(
        args.samples,
        args.target,
        {
            "meshtls": ours,
            "cryptography": theirs,
            "meshtls_batch": make_meshtls_batch(ca),
            "cryptography_batch": make_cryptography_batch(theirs),
        },
    )
    one = med["cryptography"] / med["meshtls"]
    batch = med["cryptography_batch"] / med["meshtls_batch"]
    result = {
        "ca_key": args.ca_key,
        "cores": os.cpu_count(),
        "one_call": {
            "meshtls_us": round(med["meshtls"] * 1e6, 1),
            "cryptography_us": round(med["cryptography"] * 1e6, 1),
            "ratio": round(one, 2),
        },
        "batch_of_64_per_svid": {
            "meshtls_us": round(med["meshtls_batch"] / BATCH * 1e6, 1),
            "cryptography_us": round(med["cryptography_batch"] / BATCH * 1e6, 1),
            "ratio": round(batch, 2),
        },
        "goal": 4.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        o, b = result["one_call"], result["batch_of_64_per_svid"]
        print(
            f"CA {args.ca_key}, fresh P-256 leaf, chain + PKCS#8 PEM out ({os.cpu_count()} cores):\n"
            f"  one call    meshtls MeshCa.issue {o['meshtls_us']:>8.1f} µs   "
            f"cryptography {o['cryptography_us']:>8.1f} µs   {one:.2f}x\n"
            f"  64 at once  meshtls issue_many   {b['meshtls_us']:>8.1f} µs   "
            f"cryptography {b['cryptography_us']:>8.1f} µs   {batch:.2f}x   (per SVID)\n"
            f"  goal >= 4x"
        )


if __name__ == "__main__":
    main()
