// Containment of workers: cgroup v2 when one is delegated to us, else process groups,
// /proc and pidfds (see containment.h). Every process is signalled through a pidfd or
// cgroup.kill; a pidfd pins its process, so a recycled pid is never hit.
#include "supervisor/containment.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>

#include "supervisor/log.h"
#include "supervisor/process_tree.h"

namespace sv {

namespace {

constexpr int kMaxStopRounds = 50;     // looks before giving up on a tree that keeps forking
constexpr int kExitWaitMs = 2000;      // kill_all: how long the killed may take to go
constexpr int kExitPollMs = 10;
constexpr int kMaxBaseTries = 100;     // supervisor.<pid>, supervisor.<pid>-1, …

int pidfd_open(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_signal(int fd, int sig) {
    return ::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) < 0 ? -errno : 0;
}

// A pidfd turns readable when its process has exited (zombies included).
bool pidfd_exited(int fd) {
    pollfd p{fd, POLLIN, 0};
    int rc;
    do {
        rc = ::poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

std::string read_text(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return "";
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

int write_text(const std::string& path, const char* text) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return -errno;
    return ::write(fd.get(), text, std::strlen(text)) < 0 ? -errno : 0;
}

std::optional<ProcStat> stat_of(int pid) { return parse_proc_stat(read_text("/proc/" + std::to_string(pid) + "/stat")); }

// A pidfd for the process `p` names in a snapshot, only if it is still that process:
// opened first, then checked (same start time), so the fd cannot pin a newcomer.
UniqueFd open_verified(const ProcStat& p) {
    UniqueFd fd(pidfd_open(p.pid));
    if (!fd.valid()) return fd;
    auto now = stat_of(p.pid);
    if (!now || now->start_time != p.start_time) fd.reset();
    return fd;
}

bool populated(const std::string& cgroup) {
    std::string events = read_text(cgroup + "/cgroup.events");
    return events.find("populated 1") != std::string::npos;
}

// Why our cgroup may not be used, or "" when it is delegated to us.
std::string delegation_problem(const std::string& path, const std::string& dir) {
    for (const char* attr : {"trusted.delegate", "user.delegate"})
        if (::getxattr(dir.c_str(), attr, nullptr, 0) >= 0) return "";
    if (path == "/" && ::access(dir.c_str(), W_OK) == 0) return "";  // the root of our cgroup namespace
    return "cgroup " + path + " is not delegated to us";
}

// The cgroup directory we may create worker cgroups in, or why not.
Result<std::string> delegated_cgroup() {
    auto path = parse_cgroup2_path(read_text("/proc/self/cgroup"));
    if (!path) return Error{0, "no cgroup v2 hierarchy"};
    auto mount = find_cgroup2_mount(read_text("/proc/self/mountinfo"));
    if (!mount) return Error{0, "cgroup2 is not mounted"};
    auto dir = cgroup_dir(*mount, *path);
    if (!dir) return Error{0, "our cgroup " + *path + " is outside the cgroup2 mount " + mount->mount_point};
    if (auto why = delegation_problem(*path, *dir); !why.empty()) return Error{0, why};
    return *dir;
}

// Our own directory below the delegated one: supervisor.<pid>, or supervisor.<pid>-N when
// that exists (our pid is not unique there: supervisors in other pid namespaces share it).
Result<std::string> make_base(const std::string& dir) {
    const std::string name = dir + "/supervisor." + std::to_string(::getpid());
    for (int n = 0; n < kMaxBaseTries; n++) {
        std::string base = n == 0 ? name : name + "-" + std::to_string(n);
        if (::mkdir(base.c_str(), 0755) < 0) {
            if (errno == EEXIST) continue;
            return Error{errno, "cannot create " + base + ": " + std::strerror(errno)};
        }
        if (::access((base + "/cgroup.kill").c_str(), F_OK) == 0) return base;
        ::rmdir(base.c_str());
        return Error{0, "the kernel has no cgroup.kill (5.14+)"};
    }
    return Error{EEXIST, "cannot create " + name + "-N: all taken"};
}

} // namespace

std::vector<ProcStat> scan_proc() {
    std::vector<ProcStat> out;
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (auto st = parse_proc_stat(read_text(std::string("/proc/") + e->d_name + "/stat"))) out.push_back(*st);
    }
    ::closedir(d);
    return out;
}

Containment Containment::create(ContainmentMode mode) {
    Containment c;
    if (mode == ContainmentMode::Off) {
        c.description_ = "process groups + pidfds (--cgroup off)";
        return c;
    }
    auto dir = delegated_cgroup();
    if (dir) dir = make_base(*dir);
    if (!dir) {
        c.description_ = "process groups + pidfds (no delegated cgroup: " + dir.error().what + ")";
        return c;
    }
    c.base_ = *dir;
    c.description_ = "cgroup v2 " + c.base_;
    return c;
}

Containment::~Containment() {
    remove_cgroups();
    if (!base_.empty()) ::rmdir(base_.c_str());  // fails while a worker cgroup is left: kill_all() is the clean way
}

Result<Placement> Containment::prepare(uint64_t gen, int slot) {
    Placement p;
    if (base_.empty()) return p;
    std::string dir = base_ + "/gen-" + std::to_string(gen) + ".slot-" + std::to_string(slot) + "." + std::to_string(++seq_);
    if (::mkdir(dir.c_str(), 0755) < 0) return Error{errno, "cannot create cgroup " + dir + ": " + std::strerror(errno)};
    p.procs.reset(::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!p.procs.valid()) {
        int err = errno;
        ::rmdir(dir.c_str());
        return Error{err, "cannot open " + dir + "/cgroup.procs: " + std::strerror(err)};
    }
    p.cgroup = dir;
    return p;
}

void Containment::adopt(int pid, Placement placement) {
    Tracked t;
    t.cgroup = std::move(placement.cgroup);
    // Our unreaped child: its pid cannot be reused before we reap it, so this is race-free.
    t.leader_fd.reset(pidfd_open(pid));
    if (!t.leader_fd.valid()) spdlog::error("cannot open a pidfd for pid={}: {}", pid, std::strerror(errno));
    if (auto st = stat_of(pid)) t.leader_start = st->start_time;
    workers_[pid] = std::move(t);
    refresh();
}

// The failed child may not have exited yet (it reported before _exit): retried while busy.
void Containment::abandon(Placement placement) {
    if (placement.cgroup.empty()) return;
    to_remove_.push_back(std::move(placement.cgroup));
    remove_cgroups();
}

std::vector<ProcStat> Containment::members(int pid, const Tracked& t, const std::vector<ProcStat>& table) const {
    TreeQuery q{pid, t.leader_start, t.reaped, {}};
    for (const auto& m : t.members) q.known.push_back({m.pid, m.start_time});
    return members_of(table, q);
}

// Holds every member not held yet; drops the members that have exited.
void Containment::observe(int pid, Tracked& t, const std::vector<ProcStat>& table) {
    std::erase_if(t.members, [](const Member& m) { return pidfd_exited(m.fd.get()); });
    for (const auto& p : members(pid, t, table)) {
        if (p.pid == pid && !t.reaped) continue;  // the leader has its own pidfd
        bool held = std::any_of(t.members.begin(), t.members.end(),
                                [&](const Member& m) { return m.pid == p.pid && m.start_time == p.start_time; });
        if (held) continue;
        if (UniqueFd fd = open_verified(p); fd.valid()) t.members.push_back(Member{p.pid, p.start_time, std::move(fd)});
    }
}

void Containment::refresh() {
    if (!to_remove_.empty()) remove_cgroups();
    bool any = std::any_of(workers_.begin(), workers_.end(), [](const auto& w) { return w.second.cgroup.empty(); });
    if (!any) return;
    auto table = scan_proc();
    for (auto& [pid, t] : workers_)
        if (t.cgroup.empty()) observe(pid, t, table);
}

int Containment::signal(int pid, int sig) {
    auto it = workers_.find(pid);
    if (it == workers_.end() || it->second.reaped) return -ESRCH;
    refresh();  // what it starts from now on may be left behind by it: look before it moves
    Tracked& t = it->second;
    if (!t.leader_fd.valid()) t.leader_fd.reset(pidfd_open(pid));  // still unreaped: still ours
    if (!t.leader_fd.valid()) return -errno;
    return pidfd_signal(t.leader_fd.get(), sig);
}

bool Containment::alive(int pid) {
    auto it = workers_.find(pid);
    if (it == workers_.end()) return false;
    Tracked& t = it->second;
    if (!t.reaped && t.leader_fd.valid() && !pidfd_exited(t.leader_fd.get())) return true;
    if (!t.cgroup.empty()) return populated(t.cgroup);
    observe(pid, t, scan_proc());
    return !t.members.empty();  // observe() dropped the exited ones
}

int Containment::kill(int pid) {
    auto it = workers_.find(pid);
    if (it == workers_.end()) return -ESRCH;
    Tracked& t = it->second;
    if (!t.cgroup.empty()) return write_text(t.cgroup + "/cgroup.kill", "1");
    std::vector<Member> held;
    if (!t.reaped && t.leader_fd.valid()) held.push_back(Member{pid, t.leader_start, std::move(t.leader_fd)});
    for (auto& m : t.members) held.push_back(std::move(m));
    t.members.clear();
    int n = stop_and_kill([&](const std::vector<ProcStat>& table) {
        TreeQuery q{pid, t.leader_start, t.reaped, {}};
        for (const auto& m : held) q.known.push_back({m.pid, m.start_time});
        return members_of(table, q);
    }, held);
    // Keep holding them: alive() reports them until they are gone.
    for (auto& m : held) {
        if (m.pid == pid && !t.reaped) t.leader_fd = std::move(m.fd);
        else t.members.push_back(std::move(m));
    }
    return n;
}

// SIGSTOP first, looking again after each round, until a look finds nobody new and
// everyone stopped; then SIGKILL. A stopped process cannot fork, so no child born while
// we looked escapes; a descendant that setsid()s is still found through its stopped parent.
int Containment::stop_and_kill(const Selector& select, std::vector<Member>& held) {
    for (int round = 0; round < kMaxStopRounds; round++) {
        bool settled = true;
        for (const auto& p : select(scan_proc())) {
            auto h = std::find_if(held.begin(), held.end(),
                                  [&](const Member& m) { return m.pid == p.pid && m.start_time == p.start_time; });
            if (h == held.end()) {
                UniqueFd fd = open_verified(p);
                if (!fd.valid()) continue;  // gone meanwhile
                pidfd_signal(fd.get(), SIGSTOP);
                held.push_back(Member{p.pid, p.start_time, std::move(fd)});
                settled = false;
            } else if (p.state != 'T' && p.state != 't') {
                pidfd_signal(h->fd.get(), SIGSTOP);
                settled = false;
            }
        }
        if (settled) break;
    }
    int n = 0;
    for (const auto& m : held)
        if (pidfd_signal(m.fd.get(), SIGKILL) == 0) n++;
    return n;
}

void Containment::leader_reaped(int pid) {
    auto it = workers_.find(pid);
    if (it == workers_.end()) return;
    it->second.reaped = true;
    it->second.leader_fd.reset();
}

void Containment::forget(int pid) {
    auto it = workers_.find(pid);
    if (it == workers_.end()) return;
    if (!it->second.cgroup.empty()) to_remove_.push_back(it->second.cgroup);
    workers_.erase(it);
    remove_cgroups();
}

// rmdir fails with EBUSY while a process is still inside (dying): retried at the next call.
void Containment::remove_cgroups() {
    std::erase_if(to_remove_, [](const std::string& dir) { return ::rmdir(dir.c_str()) == 0 || errno == ENOENT; });
}

void Containment::kill_all() {
    for (auto& [pid, t] : workers_) {
        int rc = kill(pid);
        if (rc < 0) spdlog::error("cannot kill what is left of pid={}: {}", pid, std::strerror(-rc));
    }
    // Whatever else lives below us: orphans reparented to us and their descendants.
    const int self = ::getpid();
    std::vector<Member> held;
    int n = stop_and_kill([&](const std::vector<ProcStat>& table) {
        std::set<int> below{self};
        std::vector<ProcStat> out;
        for (bool grew = true; grew;) {
            grew = false;
            for (const auto& p : table) {
                if (below.count(p.ppid) == 0 || below.count(p.pid) != 0) continue;
                below.insert(p.pid);
                if (p.state != 'Z') out.push_back(p);
                grew = true;
            }
        }
        return out;
    }, held);
    if (n > 0) spdlog::warn("killed {} process(es) left below the supervisor at exit", n);
    for (int waited = 0; waited < kExitWaitMs; waited += kExitPollMs) {
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        bool left = std::any_of(held.begin(), held.end(), [](const Member& m) { return !pidfd_exited(m.fd.get()); });
        for (auto& [pid, t] : workers_) left = left || alive(pid);
        if (!left) break;
        ::poll(nullptr, 0, kExitPollMs);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    for (auto& [pid, t] : workers_)
        if (!t.cgroup.empty()) to_remove_.push_back(t.cgroup);
    workers_.clear();
    remove_cgroups();
    if (!base_.empty() && ::rmdir(base_.c_str()) < 0 && errno != ENOENT)
        spdlog::warn("cannot remove cgroup {}: {}", base_, std::strerror(errno));
}

} // namespace sv
