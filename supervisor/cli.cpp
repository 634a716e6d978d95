// Command line parsing with CLI11, validated into a Config.
#include "supervisor/cli.h"

#include "supervisor/env_file.h"
#include "supervisor_version.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>

namespace sv {

namespace {

constexpr const char* kFooter = R"(Signals:
  HUP            upgrade: start a new generation, drain the old one once it is ready
                 (or: supervisor ctl upgrade, which waits and reports the result)
  TERM, INT      graceful stop: drain every worker, exit 0 (a second one: kill now)
  USR1 USR2 WINCH  ignored and logged, unless --forward-signal names them
  --forward-signal SIG  forwarded to the current workers (ready or starting)

Exit codes:
  0    stopped cleanly
  1    a system call failed at startup (bind, permission, socket path)
  2    usage or configuration error
  126  the command is not executable
  127  the command was not found

Control: supervisor ctl [--control PATH] status [--json] | upgrade [--timeout DUR] | stop

Workers get fds 3.. (the listeners), LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES,
NOTIFY_SOCKET and SUPERVISOR_GENERATION; see protocol/PROTOCOL.md.)";

CliExit usage_error(const std::string& what) {
    return CliExit{kExitUsage, "supervisor: " + what + " (see --help)"};
}

// Splits at the first "--": CLI11 sees the options, the rest is the worker's argv.
std::pair<std::vector<std::string>, std::vector<std::string>> split_command(
    const std::vector<std::string>& args) {
    for (size_t i = 0; i < args.size(); i++) {
        if (args[i] == "--")
            return {std::vector<std::string>(args.begin(), args.begin() + static_cast<long>(i)),
                    std::vector<std::string>(args.begin() + static_cast<long>(i) + 1, args.end())};
    }
    return {args, {}};
}

} // namespace

std::optional<Compat> parse_compat(std::string_view text) {
    if (text == "all") return Compat{};
    if (text.empty()) return std::nullopt;
    Compat c{false, false, false};
    if (text == "none") return c;
    while (!text.empty()) {
        auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (item == "server-starter") c.server_starter = true;
        else if (item == "einhorn") c.einhorn = true;
        else if (item == "nginx") c.nginx = true;
        else if (item == "all") c.server_starter = c.einhorn = true;
        else return std::nullopt;
    }
    return c;
}

CliOutcome parse_command_line(const std::vector<std::string>& args) {
    auto [opts, command] = split_command(args);
    CLI::App app{"supervisor: hold listening sockets and upgrade a server with zero downtime", "supervisor"};
    app.footer(kFooter);
    app.set_version_flag("--version", "supervisor " + std::string(kVersion));

    std::vector<std::string> listen, positional;
    std::string ready = "auto", ready_delay, ready_timeout, drain_signal, drain_timeout;
    Config cfg;
    app.add_option("-l,--listen", listen,
                   "[NAME=]PORT | HOST:PORT | [V6ADDR]:PORT | unix:PATH (repeatable; fds 3,4,… in this order)")
        ->type_name("SPEC");
    app.add_option("--backlog", cfg.backlog, "listen(2) backlog (default: SOMAXCONN)")
        ->check(CLI::Range(1, 1 << 20));
    app.add_flag("--nonblocking", cfg.nonblocking,
                 "create the listeners non-blocking, for servers that poll inherited sockets without setting it (nginx)");
    app.add_option("--ready", ready,
                   "readiness: 'auto' (accepts on a listener, and READY=1 if it speaks sd_notify; default), "
                   "'accepting' (a process of it waits on a listener, seen in /proc), 'notify' (READY=1), "
                   "'delay' (alive after --ready-delay)")
        ->check(CLI::IsMember({"auto", "accepting", "delay", "notify"}));
    app.add_option("--ready-delay", ready_delay, "delay mode: ready when alive this long (default 1s)")
        ->type_name("DUR");
    app.add_option("--ready-timeout", ready_timeout, "every mode but delay: a worker not ready by then is rolled back (default 60s)")
        ->type_name("DUR");
    app.add_option("--drain-signal", drain_signal, "signal that tells a worker to drain (default TERM)")
        ->type_name("SIG");
    app.add_option("--drain-timeout", drain_timeout, "SIGKILL a draining worker's group after (default 30s)")
        ->type_name("DUR");
    app.add_option("--pid-file", cfg.pid_file, "write the supervisor's pid here (atomically; removed on exit)")
        ->type_name("PATH");
    app.add_option("--control", cfg.control_path,
                   "control socket for `supervisor ctl` (default: $RUNTIME_DIRECTORY/supervisor.sock if set)")
        ->type_name("PATH");
    app.add_option("--status-file", cfg.status_file, "keep a JSON status here, rewritten atomically on every change")
        ->type_name("PATH");
    std::string compat, socket_mode;
    app.add_option("--compat", compat,
                   "launcher variables besides LISTEN_*: all (server-starter,einhorn; default), none, or a list "
                   "of server-starter, einhorn, nginx")
        ->type_name("LIST");
    app.add_option("--socket-mode", socket_mode, "file mode of unix listeners, octal (e.g. 660)")->type_name("MODE");
    app.add_option("--socket-owner", cfg.socket_owner, "owner of unix listeners")->type_name("USER[:GROUP]");
    app.add_option("--user", cfg.user, "run workers as this user (needs root; groups from the user)")->type_name("USER");
    app.add_option("--group", cfg.group, "run workers with this group (needs root)")->type_name("GROUP");
    app.add_option("--chdir", cfg.chdir, "workers start in DIR, resolved at every spawn (follows a switched symlink)")
        ->type_name("DIR");
    app.add_option("--env", cfg.env, "set KEY=VALUE for workers (repeatable; wins over --env-file)")->type_name("KEY=VALUE");
    app.add_option("--env-file", cfg.env_file, "KEY=VALUE lines for workers, re-read at every upgrade")->type_name("FILE");
    std::string pre_check_timeout;
    app.add_option("--pre-check", cfg.pre_check, "shell command run before each upgrade; non-zero fails it (like nginx -t)")
        ->type_name("CMD");
    app.add_option("--pre-check-timeout", pre_check_timeout, "give the pre-check this long (default 60s)")->type_name("DUR");
    std::string control_idle;
    app.add_option("--control-max-clients", cfg.control_max_clients,
                   "control connections held at once; more get an error line and are closed (default 64)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--control-idle-timeout", control_idle,
                   "close a control connection idle this long, unless it waits for an upgrade (default 30s)")
        ->type_name("DUR");
    std::string notify_kind = "path";
    app.add_option("--notify-socket", notify_kind,
                   "workers' NOTIFY_SOCKET: 'path' (a socket in a private directory; default) or 'abstract' (@name)")
        ->check(CLI::IsMember({"path", "abstract"}));
    std::vector<std::string> forward_signals;
    app.add_option("--forward-signal", forward_signals,
                   "forward this signal to the current workers (repeatable; e.g. USR1, SIGUSR2, 28; not HUP, TERM, "
                   "INT, CHLD, which the supervisor uses itself). Default: none")
        ->type_name("SIG");
    std::string upgrade_mode = "all";
    app.add_option("--workers", cfg.workers, "worker processes per generation, sharing the listeners (default 1)")
        ->check(CLI::Range(1, 1024));
    app.add_option("--upgrade", upgrade_mode,
                   "with --workers: 'all' (new generation complete before the old drains; default) or 'rolling' "
                   "(one worker at a time)")
        ->check(CLI::IsMember({"all", "rolling"}));
    app.add_flag("--log-workers", cfg.log_workers,
                 "log each line of the workers' stdout/stderr, tagged with generation and pid (default: inherited)");
    std::string cgroup = "auto";
    app.add_option("--cgroup", cgroup,
                   "contain each worker in its own cgroup when ours is delegated to us ('auto', default), or "
                   "only by process group and pidfds ('off')")
        ->check(CLI::IsMember({"auto", "off"}));
    app.add_option("--log-level", cfg.log_level, "debug, info, warn or error (default info)")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    app.add_option("command", positional, "the worker command and its arguments, after --: supervisor [OPTIONS] -- COMMAND [ARGS...]")
        ->expected(0, -1);

    std::vector<std::string> argv_rev(opts.rbegin(), opts.rend());
    if (!argv_rev.empty()) argv_rev.pop_back();  // program name
    try {
        app.parse(argv_rev);
    } catch (const CLI::CallForHelp&) {
        return CliExit{kExitOk, app.help()};
    } catch (const CLI::CallForVersion&) {
        return CliExit{kExitOk, "supervisor " + std::string(kVersion) + "\n"};
    } catch (const CLI::ParseError& e) {
        return usage_error(e.what());
    }
    if (!positional.empty()) {
        if (!command.empty()) return usage_error("unexpected argument '" + positional.front() + "' before --");
        command = positional;
    }
    if (command.empty() || command.front().empty()) return usage_error("no command given: supervisor [OPTIONS] -- COMMAND [ARGS...]");
    cfg.command = command;

    for (size_t i = 0; i < listen.size(); i++) {
        auto spec = parse_listen_spec(listen[i]);
        if (!spec) return usage_error(spec.error().what);
        if (spec->name.empty()) spec->name = "listen" + std::to_string(i);
        cfg.listeners.push_back(std::move(spec.value()));
    }
    cfg.ready_mode = ready == "notify"      ? ReadyMode::Notify
                     : ready == "accepting" ? ReadyMode::Accepting
                     : ready == "auto"      ? ReadyMode::Auto
                                            : ReadyMode::Delay;
    cfg.rolling = upgrade_mode == "rolling";
    cfg.notify_socket = notify_kind == "abstract" ? NotifySocketKind::Abstract : NotifySocketKind::Path;
    cfg.containment = cgroup == "off" ? ContainmentMode::Off : ContainmentMode::Auto;

    auto duration = [](const std::string& flag, const std::string& text, Millis& out) -> std::optional<CliExit> {
        if (text.empty()) return std::nullopt;
        auto d = parse_duration(text);
        if (!d) return usage_error("invalid " + flag + " '" + text + "': expected a duration like 250ms, 2s or 1m");
        out = *d;
        return std::nullopt;
    };
    if (auto e = duration("--ready-delay", ready_delay, cfg.ready_delay)) return *e;
    if (auto e = duration("--ready-timeout", ready_timeout, cfg.ready_timeout)) return *e;
    if (auto e = duration("--drain-timeout", drain_timeout, cfg.drain_timeout)) return *e;
    if (cfg.ready_timeout.count() == 0) return usage_error("invalid --ready-timeout '0': must be more than 0");
    for (const auto& kv : cfg.env)
        if (auto a = parse_env_assignment(kv); !a) return usage_error("invalid --env '" + kv + "': " + a.error().what);
    if (auto e = duration("--pre-check-timeout", pre_check_timeout, cfg.pre_check_timeout)) return *e;
    if (auto e = duration("--control-idle-timeout", control_idle, cfg.control_idle_timeout)) return *e;
    if (cfg.control_idle_timeout.count() == 0) return usage_error("invalid --control-idle-timeout '0': must be more than 0");
    if (!compat.empty()) {
        auto c = parse_compat(compat);
        if (!c) return usage_error("invalid --compat '" + compat + "': expected all, none, or a comma list of server-starter, einhorn, nginx");
        cfg.compat = *c;
    }
    if (!socket_mode.empty()) {
        auto m = parse_mode(socket_mode);
        if (!m) return usage_error("invalid --socket-mode '" + socket_mode + "': expected an octal mode like 660");
        cfg.socket_mode = *m;
    }
    if (!drain_signal.empty()) {
        auto sig = parse_signal(drain_signal);
        if (!sig) return usage_error("invalid --drain-signal '" + drain_signal + "': expected a signal name like TERM or QUIT, or a number");
        cfg.drain_signal = *sig;
    }
    for (const auto& text : forward_signals) {
        auto sig = parse_forward_signal(text);
        if (!sig) return usage_error(sig.error().what);
        if (std::find(cfg.forward_signals.begin(), cfg.forward_signals.end(), *sig) == cfg.forward_signals.end())
            cfg.forward_signals.push_back(*sig);
    }
    return cfg;
}

Result<int> parse_forward_signal(const std::string& text) {
    auto sig = parse_signal(text);
    if (!sig) return Error{0, "invalid --forward-signal '" + text + "': expected a signal name like USR1 or WINCH, or a number"};
    switch (*sig) {
    case SIGHUP: case SIGTERM: case SIGINT: case SIGCHLD:
        return Error{0, "invalid --forward-signal '" + text + "': " + signal_name(*sig) +
                                 " is the supervisor's own (upgrade, stop, child exits) and cannot be forwarded"};
    // Raised by a fault in the supervisor itself, or ignored for its own writes: never ours to pass on.
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS: case SIGABRT: case SIGPIPE:
        return Error{0, "invalid --forward-signal '" + text + "': " + signal_name(*sig) + " cannot be forwarded"};
    default: return *sig;
    }
}

} // namespace sv
