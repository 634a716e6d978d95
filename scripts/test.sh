#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test twice: a normal build and one
# with AddressSanitizer + UndefinedBehaviorSanitizer; then a short fuzzing pass.
#   scripts/test.sh            every suite in the normal build; unit, integration and fuzz replays in
#                              the sanitizer build; then a 5 s fuzzing pass per target (18 targets; campaigns: scripts/fuzz.sh)
#   scripts/test.sh --quick    the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ ${1:-} == --quick ]] && quick=1

passed=0
failed=0
run_suite() {  # build_dir label [meson test options...]
  local dir=$1 label=$2
  shift 2
  echo "== $label: build"
  if ! ninja -C "$dir" >"$dir/build-output.txt" 2>&1; then
    grep -E "error|FAILED" -A5 "$dir/build-output.txt" | head -60
    echo "tests: 0 passed, 1 failed (the $label did not compile; full output in $dir/build-output.txt)"
    exit 1
  fi
  echo "== $label: test"
  if meson test -C "$dir" --print-errorlogs --num-processes 1 "$@"; then :; fi
  local ok fail
  ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir/meson-logs/testlog.txt" | tail -1)
  fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$dir/meson-logs/testlog.txt" | tail -1)
  local timeout_n
  timeout_n=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$dir/meson-logs/testlog.txt" | tail -1)
  passed=$((passed + ${ok:-0}))
  failed=$((failed + ${fail:-0} + ${timeout_n:-0}))
}

scripts/setup.sh --for-tests build
run_suite build "normal build"
if ((!quick)); then
  scripts/setup.sh --for-tests build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # Our own code under the sanitizers: unit, integration, fuzz replays. The third-party
  # servers and the systemd container ran against the normal build above (they add
  # minutes and exercise the same supervisor code paths as the integration suite).
  run_suite build-asan "sanitizer build (ASan+UBSan)" --suite unit --suite integration --suite fuzz
fi
if ((!quick)); then
  # A short fuzzing pass over every target; crashes fail the run.
  echo "== fuzz: 5 s per target"
  if scripts/fuzz.sh --seconds 5; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi
echo "tests: $passed passed, $failed failed"
((failed == 0 && passed > 0))
