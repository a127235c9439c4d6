#!/usr/bin/env bash
# A real Kubernetes API server for the controller tests: kube-apiserver and etcd built
# UNMODIFIED from their published Go modules (tests/peers/kube/: tiny mains that call
# k8s.io/kubernetes/cmd/kube-apiserver/app.NewAPIServerCommand() and
# go.etcd.io/etcd/server/v3/etcdmain.Main; every k8s.io staging module replaced by its published
# v0.N.M), started on 127.0.0.1 with generated certificates, a static admin token,
# service-account signing keys (TokenRequest and /openid/v1/jwks work) and RBAC.
#
#   scripts/kube-apiserver.sh build          build once into $MESHTLS_KUBE_BIN (minutes on 2 cores)
#   scripts/kube-apiserver.sh built          exit 0 when both binaries are there
#   scripts/kube-apiserver.sh start RUNDIR   start etcd + kube-apiserver, wait until ready;
#                                            writes RUNDIR/env (KUBE_SERVER, KUBE_TOKEN,
#                                            KUBECONFIG, KUBE_CA) and RUNDIR/kubeconfig
#   scripts/kube-apiserver.sh stop RUNDIR    stop both by their pids (RUNDIR/*.pid)
#   scripts/kube-apiserver.sh stop-apiserver RUNDIR / start-apiserver RUNDIR
#                                            stop or restart only the API server (etcd keeps
#                                            the state): the restart tests use these
#
# The binaries live OUTSIDE the checkout ($MESHTLS_KUBE_BIN, default
# ~/.cache/meshtls-peers/kube/); .ci/run builds them when missing, the everyday test command
# never does (tests that need them skip, saying so).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MESHTLS_KUBE_BIN:-${MESHTLS_PEERS_CACHE:-$HOME/.cache/meshtls-peers}/kube}
KUBE_VERSION=v1.36.1

die() { echo "kube-apiserver.sh: $*" >&2; exit 1; }

build() {
  mkdir -p "$BIN"
  local stamp="$BIN/version"
  if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$KUBE_VERSION" ]; then
    echo "kube-apiserver and etcd $KUBE_VERSION already in $BIN"
    return
  fi
  command -v go >/dev/null || die "go is needed to build the test API server"
  echo "building etcd (go.etcd.io/etcd/server/v3) into $BIN"
  (cd "$ROOT/tests/peers/kube/etcd" && go build -trimpath -ldflags=-s -o "$BIN/etcd.tmp" . && mv "$BIN/etcd.tmp" "$BIN/etcd")
  echo "building kube-apiserver (k8s.io/kubernetes $KUBE_VERSION) into $BIN"
  (cd "$ROOT/tests/peers/kube/apiserver" && go build -trimpath -ldflags=-s -o "$BIN/kube-apiserver.tmp" . && mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver")
  echo "$KUBE_VERSION" > "$stamp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

certs() {
  local d=$1/pki
  [ -f "$d/sa.key" ] && return
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=meshtls-test-kube-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > "$d/ext"
  openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -extfile "$d/ext" -out "$d/apiserver.crt" 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  openssl rand -hex 24 > "$d/admin-token"
  printf '%s,meshtls-admin,meshtls-admin,"system:masters"\n' "$(cat "$d/admin-token")" > "$d/tokens.csv"
}

start_etcd() {
  local run=$1
  local client peer
  client=$(free_port); peer=$(free_port)
  echo "$client" > "$run/etcd.port"
  "$BIN/etcd" --name meshtls-test --data-dir "$run/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "meshtls-test=http://127.0.0.1:$peer" --log-level warn \
    > "$run/etcd.log" 2>&1 &
  echo $! > "$run/etcd.pid"
}

start_apiserver() {
  local run=$1
  local d=$run/pki
  local port
  if [ -f "$run/apiserver.port" ]; then port=$(cat "$run/apiserver.port"); else port=$(free_port); echo "$port" > "$run/apiserver.port"; fi
  "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$(cat "$run/etcd.port")" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" --token-auth-file "$d/tokens.csv" \
    --authorization-mode RBAC --anonymous-auth=false \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local,istio-ca \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --enable-priority-and-fairness=false --cert-dir "$run/apiserver-certs" \
    > "$run/apiserver.log" 2>&1 &
  echo $! > "$run/apiserver.pid"
  local server="https://127.0.0.1:$port"
  local token; token=$(cat "$d/admin-token")
  for _ in $(seq 1 240); do
    if curl -sf --cacert "$d/ca.crt" -H "Authorization: Bearer $token" "$server/readyz" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$(cat "$run/apiserver.pid")" 2>/dev/null || { tail -20 "$run/apiserver.log" >&2; die "kube-apiserver exited"; }
    sleep 0.25
  done
  tail -20 "$run/apiserver.log" >&2
  die "kube-apiserver not ready after 60 s"
}

write_env() {
  local run=$1 d=$1/pki
  local server="https://127.0.0.1:$(cat "$run/apiserver.port")"
  local token; token=$(cat "$d/admin-token")
  local ca_b64; ca_b64=$(base64 -w0 < "$d/ca.crt")
  cat > "$run/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: meshtls-test
  cluster: {server: "$server", certificate-authority-data: "$ca_b64"}
users:
- name: meshtls-admin
  user: {token: "$token"}
contexts:
- name: meshtls-test
  context: {cluster: meshtls-test, user: meshtls-admin}
current-context: meshtls-test
EOF
  cat > "$run/env" <<EOF
KUBE_SERVER=$server
KUBE_TOKEN=$token
KUBE_CA=$d/ca.crt
KUBECONFIG=$run/kubeconfig
EOF
}

stop_pid() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd=${1:-}
case "$cmd" in
  build) build ;;
  built) [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] ;;
  start)
    run=${2:?usage: start RUNDIR}
    [ -x "$BIN/kube-apiserver" ] || die "not built: run scripts/kube-apiserver.sh build"
    mkdir -p "$run"; run=$(cd "$run" && pwd)
    certs "$run"
    start_etcd "$run"
    start_apiserver "$run"
    write_env "$run"
    echo "kube-apiserver ready at https://127.0.0.1:$(cat "$run/apiserver.port") (env: $run/env)"
    ;;
  stop-apiserver) stop_pid "${2:?usage: stop-apiserver RUNDIR}/apiserver.pid" ;;
  start-apiserver) run=$(cd "${2:?usage: start-apiserver RUNDIR}" && pwd); start_apiserver "$run" ;;
  stop)
    run=${2:?usage: stop RUNDIR}
    stop_pid "$run/apiserver.pid"
    stop_pid "$run/etcd.pid"
    ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
