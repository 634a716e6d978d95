// The two halves of a reexec's state: written by the old image (export_state) and taken
// in by the new one (resume): the machine restored and checked, containment re-held,
// timers re-armed with what was left of them, exits during the swap reaped, and the
// waiting `ctl reexec` client answered on the connection it opened.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "supervisor/log.h"
#include "supervisor/supervisor.h"

namespace sv {

namespace {

int64_t mono_ns(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

} // namespace

Result<ResumeState> Supervisor::export_state(uint64_t client) {
    ResumeState st;
    st.exe = launch_.exe;
    st.argv = launch_.argv;
    st.env = launch_.env;
    st.started_mono_ns = mono_ns(started_);
    st.started_unix_ms = started_unix_ms_;
    uv_update_time(&loop_);  // due times are measured from the loop's clock: make it now
    st.written_mono_ns = mono_ns(std::chrono::steady_clock::now());
    for (const auto& l : listeners_)
        st.listeners.push_back({l.spec.name, l.address, l.fd.get(), static_cast<uint64_t>(l.unix_inode), l.adopted});
    st.notify_fd = notify_.fd();
    st.notify_name = notify_.name();
    st.notify_dir = notify_.dir();
    if (control_) {
        st.control_fd = control_->listener_fd();
        st.control_path = control_->path();
        st.control_inode = static_cast<uint64_t>(control_->inode());
        st.client_fd = control_->client_fd(client);
    }
    st.pid_file_fd = launch_.pid_file_fd;
    st.pid_file_path = launch_.pid_file_path;
    st.containment_base = containment_.uses_cgroups() ? containment_.base() : "";
    st.containment_description = containment_.describe();
    st.contained = containment_.export_tracked();
    st.leftovers.assign(leftovers_.begin(), leftovers_.end());
    st.broken_invariants = broken_invariants_;
    st.counters = counters_.state();
    if (http_) {
        st.http_fd = http_->listener_fd();
        st.http_address = http_->address();
        st.http_inode = static_cast<uint64_t>(http_->inode());
    }
    st.has_last_upgrade = has_last_upgrade_;
    st.last_upgrade_gen = last_upgrade_.gen;
    st.last_upgrade_ok = last_upgrade_.ok;
    st.last_upgrade_reason = last_upgrade_.reason;
    st.last_upgrade_at_unix_ms = last_upgrade_.at_unix_ms;
    st.machine = machine_.export_state();
    for (const auto& id : st.machine.timers) {
        auto it = timers_.find({static_cast<int>(id.kind), id.key});
        if (it == timers_.end()) return Error{EINVAL, "the machine counts on a timer that is not running (a bug): " + machine_.describe()};
        st.timers.push_back({id, Millis{static_cast<int64_t>(uv_timer_get_due_in(&it->second.get()->timer))}});
    }
    if (st.control_fd < 0 && control_) return Error{EBADF, "the control socket has no fd"};
    return st;
}

// What was left of each timer when the state was written, less the time the swap took.
void Supervisor::resume_timers(const ResumeState& st) {
    auto since_written = std::chrono::nanoseconds(mono_ns(std::chrono::steady_clock::now()) - st.written_mono_ns);
    Millis swap = std::max(Millis{0}, std::chrono::duration_cast<Millis>(since_written));
    for (const auto& t : st.timers) start_timer(t.id, std::max(Millis{0}, t.remaining - swap));
}

Result<Ok> Supervisor::resume() {
    ResumeState st = std::move(*resume_);
    resume_.reset();
    started_ = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(st.started_mono_ns));
    started_unix_ms_ = st.started_unix_ms;
    auto m = UpgradeMachine::restore(machine_.settings(), st.machine);
    if (!m) return Error{m.error().code, "cannot resume: " + m.error().what};
    machine_ = std::move(m.value());
    containment_ = Containment::resume(st.containment_base, st.containment_description, st.contained);
    leftovers_.insert(st.leftovers.begin(), st.leftovers.end());
    broken_invariants_ = st.broken_invariants;
    counters_.restore(st.counters);
    has_last_upgrade_ = st.has_last_upgrade;
    last_upgrade_ = UpgradeResult{st.last_upgrade_gen, st.last_upgrade_ok, st.last_upgrade_reason, st.last_upgrade_at_unix_ms};
    resume_timers(st);
    std::string exe = self_exe();
    spdlog::info("resumed pid={} exe={} workers={} timers={} containment: {}", ::getpid(), exe,
                 machine_.workers().size(), st.timers.size(), containment_.describe());
    if (control_ && st.client_fd >= 0) {
        if (uint64_t id = control_->adopt_client(st.client_fd); id != 0)
            control_->reply(id, control_reply({{"pid", ::getpid()}, {"exe", exe}}));
    }
    if (systemd_.enabled()) systemd_.send("READY=1\nSTATUS=re-executed " + exe);
    // Signals blocked across execve are still pending: the handlers are installed now.
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
    // A worker that exited during the swap is a zombie waiting for us: the sweep reaps it.
    take_in_pending_events();
    update_probe();
    write_status_file();
    send_status_if_changed();
    return Ok{};
}

} // namespace sv
