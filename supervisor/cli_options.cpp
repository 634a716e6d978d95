// The command line's options, grouped by concern; the order of the calls is the order of --help.
#include "supervisor/cli_options.h"

#include "supervisor_version.h"

#include <CLI/CLI.hpp>

namespace sv {

namespace {

constexpr const char* kFooter = R"(Signals:
  HUP            upgrade: start a new generation, drain the old one once it is ready
                 (or: supervisor ctl upgrade, which waits and reports the result)
  TERM, INT      graceful stop: drain every worker, exit 0 (a second one: kill now);
                 with --stop-delay, serve on first (a second TERM: drain now, INT: kill now)
  USR1 USR2 WINCH  ignored and logged, unless --forward-signal names them
  --forward-signal SIG  forwarded to the current workers (ready or starting)

Exit codes:
  0    stopped cleanly
  1    a system call failed at startup (bind, permission, socket path)
  2    usage or configuration error
  126  the command is not executable
  127  the command was not found

Control: supervisor ctl [--control PATH] status [--json] | check | upgrade [--timeout DUR] | stop

Workers get fds 3.. (the listeners), LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES,
NOTIFY_SOCKET and SUPERVISOR_GENERATION; see protocol/PROTOCOL.md.)";

void add_listener_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.add_option("-l,--listen", raw.listen,
                   "[NAME=]PORT | HOST:PORT | [V6ADDR]:PORT | unix:PATH (repeatable; fds 3,4,… in this order)")
        ->type_name("SPEC");
    app.add_option("--backlog", cfg.backlog, "listen(2) backlog (default: SOMAXCONN)")
        ->check(CLI::Range(1, 1 << 20));
    app.add_flag("--nonblocking", cfg.nonblocking,
                 "create the listeners non-blocking, for servers that poll inherited sockets without setting it (nginx)");
}

void add_readiness_options(CLI::App& app, RawOptions& raw) {
    app.add_option("--ready", raw.ready,
                   "readiness: 'auto' (accepts on a listener, and READY=1 if it speaks sd_notify; default), "
                   "'accepting' (a process of it waits on a listener, seen in /proc), 'notify' (READY=1), "
                   "'delay' (alive after --ready-delay)")
        ->check(CLI::IsMember({"auto", "accepting", "delay", "notify"}));
    app.add_option("--ready-delay", raw.ready_delay, "delay mode: ready when alive this long (default 1s)")
        ->type_name("DUR");
    app.add_option("--ready-timeout", raw.ready_timeout, "every mode but delay: a worker not ready by then is rolled back (default 60s)")
        ->type_name("DUR");
    app.add_option("--worker-watchdog", raw.worker_watchdog,
                   "a worker that sent WATCHDOG=1 and then stays silent this long is hung: killed and respawned "
                   "(default off; workers get WATCHDOG_USEC)")
        ->type_name("DUR");
}

void add_drain_options(CLI::App& app, RawOptions& raw) {
    app.add_option("--drain-signal", raw.drain_signal, "signal that tells a worker to drain (default TERM)")
        ->type_name("SIG");
    app.add_option("--drain-timeout", raw.drain_timeout, "SIGKILL a draining worker's group after (default 30s)")
        ->type_name("DUR");
    app.add_option("--stop-delay", raw.stop_delay,
                   "at SIGTERM/ctl stop, report not ready (status 'stopping') but keep serving this long, then drain "
                   "(default 0; a second SIGTERM drains at once)")
        ->type_name("DUR");
    app.add_option("--probation", raw.probation,
                   "keep the old generation serving beside a ready new one this long; if a new worker dies meanwhile "
                   "the upgrade fails and the old one stays (default 0)")
        ->type_name("DUR");
}

// Files the supervisor keeps for others: its pid, the control socket, the JSON status.
void add_state_file_options(CLI::App& app, Config& cfg) {
    app.add_option("--pid-file", cfg.pid_file, "write the supervisor's pid here (atomically; removed on exit)")
        ->type_name("PATH");
    app.add_option("--control", cfg.control_path,
                   "control socket for `supervisor ctl` (default: $RUNTIME_DIRECTORY/supervisor.sock if set)")
        ->type_name("PATH");
    app.add_option("--status-file", cfg.status_file, "keep a JSON status here, rewritten atomically on every change")
        ->type_name("PATH");
}

// What workers inherit besides LISTEN_*: launcher variables, and who may use unix listeners.
void add_inheritance_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.add_option("--compat", raw.compat,
                   "launcher variables besides LISTEN_*: all (server-starter,einhorn; default), none, or a list "
                   "of server-starter, einhorn, nginx")
        ->type_name("LIST");
    app.add_option("--socket-mode", raw.socket_mode, "file mode of unix listeners, octal (e.g. 660)")->type_name("MODE");
    app.add_option("--socket-owner", cfg.socket_owner, "owner of unix listeners")->type_name("USER[:GROUP]");
}

// How a worker process is started: credentials, directory, environment, and the pre-check.
void add_worker_process_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.add_option("--user", cfg.user, "run workers as this user (needs root; groups from the user)")->type_name("USER");
    app.add_option("--group", cfg.group, "run workers with this group (needs root)")->type_name("GROUP");
    app.add_option("--chdir", cfg.chdir, "workers start in DIR, resolved at every spawn (follows a switched symlink)")
        ->type_name("DIR");
    app.add_option("--env", cfg.env, "set KEY=VALUE for workers (repeatable; wins over --env-file)")->type_name("KEY=VALUE");
    app.add_option("--env-file", cfg.env_file, "KEY=VALUE lines for workers, re-read at every upgrade")->type_name("FILE");
    app.add_option("--pre-check", cfg.pre_check, "shell command run before each upgrade; non-zero fails it (like nginx -t)")
        ->type_name("CMD");
    app.add_option("--pre-check-timeout", raw.pre_check_timeout, "give the pre-check this long (default 60s)")->type_name("DUR");
}

// Health and metrics for load balancers, orchestrators and Prometheus (README "Health and metrics").
void add_observability_options(CLI::App& app, Config& cfg) {
    app.add_option("--http", cfg.http,
                   "serve GET /healthz, /readyz, /metrics, /status on HOST:PORT, [V6]:PORT or unix:PATH (default: off)")
        ->type_name("ADDR");
    app.add_option("--metrics-file", cfg.metrics_file,
                   "keep Prometheus metrics here (node_exporter textfile), rewritten atomically on change")
        ->type_name("PATH");
}

void add_control_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.add_option("--control-max-clients", cfg.control_max_clients,
                   "control connections held at once; more get an error line and are closed (default 64)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--control-idle-timeout", raw.control_idle,
                   "close a control connection idle this long, unless it waits for an upgrade (default 30s)")
        ->type_name("DUR");
}

// The workers' channels with the supervisor besides the listeners: sd_notify, forwarded signals.
void add_worker_channel_options(CLI::App& app, RawOptions& raw) {
    app.add_option("--notify-socket", raw.notify_kind,
                   "workers' NOTIFY_SOCKET: 'path' (a socket in a private directory; default) or 'abstract' (@name)")
        ->check(CLI::IsMember({"path", "abstract"}));
    app.add_option("--forward-signal", raw.forward_signals,
                   "forward this signal to the current workers (repeatable; e.g. USR1, SIGUSR2, 28; not HUP, TERM, "
                   "INT, CHLD, which the supervisor uses itself). Default: none")
        ->type_name("SIG");
}

void add_workers_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.add_option("--workers", cfg.workers, "worker processes per generation, sharing the listeners (default 1)")
        ->check(CLI::Range(1, 1024));
    app.add_option("--upgrade", raw.upgrade_mode,
                   "with --workers: 'all' (new generation complete before the old drains; default) or 'rolling' "
                   "(one worker at a time)")
        ->check(CLI::IsMember({"all", "rolling"}));
}

// Workers' output, their containment (cgroup or process group), and our own log level.
void add_logging_and_containment_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.add_flag("--log-workers", cfg.log_workers,
                 "log each line of the workers' stdout/stderr, tagged with generation and pid (default: inherited)");
    app.add_option("--cgroup", raw.cgroup,
                   "contain each worker in its own cgroup when ours is delegated to us ('auto', default), or "
                   "only by process group and pidfds ('off')")
        ->check(CLI::IsMember({"auto", "off"}));
    app.add_option("--log-level", cfg.log_level, "debug, info, warn or error (default info)")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
}

// --adopt-bind: servers that bind their own port take the supervisor's listener (docs/ADOPT.md).
void add_adopt_options(CLI::App& app, RawOptions& raw) {
    app.add_option("--adopt-bind", raw.adopt_bind,
                 "for servers that bind their own port: a preload turns their bind() of a --listen address into "
                 "the inherited listener ('all': in every program they run, default; 'worker-only': the worker's "
                 "own process). Listeners become non-blocking, each worker sees its own O_NONBLOCK (docs/ADOPT.md)")
        ->expected(0, 1)
        ->default_str("all")
        ->type_name("all|worker-only");
}

} // namespace

void register_options(CLI::App& app, RawOptions& raw, Config& cfg) {
    app.footer(kFooter);
    app.set_version_flag("--version", "supervisor " + std::string(kVersion));
    add_listener_options(app, raw, cfg);
    add_readiness_options(app, raw);
    add_drain_options(app, raw);
    add_state_file_options(app, cfg);
    add_observability_options(app, cfg);
    add_inheritance_options(app, raw, cfg);
    add_worker_process_options(app, raw, cfg);
    add_control_options(app, raw, cfg);
    add_worker_channel_options(app, raw);
    add_workers_options(app, raw, cfg);
    add_logging_and_containment_options(app, raw, cfg);
    add_adopt_options(app, raw);
    app.add_option("command", raw.positional, "the worker command and its arguments, after --: supervisor [OPTIONS] -- COMMAND [ARGS...]")
        ->expected(0, -1);
}

} // namespace sv
