"""A gateway written in Python calls an app behind a STRICT sidecar over mesh mTLS.

Start the demo's pieces (see the README), then:

    python examples/python/gateway_client.py --ca-dir /tmp/mesh-ca --connect 127.0.0.1:15006

The gateway gets its client certificate from the mesh CA, builds an ssl.SSLContext with
meshtls.tls, and checks the sidecar's SPIFFE ID right after the handshake, before sending
anything.
"""

from __future__ import annotations

import argparse
import socket
import sys

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
    args = parser.parse_args()
    expected = args.expect_peer or ["spiffe://cluster.local/ns/demo/sa/api"]

    # The plug-in files do not name the trust domain (istiod's root has no URI SAN): say it.
    ca = meshtls.MeshCa.load(args.ca_dir, trust_domain=args.trust_domain)
    svid = ca.issue(args.id)
    trust_domain = str(ca.trust_domain)
    bundles = meshtls.BundleSet.from_pem_map({trust_domain: ca.root_cert_pem})
    versions = {"min_version": args.tls, "max_version": args.tls} if args.tls else {}
    ctx = mtls.client_context(svid, bundles, **versions)

    host, port = args.connect.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    try:
        tls = ctx.wrap_socket(raw)
        peer = mtls.check_peer(tls, bundles, expected=expected)
    except (OSError, meshtls.MeshTlsError) as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"TLS version   {tls.version()}")
    print(f"cipher suite  {tls.cipher()[0]}")
    print(f"ALPN          {tls.selected_alpn_protocol()}")
    print(f"gateway ID    {svid.spiffe_id}")
    print(f"sidecar ID    {peer}")
    tls.sendall(f"GET {args.path} HTTP/1.1\r\nHost: api.demo.svc.cluster.local:8080\r\n"
                "User-Agent: meshtls-python-gateway\r\nConnection: close\r\n\r\n".encode())
    response = b""
    while True:
        chunk = tls.recv(4096)
        if not chunk:
            break
        response += chunk
    tls.close()
    print(response.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
