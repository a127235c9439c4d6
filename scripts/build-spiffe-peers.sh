#!/usr/bin/env bash
# Builds the SPIFFE test peers from published Go modules (through the Go module proxy) into
# ~/.cache/meshtls-peers/ (outside the checkout), once: go-spiffe-jwt (go-spiffe's jwtsvid and
# jwtbundle, go-jose), go-spiffe-workload (go-spiffe's workloadapi client, against meshtls's
# Workload API server) and SPIRE (spire-server and spire-agent of github.com/spiffe/spire v1.13.3,
# the `tool` lines of tests/peers/spire/go.mod, into spire/; the meshtls Workload API client's
# real server). `.ci/run` runs this when a peer is missing; the everyday test command only uses
# the cache when present, and the tests that need a peer skip with a reason without it.
#   scripts/build-spiffe-peers.sh          build what is missing
#   scripts/build-spiffe-peers.sh --force  rebuild
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHTLS_PEERS_CACHE:-$HOME/.cache/meshtls-peers}"
mkdir -p "$CACHE"
command -v go >/dev/null || { echo "build-spiffe-peers: go is not installed" >&2; exit 1; }
for peer in go-spiffe-jwt go-spiffe-workload; do
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

# SPIRE: two commands of one published module, built with the versions its go.sum pins (SPIRE
# needs cgo for its sqlite datastore; -s -w keeps the two binaries small). Cold, measured: this
# whole script with empty Go module, build and peer caches takes 6m18s on the quiet 2-core machine
# (10m20s of user CPU), nearly all of it SPIRE.
out="$CACHE/spire"
stamp="$CACHE/spire.stamp"
want=$(cat tests/peers/spire/go.mod tests/peers/spire/go.sum | sha256sum | cut -c1-64)
if [ "${1:-}" = --force ] || [ ! -x "$out/spire-server" ] || [ ! -x "$out/spire-agent" ] \
  || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "build-spiffe-peers: building spire-server and spire-agent into $out"
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  (cd tests/peers/spire && CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o "$out.tmp/" \
    github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent)
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "$want" >"$stamp"
fi
