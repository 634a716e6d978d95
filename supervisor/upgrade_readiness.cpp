// The upgrade state machine's readiness rules: when a starting worker counts as ready
// (--ready delay, notify, accepting, auto) and what its ready timer means.
#include <fmt/format.h>

#include "supervisor/upgrade_machine.h"

namespace sv {

Worker UpgradeMachine::new_worker(const WorkerSpawned& e, WorkerState state) {
    Worker w;
    w.id = next_worker_id_++;
    w.gen = e.gen;
    w.slot = e.slot;
    w.pid = e.pid;
    w.state = state;
    w.spawned_at = now_;
    return w;
}

void UpgradeMachine::accept_spawn(const WorkerSpawned& e) {
    spawned_any_ = true;
    workers_.push_back(new_worker(e, WorkerState::Starting));
    bool by_delay = ready_by_delay();
    log(LogLevel::Info, fmt::format("spawned gen={} pid={} ready={} {}={}ms{}", e.gen, e.pid, ready_mode_name(),
                                    by_delay ? "delay" : "timeout", (by_delay ? s_.ready_delay : s_.ready_timeout).count(),
                                    slot_tag(e.slot)));
    start_timer({TimerId::Kind::Ready, workers_.back().id}, by_delay ? s_.ready_delay : s_.ready_timeout);
}

// Delay mode, and Auto where the probe cannot look: the ready timer makes a worker ready.
bool UpgradeMachine::ready_by_delay() const {
    return s_.ready_mode == ReadyMode::Delay || (s_.ready_mode == ReadyMode::Auto && !s_.can_probe);
}

const char* UpgradeMachine::ready_mode_name() const {
    switch (s_.ready_mode) {
    case ReadyMode::Delay: return "delay";
    case ReadyMode::Notify: return "notify";
    case ReadyMode::Accepting: return "accepting";
    case ReadyMode::Auto: return s_.can_probe ? "auto" : "auto(notify-or-delay)";
    }
    return "?";
}

// Whether what the worker said and did so far makes it ready (the timer decides Delay).
bool UpgradeMachine::ready_by_rule(const Worker& w) const {
    switch (s_.ready_mode) {
    case ReadyMode::Delay: return false;
    case ReadyMode::Notify: return w.notified;
    case ReadyMode::Accepting: return !w.seen.empty();
    case ReadyMode::Auto:
        if (!s_.can_probe) return w.notified;
        // A server that speaks sd_notify may accept before it is ready (gunicorn's arbiter
        // says READY=1 before its workers load the app; others listen early): it needs both.
        return !w.seen.empty() && (w.notified || !w.spoke);
    }
    return false;
}

std::string UpgradeMachine::not_ready_reason(const Worker& w) const {
    switch (s_.ready_mode) {
    case ReadyMode::Delay: return "not ready";
    case ReadyMode::Notify: return "no READY=1";
    case ReadyMode::Accepting: return "never accepted on a listener";
    case ReadyMode::Auto:
        if (!w.seen.empty()) return "accepting, but no READY=1 (it speaks sd_notify)";
        return w.notified ? "READY=1, but never accepted on a listener" : "never accepted on a listener";
    }
    return "not ready";
}

void UpgradeMachine::ready_timer(uint64_t id) {
    Worker* w = find_id(id);
    if (w == nullptr || w->state != WorkerState::Starting) return;  // ignore: stale
    if (ready_by_delay()) {
        become_ready(*w);
        return;
    }
    cancel_timer({TimerId::Kind::Watchdog, w->id});
    w->state = WorkerState::Failed;
    w->killed = true;
    out_.push_back(KillGroup{w->pid});
    std::string reason = fmt::format("{} within the ready timeout of {}", not_ready_reason(*w), format_duration(s_.ready_timeout));
    if (upgrade_ && w->gen == upgrade_->gen) upgrade_failed(reason + slot_tag(w->slot));
    else slot_failed(w->slot, w->gen, reason);
}

// --worker-watchdog: a worker that said WATCHDOG=1 once must keep saying it; each ping
// restarts its timer. Only live (starting or ready) workers are watched.
void UpgradeMachine::watchdog_ping(Worker& w) {
    if (s_.worker_watchdog.count() == 0) return;  // ignore: not asked for
    if (w.killed || (w.state != WorkerState::Starting && w.state != WorkerState::Ready)) return;  // ignore: being killed, draining or failed
    if (!w.watched)
        log(LogLevel::Info, fmt::format("watchdog gen={} pid={} timeout={}", w.gen, w.pid, format_duration(s_.worker_watchdog)));
    w.watched = true;
    start_timer({TimerId::Kind::Watchdog, w.id}, s_.worker_watchdog);
}

// Silent past its watchdog: hung. Killed with what it started; its exit is then a crash
// (respawned with backoff), or, before ready, a failed start.
void UpgradeMachine::watchdog_timer(uint64_t id) {
    Worker* w = find_id(id);
    if (w == nullptr || w->killed || (w->state != WorkerState::Starting && w->state != WorkerState::Ready)) return;  // ignore: stale
    hung_total_++;
    std::string reason = fmt::format("hung: no WATCHDOG=1 for {}", format_duration(s_.worker_watchdog));
    log(LogLevel::Warn, fmt::format("{} gen={} pid={}: killing it and its processes (hung_total={})", reason, w->gen,
                                    w->pid, hung_total_));
    w->killed = true;
    out_.push_back(KillGroup{w->pid});
    if (w->state == WorkerState::Ready) return;  // reaped as a crash: respawned with backoff
    cancel_timer({TimerId::Kind::Ready, w->id});
    w->state = WorkerState::Failed;
    if (upgrade_ && w->gen == upgrade_->gen) upgrade_failed(reason + slot_tag(w->slot));
    else slot_failed(w->slot, w->gen, reason);
}

} // namespace sv
