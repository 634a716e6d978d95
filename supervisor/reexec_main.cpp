// `--check-state FD` and `--resume FD`: the new image's side of `ctl reexec`. The state
// is parsed strictly (resume_state.h) and then trusted no further than the kernel
// confirms: every fd is open and of the kind it claims, every worker is our child.
#include "supervisor/reexec_main.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "supervisor/adopt_setup.h"
#include "supervisor/cli.h"
#include "supervisor/credentials.h"
#include "supervisor/log.h"
#include "supervisor/pid_file.h"
#include "supervisor/proc_parse.h"
#include "supervisor/supervisor.h"
#include "supervisor/systemd.h"

extern char** environ;

namespace sv {

namespace {

int say(const std::string& what) {
    std::fprintf(stderr, "supervisor: %s\n", what.c_str());
    return kExitSystem;
}

Result<std::string> read_state_fd(const std::string& fd_text) {
    char* end = nullptr;
    long fd = std::strtol(fd_text.c_str(), &end, 10);
    if (fd_text.empty() || *end != '\0' || fd < 0 || fd > (1 << 20)) return Error{EINVAL, "resume state fd '" + fd_text + "' is not an fd number"};
    std::string text;
    char buf[65536];
    for (off_t off = 0;;) {
        ssize_t n = ::pread(static_cast<int>(fd), buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error{errno, "cannot read the resume state from fd " + fd_text + ": " + std::strerror(errno)};
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        off += n;
        if (text.size() > kResumeStateMaxBytes) return Error{EFBIG, "resume state: larger than 16 MiB"};
    }
    ::close(static_cast<int>(fd));
    return text;
}

// The state, and the configuration its argv gives: both must be acceptable.
Result<Config> config_of(const ResumeState& st) {
    auto outcome = parse_command_line(st.argv);
    if (auto* done = std::get_if<CliExit>(&outcome))
        return Error{EINVAL, "resume state: its command line does not parse here: " + done->text.substr(0, done->text.find('\n'))};
    Config cfg = std::get<Config>(std::move(outcome));
    if (static_cast<size_t>(cfg.workers) != st.machine.slots.size())
        return Error{EINVAL, "resume state: " + std::to_string(st.machine.slots.size()) + " slots, but its command line says --workers " +
                                 std::to_string(cfg.workers)};
    return cfg;
}

// --adopt-bind: this image's own preload, found next to it as at a start (main.cpp), so
// the workers it spawns adopt the listeners too; a binary installed without it is refused
// at the check, before anything changes.
Result<Ok> find_preload(Config& cfg) {
    if (cfg.adopt_bind == AdoptBind::Off) return Ok{};
    auto lib = locate_adopt_library();
    if (!lib) return Error{lib.error().code, "--adopt-bind: " + lib.error().what};
    cfg.adopt_library = *lib;
    return Ok{};
}

Result<ResumeState> load(const std::string& fd_text) {
    auto text = read_state_fd(fd_text);
    if (!text) return text.error();
    return parse_resume_state(*text);
}

std::string socket_problem(int fd, int type, bool listening, const char* what) {
    struct stat sb{};
    if (::fstat(fd, &sb) < 0) return std::string(what) + " fd " + std::to_string(fd) + " is not open";
    if (!S_ISSOCK(sb.st_mode)) return std::string(what) + " fd " + std::to_string(fd) + " is not a socket";
    int v = 0;
    socklen_t len = sizeof v;
    if (type != 0 && (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != type))
        return std::string(what) + " fd " + std::to_string(fd) + " is not of the expected socket type";
    len = sizeof v;
    if (listening && (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || v != 1))
        return std::string(what) + " fd " + std::to_string(fd) + " is not a listening socket";
    return "";
}

// Every fd open and of its kind; every live worker our own child.
std::string handles_problem(const ResumeState& st) {
    for (const auto& l : st.listeners)
        if (auto p = socket_problem(l.fd, 0, true, "listener"); !p.empty()) return p;
    if (auto p = socket_problem(st.notify_fd, SOCK_DGRAM, false, "notify socket"); !p.empty()) return p;
    if (st.control_fd >= 0)
        if (auto p = socket_problem(st.control_fd, SOCK_STREAM, true, "control socket"); !p.empty()) return p;
    if (st.client_fd >= 0)
        if (auto p = socket_problem(st.client_fd, SOCK_STREAM, false, "control client"); !p.empty()) return p;
    struct stat sb{};
    if (st.pid_file_fd >= 0 && (::fstat(st.pid_file_fd, &sb) < 0 || !S_ISREG(sb.st_mode)))
        return "pid file fd " + std::to_string(st.pid_file_fd) + " is not an open file";
    for (const auto& w : st.machine.workers) {
        char buf[1024];
        int fd = ::open(("/proc/" + std::to_string(w.pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
        if (fd >= 0) ::close(fd);
        auto ps = n > 0 ? parse_proc_stat(std::string(buf, static_cast<size_t>(n))) : std::nullopt;
        if (!ps || ps->ppid != ::getpid()) return "worker pid " + std::to_string(w.pid) + " is not our child";
    }
    return "";
}

void keep_closed_on_exec(const ResumeState& st) {
    std::vector<int> fds{st.notify_fd, st.control_fd, st.client_fd, st.pid_file_fd, st.http_fd};
    for (const auto& l : st.listeners) fds.push_back(l.fd);
    for (int fd : fds)
        if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

std::vector<Listener> listeners_of(const ResumeState& st, const Config& cfg) {
    std::vector<Listener> out;
    for (const auto& r : st.listeners) {
        Listener l;
        l.spec.name = r.name;
        l.spec.text = r.address;
        for (const auto& spec : cfg.listeners)
            if (spec.name == r.name) l.spec = spec;
        l.fd.reset(r.fd);
        l.address = r.address;
        l.unix_inode = static_cast<ino_t>(r.unix_inode);
        l.adopted = r.adopted;
        out.push_back(std::move(l));
    }
    return out;
}

} // namespace

std::vector<std::string> environment_now() {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; e++) env.emplace_back(*e);
    return env;
}

// The path we were started from, as a path: a later reexec runs whatever is there then.
std::string own_exe_path() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    std::string path = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    const std::string deleted = " (deleted)";
    if (path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
        path.resize(path.size() - deleted.size());
    return path;
}

int run_check_state(const std::string& fd_text) {
    auto st = load(fd_text);
    if (!st) return say(st.error().what);
    auto cfg = config_of(*st);
    if (!cfg) return say(cfg.error().what);
    if (auto p = find_preload(*cfg); !p) return say(p.error().what);
    if (auto c = resolve_credentials(cfg->user, cfg->group); !c) return say(c.error().what);
    if (auto m = UpgradeMachine::restore(MachineSettings{.workers = cfg->workers}, st->machine); !m)
        return say("resume state: " + m.error().what);
    return kExitOk;
}

int run_resume(const std::string& fd_text) {
    auto st = load(fd_text);
    if (!st) return say(st.error().what);
    auto cfg = config_of(*st);
    if (!cfg) return say(cfg.error().what);
    if (auto p = find_preload(*cfg); !p) return say(p.error().what);
    init_logging(cfg->log_level);
    for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) ::unsetenv(v);
    SystemdNotifier systemd = SystemdNotifier::from_environment();
    if (cfg->control_path.empty())
        if (const char* rt = std::getenv("RUNTIME_DIRECTORY"); rt != nullptr && *rt != '\0')
            cfg->control_path = std::string(rt) + "/supervisor.sock";
    if (auto p = handles_problem(*st); !p.empty()) return say("resume state: " + p), kExitSystem;
    keep_closed_on_exec(*st);
    auto creds = resolve_credentials(cfg->user, cfg->group);
    if (!creds) return say(creds.error().what);
    std::vector<Listener> listeners = listeners_of(*st, *cfg);
    PidFile pid_file = st->pid_file_fd >= 0 ? PidFile::adopt(st->pid_file_fd, st->pid_file_path) : PidFile();
    auto notify = NotifySocket::adopt(st->notify_fd, st->notify_name, st->notify_dir);
    Supervisor::Launch launch{own_exe_path(), st->argv, st->env, st->pid_file_fd, st->pid_file_path};
    int code;
    {
        Supervisor supervisor(*cfg, std::move(creds.value()), listeners, std::move(notify), std::move(systemd));
        supervisor.set_launch(std::move(launch));
        supervisor.resume_from(std::move(st.value()));
        auto result = supervisor.run();
        if (!result) die_line(result.error().what);
        code = result ? *result : kExitSystem;
    }
    remove_unix_socket_files(listeners);
    pid_file.remove();
    return code;
}

} // namespace sv
