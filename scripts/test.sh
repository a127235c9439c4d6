#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs
# cargo fmt, the rust-version check, clippy, the Rust tests, cargo doc (warnings are errors),
# builds the Python module into its own virtualenv (target/test-venv) and runs pytest and
# mypy.stubtest. MESHTLS_FUZZ_SMOKE=1 (set by .ci/run) adds a short fuzzing run of every target.
#
# Clippy shares the test build: instead of a separate `cargo clippy` (which checks every
# dependency once more in check mode), clippy-driver compiles the workspace crates during the
# test build (RUSTC_WORKSPACE_WRAPPER, as `cargo clippy` itself does), with -D warnings.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf '\n==> %s (%ss)\n' "$*" "$SECONDS"; }

step "system tools (openssl, curl, gnutls, kill)"
missing=()
# /usr/bin/kill (procps): the `ca serve` signal tests send SIGHUP/SIGTERM/SIGINT with it.
for tool in openssl curl certtool /usr/bin/kill; do
  command -v "$tool" >/dev/null 2>&1 && continue
  case "$tool" in certtool) missing+=(gnutls-bin) ;; /usr/bin/kill) missing+=(procps) ;; *) missing+=("$tool") ;; esac
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

step "Go test peers (Istio's pkg/hbone; built once into ~/.cache/meshtls-peers)"
./scripts/build-peers.sh

step "cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

step "rust-version is the lowest the locked dependencies allow"
python3 scripts/check-msrv.py

# clippy-driver as the workspace wrapper: every workspace crate is linted while it is compiled
# for the tests, dependencies are compiled once. CLIPPY_ARGS is how cargo-clippy passes
# `-- -D warnings` to the driver.
CLIPPY_DRIVER=$(rustc --print sysroot)/bin/clippy-driver
[ -x "$CLIPPY_DRIVER" ] || CLIPPY_DRIVER=$(command -v clippy-driver)
export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "clippy -D warnings while building every target (lib, bins, tests, examples, benches)"
cargo test --workspace --exclude meshtls-python --all-targets --no-run

step "cargo test"
cargo test --workspace --exclude meshtls-python

# The fuzz targets are their own crate (cargo-fuzz's layout), so the workspace build above does
# not see them; an API change that breaks one would otherwise surface only in CI's fuzz smoke.
step "fuzz targets compile (cargo check, locked, no instrumentation)"
cargo check -q --manifest-path fuzz/Cargo.toml --bins --locked

step "cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --exclude meshtls-python

step "python: virtualenv target/test-venv with maturin, pytest, mypy, cryptography, py-spiffe"
# Our own virtualenv under target/: a developer's .venv is never touched.
VENV="$ROOT/target/test-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r python/requirements-test.txt

step "python: build the module (maturin develop; clippy lints the binding crate as it builds)"
# The `bench` feature adds the core's own timings (`_bench_*`, `_handshake_loop`) that the GIL
# test and the Python benchmarks use; the shipped wheel is built without it.
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop -q --features bench)
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

step "pytest"
set +e
(cd python && "$VENV/bin/python" -m pytest -q -ra)
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi
if [ "$rc" -ne 0 ]; then exit "$rc"; fi

step "mypy.stubtest (hand-written .pyi against the runtime)"
(cd python && "$VENV/bin/python" -m mypy.stubtest meshtls --allowlist stubtest-allowlist.txt)

if [ "${MESHTLS_FUZZ_SMOKE:-0}" = 1 ]; then
  step "fuzz smoke: every target ${MESHTLS_FUZZ_SECONDS:-20}s (fails on any finding)"
  ./scripts/fuzz.sh "${MESHTLS_FUZZ_SECONDS:-20}"
fi

echo
echo "all checks passed in ${SECONDS}s"
