// `ctl reexec`: the supervisor replaces its own image, keeping its pid, its listeners, its
// notify and control sockets, the waiting client and every worker. In order: refuse what
// cannot be carried (an upgrade, a pre-check or a stop in flight); write the state to a
// memfd; have the new binary check it (`PATH --check-state FD`, bounded); then block every
// signal (pending ones survive execve and are taken in by the new image), clear CLOEXEC on
// exactly the fds to keep and execve `PATH --resume FD`. A failed execve changes nothing.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "supervisor/log.h"
#include "supervisor/supervisor.h"

namespace sv {

namespace {

constexpr Millis kDefaultCheckTimeout{10'000};
constexpr size_t kMaxCheckOutput = 4096;

Result<UniqueFd> state_memfd(const std::string& text) {
    UniqueFd fd(::memfd_create("supervisor-resume-state", MFD_CLOEXEC));
    if (!fd.valid()) return Error{errno, std::string("cannot create a memfd: ") + std::strerror(errno)};
    for (size_t off = 0; off < text.size();) {
        ssize_t n = ::pwrite(fd.get(), text.data() + off, text.size() - off, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Error{errno, std::string("cannot write the state: ") + std::strerror(errno)};
        off += static_cast<size_t>(n);
    }
    return fd;
}

int set_cloexec(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return -errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return ::fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

// The first line the check printed, trimmed, for the refusal.
std::string first_line(const std::string& out) {
    std::string line = out.substr(0, out.find('\n'));
    return line.empty() ? "no output" : line;
}

// Reads the child's output until EOF or the deadline; true on EOF.
bool read_until_eof(int fd, std::string* out, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(left));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) return false;
        char buf[1024];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return true;
        if (out->size() < kMaxCheckOutput) out->append(buf, static_cast<size_t>(n));
    }
}

// `binary --check-state FD` must exit 0 within `timeout`. The loop waits meanwhile (the
// check parses a small document: milliseconds); the bound is the timeout.
Result<Ok> check_new_binary(const std::string& binary, int memfd, Millis timeout, const std::vector<std::string>& env) {
    if (::access(binary.c_str(), X_OK) < 0)
        return Error{errno, "cannot execute " + binary + ": " + std::strerror(errno)};
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) < 0) return Error{errno, std::string("cannot create a pipe: ") + std::strerror(errno)};
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    std::string fd_text = std::to_string(memfd);
    std::vector<char*> argv{const_cast<char*>(binary.c_str()), const_cast<char*>("--check-state"), fd_text.data(), nullptr};
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return Error{errno, std::string("cannot fork: ") + std::strerror(errno)};
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::dup2(wr.get(), 1);
        ::dup2(wr.get(), 2);
        set_cloexec(memfd, false);
        ::execve(binary.c_str(), argv.data(), envp.data());
        ::_exit(127);
    }
    wr.reset();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string out;
    bool eof = read_until_eof(rd.get(), &out, deadline);
    int st = 0;
    if (!eof) ::kill(pid, SIGKILL);
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!eof) return Error{ETIMEDOUT, binary + " --check-state did not finish within " + format_duration(timeout)};
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Ok{};
    return Error{EINVAL, binary + " --check-state failed (" + describe_wait_status(st) + "): " + first_line(out)};
}

std::string resolve_binary(const std::string& asked, const std::string& started_as) {
    return asked.empty() ? started_as : asked;
}

} // namespace

// "" when the state can be carried now, else why not.
std::string Supervisor::reexec_refusal() const {
    if (auto why = machine_.not_exportable(); !why.empty()) return why;
    if (pre_check_) return "a pre-check is running; retry when it is decided";
    if (cfg_.log_workers) return "--log-workers: the workers' output pipes are not carried over (restart instead)";
    return "";
}

void Supervisor::reexec(uint64_t client, const ControlRequest& req) {
    auto t0 = std::chrono::steady_clock::now();
    take_in_pending_events();  // exits and datagrams already queued are decided first
    std::string binary = resolve_binary(req.binary, launch_.exe);
    auto refuse = [&](const std::string& why) {
        spdlog::warn("reexec refused binary={}: {}", binary, why);
        control_->reply(client, control_error("reexec refused: " + why));
    };
    if (auto why = reexec_refusal(); !why.empty()) return refuse(why);
    auto st = export_state(client);
    if (!st) return refuse(st.error().what);
    auto memfd = state_memfd(serialize_resume_state(*st));
    if (!memfd) return refuse(memfd.error().what);
    Millis timeout = req.timeout_ms > 0 ? Millis{req.timeout_ms} : kDefaultCheckTimeout;
    if (auto ok = check_new_binary(binary, memfd->get(), timeout, launch_.env); !ok) return refuse(ok.error().what);
    auto checked_ms = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("reexec pid={} binary={} state_bytes={} checked_after={}ms: executing", ::getpid(), binary,
                 serialize_resume_state(*st).size(), checked_ms);
    if (systemd_.enabled()) systemd_.send("RELOADING=1\nSTATUS=re-executing " + binary);
    auto r = exec_into(binary, *st, memfd->get());
    // Only a failed execve comes back: everything is as it was.
    spdlog::error("reexec failed binary={}: {}; still running the old image", binary, r.error().what);
    if (systemd_.enabled()) systemd_.send("READY=1\nSTATUS=reexec failed: " + r.error().what);
    control_->reply(client, control_error("reexec failed: " + r.error().what));
}

Result<Ok> Supervisor::exec_into(const std::string& binary, const ResumeState& st, int memfd) {
    std::vector<int> keep{st.notify_fd, memfd};
    for (const auto& l : st.listeners) keep.push_back(l.fd);
    for (int fd : {st.control_fd, st.client_fd, st.pid_file_fd, st.http_fd})
        if (fd >= 0) keep.push_back(fd);
    std::string fd_text = std::to_string(memfd);
    std::vector<char*> argv{const_cast<char*>(binary.c_str()), const_cast<char*>("--resume"), fd_text.data(), nullptr};
    std::vector<char*> envp;
    for (const auto& e : launch_.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    spdlog::default_logger()->flush();
    sigset_t all, old;
    sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, &old);
    for (int fd : keep) set_cloexec(fd, false);
    ::execve(binary.c_str(), argv.data(), envp.data());
    int err = errno;
    for (int fd : keep) set_cloexec(fd, true);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    return Error{err, "execve " + binary + ": " + std::strerror(err)};
}

} // namespace sv
