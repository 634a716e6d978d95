#!/usr/bin/env bash
# The fleet demo: a rolling release across several supervised "hosts" on loopback, behind
# HAProxy, driven by Ansible, under load.
#   scripts/fleet-demo.sh [--hosts N] [--base-port P] [--bin DIR] [--keep]
#
# Each host is one supervisor with its own port (P+k), health endpoint (--http, P+100+k),
# control socket and release directory (releases/v1, v2, v3 and a `current` symlink; the
# worker command and its --env-file go through `current`, so an upgrade runs whatever
# `current` points at). HAProxy (port P) balances over the hosts and health-checks each
# one's GET /readyz. Ansible (ansible-core, `serial: 1`) releases one host at a time:
# switch `current`, then `supervisor ctl upgrade`, whose exit code is the verdict; a failed
# host has its link put back and the play stops there (max_fail_percentage: 0).
#   1. release v2: reaches every host;
#   2. release v3 (broken: exits at start): fails on host 1, the play stops, hosts 2.. are
#      never touched, every host still serves v2.
# wrk loads HAProxy the whole time. The last line is the summary, e.g.
#   fleet: 3 hosts, v2 everywhere, v3 stopped at host 1, 412345 requests through haproxy, 0 failed
# Exit 0 only if all of that held. --keep leaves the work directory (logs) in place; --bin DIR
# uses DIR/supervisor and DIR/demo_worker as built (the test suite's way) instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

hosts=3
base=18000
keep=0
bin=
while (($#)); do
  case $1 in
    --hosts) hosts=${2:?--hosts needs a number}; shift 2 ;;
    --base-port) base=${2:?--base-port needs a number}; shift 2 ;;
    --keep) keep=1; shift ;;
    --bin) bin=${2:?--bin needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fleet-demo: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $hosts =~ ^[0-9]+$ ]] && ((hosts >= 2 && hosts <= 20)) || { echo "fleet-demo: --hosts must be 2..20" >&2; exit 2; }
[[ $base =~ ^[0-9]+$ ]] && ((base >= 1024 && base <= 65000)) || { echo "fleet-demo: --base-port must be 1024..65000" >&2; exit 2; }

source scripts/lib/packages.sh
ensure_packages fleet-demo haproxy ansible-core wrk curl python3
if [[ -z $bin ]]; then
  scripts/setup.sh build
  ninja -C build supervisor demo_worker >/dev/null
  bin=$root/build
fi
bin=$(cd "$bin" && pwd)
[[ -x $bin/supervisor && -x $bin/demo_worker ]] || { echo "fleet-demo: no supervisor and demo_worker in $bin" >&2; exit 2; }

port_of() { echo $((base + $1)); }         # host k's service port
http_of() { echo $((base + 100 + $1)); }   # host k's --http port
for k in $(seq 0 "$hosts"); do
  for p in $(port_of "$k") $(http_of "$k"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "fleet-demo: port $p on 127.0.0.1 is in use; pick another --base-port" >&2
      exit 1
    fi
  done
done

work=$(mktemp -d /tmp/fleet-demo.XXXXXX)
pids=()
haproxy_pid=
wrk_pid=
cleanup() {
  [[ -n $wrk_pid ]] && kill "$wrk_pid" 2>/dev/null || true
  for k in $(seq 1 "$hosts"); do
    [[ -S $work/host$k/control.sock ]] && "$bin/supervisor" ctl --control "$work/host$k/control.sock" stop --timeout 20s >/dev/null 2>&1 || true
  done
  [[ -n $haproxy_pid ]] && kill -TERM "$haproxy_pid" 2>/dev/null || true
  # Each exits on its own (ctl stop returns as its control socket closes, just before the
  # exit): wait for that, bounded, before anything is killed.
  local p i
  for p in "${pids[@]}" $haproxy_pid; do
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null && echo "fleet-demo: pid $p did not exit; killed" >&2
    wait "$p" 2>/dev/null || true
  done
  if ((keep)); then echo "fleet-demo: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "fleet-demo: $*" >&2; exit 1; }

# Waits (bounded) for a command to succeed.
wait_for() {  # seconds what command...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${deadline}s waiting for $what"
    sleep 0.1
  done
}

# --- the hosts ------------------------------------------------------------------------
echo "fleet-demo: $hosts hosts on 127.0.0.1:$(port_of 1)..$(port_of "$hosts"), HAProxy on 127.0.0.1:$base"
for k in $(seq 1 "$hosts"); do
  h=$work/host$k
  for v in v1 v2 v3; do
    mkdir -p "$h/releases/$v"
    printf 'DEMO_RELEASE=%s\n' "$v" >"$h/releases/$v/release.env"
  done
  for v in v1 v2; do
    printf '#!/bin/sh\nexec %q --startup-delay 300ms\n' "$bin/demo_worker" >"$h/releases/$v/run"
  done
  # v3 is broken the way releases break: it cannot start.
  printf '#!/bin/sh\necho "v3: cannot read config.toml: No such file or directory" >&2\nexit 1\n' >"$h/releases/v3/run"
  chmod +x "$h"/releases/*/run
  ln -sfn releases/v1 "$h/current"
  "$bin/supervisor" --listen "127.0.0.1:$(port_of "$k")" --http "127.0.0.1:$(http_of "$k")" \
    --control "$h/control.sock" --env-file "$h/current/release.env" --ready notify \
    --drain-timeout 10s -- "$h/current/run" >"$h/supervisor.log" 2>&1 &
  pids+=($!)
done
for k in $(seq 1 "$hosts"); do
  wait_for 20 "host $k to be ready" curl -sf --max-time 1 "http://127.0.0.1:$(http_of "$k")/readyz"
done

# --- HAProxy ----------------------------------------------------------------------------
{
  printf 'global\n  maxconn 4096\n\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n'
  printf '  timeout server 10s\n  retries 3\n  option redispatch\n'
  # GETs are idempotent: a request sent on a keep-alive connection the draining worker was
  # closing at that moment is retried on another connection rather than answered 502.
  printf '  retry-on conn-failure empty-response response-timeout\n\n'
  printf 'frontend fleet\n  bind 127.0.0.1:%s\n  default_backend hosts\n\n' "$base"
  printf 'backend hosts\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n'
  for k in $(seq 1 "$hosts"); do
    printf '  server host%s 127.0.0.1:%s check port %s inter 200ms fall 2 rise 2\n' "$k" "$(port_of "$k")" "$(http_of "$k")"
  done
} >"$work/haproxy.cfg"
haproxy -c -q -f "$work/haproxy.cfg" || fail "haproxy rejected $work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
wait_for 10 "haproxy" curl -sf --max-time 1 "http://127.0.0.1:$base/"

# --- Ansible ----------------------------------------------------------------------------
{
  echo "[fleet]"
  for k in $(seq 1 "$hosts"); do
    echo "host$k ansible_connection=local ansible_python_interpreter=/usr/bin/python3 dir=$work/host$k"
  done
} >"$work/inventory.ini"
cat >"$work/release.yml" <<EOF
# One host at a time; the first failure stops the play.
- name: release {{ release }}
  hosts: fleet
  serial: 1
  max_fail_percentage: 0
  gather_facts: false
  tasks:
    - name: remember the running release
      command: readlink {{ dir }}/current
      register: previous
      changed_when: false
    - block:
        - name: point current at {{ release }}
          file: { src: "releases/{{ release }}", dest: "{{ dir }}/current", state: link, force: true }
        - name: upgrade (waits for the new generation's verdict)
          command: $bin/supervisor ctl --control {{ dir }}/control.sock upgrade --timeout 60s
      rescue:
        - name: put the previous release back (the old generation kept serving)
          file: { src: "{{ previous.stdout }}", dest: "{{ dir }}/current", state: link, force: true }
        - name: stop the release here
          fail: { msg: "{{ release }} failed on {{ inventory_hostname }}: {{ ansible_failed_result.stderr | default(ansible_failed_result.msg) }}" }
EOF
release() {  # version
  ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_LOCAL_TEMP=$work/ansible-tmp \
    ANSIBLE_REMOTE_TEMP=$work/ansible-tmp ansible-playbook -i "$work/inventory.ini" \
    -e "release=$1" "$work/release.yml" >"$work/ansible-$1.log" 2>&1
}

# --- the release, under load ------------------------------------------------------------
wrk -t2 -c16 -d600s --timeout 5s "http://127.0.0.1:$base/" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
wait_for 10 "load" test -d /proc/$wrk_pid
gen_of() { "$bin/supervisor" ctl --control "$work/host$1/control.sock" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serving_gen"])'; }
release_of() { curl -s --max-time 2 "http://127.0.0.1:$(port_of "$1")/" | sed -n 's/.*release=\([^ ]*\).*/\1/p'; }

start=$SECONDS
echo "fleet-demo: release v2 (ansible, serial: 1)"
release v2 || { tail -30 "$work/ansible-v2.log" >&2; fail "release v2 failed (log above)"; }
for k in $(seq 1 "$hosts"); do
  r=$(release_of "$k")
  [[ $r == v2 ]] || fail "host $k serves '$r' after release v2"
  echo "fleet-demo:   host $k: v2, $(grep 'upgrade done' "$work/host$k/supervisor.log" | tail -1 | sed 's/.*upgrade done/upgrade done/')"
done
gens_before=()
for k in $(seq 1 "$hosts"); do gens_before+=("$(gen_of "$k")"); done

echo "fleet-demo: release v3 (broken)"
if release v3; then fail "release v3 succeeded, but it cannot start"; fi
stopped_at=$(sed -n 's/.*v3 failed on host\([0-9]*\).*/\1/p' "$work/ansible-v3.log" | head -1)
[[ $stopped_at == 1 ]] || { tail -30 "$work/ansible-v3.log" >&2; fail "v3 should have stopped at host 1 (stopped at '${stopped_at}')"; }
echo "fleet-demo:   host 1: $(grep 'upgrade failed' "$work/host1/supervisor.log" | tail -1 | sed 's/.*upgrade failed/upgrade failed/')"
for k in $(seq 1 "$hosts"); do
  r=$(release_of "$k")
  [[ $r == v2 ]] || fail "host $k serves '$r' after the failed v3"
  [[ $(readlink "$work/host$k/current") == releases/v2 ]] || fail "host $k's current link is not v2"
  if ((k > 1)); then
    [[ $(gen_of "$k") == "${gens_before[k-1]}" ]] || fail "host $k was upgraded by the v3 play"
    ! grep -q "upgrade failed" "$work/host$k/supervisor.log" || fail "host $k was touched by the v3 play"
  fi
done
elapsed=$((SECONDS - start))

# The hosts never left HAProxy's rotation: both generations accept on the one socket.
downs=$(grep -c "is DOWN" "$work/haproxy.log" || true)
kill -INT "$wrk_pid"
wait "$wrk_pid" || true
wrk_pid=
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$work/wrk.txt")
errors=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$work/wrk.txt")
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$work/wrk.txt")
failed=0
for n in $errors ${non2xx:-0}; do failed=$((failed + n)); done
[[ -n $requests ]] || { cat "$work/wrk.txt" >&2; fail "no wrk summary"; }
echo "fleet-demo: wrk through haproxy for ${elapsed}s of releases: $(grep -E 'requests in|Requests/sec' "$work/wrk.txt" | tr -s ' ' | tr '\n' ';')"
echo "fleet-demo: hosts marked DOWN by haproxy's /readyz check during the releases: ${downs:-0}"
echo "fleet: $hosts hosts, v2 everywhere, v3 stopped at host 1, $requests requests through haproxy, $failed failed"
((failed == 0 && ${downs:-0} == 0))
