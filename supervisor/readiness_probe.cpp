// Readiness probe: reads /proc and the blocked threads' syscall arguments of a starting
// generation to see whether it waits for connections on an inherited listener.
#include "supervisor/readiness_probe.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>

#include "supervisor/proc_io.h"
#include "supervisor/proc_parse.h"
#include "supervisor/unique_fd.h"

namespace sv {
namespace {

// Bounds on what one blocked call makes us read: larger sets are cut (their first
// entries are still checked); servers put their listeners first.
constexpr long kMaxPollEntries = 4096;
constexpr long kMaxSelectFds = 65536;

// The device of sockfs: every socket's st_dev, what an epoll watch's sdev must name for
// its inode to be a socket's (inodes of other file systems may reuse the number).
dev_t sockfs_dev() {
    static const dev_t dev = [] {
        UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        struct stat st {};
        return s.valid() && ::fstat(s.get(), &st) == 0 ? st.st_dev : dev_t(0);
    }();
    return dev;
}

// What one thread was doing: its scheduler counters (schedstat: run time, wait time,
// times run) and its system call line.
struct ThreadSnapshot {
    int tid = 0;
    std::string schedstat;
    std::string syscall;
    bool operator==(const ThreadSnapshot&) const = default;
};

// Every thread of a process. Two equal snapshots in which no thread was running mean
// that no thread ran in between: a thread that runs adds to its run time when it is
// switched out, and one running now reads "running". Then nothing the probe looks at
// (fd table, epoll sets, blocked calls, their argument memory) can have changed.
struct ProcessSnapshot {
    std::vector<ThreadSnapshot> threads;
    bool settled = false;  // every thread read, none running
    bool operator==(const ProcessSnapshot&) const = default;
};

ProcessSnapshot snapshot_threads(int dir) {
    ProcessSnapshot snap;
    snap.settled = true;
    char path[64];
    for (int tid : list_numbers(dir, "task")) {
        ThreadSnapshot t;
        t.tid = tid;
        std::snprintf(path, sizeof path, "task/%d/schedstat", tid);
        auto stat = read_text(dir, path);
        std::snprintf(path, sizeof path, "task/%d/syscall", tid);
        auto call = read_text(dir, path);
        if (!stat || !call || call->rfind("running", 0) == 0) snap.settled = false;
        t.schedstat = stat.value_or("");
        t.syscall = call.value_or("");
        snap.threads.push_back(std::move(t));
    }
    snap.settled = snap.settled && !snap.threads.empty();
    return snap;
}

// One process during one probe call: its fd table read once, shared by its threads,
// whose blocked calls come from the snapshot.
class ProcessProbe {
public:
    ProcessProbe(int pid, int dir, const std::set<ino_t>& inodes) : pid_(pid), dir_(dir), inodes_(inodes) {}

    ProbeResult probe(const ProcessSnapshot& snap) {
        if (!scan_fds() || listener_fds_.empty()) return std::nullopt;
        const WaitSyscalls* table = host_wait_syscalls();
        if (!table) return std::nullopt;
        for (const ThreadSnapshot& t : snap.threads)
            if (auto how = thread_waits(*table, t.syscall)) return Accepting{pid_, t.tid, *how};
        for (int epfd : epoll_fds_)
            if (epoll_watches_listener(epfd)) return Accepting{pid_, 0, AcceptVia::Epoll};
        return std::nullopt;
    }

private:
    // False when the fd table cannot be read (gone, or not ours to read).
    bool scan_fds() {
        char path[32];
        int fd_dir = ::openat(dir_, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd_dir < 0) return false;
        UniqueFd guard(fd_dir);
        for (int fd : list_numbers(fd_dir, ".")) {
            std::snprintf(path, sizeof path, "%d", fd);
            auto link = read_link(fd_dir, path);
            if (!link) continue;  // closed meanwhile
            if (auto ino = parse_socket_link(*link); ino && inodes_.count(static_cast<ino_t>(*ino)))
                listener_fds_.insert(fd);
            else if (is_eventpoll_link(*link))
                epoll_fds_.push_back(fd);
        }
        return true;
    }

    std::optional<AcceptVia> thread_waits(const WaitSyscalls& table, const std::string& text) {
        auto call = parse_task_syscall(text);
        auto wait = call ? classify_wait(table, *call) : std::nullopt;
        if (!wait) return std::nullopt;
        switch (wait->kind) {
        case WaitCall::Kind::Accept:
            if (listener_fds_.count(wait->fd)) return AcceptVia::Accept;
            return std::nullopt;
        case WaitCall::Kind::Epoll:
            if (epoll_watches_listener(wait->fd)) return AcceptVia::Epoll;
            return std::nullopt;
        case WaitCall::Kind::Poll:
            if (poll_set_has_listener(*wait)) return AcceptVia::Poll;
            return std::nullopt;
        case WaitCall::Kind::Select:
            if (select_set_has_listener(*wait)) return AcceptVia::Select;
            return std::nullopt;
        }
        return std::nullopt;
    }

    bool epoll_watches_listener(int epfd) {
        if (std::find(epoll_fds_.begin(), epoll_fds_.end(), epfd) == epoll_fds_.end()) return false;
        if (auto known = epoll_verdicts_.find(epfd); known != epoll_verdicts_.end()) return known->second;
        char path[32];
        std::snprintf(path, sizeof path, "fdinfo/%d", epfd);
        auto text = read_text(dir_, path);
        auto watches = text ? parse_epoll_fdinfo(*text) : std::nullopt;
        bool found = false;
        for (const EpollWatch& w : watches ? *watches : std::vector<EpollWatch>{})
            found = found || ((w.events & EPOLLIN) && inodes_.count(static_cast<ino_t>(w.ino)) &&
                              kernel_dev_to_dev(w.sdev) == sockfs_dev());
        epoll_verdicts_[epfd] = found;
        return found;
    }

    bool poll_set_has_listener(const WaitCall& wait) {
        long n = std::min(wait.count, kMaxPollEntries);
        if (wait.addr == 0 || n <= 0) return false;
        auto bytes = read_memory(pid_, wait.addr, static_cast<size_t>(n) * sizeof(struct pollfd));
        for (const PollEntry& e : parse_pollfds(bytes))
            if (polls_for_input(e) && listener_fds_.count(e.fd)) return true;
        return false;
    }

    bool select_set_has_listener(const WaitCall& wait) {
        long nfds = std::min(wait.count, kMaxSelectFds);
        if (wait.addr == 0 || nfds <= 0) return false;
        auto bytes = read_memory(pid_, wait.addr, fd_set_bytes(nfds));
        for (int fd : parse_fd_set(bytes, nfds))
            if (listener_fds_.count(fd)) return true;
        return false;
    }

    int pid_;
    int dir_;  // /proc/PID, borrowed
    const std::set<ino_t>& inodes_;
    std::set<int> listener_fds_;
    std::vector<int> epoll_fds_;
    std::map<int, bool> epoll_verdicts_;
};


bool have_cap_sys_ptrace() {
    auto status = read_text(AT_FDCWD, "/proc/self/status");
    auto caps = status ? status_field(*status, "CapEff:") : std::nullopt;
    auto set = caps ? parse_status_caps(*caps) : std::nullopt;
    return set && (*set >> CAP_SYS_PTRACE & 1);
}

// Why ptrace access to the process of `proc` (/proc/PID) is refused, as far as we can tell.
std::string why_denied(int proc) {
    auto yama = read_text(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope");
    int scope = yama && !yama->empty() ? (*yama)[0] - '0' : 0;
    const bool cap = have_cap_sys_ptrace();
    if (scope == 3) return "kernel.yama.ptrace_scope=3 forbids it to every process";
    if (scope == 2 && !cap) return "kernel.yama.ptrace_scope=2 allows it only with CAP_SYS_PTRACE";
    auto status = read_text(proc, "status");
    auto uid_text = status ? status_field(*status, "Uid:") : std::nullopt;
    auto uid = uid_text ? parse_status_uid(*uid_text) : std::nullopt;
    if (uid && *uid != ::getuid() && !cap)
        return "it runs as uid=" + std::to_string(*uid) + " and we as uid=" + std::to_string(::getuid()) +
               " without CAP_SYS_PTRACE";
    if (scope == 1 && !cap) return "kernel.yama.ptrace_scope=1 allows it only to an ancestor of the worker";
    return "the worker is not dumpable (a set-uid program, or PR_SET_DUMPABLE 0) or a security module denies it";
}

} // namespace

std::string_view accept_via_name(AcceptVia how) {
    switch (how) {
    case AcceptVia::Accept: return "accept";
    case AcceptVia::Epoll: return "epoll";
    case AcceptVia::Poll: return "poll";
    case AcceptVia::Select: return "select";
    }
    return "?";
}

struct AcceptProbe::Seen {
    UniqueFd dir;  // /proc/PID: once the process is gone, a recycled pid is another directory
    ProcessSnapshot snapshot;
    ProbeResult verdict;
};

AcceptProbe::AcceptProbe() = default;
AcceptProbe::~AcceptProbe() = default;
AcceptProbe::AcceptProbe(AcceptProbe&&) noexcept = default;
AcceptProbe& AcceptProbe::operator=(AcceptProbe&&) noexcept = default;

ProbeResult AcceptProbe::probe(const std::vector<int>& pids, const std::set<ino_t>& listener_inodes) {
    if (listener_inodes != inodes_) {
        seen_.clear();
        inodes_ = listener_inodes;
    }
    std::erase_if(seen_, [&](const auto& e) { return std::find(pids.begin(), pids.end(), e.first) == pids.end(); });
    if (inodes_.empty()) return std::nullopt;
    for (int pid : pids)
        if (auto found = probe_process(pid)) return found;
    return std::nullopt;
}

ProbeResult AcceptProbe::probe_process(int pid) {
    auto it = seen_.find(pid);
    if (it == seen_.end()) it = seen_.emplace(pid, std::make_unique<Seen>()).first;
    Seen& s = *it->second;
    ProcessSnapshot snap = s.dir.valid() ? snapshot_threads(s.dir.get()) : ProcessSnapshot{};
    if (snap.threads.empty()) {  // first look, or the process we knew is gone
        s = Seen{open_proc_dir(pid), {}, {}};
        if (s.dir.valid()) snap = snapshot_threads(s.dir.get());
    }
    if (snap.threads.empty()) {
        seen_.erase(it);
        return std::nullopt;
    }
    if (snap.settled && snap == s.snapshot) {
        stats_.reused++;
        return s.verdict;
    }
    stats_.read++;
    s.verdict = ProcessProbe(pid, s.dir.get(), inodes_).probe(snap);
    s.snapshot = std::move(snap);
    return s.verdict;
}

ProbeResult probe_accepting(const std::vector<int>& pids, const std::set<ino_t>& listener_inodes) {
    return AcceptProbe().probe(pids, listener_inodes);
}

std::vector<int> list_generation_pids(int worker_pid) {
    UniqueFd proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!proc.valid()) return {};
    std::map<int, ProcStat> live;
    char path[32];
    for (int pid : list_numbers(proc.get(), ".")) {
        std::snprintf(path, sizeof path, "%d/stat", pid);
        auto text = read_text(proc.get(), path);
        auto st = text ? parse_proc_stat(*text) : std::nullopt;
        if (st && st->state != 'Z' && st->state != 'X') live.emplace(pid, std::move(*st));
    }
    auto worker = live.find(worker_pid);
    if (worker == live.end()) return {};
    const int pgrp = worker->second.pgrp;
    std::set<int> members{worker_pid};
    // Descendants by ppid: a parent may have a larger pid than its child (pid wrap), so
    // repeat until nothing new joins.
    for (bool grew = true; grew;) {
        grew = false;
        for (const auto& [pid, st] : live)
            if (!members.count(pid) && (st.pgrp == pgrp || members.count(st.ppid))) {
                members.insert(pid);
                grew = true;
            }
    }
    std::vector<int> out{worker_pid};
    for (int pid : members)
        if (pid != worker_pid) out.push_back(pid);
    return out;
}

Result<Ok> can_inspect(int pid) {
    struct statfs fs {};
    if (::statfs("/proc", &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC)
        return Error{ENOENT, "/proc is not mounted: --ready accepting reads /proc/PID"};
    if (!host_wait_syscalls())
        return Error{ENOSYS, "--ready accepting knows the system calls of x86_64 and aarch64 only"};
    const std::string dir = "/proc/" + std::to_string(pid);
    UniqueFd proc = open_proc_dir(pid);
    if (!proc.valid()) return Error{ESRCH, "cannot inspect pid=" + std::to_string(pid) + ": no such process"};
    auto text = read_text(proc.get(), "syscall");
    if (!text) {
        int err = errno;
        if (err == ENOENT) return Error{err, "cannot inspect pid=" + std::to_string(pid) + ": this kernel has no " + dir + "/syscall"};
        if (err == ESRCH) return Error{err, "cannot inspect pid=" + std::to_string(pid) + ": no such process"};
        return Error{err, "cannot read " + dir + "/syscall: " + why_denied(proc.get())};
    }
    // The stack pointer of a blocked thread is mapped memory; the start of the stack otherwise.
    auto call = parse_task_syscall(*text);
    auto stat_text = read_text(proc.get(), "stat");
    auto st = stat_text ? parse_proc_stat(*stat_text) : std::nullopt;
    uint64_t addr = call && call->state != TaskSyscall::State::Running ? call->sp : st ? st->start_stack : 0;
    char byte;
    struct iovec local { &byte, 1 };
    struct iovec remote { reinterpret_cast<void*>(addr), 1 };
    // The permission check comes before the copy: EFAULT means we were allowed.
    if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) < 0 && errno != EFAULT) {
        int err = errno;
        if (err == ENOSYS) return Error{err, "this kernel has no process_vm_readv (CONFIG_CROSS_MEMORY_ATTACH)"};
        if (err == ESRCH) return Error{err, "cannot inspect pid=" + std::to_string(pid) + ": no such process"};
        return Error{err, "cannot read the memory of pid=" + std::to_string(pid) + ": " + why_denied(proc.get())};
    }
    return Ok{};
}

Result<std::set<ino_t>> socket_inodes(const std::vector<int>& fds) {
    std::set<ino_t> out;
    for (int fd : fds) {
        struct stat st {};
        if (::fstat(fd, &st) != 0) return Error{errno, "cannot stat listener fd " + std::to_string(fd)};
        if (!S_ISSOCK(st.st_mode)) return Error{ENOTSOCK, "listener fd " + std::to_string(fd) + " is not a socket"};
        out.insert(st.st_ino);
    }
    return out;
}

} // namespace sv
