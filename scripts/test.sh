#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs
# cargo fmt, clippy, the Rust tests, cargo doc (warnings are errors), builds the Python
# module into a fresh virtualenv and runs pytest and mypy.stubtest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "system tools (openssl, curl)"
missing=()
for tool in openssl curl certtool; do command -v "$tool" >/dev/null 2>&1 || missing+=("${tool/#certtool/gnutls-bin}"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace --exclude meshtls-python

step "cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --exclude meshtls-python

step "python: fresh virtualenv with maturin, pytest, mypy, cryptography, py-spiffe"
VENV="$ROOT/.venv"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r python/requirements-test.txt

step "python: build the module (maturin develop)"
(cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop -q)

step "pytest"
set +e
(cd python && "$VENV/bin/python" -m pytest -q -ra)
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi
if [ "$rc" -ne 0 ]; then exit "$rc"; fi

step "mypy.stubtest (hand-written .pyi against the runtime)"
(cd python && "$VENV/bin/python" -m mypy.stubtest meshtls --allowlist stubtest-allowlist.txt)

echo
echo "all checks passed"
