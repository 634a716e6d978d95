// Containment: every process a worker starts is found, and killed with its worker.
//
// Two ways, chosen once at start (--cgroup auto|off):
//  - cgroup v2, when our cgroup is delegated to us (the xattr trusted.delegate or
//    user.delegate that systemd's Delegate=yes sets, or we sit writable at the root of our
//    cgroup namespace, as in a container): each worker gets its own cgroup below
//    <ours>/supervisor.<our pid>/, which it joins between fork and exec, so nothing it
//    forks can leave. cgroup.kill kills all of it; cgroup.events says when it is empty.
//  - otherwise, process groups and pidfds: the worker's members are found in /proc (its
//    process group while that id cannot have been reused, and every descendant by ppid,
//    see process_tree.h) at each look, and each one is held by a pidfd from then on, so
//    a descendant that called setsid() and was reparented to us stays attributed, and a
//    recycled pid is never hit. The looks: at spawn, before each signal, at every SIGCHLD.
// Either way every signal goes through a pidfd (pidfd_send_signal) or cgroup.kill:
// nothing is ever signalled by a bare number.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "supervisor/config.h"
#include "supervisor/proc_files.h"
#include "supervisor/result.h"
#include "supervisor/resume_state.h"
#include "supervisor/unique_fd.h"

namespace sv {

// Where a worker goes before exec. cgroup empty: process groups and pidfds only.
struct Placement {
    std::string cgroup;  // the worker's cgroup directory
    UniqueFd procs;      // its cgroup.procs, open for writing (O_CLOEXEC): the child writes "0"
};

class Containment {
public:
    // Picks cgroup v2 when a delegated cgroup can be used (Auto), else the fallback; creates
    // <ours>/supervisor.<pid> in cgroup mode. Never fails: describe() says what was chosen and why.
    static Containment create(ContainmentMode mode);
    Containment() = default;
    Containment(Containment&&) = default;
    Containment& operator=(Containment&&) = default;
    ~Containment();

    // "cgroup v2 /sys/fs/cgroup/…/supervisor.123" or "process groups + pidfds (<reason>)".
    const std::string& describe() const { return description_; }
    bool uses_cgroups() const { return !base_.empty(); }
    const std::string& base() const { return base_; }

    // Before fork: the worker's cgroup (mkdir + open cgroup.procs). Errors name the
    // directory; the caller may spawn with an empty Placement (fallback for that worker).
    Result<Placement> prepare(uint64_t gen, int slot);
    // After a successful spawn: the worker is tracked under `pid` until forget().
    void adopt(int pid, Placement placement);
    // The spawn failed: removes the cgroup prepare() made.
    void abandon(Placement placement);

    // Fallback mode: one /proc scan; every tracked worker's new members are held by pidfd.
    // Cheap no-op in cgroup mode or when nothing is tracked.
    void refresh();
    // Sends `sig` to the worker itself through its pidfd. 0 or -errno (-ESRCH: gone or unknown).
    int signal(int pid, int sig);
    // True while any process of the worker's containment lives (the leader included until
    // leader_reaped()). Looks again (refresh) first.
    bool alive(int pid);
    // SIGKILL to all of it: cgroup.kill, or stop-everyone-then-kill through pidfds until a
    // look finds nobody new. Returns the number of processes signalled (cgroup: 0), or -errno.
    int kill(int pid);
    // The worker itself has been reaped: its pidfd is closed, its members stay tracked.
    void leader_reaped(int pid);
    // Nothing of it is left: its cgroup is removed (retried later while busy), state dropped.
    void forget(int pid);
    // `ctl reexec` (containment_resume.cpp): what is tracked, as data; and back, each
    // process re-held by a pidfd only if it is still the one recorded (same start time).
    std::vector<ResumeContained> export_tracked() const;
    static Containment resume(std::string base, std::string description, const std::vector<ResumeContained>& tracked);
    // At exit: kills every tracked worker's containment and every other process below us
    // (orphans reparented to us), reaps them (bounded), removes every cgroup we made.
    void kill_all();

private:
    struct Member {
        int pid = 0;
        uint64_t start_time = 0;
        UniqueFd fd;  // pidfd
    };
    struct Tracked {
        std::string cgroup;
        UniqueFd leader_fd;
        uint64_t leader_start = 0;
        bool reaped = false;
        std::vector<Member> members;  // fallback: every process found so far (leader excluded)
    };
    using Selector = std::function<std::vector<ProcStat>(const std::vector<ProcStat>&)>;

    void observe(int pid, Tracked& t, const std::vector<ProcStat>& table);
    std::vector<ProcStat> members(int pid, const Tracked& t, const std::vector<ProcStat>& table) const;
    int stop_and_kill(const Selector& select, std::vector<Member>& held);
    void remove_cgroups();

    std::string description_;
    std::string base_;  // cgroup mode: <ours>/supervisor.<pid>; empty: fallback
    uint64_t seq_ = 0;
    std::map<int, Tracked> workers_;
    std::vector<std::string> to_remove_;  // cgroups still busy when forgotten
};

// /proc/PID/stat of every process, parsed (unreadable or vanished entries skipped).
std::vector<ProcStat> scan_proc();

} // namespace sv
