#!/usr/bin/env python3
"""Regenerates fuzz/corpus/<target>/ seeds from the project's test vectors and a few files made
with openssl and the meshtls CLI against fuzz/ca. Usage (from the repository root):

    cargo build -p meshtls-cli && python3 fuzz/make_seeds.py target/debug/meshtls

The seeds are committed; run this only to refresh them. Istio's sample certificates are added
when ../shared/istio-samples is present (a worktree beside the shared folder).
"""
import base64
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
CORPUS = FUZZ / "corpus"
CLI = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/meshtls")


def seed(target: str, data) -> None:
    if isinstance(data, str):
        data = data.encode()
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def run(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, check=True, capture_output=True, input=stdin).stdout


def pem_blocks(text: str) -> list[bytes]:
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            cur = []
        elif line.startswith("-----END"):
            out.append(base64.b64decode("".join(cur or [])))
            cur = None
        elif cur is not None:
            cur.append(line.strip())
    return out


def length_prefixed(ders: list[bytes]) -> bytes:
    return b"".join(len(d).to_bytes(2, "big") + d for d in ders)


vectors = json.loads((ROOT / "tests/data/spiffe-ids.json").read_text())
for group in ("spiffe_ids", "trust_domains"):
    for case in vectors[group]:
        text = case.get("input") if isinstance(case, dict) else case
        if isinstance(text, str):
            seed("spiffe_id", text)
for p in ["cluster.local/ns/shop/sa/web", "*", "cluster.local/ns/shop/*", "*/ns/a/sa/b",
          "td2/ns/a/sa/b\n@td1\n@td2", "*.local/ns/a/sa/b\n@cluster.local\n@old.example"]:
    seed("principal", p)
    seed("spiffe_id", p)

for case in json.loads((ROOT / "tests/data/peerauth-validation.json").read_text()):
    seed("peer_authentication", case["manifest"])
for case in json.loads((ROOT / "tests/data/peerauth-resolution.json").read_text()):
    docs = [json.dumps(p) for p in case.get("policies", []) if isinstance(p, (dict, str))]
    if docs:
        seed("peer_authentication", "\n---\n".join(docs))

for mesh in [
    "trustDomain: prod.example\ntrustDomainAliases: [old.example, cluster.local]\nrootNamespace: istio-system\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    trustDomain: cluster.local\n    meshMTLS: {minProtocolVersion: TLSV1_3}\n    caCertificates:\n    - trustDomains: [a.example, b.example]\n",
    "{}",
    "enableAutoMtls: false\nmeshMTLS:\n  cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]\n",
]:
    seed("mesh_config", mesh)

bundle = (ROOT / "tests/data/go-spiffe/spiffebundle_valid_1.json").read_text()
seed("bundle_json", bundle)
seed("bundle_json", json.dumps({"trust_domains": {"example.org": json.loads(bundle)}}))

with tempfile.TemporaryDirectory() as tmp:
    t = pathlib.Path(tmp)
    ca = str(FUZZ / "ca")
    chain = run(CLI, "issue", "--ca", ca, "spiffe://cluster.local/ns/shop/sa/web", "--ttl", "90d").decode()
    pems = [chain, (FUZZ / "ca/root-cert.pem").read_text()]
    for key in ("ec", "rsa"):
        keyfile = t / f"{key}.key"
        if key == "ec":
            run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(keyfile))
        else:
            run("openssl", "genrsa", "-out", str(keyfile), "2048")
        csr = run("openssl", "req", "-new", "-key", str(keyfile), "-subj", "/CN=fuzz",
                  "-addext", "subjectAltName=URI:spiffe://evil.example/ns/x/sa/y")
        seed("csr", csr)
        seed("csr", pem_blocks(csr.decode())[0])
    samples = ROOT.parent / "shared/istio-samples/certs"
    if samples.is_dir():
        pems += [p.read_text() for p in sorted(samples.glob("*cert*.pem"))]
    for text in pems:
        ders = pem_blocks(text)
        seed("pem_chain", text)
        seed("verify_svid", length_prefixed(ders))
        for der in ders:
            seed("der_cert", der)

# ClientHellos: what curl and openssl send, captured from a local listener.
import socket
import threading

def capture(cmd: list[str]) -> bytes:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}

    def accept():
        conn, _ = srv.accept()
        conn.settimeout(3)
        data = b""
        try:
            while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        got["data"] = data
        conn.close()

    th = threading.Thread(target=accept)
    th.start()
    subprocess.run([c.replace("PORT", str(port)) for c in cmd], capture_output=True, timeout=10,
                   stdin=subprocess.DEVNULL)
    th.join()
    srv.close()
    return got.get("data", b"")

for cmd in (
    ["curl", "-sk", "--max-time", "2", "https://127.0.0.1:PORT/"],
    ["curl", "-sk", "--max-time", "2", "--http1.1", "https://sidecar.example:PORT/", "--resolve", "sidecar.example:PORT:127.0.0.1"],
    ["openssl", "s_client", "-connect", "127.0.0.1:PORT", "-alpn", "istio-peer-exchange,istio", "-tls1_2"],
    ["openssl", "s_client", "-connect", "127.0.0.1:PORT", "-alpn", "istio,h2", "-tls1_3"],
):
    hello = capture(cmd)
    if hello:
        seed("sniff", hello)
seed("sniff", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
seed("sniff", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
print("seeds:", {d.name: len(list(d.iterdir())) for d in sorted(CORPUS.iterdir())})
