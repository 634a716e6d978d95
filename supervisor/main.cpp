// supervisor: hold the listening sockets, run the worker, upgrade it with zero downtime.
// main reads like a table of contents: parse, prepare, bind, run, clean up.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fstream>
#include <sstream>

#include "supervisor/cli.h"
#include "supervisor/env_file.h"
#include "supervisor/ctl_client.h"
#include "supervisor/listeners.h"
#include "supervisor/log.h"
#include "supervisor/notify_socket.h"
#include "supervisor/pid_file.h"
#include "supervisor/spawn.h"
#include "supervisor/supervisor.h"
#include "supervisor/systemd.h"

using namespace sv;

namespace {

int exit_code_for_exec_error(int err) { return err == ENOENT ? kExitNotFound : kExitNotExecutable; }  // as a shell

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "ctl") == 0) return run_ctl(std::vector<std::string>(argv + 2, argv + argc));
    auto outcome = parse_command_line(std::vector<std::string>(argv, argv + argc));
    if (auto* done = std::get_if<CliExit>(&outcome)) {
        std::fputs(done->text.c_str(), done->code == 0 ? stdout : stderr);
        if (!done->text.empty() && done->text.back() != '\n') std::fputc('\n', done->code == 0 ? stdout : stderr);
        return done->code;
    }
    Config cfg = std::get<Config>(std::move(outcome));
    init_logging(cfg.log_level);
    SystemdNotifier systemd = SystemdNotifier::from_environment();

    // Fail before binding anything when the workers cannot run at all.
    auto creds = resolve_credentials(cfg.user, cfg.group);
    if (!creds) {
        die_line(creds.error().what);
        return kExitUsage;
    }
    if ((creds->uid >= 0 || creds->gid >= 0) && ::geteuid() != 0) {
        die_line("--user/--group need root to switch workers to another user (running as uid " +
                 std::to_string(::geteuid()) + ")");
        return kExitSystem;
    }
    if (!cfg.chdir.empty() && ::access(cfg.chdir.c_str(), X_OK) < 0) {
        die_line("cannot use --chdir " + cfg.chdir + ": " + std::strerror(errno));
        return kExitSystem;
    }
    if (!cfg.env_file.empty()) {
        std::ifstream f(cfg.env_file);
        std::stringstream text;
        if (f) text << f.rdbuf();
        auto parsed = f ? parse_env_file(text.str(), cfg.env_file)
                        : Result<EnvAssignments>(Error{errno, "cannot read --env-file " + cfg.env_file + ": " + std::strerror(errno)});
        if (!parsed) {
            die_line(parsed.error().what);
            return kExitUsage;
        }
    }
    const char* path = std::getenv("PATH");
    if (auto cmd = resolve_command(cfg.command[0], path ? path : "/usr/local/bin:/usr/bin:/bin", cfg.chdir); !cmd) {
        die_line(cmd.error().what);
        return exit_code_for_exec_error(cmd.error().code);
    }
    if (cfg.control_path.empty())
        if (const char* rt = std::getenv("RUNTIME_DIRECTORY"); rt != nullptr && *rt != '\0')
            cfg.control_path = std::string(rt) + "/supervisor.sock";

    // Socket activation first: the fds systemd passed must be taken before anything else.
    auto adopted = adopt_systemd_listeners();
    if (!adopted) {
        die_line(adopted.error().what);
        return kExitSystem;
    }
    if (adopted->empty() && cfg.listeners.empty()) {
        die_line("no listener: give at least one --listen, or start under systemd socket activation (see --help)");
        return kExitUsage;
    }
    auto unix_opts = resolve_socket_owner(cfg.socket_owner, cfg.socket_mode);
    if (!unix_opts) {
        die_line(unix_opts.error().what);
        return kExitUsage;
    }
    cloexec_inherited_fds({});
    std::vector<std::string> unused;
    size_t adopted_count = adopted->size();
    auto listeners = merge_listeners(std::move(adopted.value()), cfg.listeners, cfg.backlog, *unix_opts, &unused);
    if (!listeners) {
        die_line(listeners.error().what);
        return kExitSystem;
    }
    if (adopted_count > 0) spdlog::info("socket activation: adopted {} socket(s) from the service manager", adopted_count - unused.size());
    for (const auto& name : unused)
        spdlog::warn("socket activation: socket '{}' is not named by any --listen NAME=…: closed", name);
    auto notify = NotifySocket::create();
    if (!notify) {
        die_line(notify.error().what);
        remove_unix_socket_files(*listeners);
        return kExitSystem;
    }
    if (!cfg.pid_file.empty()) {
        if (auto r = write_pid_file(cfg.pid_file); !r) {
            die_line(r.error().what);
            remove_unix_socket_files(*listeners);
            return kExitSystem;
        }
    }

    int code;
    {
        Supervisor supervisor(cfg, *creds, *listeners, std::move(notify.value()), std::move(systemd));
        auto result = supervisor.run();
        if (!result) die_line(result.error().what);
        code = result ? *result : kExitSystem;
    }
    remove_unix_socket_files(*listeners);
    if (!cfg.pid_file.empty()) remove_pid_file(cfg.pid_file);
    return code;
}
