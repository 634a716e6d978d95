#!/usr/bin/env bash
# The demo: the supervisor serves the demo HTTP worker on 127.0.0.1:8080, a real HTTP
# client (wrk) loads it, and the worker is upgraded several times under that load.
# Prints how many requests were served and how many failed.
#   scripts/demo.sh [--upgrades N] [--port P]
set -euo pipefail
cd "$(dirname "$0")/.."

upgrades=5
port=8080
while (($#)); do
  case $1 in
    --upgrades) upgrades=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

scripts/setup.sh build
ninja -C build supervisor demo_worker >/dev/null

if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
  echo "demo: something already answers on 127.0.0.1:$port; stop it or use --port" >&2
  exit 1
fi

work=$(mktemp -d)
sup_pid=
cleanup() {
  if [[ -n $sup_pid ]] && kill -0 "$sup_pid" 2>/dev/null; then
    kill -TERM "$sup_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$sup_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$sup_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (bounded) until the supervisor's log has N lines matching a pattern.
wait_log() {  # pattern count seconds
  local deadline=$((SECONDS + $3))
  local n
  while :; do
    n=$(grep -c -- "$1" "$work/supervisor.log" 2>/dev/null || true)
    ((${n:-0} >= $2)) && break
    if ((SECONDS >= deadline)); then echo "demo: timed out waiting for '$1' in the log:" >&2; tail -20 "$work/supervisor.log" >&2; exit 1; fi
    kill -0 "$sup_pid" 2>/dev/null || { echo "demo: the supervisor died:" >&2; tail -20 "$work/supervisor.log" >&2; exit 1; }
    sleep 0.05
  done
}

echo "demo: starting: supervisor --listen 127.0.0.1:$port --ready notify -- demo_worker --startup-delay 200ms"
build/supervisor --listen "127.0.0.1:$port" --ready notify --drain-timeout 10s \
  -- build/demo_worker --startup-delay 200ms >"$work/supervisor.log" 2>&1 &
sup_pid=$!
wait_log "ready gen=1" 1 15
echo "demo: serving: $(curl -s --max-time 2 "http://127.0.0.1:$port/")"

total_served=0
total_failed=0
done_upgrades=0
for mode in keepalive close; do
  header=()
  [[ $mode == close ]] && header=(-H "Connection: close")
  per_mode=$(( (upgrades + 1) / 2 ))
  [[ $mode == close ]] && per_mode=$((upgrades - (upgrades + 1) / 2))
  duration=$((2 * per_mode + 3))
  echo "demo: wrk ($mode connections) for ${duration}s, $per_mode upgrade(s) (SIGHUP) during the run"
  wrk -t2 -c32 -d"${duration}s" --timeout 5s "${header[@]}" "http://127.0.0.1:$port/" >"$work/wrk-$mode.txt" 2>&1 &
  wrk_pid=$!
  sleep 1
  for _ in $(seq "$per_mode"); do
    kill -HUP "$sup_pid"
    done_upgrades=$((done_upgrades + 1))
    wait_log "upgrade done" "$done_upgrades" 20
    line=$(grep "upgrade done" "$work/supervisor.log" | tail -1)
    echo "demo:   upgraded: ${line#*: }"
    sleep 1
  done
  wait "$wrk_pid"
  served=$(awk '/requests in/ {print $1}' "$work/wrk-$mode.txt")
  sock=$(grep -o 'Socket errors: .*' "$work/wrk-$mode.txt" || true)
  errors=0
  if [[ -n $sock ]]; then
    errors=$(echo "$sock" | grep -o '[0-9]\+' | awk '{s += $1} END {print s + 0}')
  fi
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk-$mode.txt")
  failed=$((errors + ${non2xx:-0}))
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$mode.txt")
  echo "demo:   $mode: $served requests served ($rps/s), $failed failed ${sock:+($sock)}"
  total_served=$((total_served + served))
  total_failed=$((total_failed + failed))
done

wait_log "exited gen=$done_upgrades " 1 15
echo "demo: now serving: $(curl -s --max-time 2 "http://127.0.0.1:$port/")"
kill -TERM "$sup_pid"
status=0
wait "$sup_pid" || status=$?
sup_pid=
echo "demo: supervisor stopped (exit $status)"
echo
echo "demo: $done_upgrades upgrades under load: $total_served requests served, $total_failed failed"
((total_failed == 0))
