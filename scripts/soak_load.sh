#!/usr/bin/env bash
# Soak under load: N upgrades (default 1000) of the demo worker while two wrk clients load
# it (one on keep-alive connections, one with "Connection: close"), each upgrade waited
# for with `supervisor ctl upgrade`. Prints requests served and failed, failed upgrades,
# and the supervisor's RSS, open fds, children, zombies and threads before, halfway and
# after. Exits 1 if a request or an upgrade failed, or fds/children/zombies/threads grew,
# or RSS grew over the second half of the run. (scripts/soak.sh measures the same
# footprint without load, as fast as upgrades go.)
#   scripts/soak_load.sh [--upgrades N] [--connections C] [--pause-ms MS] [--port P]
set -euo pipefail
cd "$(dirname "$0")/.."

upgrades=1000 conns=16 pause_ms=20 port=0
while (($#)); do
  case $1 in
    --upgrades) upgrades=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --pause-ms) pause_ms=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak_load: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

scripts/setup.sh build
ninja -C build supervisor demo_worker >/dev/null
command -v wrk >/dev/null || { echo "soak_load: wrk is missing (scripts/setup.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
sock=$work/c.sock
log=$work/supervisor.log
sup_pid= wrk_pids=()
cleanup() {
  for p in "${wrk_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  if [[ -n $sup_pid ]] && kill -0 "$sup_pid" 2>/dev/null; then
    kill -TERM "$sup_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$sup_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$sup_pid" 2>/dev/null || true  # its workers get the drain signal (PDEATHSIG)
  fi
  for p in "${wrk_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [[ ${keep:-0} == 1 ]]; then echo "soak_load: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

die() { echo "soak_load: $*" >&2; tail -20 "$log" >&2 || true; keep=1; exit 1; }

# /proc figures of the supervisor: rss_kib fds children zombies threads
figures() {
  local rss threads fds kids=0 zombies=0 d st ppid
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$sup_pid/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$sup_pid/status")
  fds=$(find "/proc/$sup_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  for d in /proc/[0-9]*; do
    read -r st ppid < <(sed 's/.*) \(.\) \([0-9]*\).*/\1 \2/' "$d/stat" 2>/dev/null) || continue
    [[ $ppid == "$sup_pid" ]] || continue
    kids=$((kids + 1))
    [[ $st == Z ]] && zombies=$((zombies + 1))
  done
  echo "$rss $fds $kids $zombies $threads"
}

# Bounded wait until one worker is left and no child is a zombie (old ones drained, reaped).
settle() {
  local f
  for _ in $(seq 300); do
    read -r -a f < <(figures)
    ((f[2] == 1 && f[3] == 0)) && return 0
    sleep 0.05
  done
  return 1
}

build/supervisor --listen "127.0.0.1:$port" --ready notify --drain-timeout 10s --control "$sock" \
  -- build/demo_worker >"$log" 2>&1 &
sup_pid=$!
for _ in $(seq 200); do
  grep -q "ready gen=1 " "$log" 2>/dev/null && break
  kill -0 "$sup_pid" 2>/dev/null || die "the supervisor exited"
  sleep 0.05
done
grep -q "ready gen=1 " "$log" || die "gen=1 did not become ready in 10s"
port=$(sed -n 's/.*listening name=[^ ]* addr=127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -1)
url=http://127.0.0.1:$port/
curl -sf --max-time 2 "$url" >/dev/null || die "no answer on $url"
settle || die "gen=1 did not settle"
read -r -a before < <(figures)

echo "soak_load: $upgrades upgrades of build/demo_worker under wrk load on $url" \
  "(2 x $conns connections: keep-alive and Connection: close), ${pause_ms}ms between upgrades"
wrk -t1 -c"$conns" -d3600s --timeout 5s "$url" >"$work/wrk-keepalive.txt" 2>&1 &
wrk_pids+=($!)
wrk -t1 -c"$conns" -d3600s --timeout 5s -H "Connection: close" "$url" >"$work/wrk-close.txt" 2>&1 &
wrk_pids+=($!)
sleep 1

failed_upgrades=0
start=$SECONDS
half=()
for i in $(seq "$upgrades"); do
  if ! out=$(build/supervisor ctl --control "$sock" upgrade --timeout 30s 2>&1); then
    failed_upgrades=$((failed_upgrades + 1))
    ((failed_upgrades <= 5)) && echo "soak_load: upgrade $i failed: $out"
  fi
  kill -0 "$sup_pid" 2>/dev/null || die "the supervisor died after $i upgrades"
  if ((i == upgrades / 2)); then settle || true; read -r -a half < <(figures); fi
  if ((i % 100 == 0)); then echo "soak_load:   $i/$upgrades upgrades, $((SECONDS - start))s"; fi
  ((pause_ms > 0)) && sleep "$(awk "BEGIN {print $pause_ms / 1000}")"
done
elapsed=$((SECONDS - start))
sleep 1  # requests on the last generation too
for p in "${wrk_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${wrk_pids[@]}"; do wait "$p" || true; done
wrk_pids=()
settle || die "the old generations did not drain and get reaped"
read -r -a after < <(figures)

total_served=0 total_failed=0
for mode in keepalive close; do
  f=$work/wrk-$mode.txt
  served=$(awk '/requests in/ {print $1}' "$f")
  sock_err=$(grep -o 'Socket errors: .*' "$f" || true)
  errors=0
  [[ -n $sock_err ]] && errors=$(echo "$sock_err" | grep -o '[0-9]\+' | awk '{s += $1} END {print s + 0}')
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$f")
  failed=$((errors + ${non2xx:-0}))
  echo "soak_load: wrk $mode: ${served:-?} requests, $failed failed ${sock_err:+($sock_err)}"
  total_served=$((total_served + ${served:-0}))
  total_failed=$((total_failed + failed))
done
gens=$(grep -c "upgrade done gen=" "$log" || true)

echo
echo "$upgrades upgrades under load in ${elapsed}s: $total_served requests served, $total_failed failed;" \
  "$failed_upgrades upgrade(s) failed, $gens done."
echo
printf '| supervisor | at start | after %d upgrades | after %d upgrades |\n' "$((upgrades / 2))" "$upgrades"
echo "|---|--:|--:|--:|"
names=("RSS (VmRSS), KiB" "open fds" "children" "zombie children" "threads")
for k in 0 1 2 3 4; do
  printf '| %s | %s | %s | %s |\n' "${names[$k]}" "${before[$k]}" "${half[$k]:-?}" "${after[$k]}"
done

grew=()
for k in 1 2 3 4; do ((after[k] > before[k])) && grew+=("${names[$k]}"); done
((${#half[@]} && after[0] > half[0])) && grew+=("RSS over the second half (+$((after[0] - half[0])) KiB)")
if ((total_failed || failed_upgrades || ${#grew[@]})); then
  echo "soak_load: TARGET MISSED: failed requests=$total_failed failed upgrades=$failed_upgrades grew=[${grew[*]}]"
  keep=1
  exit 1
fi
echo "soak_load: OK: zero failed requests, zero failed upgrades, nothing grew"
