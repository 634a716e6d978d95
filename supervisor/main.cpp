// supervisor: hold the listening sockets, run the worker, upgrade it with zero downtime.
// main reads like a table of contents: parse, prepare, bind, run, clean up.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "supervisor/cli.h"
#include "supervisor/listeners.h"
#include "supervisor/log.h"
#include "supervisor/notify_socket.h"
#include "supervisor/pid_file.h"
#include "supervisor/spawn.h"
#include "supervisor/supervisor.h"
#include "supervisor/systemd.h"

using namespace sv;

namespace {

int exit_code_for_exec_error(int err) { return err == ENOENT ? kExitNotFound : kExitNotExecutable; }

} // namespace

int main(int argc, char** argv) {
    auto outcome = parse_command_line(std::vector<std::string>(argv, argv + argc));
    if (auto* done = std::get_if<CliExit>(&outcome)) {
        std::fputs(done->text.c_str(), done->code == 0 ? stdout : stderr);
        if (!done->text.empty() && done->text.back() != '\n') std::fputc('\n', done->code == 0 ? stdout : stderr);
        return done->code;
    }
    Config cfg = std::get<Config>(std::move(outcome));
    init_logging(cfg.log_level);
    SystemdNotifier systemd = SystemdNotifier::from_environment();

    // Fail before binding anything when the command cannot run at all.
    const char* path = std::getenv("PATH");
    if (auto cmd = resolve_command(cfg.command[0], path ? path : "/usr/local/bin:/usr/bin:/bin"); !cmd) {
        die_line(cmd.error().what);
        return exit_code_for_exec_error(cmd.error().code);
    }
    cloexec_inherited_fds({});

    auto listeners = bind_listeners(cfg.listeners, cfg.backlog);
    if (!listeners) {
        die_line(listeners.error().what);
        return kExitSystem;
    }
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
        Supervisor supervisor(cfg, *listeners, std::move(notify.value()), std::move(systemd));
        auto result = supervisor.run();
        if (!result) die_line(result.error().what);
        code = result ? *result : kExitSystem;
    }
    remove_unix_socket_files(*listeners);
    if (!cfg.pid_file.empty()) remove_pid_file(cfg.pid_file);
    return code;
}
