#!/usr/bin/env bash
# Makes the files docs/identity.md's snippets read: a mesh CA, a workload chain and its key, and a
# SPIFFE bundle map, all under ${1:-/tmp/meshtls-demo}. Needs the `meshtls` binary on PATH
# (`cargo install --path crates/meshtls-cli`) or MESHTLS=path/to/meshtls.
set -euo pipefail
out=${1:-/tmp/meshtls-demo}
meshtls=${MESHTLS:-meshtls}
mkdir -p "$out"
"$meshtls" ca init "$out/ca" --key ec-p256 --force >/dev/null
"$meshtls" issue --ca "$out/ca" spiffe://cluster.local/ns/shop/sa/web --out "$out/web" >/dev/null
cp "$out/web/cert-chain.pem" "$out/chain.pem"
cp "$out/ca/root-cert.pem" "$out/root-cert.pem"
python3 - "$out" <<'PY'
import base64, json, re, sys
out = sys.argv[1]
pem = open(f"{out}/root-cert.pem").read()
der = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S).group(1)
x5c = "".join(der.split())
bundle = {"keys": [{"use": "x509-svid", "kty": "EC", "crv": "P-256", "x5c": [x5c]}]}
json.dump({"trust_domains": {"cluster.local": bundle}}, open(f"{out}/bundle-map.json", "w"), indent=2)
PY
echo "wrote $out/{ca/,web/,chain.pem,root-cert.pem,bundle-map.json}"
