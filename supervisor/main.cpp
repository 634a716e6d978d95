// supervisor: hold the listening sockets, run the worker, upgrade it with zero downtime.
// main reads like a table of contents: parse, prepare, bind, run, clean up.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fstream>
#include <sstream>

#include "supervisor/adopt_setup.h"
#include "supervisor/cli.h"
#include "supervisor/command.h"
#include "supervisor/credentials.h"
#include "supervisor/env_file.h"
#include "supervisor/fd_store.h"
#include "supervisor/ctl_client.h"
#include "supervisor/listeners.h"
#include "supervisor/log.h"
#include "supervisor/notify_socket.h"
#include "supervisor/pid_file.h"
#include "supervisor/reexec_main.h"
#include "supervisor/spawn.h"
#include "supervisor/supervisor.h"
#include "supervisor/systemd.h"

using namespace sv;

namespace {

// A startup failure: the exit code and the one line that says why.
struct Fatal {
    int code;
    std::string what;
};

int fail(const Fatal& f) {
    die_line(f.what);
    return f.code;
}

int print_and_exit(const CliExit& done) {
    FILE* out = done.code == 0 ? stdout : stderr;
    std::fputs(done.text.c_str(), out);
    if (!done.text.empty() && done.text.back() != '\n') std::fputc('\n', out);
    return done.code;
}

// --adopt-bind: the preload is where we expect it, and the command can load it.
std::optional<Fatal> check_adopt_bind(const std::string& command, Config& cfg) {
    auto lib = locate_adopt_library();
    if (!lib) return Fatal{kExitSystem, lib.error().what};
    cfg.adopt_library = *lib;
    if (auto ok = check_adoptable(command); !ok) return Fatal{kExitUsage, ok.error().what};
    return std::nullopt;
}

// Everything a spawn needs that can be checked now, so a typo fails before anything is bound.
std::optional<Fatal> check_workers_can_run(Config& cfg, Credentials* creds) {
    auto c = resolve_credentials(cfg.user, cfg.group);
    if (!c) return Fatal{kExitUsage, c.error().what};
    if ((c->uid >= 0 || c->gid >= 0) && ::geteuid() != 0)
        return Fatal{kExitSystem, "--user/--group need root to switch workers to another user (running as uid " +
                                      std::to_string(::geteuid()) + ")"};
    *creds = std::move(c.value());
    if (!cfg.chdir.empty() && ::access(cfg.chdir.c_str(), X_OK) < 0)
        return Fatal{kExitSystem, "cannot use --chdir " + cfg.chdir + ": " + std::strerror(errno)};
    if (!cfg.env_file.empty()) {
        std::ifstream f(cfg.env_file);
        if (!f) return Fatal{kExitUsage, "cannot read --env-file " + cfg.env_file + ": " + std::strerror(errno)};
        std::stringstream text;
        text << f.rdbuf();
        if (auto parsed = parse_env_file(text.str(), cfg.env_file); !parsed) return Fatal{kExitUsage, parsed.error().what};
    }
    const char* path = std::getenv("PATH");
    auto cmd = resolve_command(cfg.command[0], path ? path : "/usr/local/bin:/usr/bin:/bin", cfg.chdir);
    if (!cmd) return Fatal{cmd.error().code == ENOENT ? kExitNotFound : kExitNotExecutable, cmd.error().what};  // as a shell
    if (cfg.adopt_bind != AdoptBind::Off) return check_adopt_bind(*cmd, cfg);
    return std::nullopt;
}

// Sockets from systemd (socket activation or the fd store) first, then --listen binds the
// rest. `dropped`: names of adopted sockets no --listen takes.
std::optional<Fatal> take_listeners(const Config& cfg, std::vector<Listener>* out, std::vector<std::string>* dropped) {
    auto adopted = adopt_systemd_listeners();
    if (!adopted) return Fatal{kExitSystem, adopted.error().what};
    if (adopted->empty() && cfg.listeners.empty())
        return Fatal{kExitUsage, "no listener: give at least one --listen, or start under systemd socket activation (see --help)"};
    auto unix_opts = resolve_socket_owner(cfg.socket_owner, cfg.socket_mode);
    if (!unix_opts) return Fatal{kExitUsage, unix_opts.error().what};
    cloexec_inherited_fds({});
    std::vector<std::string> unused;
    size_t adopted_count = adopted->size();
    auto listeners = merge_listeners(std::move(adopted.value()), cfg.listeners, cfg.backlog, *unix_opts,
                                     SocketFlags{cfg.nonblocking || cfg.adopt_bind != AdoptBind::Off}, &unused);
    if (!listeners) return Fatal{kExitSystem, listeners.error().what};
    if (adopted_count > 0)
        spdlog::info("socket activation: adopted {} socket(s) from the service manager", adopted_count - unused.size());
    for (const auto& l : *listeners)
        if (l.adopted) spdlog::info("adopted name={} addr={} from the service manager (socket unit or fd store)", l.spec.name, l.address);
    for (const auto& name : unused)
        spdlog::warn("socket activation: socket '{}' is not named by any --listen NAME=…: closed", name);
    *out = std::move(listeners.value());
    *dropped = std::move(unused);
    return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "ctl") == 0) return run_ctl(std::vector<std::string>(argv + 2, argv + argc));
    if (argc == 3 && std::strcmp(argv[1], "--check-state") == 0) return run_check_state(argv[2]);
    if (argc == 3 && std::strcmp(argv[1], "--resume") == 0) return run_resume(argv[2]);
    // As started, for `ctl reexec`: taken before anything below edits the environment.
    Supervisor::Launch launch{own_exe_path(), std::vector<std::string>(argv, argv + argc), environment_now(), -1, ""};
    auto outcome = parse_command_line(std::vector<std::string>(argv, argv + argc));
    if (auto* done = std::get_if<CliExit>(&outcome)) return print_and_exit(*done);
    Config cfg = std::get<Config>(std::move(outcome));
    init_logging(cfg.log_level);
    SystemdNotifier systemd = SystemdNotifier::from_environment();
    if (cfg.control_path.empty())
        if (const char* rt = std::getenv("RUNTIME_DIRECTORY"); rt != nullptr && *rt != '\0')
            cfg.control_path = std::string(rt) + "/supervisor.sock";

    Credentials creds;
    if (auto f = check_workers_can_run(cfg, &creds)) return fail(*f);
    // Before binding: a second supervisor on the same pid file must not touch the port either.
    PidFile pid_file;
    if (!cfg.pid_file.empty()) {
        auto p = PidFile::acquire(cfg.pid_file);
        if (!p) return fail(Fatal{kExitSystem, p.error().what});
        pid_file = std::move(p.value());
    }
    std::vector<Listener> listeners;
    std::vector<std::string> dropped;
    if (auto f = take_listeners(cfg, &listeners, &dropped)) {
        pid_file.remove();
        return fail(*f);
    }
    if (cfg.adopt_bind != AdoptBind::Off) make_listeners_nonblocking(listeners);
    store_listeners(systemd, listeners, dropped);
    auto notify = NotifySocket::create(cfg.notify_socket, creds.uid >= 0 || creds.gid >= 0 ? creds.gid : -1);
    if (!notify) {
        remove_unix_socket_files(listeners);
        pid_file.remove();
        return fail(Fatal{kExitSystem, notify.error().what});
    }

    int code;
    {
        Supervisor supervisor(cfg, creds, listeners, std::move(notify.value()), std::move(systemd));
        launch.pid_file_fd = pid_file.fd();
        launch.pid_file_path = cfg.pid_file;
        supervisor.set_launch(std::move(launch));
        auto result = supervisor.run();
        if (!result) die_line(result.error().what);
        code = result ? *result : kExitSystem;
    }
    remove_unix_socket_files(listeners);
    pid_file.remove();
    return code;
}
