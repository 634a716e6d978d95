#!/usr/bin/env bash
# Benchmark: upgrades under load, side by side with what users would use instead.
#
#   scripts/bench.sh [--quick] [--duration S] [--slice S] [--interval S] [--timeline S]
#                    [--contenders LIST] [--modes LIST] [--startup-delays LIST]
#                    [--upgrades N | --no-soak] [--nice N] [--out DIR] [--png-dir DIR]
#   scripts/bench.sh --readiness [--duration S]
#   scripts/bench.sh --adopt [--duration S] [--upgrades N]
#
# --adopt: only the --adopt-bind benchmark (scripts/bench/adopt.py): the same server run
# with --adopt-bind (it binds its port itself) and with LISTEN_FDS (it takes fd 3), in the
# same run: throughput ratio (median of runs) and upgrade handover time. Output: DIR/adopt.md.
#
# --readiness: only the readiness benchmark (scripts/bench/readiness.py): a server that
# boots for 1.5 s and sends nothing, upgraded every 3 s under wrk, with --ready delay,
# accepting and auto, beside a server that sends READY=1 (notify); latency, failures and
# when the old generation was told to drain. Output: DIR/readiness.md.
#
# Contenders (same demo worker, same machine, one after another): this supervisor with
# --ready notify (sv-notify) and with the default --ready delay (sv-delay), naive restart
# (the worker binds the port itself; an upgrade stops it and starts a new one), and
# Server::Starter (start_server). Load: wrk -t1 -c32, a new connection per request
# (close) and keep-alive. For each: baseline and "an upgrade every second", --duration
# seconds each (default 20; --quick 4), alternated in --slice second slices (default 2).
# Then a 100 ms timeline (own load client) of this supervisor beside naive restart, drawn with
# gnuplot, and the soak (scripts/soak.sh): --upgrades consecutive upgrades, no load.
# Loopback only; every process started is stopped by pid. Output: markdown tables on
# stdout and in DIR (default .bench/): table.md, soak.md, results.json, raw logs; the PNGs
# go to --png-dir (default docs/ for a full run, DIR for --quick). --nice N (as root) runs
# it all at that priority, e.g. -10 against background jobs on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=20 slice=2 interval=1 timeline=10 upgrades=1000 soak=1 quick=0 readiness=0 adopt=0
contenders=sv-notify,sv-delay,naive,starter modes=keepalive,close delays=0,500
out=.bench png_dir= nice=0
while (($#)); do
  case $1 in
    --quick) quick=1; duration=4; slice=2; timeline=3; shift ;;
    --readiness) readiness=1; shift ;;
    --adopt) adopt=1; shift ;;
    --duration) duration=$2; shift 2 ;;
    --slice) slice=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --timeline) timeline=$2; shift 2 ;;
    --contenders) contenders=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --startup-delays) delays=$2; shift 2 ;;
    --upgrades) upgrades=$2; shift 2 ;;
    --no-soak) soak=0; shift ;;
    --out) out=$2; shift 2 ;;
    --png-dir) png_dir=$2; shift 2 ;;
    --nice) nice=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n $png_dir ]] || { ((quick)) && png_dir=$out || png_dir=docs; }

# --- what the benchmark needs, installed when missing (Debian 12 packages) -----------------
scripts/setup.sh build
source scripts/lib/packages.sh
ensure_packages bench wrk gnuplot-nox libserver-starter-perl g++ python3 procps util-linux
mkdir -p "$out/bin" "$png_dir"
# Someone may be rebuilding build/ at the same time: retry once, and show why if it fails.
if ! ninja -C build supervisor demo_worker >"$out/ninja.log" 2>&1; then
  sleep 10
  ninja -C build supervisor demo_worker >"$out/ninja.log" 2>&1 || { cat "$out/ninja.log" >&2; exit 1; }
fi
# Private copies: a rebuild of build/ during the run must not swap binaries under it.
cp build/supervisor build/demo_worker "$out/bin/"
if ((readiness)); then
  ninja -C build tests/slow_acceptor >>"$out/ninja.log" 2>&1 || { cat "$out/ninja.log" >&2; exit 1; }
  cp build/tests/slow_acceptor "$out/bin/"
  exec python3 -u scripts/bench/readiness.py --duration "$duration" --out "$out" --supervisor "$out/bin/supervisor" \
    --demo-worker "$out/bin/demo_worker" --slow-acceptor "$out/bin/slow_acceptor"
fi
if ((adopt)); then
  ninja -C build libsupervisor-adopt.so tests/adopt_server >>"$out/ninja.log" 2>&1 || { cat "$out/ninja.log" >&2; exit 1; }
  # The preload is found next to the binary: copy them together.
  cp build/libsupervisor-adopt.so build/tests/adopt_server "$out/bin/"
  ((upgrades == 1000)) && upgrades=10   # defaults for this benchmark: 10 upgrades, 5 s runs
  ((duration == 20)) && duration=5
  exec python3 -u scripts/bench/adopt.py --duration "$duration" --runs "$(( quick ? 3 : 7 ))" \
    --upgrades "$upgrades" --out "$out" --supervisor "$out/bin/supervisor" --server "$out/bin/adopt_server"
fi
g++ -O2 -std=c++20 -Wall -Wextra -o "$out/bin/loadclient" scripts/bench/loadclient.cpp

# --- every process we start is a child of this shell; stop them by pid ---------------------
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true  # bench.py and soak.py stop their own children
      for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# runs a helper in the background (so the trap can stop it by pid) and waits for it
prio=()
[[ $(id -u) -eq 0 && $nice != 0 ]] && prio=(nice -n "$nice")
run() {
  "${prio[@]}" "$@" &
  pids+=($!)
  local rc=0
  wait $! || rc=$?
  return $rc
}

echo "bench: machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
     "kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: versions: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), start_server $(perl -MServer::Starter -e 'print $Server::Starter::VERSION'), $(gnuplot --version)"
echo "bench: priority: ${prio[*]:-(unchanged)}"
echo "bench: $contenders × $modes × worker startup $delays ms: ${duration}s baseline + ${duration}s with an upgrade every ${interval}s each (slices of ${slice}s); timelines ${timeline}s"
start=$SECONDS
rc=0
run python3 -u scripts/bench/bench.py --duration "$duration" --slice "$slice" --interval "$interval" \
  --timeline "$timeline" --contenders "$contenders" --modes "$modes" --startup-delays "$delays" \
  --supervisor "$out/bin/supervisor" --worker "$out/bin/demo_worker" --loadclient "$out/bin/loadclient" \
  --out "$out" || rc=$?
((rc == 0)) || { echo "bench: the load part failed (exit $rc); logs in $out/" >&2; exit "$rc"; }

# --- the picture: this supervisor beside naive restart, one PNG per worker startup delay ---
if [[ ",$contenders," == *",sv-notify,"* && ",$contenders," == *",naive,"* ]] && [[ $timeline != 0 ]]; then
  IFS=, read -ra dl <<<"$delays"
  for d in "${dl[@]}"; do
    png="$png_dir/bench-timeline-startup$d.png"
    gnuplot -e "dir='$out'; startup=$d; out='$png'" scripts/bench/timeline.gp 2>"$out/gnuplot-$d.err" ||
      { echo "bench: gnuplot failed:" >&2; cat "$out/gnuplot-$d.err" >&2; exit 1; }
    echo "bench: timeline drawn: $png"
  done
fi

if ((soak)); then
  echo
  echo "bench: soak: $upgrades consecutive upgrades, --ready notify, no load"
  run python3 -u scripts/bench/soak.py --upgrades "$upgrades" --out "$out" \
    --supervisor "$out/bin/supervisor" --worker "$out/bin/demo_worker" || rc=$?
fi
echo
echo "bench: done in $((SECONDS - start)) s; tables in $out/table.md$( ((soak)) && echo " and $out/soak.md")"
echo
cat "$out/table.md"
((soak)) && { echo; cat "$out/soak.md"; }
exit "$rc"
