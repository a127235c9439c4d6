#!/usr/bin/env bash
# Builds the Go test peers into a cache outside the checkout (default ~/.cache/meshtls-peers,
# or $MESHTLS_PEERS_CACHE), from published Go modules through the Go module proxy:
#   hbone-peer         Istio's own HBONE dialer and server (istio.io/istio/pkg/hbone), tests/peers/hbone
#   istio-echo-server  Istio's test echo server (pkg/test/echo/cmd/server, serves --hbone ports)
#   istio-echo-client  Istio's test echo client (pkg/test/echo/cmd/client, sends through --hbone)
#                      (both `tool`s of tests/peers/hbone/go.mod, so the same pinned module)
#   istio-ca-client    Istio's CA client (the agent's citadel provider), tests/peers/istio-ca-client,
#                      the same istio.io/istio version
# A peer is rebuilt only when its sources (main.go, go.mod, go.sum) changed; the first build
# downloads istio.io/istio and its dependencies (about 1-2 minutes here), later ones take
# seconds. Without Go, it says so and the tests that need the peer skip visibly.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHTLS_PEERS_CACHE:-$HOME/.cache/meshtls-peers}"
if ! command -v go >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "build-peers: go not found, and CI runs the Go peer tests: failing" >&2
    exit 1
  fi
  echo "build-peers: go not found (install Go >= 1.26); the Go peer tests will skip"
  exit 0
fi
mkdir -p "$CACHE"
build() { # name, module directory, package (default: the module's own)
  local name=$1 dir=$2 pkg=${3:-.} stamp
  stamp=$(cat "$dir/main.go" "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)
  if [ -x "$CACHE/$name" ] && [ "$(cat "$CACHE/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  echo "build-peers: building $name from $dir (go $(go env GOVERSION))"
  (cd "$dir" && go build -trimpath -o "$CACHE/$name.tmp" "$pkg")
  mv "$CACHE/$name.tmp" "$CACHE/$name"
  echo "$stamp" > "$CACHE/$name.stamp"
}
build hbone-peer tests/peers/hbone
build istio-echo-server tests/peers/hbone istio.io/istio/pkg/test/echo/cmd/server
build istio-echo-client tests/peers/hbone istio.io/istio/pkg/test/echo/cmd/client
build istio-ca-client tests/peers/istio-ca-client
