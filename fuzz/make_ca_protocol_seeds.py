#!/usr/bin/env python3
"""Seeds for the `jwt` and `ca_messages` fuzz targets (Istio's CA protocol), made with
pyca/cryptography and PyJWT against the committed test keys in fuzz/jwt/ and the fuzzing CA in
fuzz/ca/. Usage (from the repository root, with the dev virtualenv):

    .venv-dev/bin/python fuzz/make_ca_protocol_seeds.py          # writes corpus seeds
    .venv-dev/bin/python fuzz/make_ca_protocol_seeds.py --keys   # new test keys first (rare)

Input layouts (see the targets): `jwt` takes a mode byte, then either a whole token (even
modes) or header JSON, 0xff, claims JSON (odd modes: the target signs them with the fixed
ES256 key, or RS256 when bit 1 is set). `ca_messages` takes a mode byte, then protobuf bytes:
an IstioCertificateRequest (mode 0, 2: strict CSR) or an IstioCertificateResponse (mode 1).
"""
import base64
import hashlib
import json
import pathlib
import sys

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

FUZZ = pathlib.Path(__file__).resolve().parent
KEYS = FUZZ / "jwt"
CORPUS = FUZZ / "corpus"
ISSUER = "https://kubernetes.default.svc.cluster.local"
EXP = 4_000_000_000  # 2096: the targets verify at a fixed time before it
SUB = "system:serviceaccount:fuzz:jwt"
ID = "spiffe://cluster.local/ns/fuzz/sa/jwt"


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_keys() -> None:
    KEYS.mkdir(exist_ok=True)
    es = ec.generate_private_key(ec.SECP256R1())
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = lambda k: k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    (KEYS / "es256-key.pem").write_bytes(pem(es))
    (KEYS / "rs256-key.pem").write_bytes(pem(rs))
    (KEYS / "es256-key.pk8").write_bytes(es.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (KEYS / "rs256-key.pk8").write_bytes(rs.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    e = es.public_key().public_numbers()
    r = rs.public_key().public_numbers()
    n = lambda i: b64u(i.to_bytes((i.bit_length() + 7) // 8, "big"))
    jwks = {"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "use": "sig",
         "x": b64u(e.x.to_bytes(32, "big")), "y": b64u(e.y.to_bytes(32, "big"))},
        {"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": n(r.n), "e": n(r.e)},
    ]}
    (KEYS / "jwks.json").write_text(json.dumps(jwks, indent=1) + "\n")


def load(name: str):
    return serialization.load_pem_private_key((KEYS / name).read_bytes(), None)


def seed(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(tag: int, wire: int, payload) -> bytes:
    key = varint((tag << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def struct_string(key: str, value: str) -> bytes:
    # google.protobuf.Struct { map<string, Value> fields = 1 }, Value.string_value = 3.
    entry = field(1, 2, key.encode()) + field(2, 2, field(3, 2, value.encode()))
    return field(1, 2, entry)


def request(csr: str, ttl: int, metadata: bytes = b"") -> bytes:
    out = field(1, 2, csr.encode()) + field(3, 0, ttl)
    if metadata:
        out += field(4, 2, metadata)
    return out


def response(entries: list[str]) -> bytes:
    return b"".join(field(1, 2, e.encode()) for e in entries)


def csr(uri: str | None, *, cn: str | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if uri:
        b = b.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]),
                            critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def main() -> None:
    if "--keys" in sys.argv:
        make_keys()
    es, rs = load("es256-key.pem"), load("rs256-key.pem")
    claims = {"iss": ISSUER, "sub": SUB, "aud": ["istio-ca"], "exp": EXP, "iat": EXP - 3600,
              "kubernetes.io": {"namespace": "fuzz", "serviceaccount": {"name": "jwt"}}}
    good_es = jwt.encode(claims, es, algorithm="ES256", headers={"kid": "es"})
    good_rs = jwt.encode(claims, rs, algorithm="RS256", headers={"kid": "rs"})
    for t in [
        good_es,
        good_rs,
        jwt.encode(claims, rs, algorithm="PS256"),
        jwt.encode({**claims, "aud": "other"}, es, algorithm="ES256"),
        jwt.encode({**claims, "nbf": EXP}, es, algorithm="ES256"),
        b64u(b'{"alg":"none"}') + "." + b64u(json.dumps(claims).encode()) + ".",
        b64u(b'{"alg":"HS256"}') + "." + b64u(json.dumps(claims).encode()) + ".AAAA",
    ]:
        seed("jwt", b"\x00" + t.encode())
    header = json.dumps({"alg": "ES256", "kid": "es"}).encode()
    seed("jwt", b"\x01" + header + b"\xff" + json.dumps(claims).encode())
    seed("jwt", b"\x01" + header + b"\xff" + json.dumps({**claims, "sub": "x"}).encode())
    seed("jwt", b"\x03" + json.dumps({"alg": "RS256", "kid": "rs"}).encode() + b"\xff"
         + json.dumps({**claims, "exp": 1.5e9}).encode())

    good = csr(ID)
    seed("ca_messages", b"\x00" + request(good, 3600))
    seed("ca_messages", b"\x00" + request(good, 0))
    seed("ca_messages", b"\x02" + request(good, 3600))
    seed("ca_messages", b"\x02" + request(csr(ID, cn="x"), 3600))
    seed("ca_messages", b"\x00" + request(good, 3600, struct_string(
        "ImpersonatedIdentity", "spiffe://cluster.local/ns/other/sa/x")))
    chain = [(FUZZ / "ca" / f).read_text() for f in ("ca-cert.pem", "root-cert.pem")]
    seed("ca_messages", b"\x01" + response(chain))
    seed("ca_messages", b"\x01" + response(["", "x"]))


if __name__ == "__main__":
    main()
