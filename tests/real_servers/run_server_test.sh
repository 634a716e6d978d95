#!/usr/bin/env bash
# run_server_test.sh NAME — upgrades a real, unmodified third-party server several
# times under load through the supervisor, and checks that not one request failed.
#
#   NAME: gunicorn | lighttpd | node | python | starlet | nginx
#         adopt-python | adopt-flask | adopt-webrick | adopt-node
#         (servers that bind their own port, run with --adopt-bind: docs/ADOPT.md)
#
# For NAME it starts `supervisor -l 127.0.0.1:PORT ... -- <server>` in a temporary
# directory, waits until the server answers, then runs two clients at once:
#   - wrk -t1 -c8 (keep-alive connections; for nginx and lighttpd, which close idle
#     keep-alive connections at once when draining, with "Connection: close": see
#     docs/RECIPES.md, and REAL_KEEPALIVE=1 to see that race), and
#   - a curl loop (a new connection per request, so every upgrade meets connects
#     waiting in the shared accept queue),
# sends SIGHUP $REAL_UPGRADES times (default 3), each once the previous upgrade is
# logged done, waits for the old generations to exit, stops the load, and asserts:
#   - wrk saw no socket error and no non-2xx response; every curl request got 200;
#   - every upgrade succeeded, every old generation exited 0 on the drain signal and
#     is gone, and the requests after the upgrades are served by the last generation
#     (from the response body where the server can say so, and always from the
#     kernel: only the supervisor and the last generation's process group still
#     hold the listening socket);
#   - the supervisor stops on SIGTERM and exits 0, and no process of any generation
#     (e.g. a prefork child) outlives it.
#
# Exit status: 0 pass, 1 fail, 77 skip (the server is not installed: the message says
# which Debian package provides it; scripts/setup.sh installs tests/real_servers/packages.txt).
#
# Environment: SUPERVISOR_BIN (default build/supervisor), PY_WORKER, NODE_WORKER
# (default tests/workers/...), REAL_UPGRADES, REAL_KEEPALIVE=1 (keep-alive load for
# every server), KEEP_TMP=1 keeps the temporary directory.
# Every wait is bounded; every process started here is stopped by pid on exit.
set -uo pipefail
export LC_ALL=C

name=${1:?usage: run_server_test.sh gunicorn|lighttpd|node|python|starlet|nginx|adopt-python|adopt-flask|adopt-webrick|adopt-node}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
sv_bin=${SUPERVISOR_BIN:-$root/build/supervisor}
py_worker=${PY_WORKER:-$root/tests/workers/py_worker.py}
node_worker=${NODE_WORKER:-$root/tests/workers/node_worker.js}
upgrades=${REAL_UPGRADES:-3}
[[ $sv_bin == /* ]] || sv_bin=$PWD/$sv_bin  # the supervisor runs in the temporary directory

now_ms() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }
t0=$(now_ms)
say() { local e=$(( $(now_ms) - t0 )); printf '[real-%s %3d.%01ds] %s\n' "$name" $((e / 1000)) $((e % 1000 / 100)) "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/real-$name.XXXXXX")
log=$tmp/supervisor.log
sv_pid='' wrk_pid='' loop_pid=''

skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; exit 1; }

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# Waits until pid $1 (a child of this shell) has exited, at most $2 seconds.
wait_gone() {
  local deadline=$(( $(now_ms) + $2 * 1000 ))
  while alive "$1"; do
    (( $(now_ms) >= deadline )) && return 1
    sleep 0.05
  done
}

# TERM, a bounded wait, then KILL: for processes this script started.
stop_pid() {
  alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null
  wait_gone "$1" 5 || kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

worker_pids() { [[ -f $log ]] && sed -n 's/.* spawned gen=[0-9]* pid=\([0-9]*\).*/\1/p' "$log"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  touch "$tmp/stop" 2>/dev/null
  stop_pid "$wrk_pid"
  stop_pid "$loop_pid"
  if alive "$sv_pid"; then
    kill -TERM "$sv_pid" 2>/dev/null
    wait_gone "$sv_pid" 10 || kill -KILL "$sv_pid" 2>/dev/null
    wait "$sv_pid" 2>/dev/null
  fi
  # Worker process groups (each worker leads its own) that outlived the supervisor,
  # e.g. when it had to be killed: the workers were started by this test.
  local p left=()
  for p in $(worker_pids); do
    kill -0 -- "-$p" 2>/dev/null && { kill -TERM -- "-$p" 2>/dev/null; left+=("$p"); }
  done
  if ((${#left[@]})); then
    sleep 1
    for p in "${left[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
  fi
  if ((rc != 0 && rc != 77)) && [[ -s $log ]]; then
    say "supervisor log (last 60 lines):"
    tail -n 60 "$log" 2>/dev/null | sed 's/^/    /'
    local f
    for f in "$tmp"/wrk.out "$tmp"/curl.err "$tmp"/error.log "$tmp"/lighttpd-error.log; do
      [[ -s $f ]] || continue
      say "$(basename "$f") (last 30 lines):"
      tail -n 30 "$f" | sed 's/^/    /'
    done
  fi
  if [[ ${KEEP_TMP:-0} == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Prints the first supervisor log line matching ERE $1, waiting at most $2 seconds.
# Fails at once when a line matches ERE $3 (if given) or the supervisor has exited.
wait_log() {
  local re=$1 secs=$2 bad=${3:-} line deadline=$(( $(now_ms) + $2 * 1000 ))
  while :; do
    if line=$(grep -m1 -E -- "$re" "$log"); then printf '%s\n' "$line"; return 0; fi
    if [[ -n $bad ]] && line=$(grep -m1 -E -- "$bad" "$log"); then
      say "unexpected: $line"
      return 1
    fi
    if ! alive "$sv_pid"; then
      say "the supervisor exited while waiting for /$re/"
      return 1
    fi
    if (( $(now_ms) >= deadline )); then
      say "timed out after ${secs}s waiting for /$re/ in the supervisor log"
      return 1
    fi
    sleep 0.05
  done
}

need_cmd() {  # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    skip "$1 is not installed (Debian package $2; scripts/setup.sh installs tests/real_servers/packages.txt)"
}

free_port() {  # a port free right now on 127.0.0.1 (someone may take it before we bind it)
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------
# Per server: supervisor options (sv_opts), the command (cmd), and served_by, which
# prints the pid of the process the supervisor started that served one request
# (empty when the server cannot tell: the kernel check below still applies).
# ---------------------------------------------------------------------------------
port=0          # 0: the supervisor picks a free port; nginx and adopt-* need a fixed one
path=/
lossy=0         # 1: the server has no graceful stop; requests in flight at its drain signal are lost
wrk_extra=()
served_by() { :; }
body_field() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }

case $name in
gunicorn)
  # gunicorn 20.1 (Debian 12) takes LISTEN_FDS when LISTEN_PID is its arbiter's pid,
  # and its arbiter sends READY=1 (after taking the sockets, before forking workers:
  # --preload imports the app before, so that code that cannot load fails the upgrade).
  # TERM is its graceful stop: close the listeners, TERM the workers, wait for them
  # up to --graceful-timeout.
  need_cmd gunicorn gunicorn
  sv_opts=(--nonblocking --ready notify --ready-timeout 20s --drain-signal TERM --drain-timeout 15s)
  cmd=(gunicorn --workers 2 --graceful-timeout 10 --preload --chdir "$here" wsgi_app:app)
  served_by() { body_field ppid "$1"; }
  ;;
lighttpd)
  # lighttpd 1.4.69: server.systemd-socket-activation = "enable"; SIGINT is its
  # graceful shutdown (SIGTERM stops at once, dropping requests in flight; SIGUSR1
  # is a graceful restart in place). It sends no READY=1: --ready delay.
  need_cmd lighttpd lighttpd
  mkdir -p "$tmp/www"
  echo "hello from lighttpd" >"$tmp/www/index.html"
  sed "s|@TMP@|$tmp|g" "$here/lighttpd.conf.in" >"$tmp/lighttpd.conf"
  sv_opts=(--nonblocking --ready delay --ready-delay 1s --drain-signal INT --drain-timeout 15s)
  cmd=(lighttpd -D -f "$tmp/lighttpd.conf")
  # lighttpd closes idle keep-alive connections at once when it drains, racing with
  # a client that is sending its next request on one (its own graceful restart,
  # SIGUSR1, does the same): see docs/RECIPES.md. The load therefore uses a new
  # connection per request; REAL_KEEPALIVE=1 shows the race.
  wrk_extra=(-H 'Connection: close')
  ;;
node)
  # Node's net.Server listen({fd: 3}): tests/workers/node_worker.js. Node's standard
  # library cannot send READY=1 (no unix datagrams): --ready delay.
  need_cmd node nodejs
  [[ -r $node_worker ]] || fail "NODE_WORKER $node_worker not found"
  sv_opts=(--nonblocking --ready delay --ready-delay 1s --drain-signal TERM --drain-timeout 15s)
  cmd=(node "$node_worker")
  served_by() { body_field pid "$1"; }
  ;;
python)
  # Python's http.server/socketserver on socket.socket(fileno=3):
  # tests/workers/py_worker.py, which sends READY=1.
  need_cmd python3 python3
  [[ -r $py_worker ]] || fail "PY_WORKER $py_worker not found"
  sv_opts=(--nonblocking --ready notify --ready-timeout 20s --drain-signal TERM --drain-timeout 15s)
  cmd=(python3 "$py_worker")
  served_by() { body_field pid "$1"; }
  ;;
starlet)
  # Starlet (Plack::Handler::Starlet 0.31) takes its listeners from
  # SERVER_STARTER_PORT (Server::Starter's convention, set by default: --compat all).
  # Its Parallel::Prefork master stops gracefully on TERM. No READY=1: --ready delay.
  need_cmd plackup starlet
  perl -MPlack::Handler::Starlet -e 1 2>/dev/null ||
    skip "Plack::Handler::Starlet is not installed (Debian package starlet)"
  perl -MServer::Starter -e 1 2>/dev/null ||
    skip "Server::Starter is not installed (Debian package libserver-starter-perl; Starlet needs it to read SERVER_STARTER_PORT)"
  sv_opts=(--ready delay --ready-delay 1s --drain-signal TERM --drain-timeout 15s)
  cmd=(plackup -s Starlet -E deployment --max-workers 2 "$here/app.psgi")
  served_by() { body_field ppid "$1"; }
  ;;
nginx)
  # nginx takes inherited sockets from its NGINX variable ("3;"), the one its own
  # binary upgrade uses: --compat nginx. QUIT is its graceful shutdown.
  # --nonblocking: nginx sets O_NONBLOCK only on sockets it creates, not on inherited
  # ones; on a blocking listener a worker that loses the race for a connection blocks in
  # accept() and stalls its other connections (seconds of latency under load while two
  # generations accept). A sh wrapper (exec: same pid) gives each generation its own pid
  # file (an exiting generation removes its pid file, which would be the new one's).
  need_cmd nginx nginx
  port=$(free_port) || fail "cannot pick a free port"
  mkdir -p "$tmp/nginx"
  sv_opts=(--compat nginx --nonblocking --ready delay --ready-delay 1s --drain-signal QUIT --drain-timeout 15s)
  # shellcheck disable=SC2016 # $0 and $SUPERVISOR_GENERATION are for sh, not for us
  cmd=(sh -c 'exec nginx -p "$0/nginx" -e "$0/error.log" -c "$0/nginx.conf" -g "daemon off; pid $0/nginx.$SUPERVISOR_GENERATION.pid;"'
       "$tmp")
  # nginx closes idle keep-alive connections at once when it drains, racing with a
  # client that is sending its next request on one (nginx's own `nginx -s reload`
  # does the same): see docs/RECIPES.md. The load therefore uses a new connection
  # per request; REAL_KEEPALIVE=1 shows the race.
  wrk_extra=(-H 'Connection: close')
  served_by() {  # the worker's parent: the master the supervisor started
    local w
    w=$(body_field pid "$1")
    [[ -n $w ]] && awk '/^PPid:/ {print $2}' "/proc/$w/status" 2>/dev/null
  }
  ;;
# Servers that bind their own port: --adopt-bind hands them the supervisor's listener. The
# port is on their command line (@PORT@), so it is chosen first. Readiness: the default,
# auto (they wait on the listener; none sends READY=1). docs/RECIPES.md says what each
# loses when it has no graceful stop.
adopt-python)
  # python3 -m http.server: INT raises KeyboardInterrupt in its accept loop; it exits 0,
  # and its request threads (daemon threads) die with it.
  need_cmd python3 python3
  port=$(free_port) || fail "cannot pick a free port"
  mkdir -p "$tmp/www"
  echo "hello from http.server" >"$tmp/www/index.html"
  sv_opts=(--adopt-bind --drain-signal INT --drain-timeout 15s)
  cmd=(python3 -m http.server @PORT@ --bind 127.0.0.1 --directory "$tmp/www")
  lossy=1
  ;;
adopt-flask)
  # Flask's development server (werkzeug, threaded): INT, as for http.server.
  need_cmd python3 python3
  python3 -c 'import flask' 2>/dev/null || skip "flask is not installed (Debian package python3-flask)"
  port=$(free_port) || fail "cannot pick a free port"
  sv_opts=(--adopt-bind --drain-signal INT --drain-timeout 15s)
  cmd=(python3 "$here/flask_app.py" @PORT@)
  lossy=1
  served_by() { body_field pid "$1"; }
  ;;
adopt-webrick)
  # WEBrick: TERM → server.shutdown, which stops accepting and joins its request threads.
  need_cmd ruby ruby
  ruby -rwebrick -e 1 2>/dev/null || skip "WEBrick is not installed (Debian package ruby-webrick)"
  port=$(free_port) || fail "cannot pick a free port"
  sv_opts=(--adopt-bind --drain-signal TERM --drain-timeout 15s)
  # shellcheck disable=SC2016 # Ruby code
  cmd=(ruby -rwebrick -e 's = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: Integer(ARGV[0]), AccessLog: [],
         Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN))
       s.mount_proc("/") { |_req, res| res.body = "pid=#{Process.pid}\n" }
       trap("TERM") { s.shutdown }
       s.start' @PORT@)
  # shutdown closes idle keep-alive connections at once, racing with a client sending its
  # next request on one (as nginx and lighttpd do): a new connection per request. Even
  # so, a connection it accepted as shutdown began can be dropped (1-3 in 3 upgrades).
  wrk_extra=(-H 'Connection: close')
  lossy=1
  served_by() { body_field pid "$1"; }
  ;;
adopt-node)
  # A Node program calling server.listen(PORT, HOST): tests/real_servers/adopt_node.js.
  # TERM: server.close() and closeIdleConnections(), then exit 0.
  need_cmd node nodejs
  port=$(free_port) || fail "cannot pick a free port"
  sv_opts=(--adopt-bind --drain-signal TERM --drain-timeout 15s)
  cmd=(node "$here/adopt_node.js" @PORT@ 127.0.0.1)
  # closeIdleConnections() races with a client sending its next request on an idle
  # keep-alive connection (as nginx and lighttpd do): a new connection per request.
  wrk_extra=(-H 'Connection: close')
  served_by() { body_field pid "$1"; }
  ;;
*)
  fail "unknown server '$name' (gunicorn, lighttpd, node, python, starlet, nginx, adopt-python, adopt-flask, adopt-webrick, adopt-node)"
  ;;
esac
[[ ${REAL_KEEPALIVE:-0} == 1 ]] && wrk_extra=()
need_cmd wrk wrk
need_cmd curl curl
[[ -x $sv_bin ]] || fail "SUPERVISOR_BIN $sv_bin is not executable (build first: ninja -C build)"

# --------------------------------------------------------------------------------
# Start. nginx's port is chosen before the supervisor binds it: if another process
# takes it in between, the supervisor exits 1 ("cannot bind") and we retry.
# --------------------------------------------------------------------------------
for attempt in 1 2 3; do
  if [[ $name == nginx ]]; then
    sed -e "s|@TMP@|$tmp|g" -e "s|@PORT@|$port|g" "$here/nginx.conf.in" >"$tmp/nginx.conf"
  fi
  : >"$log"
  # READINESS=default|accepting: drop the recipe's --ready/--ready-delay and let the
  # supervisor judge readiness itself (the default is --ready auto).
  if [[ ${READINESS:-recipe} != recipe ]]; then
    kept=()
    for ((i = 0; i < ${#sv_opts[@]}; i++)); do
      case ${sv_opts[i]} in
        --ready|--ready-delay) i=$((i + 1)) ;;
        *) kept+=("${sv_opts[i]}") ;;
      esac
    done
    sv_opts=("${kept[@]}")
    [[ $READINESS == accepting ]] && sv_opts+=(--ready accepting)
    # gunicorn without --preload: its arbiter says READY=1 before the workers load the
    # app; readiness must wait for them to accept.
    [[ $name == gunicorn ]] && cmd=("${cmd[@]/--preload}") && cmd=(${cmd[@]})
  fi
  cmd_now=("${cmd[@]//@PORT@/$port}")
  printf -v shown ' %q' "${sv_opts[@]}" -- "${cmd_now[@]}"
  say "start: $sv_bin -l 127.0.0.1:$port$shown"
  (cd "$tmp" && exec "$sv_bin" -l "127.0.0.1:$port" "${sv_opts[@]}" -- "${cmd_now[@]}") >"$log" 2>&1 </dev/null &
  sv_pid=$!
  if line=$(wait_log 'listening name=listen0 addr=127\.0\.0\.1:[0-9]+ fd=3' 10); then break; fi
  if ((port != 0)) && ! alive "$sv_pid" && grep -q 'cannot bind' "$log" && ((attempt < 3)); then
    wait "$sv_pid" 2>/dev/null
    say "port $port was taken meanwhile, retrying with another one"
    port=$(free_port)
    continue
  fi
  fail "the supervisor did not start listening"
done
port=$(sed -n 's/.*addr=127\.0\.0\.1:\([0-9]*\) fd=3.*/\1/p' <<<"$line")
url=http://127.0.0.1:$port$path
line=$(wait_log '\<ready gen=1 pid=[0-9]+' 30 'upgrade failed|exited gen=1') || fail "generation 1 never became ready"
gen1_pid=$(sed -n 's/.*ready gen=1 pid=\([0-9]*\).*/\1/p' <<<"$line")
say "generation 1 ready: pid $gen1_pid, $url"

# Ready is the supervisor's judgement; wait until the server really answers.
deadline=$(( $(now_ms) + 15000 ))
until body=$(curl -fsS --max-time 2 "$url" 2>"$tmp/curl.first"); do
  (( $(now_ms) < deadline )) || fail "no answer from $url within 15s: $(cat "$tmp/curl.first")"
  alive "$sv_pid" || fail "the supervisor exited"
  sleep 0.1
done
say "first answer: ${body%%$'\n'*}"
first_by=$(served_by "$body")
if [[ -n $first_by && $first_by != "$gen1_pid" ]]; then
  fail "the first answer was not served by generation 1 (pid $gen1_pid): '$body'"
fi

# The listening socket, as the kernel names it (socket:[inode]).
sock_id=$(readlink "/proc/$sv_pid/fd/3") || fail "cannot read /proc/$sv_pid/fd/3"
# Prints the pids, other than the supervisor, holding the listening socket.
socket_holders() {
  local pat=${sock_id//[/\\[}
  pat=${pat//]/\\]}
  find /proc/[0-9]*/fd -maxdepth 1 -lname "$pat" 2>/dev/null |
    sed -n 's|^/proc/\([0-9]*\)/fd/.*|\1|p' | grep -vx "$sv_pid" | sort -un
}
pgid_of() { awk '{print $5}' "/proc/$1/stat" 2>/dev/null; }
# Prints the live (not zombie) processes whose process group is one of the pids given:
# each worker leads its own group, and the processes it forks stay in it.
group_members() {
  local want=" $* " f line pid rest st pg
  for f in /proc/[0-9]*/stat; do
    read -r line <"$f" 2>/dev/null || continue
    pid=${line%% *}
    rest=${line##*) }  # after "pid (comm) ": state ppid pgrp ...
    st=${rest%% *}
    rest=${rest#* }
    rest=${rest#* }
    pg=${rest%% *}
    [[ $st != Z && $want == *" $pg "* ]] && echo "$pid"
  done
}

# --------------------------------------------------------------------------------
# Load, and the upgrades under it.
# --------------------------------------------------------------------------------
say "load: wrk -t1 -c8 ${wrk_extra[*]} and a curl loop"
wrk -t1 -c8 -d60s --timeout 5s "${wrk_extra[@]}" "$url" >"$tmp/wrk.out" 2>&1 &
wrk_pid=$!

curl_loop() {  # one new connection per request, until $tmp/stop (at most 5000 requests or 60 s)
  local n=0 bad=0 code end=$((SECONDS + 60))
  while [[ ! -e $tmp/stop ]] && ((n < 5000 && SECONDS < end)); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>>"$tmp/curl.err") || code="$code (curl exit $?)"
    n=$((n + 1))
    [[ $code == 200 ]] || { bad=$((bad + 1)); echo "curl request $n: $code" >>"$tmp/curl.err"; }
  done
  echo "$n $bad" >"$tmp/curl.out"
}
curl_loop &
loop_pid=$!

sleep 1
gen=1
pids=("$gen1_pid")
for ((i = 1; i <= upgrades; i++)); do
  next=$((gen + 1))
  say "SIGHUP $i/$upgrades: upgrading generation $gen to $next"
  kill -HUP "$sv_pid"
  line=$(wait_log "upgrade done gen=$next pid=[0-9]+" 30 "upgrade failed gen=$next|exited gen=$next ") ||
    fail "upgrade to generation $next did not complete"
  pids+=("$(sed -n 's/.*upgrade done gen=[0-9]* pid=\([0-9]*\).*/\1/p' <<<"$line")")
  gen=$next
  alive "$wrk_pid" || fail "wrk ended before upgrade $i was done"
  sleep 0.5
done
last_pid=${pids[-1]}
say "upgrades done: pids ${pids[*]}; waiting for the old generations to drain (under load)"
for ((g = 1; g < gen; g++)); do
  line=$(wait_log "exited gen=$g pid=" 20) || fail "generation $g (pid ${pids[g - 1]}) did not exit after its drain signal"
  [[ $line == *" exit=0 "* ]] || fail "generation $g did not drain cleanly: $line"
done
sleep 0.5

alive "$wrk_pid" || fail "wrk ended before the load was stopped"
kill -INT "$wrk_pid"  # wrk prints its statistics on SIGINT
touch "$tmp/stop"
wait_gone "$wrk_pid" 10 || fail "wrk did not stop within 10s"
wait "$wrk_pid"
wrk_rc=$?
wrk_pid=''
wait_gone "$loop_pid" 15 || fail "the curl loop did not stop within 15s"
wait "$loop_pid"
loop_pid=''

# --------------------------------------------------------------------------------
# Assertions.
# --------------------------------------------------------------------------------
ok=1
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$tmp/wrk.out")
say "wrk: $(grep -E 'Latency|requests in|Socket errors|Non-2xx' "$tmp/wrk.out" | tr -s ' ' | paste -sd ';')"
if ((wrk_rc != 0)) || [[ -z $requests ]] || ((requests == 0)); then
  say "wrk did not run (exit $wrk_rc)"; ok=0
fi
read -r curl_n curl_bad <"$tmp/curl.out" 2>/dev/null || { curl_n=0 curl_bad=0; }
say "curl loop: $curl_n requests (one connection each), $curl_bad failed"
if ((curl_n == 0)); then say "the curl loop made no request"; ok=0; fi
if ((lossy)); then
  # No graceful stop: at most the requests in flight at each drain signal (wrk's 8
  # connections and the curl loop's one) may be lost; anything more is a failure.
  wrk_errors=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$tmp/wrk.out" |
               awk '{print $1 + $2 + $3 + $4}')
  lost=$(( ${wrk_errors:-0} + curl_bad ))
  say "LOST $lost request(s) in $upgrades upgrades: the server has no graceful stop (docs/RECIPES.md)"
  ((lost <= 9 * upgrades)) || { say "more than the 9 requests in flight per upgrade were lost"; ok=0; }
  grep -q 'Non-2xx' "$tmp/wrk.out" && { say "wrk saw non-2xx responses"; ok=0; }
else
  if grep -q 'Socket errors' "$tmp/wrk.out"; then say "wrk saw socket errors"; ok=0; fi
  if grep -q 'Non-2xx' "$tmp/wrk.out"; then say "wrk saw non-2xx responses"; ok=0; fi
  if ((curl_bad != 0)); then say "failed curl requests: $(head -5 "$tmp/curl.err" | paste -sd ';')"; ok=0; fi
fi

done_n=$(grep -c 'upgrade done gen=' "$log")
((done_n >= upgrades)) || { say "only $done_n upgrades done"; ok=0; }
if grep -E 'upgrade failed|warning|error ' "$log" | grep -q supervisor; then
  say "the supervisor logged problems:"; grep -E 'upgrade failed|warning|error ' "$log" | grep supervisor | head -5
  ok=0
fi

for ((g = 0; g < gen - 1; g++)); do
  alive "${pids[g]}" && { say "generation $((g + 1)) (pid ${pids[g]}) still runs"; ok=0; }
done
holders=$(socket_holders | paste -sd ' ')
say "listening socket $sock_id held by: supervisor $sv_pid, $holders"
[[ -n $holders ]] || { say "no worker holds the listening socket"; ok=0; }
for p in $holders; do
  pg=$(pgid_of "$p")
  [[ -z $pg || $pg == "$last_pid" ]] || { say "pid $p (process group $pg) holds the socket but is not in the last generation (pid $last_pid)"; ok=0; }
done
for ((i = 0; i < 5; i++)); do
  body=$(curl -fsS --max-time 2 "$url") || { say "no answer after the upgrades"; ok=0; break; }
  by=$(served_by "$body")
  if [[ -n $by && $by != "$last_pid" ]]; then
    say "served by pid $by, not by the last generation (pid $last_pid): '$body'"; ok=0
  fi
done
say "last answer: ${body%%$'\n'*} (generation 1 was pid $gen1_pid, generation $gen is pid $last_pid)"
((ok)) || fail "see above"

say "SIGTERM to the supervisor"
kill -TERM "$sv_pid"
wait_gone "$sv_pid" 20 || fail "the supervisor did not exit within 20s of SIGTERM"
wait "$sv_pid"
rc=$?
sv_pid=''
((rc == 0)) || fail "the supervisor exited $rc on SIGTERM"
grep -q "exited gen=$gen pid=$last_pid exit=0" "$log" || fail "generation $gen did not exit 0 on stop: $(grep "exited gen=$gen " "$log")"
# Nothing a generation started may outlive the supervisor (e.g. a prefork child).
mapfile -t wpids < <(worker_pids)
deadline=$(( $(now_ms) + 3000 ))
while stray=$(group_members "${wpids[@]}") && [[ -n $stray ]]; do
  (( $(now_ms) < deadline )) ||
    fail "processes of the workers' groups outlived the supervisor: $(ps -o pid=,ppid=,pgid=,args= -p "$(paste -sd, <<<"$stray")" | head -5)"
  sleep 0.1
done
if ((lossy)); then
  say "PASS: $upgrades upgrades under load, $requests wrk + $curl_n curl requests, $lost lost in flight (no graceful stop)"
else
  say "PASS: $upgrades upgrades under load, $requests wrk + $curl_n curl requests, none failed"
fi
