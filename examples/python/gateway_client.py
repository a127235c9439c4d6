"""A gateway written in Python calls an app behind a STRICT sidecar over mesh mTLS.

Start the demo's pieces (see docs/tls.md), then:

    python examples/python/gateway_client.py --ca-dir /tmp/mesh-ca --connect 127.0.0.1:15006

The gateway gets its client certificate from the mesh CA and connects with meshtls.tls.connect
(the rustls path): the sidecar's chain is verified against the bundle of its own trust domain
and its SPIFFE ID checked inside the handshake, so a wrong sidecar never receives the request.
``--ssl`` does the same with Python's ssl module and meshtls.tls.check_peer after the handshake.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

import meshtls
import meshtls.tls as mtls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ca-dir", required=True, help="mesh CA directory (Istio plug-in layout)")
    parser.add_argument("--connect", default="127.0.0.1:15006", help="the sidecar's address")
    parser.add_argument("--trust-domain", default="cluster.local", help="the trust domain the CA serves")
    parser.add_argument("--id", default="spiffe://cluster.local/ns/azure-alb-system/sa/alb-controller")
    parser.add_argument("--expect-peer", action="append", default=None,
                        help="the sidecar's SPIFFE ID (repeatable)")
    parser.add_argument("--tls", choices=["1.2", "1.3"], default=None)
    parser.add_argument("--path", default="/api/headers")
    parser.add_argument("--ssl", action="store_true", help="use Python's ssl and check_peer instead of rustls")
    args = parser.parse_args()
    expected = args.expect_peer or ["spiffe://cluster.local/ns/demo/sa/api"]

    # The plug-in files do not name the trust domain (istiod's root has no URI SAN): say it.
    ca = meshtls.MeshCa.load(args.ca_dir, trust_domain=args.trust_domain)
    svid = ca.issue(args.id)
    trust_domain = str(ca.trust_domain)
    bundles = meshtls.BundleSet.from_pem_map({trust_domain: ca.root_cert_pem})
    versions = {"min_version": args.tls, "max_version": args.tls} if args.tls else {}
    host, port = args.connect.rsplit(":", 1)
    address = (host, int(port))

    conn: Any
    try:
        if args.ssl:
            tls = mtls.client_context(svid, bundles, **versions).wrap_socket(
                socket.create_connection(address, timeout=10))
            peer = mtls.check_peer(tls, bundles, expected=expected)
            facts = (tls.version(), tls.cipher()[0], tls.selected_alpn_protocol())
            conn = tls
        else:
            conn = mtls.connect(address, svid, bundles, expected=expected, timeout=10, **versions)
            peer = conn.peer_spiffe_id
            facts = (conn.version, conn.cipher, conn.alpn)
    except (OSError, meshtls.MeshTlsError) as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"TLS version   {facts[0]}")
    print(f"cipher suite  {facts[1]}")
    print(f"ALPN          {facts[2]}")
    print(f"gateway ID    {svid.spiffe_id}")
    print(f"sidecar ID    {peer}")
    with conn:
        conn.sendall(f"GET {args.path} HTTP/1.1\r\nHost: api.demo.svc.cluster.local:8080\r\n"
                     "User-Agent: meshtls-python-gateway\r\nConnection: close\r\n\r\n".encode())
        response = conn.makefile("rb").read()
    print(response.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
