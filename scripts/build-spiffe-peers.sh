#!/usr/bin/env bash
# Builds the SPIFFE test peers from published Go modules (through the Go module proxy) into
# ~/.cache/meshtls-peers/ (outside the checkout), once: go-spiffe-jwt (go-spiffe's jwtsvid and
# jwtbundle, go-jose). `.ci/run` runs this when a peer is missing; the everyday test command
# only uses the cache when present, and the tests that need a peer skip with a reason without it.
#   scripts/build-spiffe-peers.sh          build what is missing
#   scripts/build-spiffe-peers.sh --force  rebuild
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHTLS_PEERS_CACHE:-$HOME/.cache/meshtls-peers}"
mkdir -p "$CACHE"
command -v go >/dev/null || { echo "build-spiffe-peers: go is not installed" >&2; exit 1; }
for peer in go-spiffe-jwt; do
  out="$CACHE/$peer"
  stamp="$CACHE/$peer.stamp"
  want=$(cat "tests/peers/$peer/go.mod" "tests/peers/$peer/go.sum" "tests/peers/$peer"/*.go | sha256sum | cut -c1-64)
  if [ "${1:-}" != --force ] && [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  echo "build-spiffe-peers: building $peer into $out"
  (cd "tests/peers/$peer" && go build -trimpath -o "$out.tmp" .)
  mv "$out.tmp" "$out"
  echo "$want" >"$stamp"
done
