#!/usr/bin/env bash
# Verifies the example systemd units (statically; tests/systemd/run_nspawn_tests.sh runs
# them under a real systemd) with systemd-analyze, pointing them at the built
# binaries (verify checks that ExecStart's program exists). Exit 77 (skip) without it.
set -euo pipefail
src=$(cd "$(dirname "$0")/systemd" && pwd)
supervisor=${1:?usage: check_units.sh SUPERVISOR_BIN WORKER_BIN}
worker=${2:?usage: check_units.sh SUPERVISOR_BIN WORKER_BIN}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -e "s#/usr/local/bin/supervisor#$supervisor#g" -e "s#/srv/%i/current/bin/server#$worker#g" \
  "$src/supervisor@.service" >"$dir/supervisor@demo.service"
sed -e "s#/usr/local/bin/supervisor#$supervisor#g" -e "s#/srv/%i/current/bin/server#$worker#g" \
  "$src/supervisor-fdstore@.service" >"$dir/supervisor-fdstore@demo.service"
cp "$src/supervisor@.socket" "$dir/supervisor@demo.socket"
out=$(cd "$dir" && timeout 60 systemd-analyze verify --man=no ./supervisor@demo.service ./supervisor@demo.socket \
  ./supervisor-fdstore@demo.service 2>&1) || { echo "$out"; exit 1; }
if [[ -n $out ]]; then echo "$out"; exit 1; fi  # any warning is a failure
echo "systemd-analyze verify: supervisor@.service, supervisor@.socket and supervisor-fdstore@.service are clean"
