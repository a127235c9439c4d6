#!/usr/bin/env bash
# Runs every fuzz target in fuzz/src/bin/ for N seconds each (default 20) with libFuzzer,
# one after the other, and fails on the first crash, timeout, leak or out-of-memory.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 3600 bundle_json
#
# Environment: FUZZ_JOBS (parallel libFuzzer workers per target, default 1), FUZZ_NICE
# (nice level, default 0; the long runs use 19), FUZZ_MAX_LEN (default 65536), FUZZ_RUNS
# (stop a target after this many executions, e.g. 10000000), FUZZ_TIMEOUT (seconds one input
# may take before it counts as a finding, default 10; wall time, so long runs at nice 19 beside
# other builds use more), FUZZ_LOGS (log directory, default fuzz/target/logs), FUZZ_NO_BUILD=1
# (use the targets already built).
# cargo-fuzz is installed from crates.io when it is missing. libFuzzer needs a few unstable
# rustc flags (-Zsanitizer, -Cpasses=sancov-module): RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, which is what cargo-fuzz documents for stable.
# New interesting inputs go to fuzz/target/corpus/<target>/ (not committed); the committed
# seeds in fuzz/corpus/<target>/ are read, never written. Findings land in
# fuzz/artifacts/<target>/ and each run's numbers in fuzz/target/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${1:-20}
shift || true
export RUSTC_BOOTSTRAP=1
NICE=${FUZZ_NICE:-0}
JOBS=${FUZZ_JOBS:-1}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
RUNS=${FUZZ_RUNS:--1}
LOGS=${FUZZ_LOGS:-target/logs}
TIMEOUT=${FUZZ_TIMEOUT:-10}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked --version '^0.13'
fi

if (($#)); then
  targets=("$@")
else
  targets=()
  for f in src/bin/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  echo "==> building ${#targets[@]} fuzz targets"
  nice -n "$NICE" cargo fuzz build
fi

mkdir -p "$LOGS"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "corpus/$t" "artifacts/$t"
  log="$LOGS/$t.log"
  echo "==> $t for ${SECONDS_PER_TARGET}s"
  extra=()
  if [ "$JOBS" -gt 1 ]; then extra=(-jobs="$JOBS" -workers="$JOBS"); fi
  set +e
  # -timeout: any single input over TIMEOUT s (wall time) is a finding; -rss_limit_mb: memory
  # blow-ups too.
  nice -n "$NICE" cargo fuzz run "$t" "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
    -max_len="$MAX_LEN" -runs="$RUNS" -print_final_stats=1 "${extra[@]}" \
    >"$log" 2>&1
  rc=$?
  set -e
  # With -jobs, each worker logs to fuzz-N.log; keep them beside the main log.
  # The main log repeats the workers' final stats, so count them from the workers' logs alone.
  stats=("$log")
  if compgen -G 'fuzz-*.log' >/dev/null; then stats=(fuzz-*.log); fi
  execs=$(awk '/stat::number_of_executed_units/ {s+=$2} END {print s+0}' "${stats[@]}")
  rate=$(awk '/stat::average_exec_per_sec/ {s+=$2} END {print s+0}' "${stats[@]}")
  for w in fuzz-*.log; do [ -e "$w" ] && cat "$w" >>"$log" && rm -f "$w"; done
  if [ "$rc" -ne 0 ] || grep -qE 'ERROR: libFuzzer|SUMMARY: (Address|Leak)Sanitizer|panicked at' "$log"; then
    echo "    FAILED ($t): see $log and artifacts/$t/"
    grep -E 'panicked at|ERROR:|SUMMARY:|Test unit written' "$log" | head -5 | sed 's/^/    /'
    failed+=("$t")
  else
    echo "    ok: $execs executions, $rate exec/s, no crash"
  fi
done

if ((${#failed[@]})); then
  echo "fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${SECONDS_PER_TARGET}s each, no findings"
