// Containment across `ctl reexec`: the pidfds die with the old image, so the new one opens
// them again, for a process only while it is still the one recorded (pid + start time);
// cgroups need nothing but their paths.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor/containment.h"
#include "supervisor/log.h"

namespace sv {

namespace {

std::optional<ProcStat> stat_now(int pid) {
    UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return std::nullopt;
    char buf[4096];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    return parse_proc_stat(std::string(buf, static_cast<size_t>(n)));
}

// Opened first, checked after: the fd cannot pin a process that took the pid meanwhile.
UniqueFd reopen(int pid, uint64_t start_time) {
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!fd.valid()) return fd;
    auto st = stat_now(pid);
    if (!st || st->start_time != start_time) fd.reset();
    return fd;
}

} // namespace

std::vector<ResumeContained> Containment::export_tracked() const {
    std::vector<ResumeContained> out;
    for (const auto& [pid, t] : workers_) {
        ResumeContained c{pid, t.cgroup, t.leader_start, t.reaped, {}};
        for (const auto& m : t.members) c.members.push_back({m.pid, m.start_time});
        out.push_back(std::move(c));
    }
    return out;
}

Containment Containment::resume(std::string base, std::string description, const std::vector<ResumeContained>& tracked) {
    Containment c;
    c.base_ = std::move(base);
    c.description_ = std::move(description);
    for (const auto& r : tracked) {
        Tracked t;
        t.cgroup = r.cgroup;
        t.leader_start = r.start_time;
        t.reaped = r.reaped;
        if (!t.reaped) t.leader_fd = reopen(r.pid, r.start_time);
        if (!t.reaped && !t.leader_fd.valid())
            spdlog::warn("resume: cannot hold pid={} again (gone or not the same process)", r.pid);
        for (const auto& m : r.members)
            if (UniqueFd fd = reopen(m.pid, m.start_time); fd.valid()) t.members.push_back(Member{m.pid, m.start_time, std::move(fd)});
        c.workers_[r.pid] = std::move(t);
    }
    return c;
}

} // namespace sv
