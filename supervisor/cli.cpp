// Command line parsing with CLI11 (the options: cli_options.cpp), validated into a Config.
#include "supervisor/cli.h"

#include <arpa/inet.h>

#include "supervisor/cli_options.h"
#include "supervisor/env_file.h"
#include "supervisor_version.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>

namespace sv {

namespace {

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

// The worker's argv: after "--", or CLI11's positionals when there is no "--" (not both).
std::optional<CliExit> apply_command(const RawOptions& raw, std::vector<std::string> command, Config& cfg) {
    if (!raw.positional.empty()) {
        if (!command.empty()) return usage_error("unexpected argument '" + raw.positional.front() + "' before --");
        command = raw.positional;
    }
    if (command.empty() || command.front().empty()) return usage_error("no command given: supervisor [OPTIONS] -- COMMAND [ARGS...]");
    cfg.command = command;
    return std::nullopt;
}

// Unnamed listeners are listen0, listen1, … by position.
std::optional<CliExit> apply_listeners(const RawOptions& raw, Config& cfg) {
    for (size_t i = 0; i < raw.listen.size(); i++) {
        auto spec = parse_listen_spec(raw.listen[i]);
        if (!spec) return usage_error(spec.error().what);
        if (spec->name.empty()) spec->name = "listen" + std::to_string(i);
        cfg.listeners.push_back(std::move(spec.value()));
    }
    return std::nullopt;
}

// Choices CLI11 has already checked against their lists.
void apply_choices(const RawOptions& raw, Config& cfg) {
    cfg.ready_mode = raw.ready == "notify"      ? ReadyMode::Notify
                     : raw.ready == "accepting" ? ReadyMode::Accepting
                     : raw.ready == "auto"      ? ReadyMode::Auto
                                                : ReadyMode::Delay;
    cfg.rolling = raw.upgrade_mode == "rolling";
    cfg.notify_socket = raw.notify_kind == "abstract" ? NotifySocketKind::Abstract : NotifySocketKind::Path;
    cfg.containment = raw.cgroup == "off" ? ContainmentMode::Off : ContainmentMode::Auto;
}

// An empty text keeps the default in out.
std::optional<CliExit> apply_duration(const std::string& flag, const std::string& text, Millis& out) {
    if (text.empty()) return std::nullopt;
    auto d = parse_duration(text);
    if (!d) return usage_error("invalid " + flag + " '" + text + "': expected a duration like 250ms, 2s or 1m");
    out = *d;
    return std::nullopt;
}

// A generation's timeouts: readiness and drain.
std::optional<CliExit> apply_generation_durations(const RawOptions& raw, Config& cfg) {
    if (auto e = apply_duration("--ready-delay", raw.ready_delay, cfg.ready_delay)) return e;
    if (auto e = apply_duration("--ready-timeout", raw.ready_timeout, cfg.ready_timeout)) return e;
    if (auto e = apply_duration("--drain-timeout", raw.drain_timeout, cfg.drain_timeout)) return e;
    if (auto e = apply_duration("--worker-watchdog", raw.worker_watchdog, cfg.worker_watchdog)) return e;
    if (auto e = apply_duration("--stop-delay", raw.stop_delay, cfg.stop_delay)) return e;
    if (auto e = apply_duration("--probation", raw.probation, cfg.probation)) return e;
    if (cfg.ready_timeout.count() == 0) return usage_error("invalid --ready-timeout '0': must be more than 0");
    return std::nullopt;
}

std::optional<CliExit> apply_env(const Config& cfg) {
    for (const auto& kv : cfg.env)
        if (auto a = parse_env_assignment(kv); !a) return usage_error("invalid --env '" + kv + "': " + a.error().what);
    return std::nullopt;
}

// The pre-check's and the control connections' timeouts.
std::optional<CliExit> apply_service_durations(const RawOptions& raw, Config& cfg) {
    if (auto e = apply_duration("--pre-check-timeout", raw.pre_check_timeout, cfg.pre_check_timeout)) return e;
    if (auto e = apply_duration("--control-idle-timeout", raw.control_idle, cfg.control_idle_timeout)) return e;
    if (cfg.control_idle_timeout.count() == 0) return usage_error("invalid --control-idle-timeout '0': must be more than 0");
    return std::nullopt;
}

std::optional<CliExit> apply_compat_and_socket_mode(const RawOptions& raw, Config& cfg) {
    if (!raw.compat.empty()) {
        auto c = parse_compat(raw.compat);
        if (!c) return usage_error("invalid --compat '" + raw.compat + "': expected all, none, or a comma list of server-starter, einhorn, nginx");
        cfg.compat = *c;
    }
    if (!raw.socket_mode.empty()) {
        auto m = parse_mode(raw.socket_mode);
        if (!m) return usage_error("invalid --socket-mode '" + raw.socket_mode + "': expected an octal mode like 660");
        cfg.socket_mode = *m;
    }
    return std::nullopt;
}

// --drain-signal, then --forward-signal (each forwarded signal once, in the order given).
std::optional<CliExit> apply_signals(const RawOptions& raw, Config& cfg) {
    if (!raw.drain_signal.empty()) {
        auto sig = parse_signal(raw.drain_signal);
        if (!sig) return usage_error("invalid --drain-signal '" + raw.drain_signal + "': expected a signal name like TERM or QUIT, or a number");
        cfg.drain_signal = *sig;
    }
    for (const auto& text : raw.forward_signals) {
        auto sig = parse_forward_signal(text);
        if (!sig) return usage_error(sig.error().what);
        if (std::find(cfg.forward_signals.begin(), cfg.forward_signals.end(), *sig) == cfg.forward_signals.end())
            cfg.forward_signals.push_back(*sig);
    }
    return std::nullopt;
}

// --http: an address with an explicit host (a bare port would silently listen everywhere).
std::optional<CliExit> apply_http(const Config& cfg) {
    if (cfg.http.empty()) return std::nullopt;
    auto spec = parse_listen_spec(cfg.http);
    in6_addr addr{};
    bool literal = spec && (::inet_pton(AF_INET, spec->host.c_str(), &addr) == 1 ||
                            ::inet_pton(AF_INET6, spec->host.c_str(), &addr) == 1);
    if (!spec || !spec->name.empty() || (spec->kind == ListenSpec::Kind::Tcp && !literal))
        return usage_error("invalid --http '" + cfg.http + "': expected HOST:PORT with a literal address "
                           "(127.0.0.1:9180, [::1]:9180, 0.0.0.0:9180) or unix:PATH");
    return std::nullopt;
}

std::optional<CliExit> apply_adopt_bind(const RawOptions& raw, Config& cfg) {
    if (raw.adopt_bind.empty()) return std::nullopt;
    if (raw.adopt_bind == "all") cfg.adopt_bind = AdoptBind::All;
    else if (raw.adopt_bind == "worker-only") cfg.adopt_bind = AdoptBind::WorkerOnly;
    else return usage_error("invalid --adopt-bind '" + raw.adopt_bind + "': expected all or worker-only");
    return std::nullopt;
}

// Raw strings → Config fields. The order of the checks decides which error a command line
// with several bad inputs gets.
std::optional<CliExit> apply_options(const RawOptions& raw, std::vector<std::string> command, Config& cfg) {
    if (auto e = apply_command(raw, std::move(command), cfg)) return e;
    if (auto e = apply_listeners(raw, cfg)) return e;
    apply_choices(raw, cfg);
    if (auto e = apply_generation_durations(raw, cfg)) return e;
    if (auto e = apply_env(cfg)) return e;
    if (auto e = apply_service_durations(raw, cfg)) return e;
    if (auto e = apply_compat_and_socket_mode(raw, cfg)) return e;
    if (auto e = apply_http(cfg)) return e;
    if (auto e = apply_adopt_bind(raw, cfg)) return e;
    return apply_signals(raw, cfg);
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
    RawOptions raw;
    Config cfg;
    register_options(app, raw, cfg);

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
    if (auto e = apply_options(raw, std::move(command), cfg)) return *e;
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
