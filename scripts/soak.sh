#!/usr/bin/env bash
# Footprint and cost of upgrades: N consecutive upgrades (default 1000) as fast as the
# supervisor completes them (--ready notify, no load, each waited for on the control
# socket), then the supervisor's RSS, open fds, zombie children and threads before and
# after, upgrades per second, and supervisor CPU time per upgrade (from /proc).
# Exits 1 if an upgrade failed or anything grew.
#   scripts/soak.sh [--upgrades N] [--ready MODE] [--out DIR]
#   scripts/soak.sh --reexec [N]   N `ctl reexec`s instead (default 1000): same pid, same worker, flat footprint
set -euo pipefail
cd "$(dirname "$0")/.."

upgrades=1000 out=.bench ready=notify reexecs=0
while (($#)); do
  case $1 in
    --reexec) if [[ ${2:-} =~ ^[0-9]+$ ]]; then reexecs=$2; shift 2; else reexecs=1000; shift; fi ;;
    --upgrades) upgrades=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --ready) ready=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

scripts/setup.sh build
mkdir -p "$out/bin"
# Someone may be rebuilding build/ at the same time: retry once, and show why if it fails.
if ! ninja -C build supervisor demo_worker >"$out/ninja.log" 2>&1; then
  sleep 10
  ninja -C build supervisor demo_worker >"$out/ninja.log" 2>&1 || { cat "$out/ninja.log" >&2; exit 1; }
fi
cp build/supervisor build/demo_worker "$out/bin/"  # private copies, safe from a rebuild

pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true  # soak.py stops the supervisor it started
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if ((reexecs > 0)); then
  python3 -u scripts/bench/soak_reexec.py --reexecs "$reexecs" --out "$out" \
    --supervisor "$out/bin/supervisor" --worker "$out/bin/demo_worker" &
else
  python3 -u scripts/bench/soak.py --upgrades "$upgrades" --ready "$ready" --out "$out" \
    --supervisor "$out/bin/supervisor" --worker "$out/bin/demo_worker" &
fi
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
