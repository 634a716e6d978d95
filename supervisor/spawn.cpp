// fork/exec of workers. Everything between fork() and exec() is async-signal-safe:
// argv, envp and the fd plan are built before fork(), the child only makes syscalls.
#include "supervisor/spawn.h"

#include <dirent.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "supervisor/command.h"
#include "supervisor/unique_fd.h"

namespace sv {

namespace {

// Writes the decimal pid after "LISTEN_PID=" into buf (sized by the caller). Async-signal-safe.
void write_pid(char* dst, pid_t pid) {
    char digits[16];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + pid % 10);
        pid /= 10;
    } while (pid > 0 && n < 15);
    while (n > 0) *dst++ = digits[--n];
    *dst = '\0';
}

// What the child was doing when it failed, sent back with errno.
enum ChildStep : int { kStepSetup, kStepCgroup, kStepChdir, kStepGroups, kStepGid, kStepUid, kStepDeathSignal, kStepStdio, kStepExec };

struct ChildFailure {
    int step;
    int err;
};

[[noreturn]] void child_fail(int err_fd, int step, int err) {
    ChildFailure f{step, err};
    ssize_t r;
    do {
        r = ::write(err_fd, &f, sizeof f);
    } while (r < 0 && errno == EINTR);
    ::_exit(127);
}

std::string describe_failure(const ChildFailure& f, const std::string& path, const SpawnRequest& req) {
    std::string why = std::strerror(f.err);
    switch (f.step) {
    case kStepCgroup: return "cannot move the worker into its cgroup: " + why;
    case kStepChdir: return "cannot change directory to '" + req.chdir + "' (--chdir): " + why;
    case kStepGroups: return "cannot set supplementary groups for --user: " + why;
    case kStepGid: return "cannot set gid " + std::to_string(req.creds.gid) + ": " + why;
    case kStepUid: return "cannot set uid " + std::to_string(req.creds.uid) + ": " + why;
    case kStepDeathSignal: return "cannot set the parent-death signal: " + why;
    case kStepStdio: return "cannot connect the worker's output: " + why;
    case kStepExec: return "cannot execute '" + path + "': " + why;
    default: return "cannot prepare the worker: " + why;
    }
}

// In the child: listeners onto 3.., nothing else open past them but the error pipe
// (close-on-exec), signals reset, own process group, death signal armed.
// Everything the child needs, prepared before fork().
struct ChildPlan {
    const char* path;
    char* const* argv;
    char* const* envp;
    char* listen_pid_slot;
    const int* fds;
    int nfds;
    int pdeath_signal;
    pid_t parent;
    const char* chdir;  // nullptr: stay
    const Credentials* creds;
    const gid_t* groups;
    size_t ngroups;
    int stdout_fd, stderr_fd;
    int cgroup_procs_fd;
};

// Drops to --user/--group: supplementary groups, then gid, then uid (the order that
// still has the privilege for each step).
void child_drop_privileges(const ChildPlan& p, int err_fd) {
    if (p.creds->gid >= 0) {
        if (::setgroups(p.ngroups, p.groups) < 0) child_fail(err_fd, kStepGroups, errno);
        if (::setresgid(p.creds->gid, p.creds->gid, p.creds->gid) < 0) child_fail(err_fd, kStepGid, errno);
    }
    if (p.creds->uid >= 0 && ::setresuid(p.creds->uid, p.creds->uid, p.creds->uid) < 0)
        child_fail(err_fd, kStepUid, errno);
}

[[noreturn]] void child_exec(const ChildPlan& p, int err_fd) {
    const int first = 3, end = first + p.nfds;
    // Into the worker's cgroup before anything else, so nothing this process starts is
    // ever outside it ("0": the writer itself, cgroup-v2.rst).
    if (p.cgroup_procs_fd >= 0 && ::write(p.cgroup_procs_fd, "0", 1) != 1) child_fail(err_fd, kStepCgroup, errno);
    ::setpgid(0, 0);
    // Dispositions first, then the mask: a signal pending now must not run the
    // supervisor's handler (it writes into libuv's pipe, which the child shares).
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    if (p.stdout_fd >= 0 && ::dup2(p.stdout_fd, 1) < 0) child_fail(err_fd, kStepStdio, errno);
    if (p.stderr_fd >= 0 && ::dup2(p.stderr_fd, 2) < 0) child_fail(err_fd, kStepStdio, errno);
    // chdir before dropping privileges would let root enter what the user cannot; after
    // is what the user would get. Resolving the path here, at every spawn, follows a
    // release symlink that was switched since the last one.
    child_drop_privileges(p, err_fd);
    if (p.chdir != nullptr && ::chdir(p.chdir) < 0) child_fail(err_fd, kStepChdir, errno);
    // After the credentials change: setuid clears the parent-death signal (prctl(2)).
    if (::prctl(PR_SET_PDEATHSIG, p.pdeath_signal) < 0) child_fail(err_fd, kStepDeathSignal, errno);
    if (::getppid() != p.parent) ::_exit(1);  // the supervisor died before the death signal was armed
    const int* fds = p.fds;
    const int nfds = p.nfds;

    // The error pipe must not sit inside the target range, nor may a listener that
    // another one would overwrite (libuv's "first duplicate low numbered fds" step).
    if (err_fd < end) {
        int moved = ::fcntl(err_fd, F_DUPFD_CLOEXEC, end);
        if (moved < 0) child_fail(err_fd, kStepSetup, errno);
        err_fd = moved;
    }
    int src[64];
    for (int i = 0; i < nfds; i++) {
        src[i] = fds[i];
        if (src[i] >= first && src[i] < end && src[i] != first + i) {
            src[i] = ::fcntl(src[i], F_DUPFD_CLOEXEC, end);
            if (src[i] < 0) child_fail(err_fd, kStepSetup, errno);
        }
    }
    for (int i = 0; i < nfds; i++) {
        if (src[i] == first + i) {
            if (::fcntl(src[i], F_SETFD, 0) < 0) child_fail(err_fd, kStepSetup, errno);  // dup2 onto itself keeps CLOEXEC
        } else if (::dup2(src[i], first + i) < 0) {
            child_fail(err_fd, kStepSetup, errno);
        }
    }
    // Everything past the listeners is close-on-exec (or closed by exec): no leaks.
    if (::syscall(SYS_close_range, end, ~0U, CLOSE_RANGE_CLOEXEC) < 0 && errno != ENOSYS && errno != EINVAL)
        child_fail(err_fd, kStepSetup, errno);

    write_pid(p.listen_pid_slot, ::getpid());
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(p.path, p.argv, p.envp);
    child_fail(err_fd, kStepExec, errno);
}

} // namespace

Result<int> spawn_worker(const SpawnRequest& req) {
    if (req.argv.empty()) return Error{EINVAL, "cannot execute an empty command"};
    if (req.listen_fds.size() > 64) return Error{EMFILE, "too many listeners (at most 64)"};
    const char* path_env = std::getenv("PATH");
    auto path = resolve_command(req.argv[0], path_env ? path_env : "/usr/local/bin:/usr/bin:/bin", req.chdir);
    if (!path) return path.error();
    std::vector<gid_t> groups(req.creds.groups.begin(), req.creds.groups.end());

    // Everything the child touches is built here, before fork().
    std::vector<std::string> env = req.env;
    char no_slot[16];  // written by the child, read by nobody, when there is no LISTEN_PID
    if (req.listen_pid_index != kNoListenPid) env.at(req.listen_pid_index).resize(std::strlen("LISTEN_PID=") + 16, '\0');
    std::vector<char*> argv, envp;
    for (const auto& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char* pid_slot = req.listen_pid_index != kNoListenPid ? env[req.listen_pid_index].data() + std::strlen("LISTEN_PID=")
                                                          : no_slot;

    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) < 0) return Error{errno, std::string("cannot create a pipe: ") + std::strerror(errno)};
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);

    // Block every signal across fork so the child cannot run our handlers before it
    // resets them; the parent restores its mask right after.
    sigset_t all, old;
    sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, &old);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
        ChildPlan plan{path->c_str(), argv.data(), envp.data(), pid_slot, req.listen_fds.data(),
                       static_cast<int>(req.listen_fds.size()), req.pdeath_signal, parent,
                       req.chdir.empty() ? nullptr : req.chdir.c_str(), &req.creds, groups.data(), groups.size(),
                       req.stdout_fd, req.stderr_fd, req.cgroup_procs_fd};
        child_exec(plan, wr.get());
    }
    int fork_errno = errno;
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) return Error{fork_errno, std::string("cannot fork: ") + std::strerror(fork_errno)};

    // Also set the group from the parent, so it is in place whichever runs first.
    // EACCES means the child already exec'd (and set it itself).
    ::setpgid(pid, pid);
    wr.reset();
    ChildFailure failure{};
    ssize_t n;
    do {
        n = ::read(rd.get(), &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return static_cast<int>(pid);  // EOF: exec closed the pipe, it worked

    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (n != sizeof failure) return Error{EIO, "cannot execute '" + req.argv[0] + "': the child died before exec"};
    // Only an exec failure keeps its errno (126/127 semantics); code 0 marks a setup failure.
    return Error{failure.step == kStepExec ? failure.err : 0, describe_failure(failure, *path, req)};
}

void cloexec_inherited_fds(const std::vector<int>& keep) {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return;  // no /proc: workers still get close_range(CLOEXEC) in the child
    int self = ::dirfd(dir);
    while (dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || fd <= 2 || fd == self) continue;
        bool kept = false;
        for (int k : keep) kept = kept || k == fd;
        if (kept) continue;
        int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
        if (flags >= 0) ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
    }
    ::closedir(dir);
}

} // namespace sv
