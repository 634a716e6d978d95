#!/usr/bin/env bash
# The supervisor under a real systemd (v252): boots systemd in a throw-away systemd-nspawn
# container, installs the built binaries and the example units as a user would (install,
# cp into /etc/systemd/system, daemon-reload) and drives them with systemctl/journalctl,
# with load from tests' loadclient inside the container's network namespace.
#
#   run_nspawn_tests.sh SUPERVISOR DEMO_WORKER FAKE_WORKER LOADCLIENT UNITS_DIR
#
# One line per case (PASS/FAIL), then "N passed, N failed"; exit 0, 1, or 77 (skipped:
# not root, no systemd-nspawn, no overlayfs, no cgroup to run in).
#
# Host impact (after /work/shared/tools/systemd-nspawn.sh): one private mount namespace
# (overlay of / on tmpfs as the container's root, tmpfs over /run), one private network
# namespace (loopback only), one cgroup per hierarchy (<hierarchy>/svtest-$$) removed on
# exit. Nothing on the host changes: files go into the overlay's tmpfs. Needs hybrid or
# unified cgroups; nspawn registers nothing (--register=no --keep-unit).
set -u
SUPERVISOR=${1:?usage: run_nspawn_tests.sh SUPERVISOR DEMO_WORKER FAKE_WORKER LOADCLIENT UNITS_DIR}
DEMO_WORKER=${2:?} FAKE_WORKER=${3:?} LOADCLIENT=${4:?} UNITS=${5:?}
HERE=$(cd "$(dirname "$0")" && pwd)
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
PORT=8080  # as in the example units; the container has a network of its own

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn not installed (apt-get install systemd-container)"
command -v nsenter >/dev/null && command -v unshare >/dev/null || skip "nsenter/unshare not installed (util-linux)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"
TAG=svtest-$$
if [[ -d /sys/fs/cgroup/unified && -d /sys/fs/cgroup/systemd ]]; then
  CGS=(/sys/fs/cgroup/unified/$TAG /sys/fs/cgroup/systemd/$TAG)  # hybrid
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  CGS=(/sys/fs/cgroup/$TAG)  # unified
else
  skip "neither hybrid nor unified cgroups under /sys/fs/cgroup"
fi
for c in "${CGS[@]}"; do mkdir "$c" 2>/dev/null || skip "cannot create cgroup $c"; done

W=$(mktemp -d /tmp/svtest-nspawn.XXXXXX)
NSPAWN_PID='' LEADER='' PASSED=0 FAILED=0 T_START=$(date +%s.%N)
log() { printf '[%(%T)T] %s\n' -1 "$*"; }
cg_procs() { for c in "${CGS[@]}"; do [[ -d $c ]] && find "$c" -name cgroup.procs -exec cat {} +; done 2>/dev/null; }
cleanup() {
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill -TERM "$NSPAWN_PID"  # nspawn halts the container cleanly
    for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$NSPAWN_PID" 2>/dev/null && kill -KILL "$NSPAWN_PID"
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  for p in $(cg_procs); do kill -KILL "$p" 2>/dev/null; done
  for c in "${CGS[@]}"; do [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A command inside the container (all its namespaces, a clean environment).
C() { nsenter -t "$LEADER" -m -p -n -u -i -- env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# A host binary in the container's network namespace only (loopback of the container).
NET() { nsenter -t "$LEADER" -n -- "$@"; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
  local deadline=$(( $(date +%s%N) + ${1%.*} * 1000000000 ))
  shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s%N) < deadline )) || return 1
    sleep 0.1
  done
}
case_result() {  # case_result LETTER OK DESCRIPTION
  if [[ $2 == 1 ]]; then PASSED=$((PASSED + 1)); log "PASS $1) $3"; else FAILED=$((FAILED + 1)); log "FAIL $1) $3"; fi
}
prop() { C systemctl show -p "$2" --value "$1"; }
http_ok() { NET curl -sf -m 5 -o /dev/null "http://127.0.0.1:$PORT/"; }
# load OUT SECONDS: loadclient, one connection per request, in the background.
load() { NET "$LOADCLIENT" --port "$PORT" --mode close --conns 8 --duration "$2" --timeout-ms 15000 >"$1" 2>&1 & }
# show_load FILE: the loadclient's totals when something failed (which kind, when).
show_load() { [[ $(jget "$1" failed) == 0 ]] || log "     loadclient: $(head -c 600 "$1")"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$1" "$2" 2>/dev/null; }
journal() { C journalctl --no-pager -o cat "$@"; }

# ---------- boot ----------
INNER='set -e
W=$1; TAG=$2; shift 2
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs "$W/ov"
mkdir "$W/ov/upper" "$W/ov/work" "$W/ov/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ov/upper,workdir=$W/ov/work" "$W/ov/root"
mount -t tmpfs -o mode=755 tmpfs /run
for c in /sys/fs/cgroup/unified/$TAG /sys/fs/cgroup/systemd/$TAG /sys/fs/cgroup/$TAG; do
  [ -d "$c" ] && echo $$ > "$c/cgroup.procs"
done
exec systemd-nspawn -q -D "$W/ov/root" --register=no --keep-unit --private-network \
     --console=passive --machine="$TAG" -b -- "$@"'
mkdir "$W/ov"
unshare -m -- bash -c "$INNER" inner "$W" "$TAG" systemd.unit=basic.target </dev/null >"$W/nspawn.log" 2>&1 &
NSPAWN_PID=$!
deadline=$(( $(date +%s) + BOOT_TIMEOUT )) state=''
while (( $(date +%s) < deadline )); do
  kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$W/nspawn.log"; echo "nspawn exited early"; exit 1; }
  LEADER=''
  for c in $(cat /proc/"$NSPAWN_PID"/task/*/children 2>/dev/null); do
    [[ $(readlink /proc/$c/exe 2>/dev/null) == /usr/lib/systemd/systemd ]] && LEADER=$c
  done
  if [[ -n $LEADER ]]; then
    state=$(C systemctl is-system-running 2>/dev/null)
    [[ $state == running || $state == degraded ]] && break
  fi
  sleep 0.2
done
[[ $state == running || $state == degraded ]] || { cat "$W/nspawn.log"; echo "container did not boot: '$state'"; exit 1; }
log "container up: systemd $(C systemctl --version | head -1 | cut -d' ' -f2), leader pid $LEADER"
NET ip link set lo up 2>/dev/null

# ---------- install, as a user would ----------
# nspawn mounts its own /tmp in the container: the files travel as a tar on stdin.
mkdir -p "$W/pkg/units"
cp "$SUPERVISOR" "$W/pkg/supervisor"; cp "$DEMO_WORKER" "$W/pkg/demo_worker"; cp "$FAKE_WORKER" "$W/pkg/fake_worker"
cp "$UNITS/supervisor@.service" "$UNITS/supervisor@.socket" "$UNITS/supervisor-fdstore@.service" "$W/pkg/units/"
tar -C "$W/pkg" -cf - . | C sh -c 'mkdir -p /root/sv-pkg && tar -C /root/sv-pkg -xf -'
C sh -ec '
cd /root/sv-pkg
install -m 755 supervisor /usr/local/bin/supervisor
install -m 755 fake_worker /usr/local/bin/fake_worker
cp units/* /etc/systemd/system/
r=/srv/demo/releases
for rel in good good2 exits never badcheck; do mkdir -p $r/$rel/bin; printf "#!/bin/sh\nexit 0\n" >$r/$rel/bin/check; done
# A start-up delay, so that "start waits for READY=1" is visible.
install -m 755 demo_worker /usr/local/bin/demo_worker
for rel in good good2 badcheck; do printf "#!/bin/sh\nexec /usr/local/bin/demo_worker --startup-delay 500ms\n" >$r/$rel/bin/server; done
printf "#!/bin/sh\necho \"<3>release exits: config file missing\" >&2\nexit 1\n" >$r/exits/bin/server
printf "#!/bin/sh\nexec /usr/local/bin/fake_worker --never-ready\n" >$r/never/bin/server
printf "#!/bin/sh\necho \"config check failed: bad listen directive\"\nexit 1\n" >$r/badcheck/bin/check
chmod 755 $r/*/bin/*
ln -sfn $r/good /srv/demo/current
# Tuning for a test run, as an operator would: drop-ins with short timeouts, worker logs
# through the supervisor, a pre-check; cores off (the watchdog case aborts us).
for u in supervisor@ supervisor-fdstore@; do
  mkdir -p /etc/systemd/system/$u.service.d
  listen=; [ $u = supervisor-fdstore@ ] && listen="--listen http=8080"
  cat >/etc/systemd/system/$u.service.d/test.conf <<EOF
[Service]
ExecStart=
ExecStart=/usr/local/bin/supervisor $listen --ready notify --ready-timeout 3s --drain-timeout 10s --log-workers \
    --pre-check /srv/%i/current/bin/check --status-file \${RUNTIME_DIRECTORY}/status.json -- /srv/%i/current/bin/server
ExecReload=
ExecReload=/usr/local/bin/supervisor ctl upgrade --timeout 20s
LimitCORE=0
EOF
done
echo "WatchdogSec=2s" >>/etc/systemd/system/supervisor-fdstore@.service.d/test.conf
systemctl daemon-reload
' || { echo "install failed"; exit 1; }
SVC=supervisor@demo.service SOCK=supervisor@demo.socket FDS=supervisor-fdstore@demo.service

# ---------- a) start waits for READY=1 ----------
C systemctl start "$SOCK"
t0=$(date +%s%N)
C systemctl start "$SVC"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
active=$(prop "$SVC" ActiveState) status=$(prop "$SVC" StatusText)
http_ok; served=$?
ok=0; [[ $rc == 0 && $active == active && $served == 0 && $ms -ge 500 && $status == "serving gen=1 pid="* ]] && ok=1
case_result a "$ok" "start returned after ${ms}ms (worker READY=1 after its 500ms start-up), active=$active, served at once=$([[ $served == 0 ]] && echo yes || echo no), StatusText='$status'"

# ---------- b) reload: exit 0 for a good release, non-zero for each bad one ----------
reload_to() {  # reload_to RELEASE EXPECT_RC(0|1) STATUS_PATTERN
  C ln -sfn "/srv/demo/releases/$1" /srv/demo/current
  C systemctl reload "$SVC" >/dev/null 2>&1; local r=$?
  local st; st=$(prop "$SVC" StatusText)
  local good=0
  if [[ $2 == 0 ]]; then [[ $r == 0 ]] && good=1; else [[ $r != 0 ]] && good=1; fi
  [[ $st == *$3* ]] || good=0
  log "     reload to $1: rc=$r StatusText='$st'"
  [[ $good == 1 ]]
}
ok=1
reload_to good2 0 "last upgrade gen=2 ok" || ok=0
reload_to exits 1 "last upgrade gen=3 failed: exited before ready" || ok=0
reload_to never 1 "last upgrade gen=4 failed: no READY=1 within the ready timeout" || ok=0
reload_to badcheck 1 "last upgrade gen=5 failed: pre-check failed" || ok=0
[[ $(prop "$SVC" StatusText) == "serving gen=2 pid="* ]] || ok=0
C ln -sfn /srv/demo/releases/good /srv/demo/current
reload_to good 0 "last upgrade gen=6 ok" || ok=0
case_result b "$ok" "reload: good release rc=0; exits, never ready, fails --pre-check rc!=0, StatusText names the reason"

# ---------- g) journalctl -p warning shows the failed upgrades ----------
warn=$(journal -u "$SVC" -p warning)
err=$(journal -u "$SVC" -p err)
n_failed=$(grep -c '^upgrade failed gen=[345] ' <<<"$warn")
ok=0
[[ $n_failed == 3 ]] && grep -q 'stderr: release exits: config file missing' <<<"$err" \
  && ! grep -q '^ready gen=' <<<"$warn" && ! grep -q '^upgrade failed' <<<"$err" && ok=1
case_result g "$ok" "journalctl -p warning: $n_failed of 3 'upgrade failed' lines, no info lines; -p err: the worker's own <3> line"

# ---------- d) SIGKILL of the supervisor under load, socket unit ----------
# restarted UNIT OLD_PID: the unit runs again, under another main pid.
restarted() {
  [[ $(prop "$1" MainPID) != "$2" && $(prop "$1" MainPID) != 0 && $(prop "$1" ActiveState) == active ]]
}
# kill_under_load UNIT OUT: SIGKILL of the unit's main pid mid-way through 6 s of load (one
# connection per request); waits (bounded) for systemd's restart and for the load to end.
kill_under_load() {
  KILLED=$(prop "$1" MainPID)
  load "$2" 6
  local load_pid=$!
  wait_for 5 http_ok
  sleep 1.5  # the kill lands mid-load (scheduling, not synchronisation: the waits are bounded)
  C kill -KILL "$KILLED"
  wait_for 20 restarted "$1" "$KILLED"
  wait "$load_pid"
  RESTARTED=$(prop "$1" MainPID)
  show_load "$2"
}
# The verdict on a load run: nothing refused, nothing timed out, every answer a 200. Read
# errors are counted apart: under KillMode=mixed systemd SIGKILLs the unit's remaining
# processes the moment the main process is gone, so the requests the workers held then are
# cut (SendSIGKILL=no keeps them; see the fd-store case and the unit's comments).
load_kept_queue() {
  [[ $(jget "$1" "connect+write+timeout+non2xx") == 0 && $(jget "$1" ok) -gt 0 ]]
}
describe_load() {
  echo "$(jget "$1" ok) requests, $(jget "$1" connect) refused, $(jget "$1" timeout) timed out, $(jget "$1" read) cut in flight, longest wait $(jget "$1" "latency_ms['max']")ms"
}
kill_under_load "$SVC" "$W/load-d.json"
ok=0; [[ $RESTARTED != "$KILLED" ]] && load_kept_queue "$W/load-d.json" && ok=1
case_result d "$ok" "SIGKILL of the supervisor (pid $KILLED -> $RESTARTED), socket unit: $(describe_load "$W/load-d.json")"

# ---------- e) systemctl restart under load, socket unit ----------
pid1=$(prop "$SVC" MainPID)
load "$W/load-e.json" 5
LOAD_PID=$!
wait_for 5 http_ok
sleep 1
C systemctl restart "$SVC"; rc=$?
wait "$LOAD_PID"
pid2=$(prop "$SVC" MainPID)
show_load "$W/load-e.json"
ok=0; [[ $rc == 0 && $pid2 != "$pid1" && $(jget "$W/load-e.json" failed) == 0 ]] && load_kept_queue "$W/load-e.json" && ok=1
case_result e "$ok" "systemctl restart (pid $pid1 -> $pid2), socket unit: $(describe_load "$W/load-e.json"), 0 failed of any kind required"

# ---------- f) KillMode=mixed: stop leaves no process behind ----------
C systemctl stop "$SVC" "$SOCK"
left=$(C pgrep -af '/usr/local/bin/(supervisor|demo_worker|fake_worker)')
ok=0; [[ -z $left && $(prop "$SVC" ActiveState) == inactive ]] && ok=1
case_result f "$ok" "stop (KillMode=mixed): inactive, processes left: ${left:-none}"

# ---------- h) WatchdogSec=2s: pinged, up for 10 s; a hung loop is killed and restarted ----------
C systemctl start "$FDS"
pid1=$(prop "$FDS" MainPID)
sleep 10  # the duration under test: five watchdog periods
pid_after=$(prop "$FDS" MainPID) restarts=$(prop "$FDS" NRestarts) wlog=$(journal -u "$FDS" | grep -c '^watchdog every 1000ms')
ok_h1=0; [[ $pid_after == "$pid1" && $restarts == 0 && $(prop "$FDS" ActiveState) == active && $wlog == 1 ]] && ok_h1=1
log "     watchdog: MainPID $pid1 -> $pid_after after 10s, NRestarts=$restarts"

# ---------- i) no socket unit, fd store: SIGKILL of the supervisor under load ----------
stored=$(prop "$FDS" NFileDescriptorStore)
kill_under_load "$FDS" "$W/load-i.json"
adopted=$(journal -u "$FDS" | grep -c '^adopted name=http addr=\[::\]:8080 from the service manager')
ok=0; [[ $stored == 1 && $adopted -ge 1 && $RESTARTED != "$KILLED" ]] && load_kept_queue "$W/load-i.json" && ok=1
i_line="fd store (NFileDescriptorStore=$stored, adopted after restart: $adopted): SIGKILL (pid $KILLED -> $RESTARTED): $(describe_load "$W/load-i.json")"
# Again with SendSIGKILL=no, which lets the old workers finish what they hold (they drain on
# PR_SET_PDEATHSIG): then not one socket error.
C sh -c "printf 'SendSIGKILL=no\n' >>/etc/systemd/system/supervisor-fdstore@.service.d/test.conf && systemctl daemon-reload"
kill_under_load "$FDS" "$W/load-i2.json"
errs=$(jget "$W/load-i2.json" "connect+read+write+timeout")
[[ $RESTARTED != "$KILLED" && $errs == 0 && $(jget "$W/load-i2.json" failed) == 0 ]] && load_kept_queue "$W/load-i2.json" || ok=0
case_result i "$ok" "$i_line; with SendSIGKILL=no ($KILLED -> $RESTARTED): $errs socket errors, $(describe_load "$W/load-i2.json")"

# h, second half: SIGSTOP the supervisor's loop; systemd's watchdog must kill and restart it.
pid1=$(prop "$FDS" MainPID)
t0=$(date +%s%N)
C kill -STOP "$pid1"
wait_for 20 restarted "$FDS" "$pid1"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
pid2=$(prop "$FDS" MainPID)
timeout_logged=$(journal -u "$FDS" | grep -c 'Watchdog timeout')
ok=0; [[ $ok_h1 == 1 && $pid2 != "$pid1" && $timeout_logged -ge 1 ]] && http_ok && ok=1
case_result h "$ok" "WatchdogSec=2s: same MainPID for 10s; SIGSTOPped loop killed and restarted ($pid1 -> $pid2) after ${ms}ms"

# ---------- c) systemctl stop under load drains the in-flight requests ----------
load "$W/load-c.json" 4
LOAD_PID=$!
wait_for 5 http_ok
inflight=$(NET python3 "$HERE/inflight.py" "$PORT" 5 \
  "nsenter -t $LEADER -m -p -- systemctl stop --no-block $FDS" \
  "[ \"\$(nsenter -t $LEADER -m -p -- systemctl show -p ActiveState --value $FDS)\" = deactivating ]" 2>&1); rc=$?
wait_for 30 sh -c "[ \"\$(nsenter -t $LEADER -m -p -- systemctl show -p ActiveState --value $FDS)\" = inactive ]"
wait "$LOAD_PID"
j="$W/load-c.json"
left=$(C pgrep -af '/usr/local/bin/(supervisor|demo_worker|fake_worker)')
ok=0; [[ $rc == 0 && $(prop "$FDS" ActiveState) == inactive && -z $left ]] && ok=1
case_result c "$ok" "stop under load: in-flight $inflight; load beside it: $(jget "$j" ok) ok, $(jget "$j" read) read / $(jget "$j" connect) connect errors once the port closed; processes left: ${left:-none}"

T_END=$(date +%s.%N)
log "run time $(printf '%.1f' "$(echo "$T_END - $T_START" | bc)")s"
if (( FAILED > 0 )); then
  echo "--- journal of the units"; journal -u "$SVC" -u "$SOCK" -u "$FDS" -o short-monotonic | tail -150
fi
echo "$PASSED passed, $FAILED failed"
(( FAILED == 0 ))
