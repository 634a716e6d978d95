// The upgrade state machine. Each event handler is one switch over the phase with no
// default, so adding a phase fails the build until every event says what it does there.
#include "supervisor/upgrade_machine.h"

#include <sys/wait.h>

#include <algorithm>
#include <fmt/format.h>

namespace sv {

const char* to_string(WorkerState s) {
    switch (s) {
    case WorkerState::Starting: return "starting";
    case WorkerState::Ready: return "ready";
    case WorkerState::Draining: return "draining";
    case WorkerState::Failed: return "failed";
    }
    return "?";
}

const char* to_string(Phase p) {
    switch (p) {
    case Phase::Starting: return "starting";
    case Phase::Serving: return "serving";
    case Phase::Upgrading: return "upgrading";
    case Phase::Stopping: return "stopping";
    case Phase::Stopped: return "stopped";
    }
    return "?";
}

std::string describe_wait_status(int st) {
    if (WIFEXITED(st)) return fmt::format("exit={}", WEXITSTATUS(st));
    if (WIFSIGNALED(st)) return "signal=" + signal_name(WTERMSIG(st)) + (WCOREDUMP(st) ? " core_dumped" : "");
    return fmt::format("wait_status={:#x}", st);
}

UpgradeMachine::UpgradeMachine(MachineSettings settings)
    : s_(settings), backoff_(settings.backoff_initial, settings.backoff_max, settings.backoff_reset_after) {}

std::vector<Action> UpgradeMachine::handle(const Event& event, Millis now) {
    now_ = now;
    out_.clear();
    std::visit([this](const auto& e) { on(e); }, event);
    return std::move(out_);
}

void UpgradeMachine::log(LogLevel level, std::string text) { out_.push_back(Log{level, std::move(text)}); }

Worker* UpgradeMachine::find(int pid) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [pid](const Worker& w) { return w.pid == pid; });
    return it == workers_.end() ? nullptr : &*it;
}

const Worker* UpgradeMachine::find_pid(int pid) const {
    return const_cast<UpgradeMachine*>(this)->find(pid);
}

Worker* UpgradeMachine::find_gen(uint64_t gen) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [gen](const Worker& w) { return w.gen == gen; });
    return it == workers_.end() ? nullptr : &*it;
}

// --- events -------------------------------------------------------------------------

void UpgradeMachine::on(const Boot&) {
    switch (phase_) {
    case Phase::Starting:
        if (next_gen_ == 1 && starting_gen_ == 0) spawn_next();
        return;
    case Phase::Serving:
    case Phase::Upgrading:
    case Phase::Stopping:
    case Phase::Stopped:
        return;  // ignore: booting happens once
    }
}

void UpgradeMachine::on(const UpgradeRequested&) {
    switch (phase_) {
    case Phase::Starting:
        if (respawn_pending_) {
            // Nothing serves and a restart is waiting out its backoff: the operator has
            // likely deployed a fix, so start it now instead of after the delay.
            respawn_pending_ = false;
            out_.push_back(CancelTimer{{TimerId::Kind::Respawn, 0}});
            log(LogLevel::Info, fmt::format("upgrade requested while no worker serves: starting gen={} now", next_gen_));
            spawn_upgrade();
        } else if (!pending_upgrade_) {
            pending_upgrade_ = true;
            log(LogLevel::Info, fmt::format("upgrade queued: gen={} is still starting", starting_gen_));
        } else {
            log(LogLevel::Debug, "upgrade request merged into the one already queued");
        }
        return;
    case Phase::Serving:
        start_upgrade();
        return;
    case Phase::Upgrading:
        if (!pending_upgrade_) {
            pending_upgrade_ = true;
            log(LogLevel::Info, fmt::format("upgrade queued behind gen={}, which is still starting", starting_gen_));
        } else {
            log(LogLevel::Debug, "upgrade request merged into the one already queued");
        }
        return;
    case Phase::Stopping:
    case Phase::Stopped:
        log(LogLevel::Warn, "upgrade request ignored: stopping");
        return;
    }
}

void UpgradeMachine::on(const StopRequested&) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading: {
        phase_ = Phase::Stopping;
        stop_at_ = now_;
        pending_upgrade_ = false;
        if (upgrade_gen_ != 0) verdict(upgrade_gen_, false, "stopped before the new generation was ready");
        if (respawn_pending_) {
            respawn_pending_ = false;
            out_.push_back(CancelTimer{{TimerId::Kind::Respawn, 0}});
        }
        log(LogLevel::Info, fmt::format("stopping: draining {} worker(s)", workers_.size()));
        out_.push_back(NotifySystemd{"STOPPING=1"});
        for (auto& w : workers_) {
            if (w.state == WorkerState::Starting) out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.gen}});
            if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) drain(w);
        }
        starting_gen_ = 0;
        current_gen_ = 0;
        pre_checking_ = false;
        finish_stop_if_done();
        return;
    }
    case Phase::Stopping:
        log(LogLevel::Warn, fmt::format("second stop request: killing {} worker(s) now", workers_.size()));
        for (auto& w : workers_) {
            if (!w.killed) out_.push_back(KillGroup{w.pid});
            w.killed = true;
        }
        return;
    case Phase::Stopped:
        return;  // ignore: already exiting
    }
}

void UpgradeMachine::on(const WorkerSpawned& e) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Upgrading: {
        workers_.push_back(Worker{e.gen, e.pid, WorkerState::Starting, now_, {}, {}, false, {}});
        bool notify = s_.ready_mode == ReadyMode::Notify;
        log(LogLevel::Info, fmt::format("spawned gen={} pid={} ready={} {}={}ms", e.gen, e.pid,
                                        notify ? "notify" : "delay", notify ? "timeout" : "delay",
                                        (notify ? s_.ready_timeout : s_.ready_delay).count()));
        out_.push_back(StartTimer{{TimerId::Kind::Ready, e.gen}, notify ? s_.ready_timeout : s_.ready_delay});
        return;
    }
    case Phase::Serving:
    case Phase::Stopping:
    case Phase::Stopped:
        // Spawning is synchronous in the shell, so a spawn result always arrives in the
        // phase that asked for it; a stray one is a worker we must not keep.
        out_.push_back(KillGroup{e.pid});
        log(LogLevel::Error, fmt::format("unexpected spawn result gen={} pid={}: killed", e.gen, e.pid));
        return;
    }
}

void UpgradeMachine::on(const SpawnFailed& e) {
    switch (phase_) {
    case Phase::Starting:
        if (e.gen == 1) {
            // The very first worker cannot run: a startup error, not a crash to retry.
            starting_gen_ = 0;
            phase_ = Phase::Stopped;
            log(LogLevel::Error, fmt::format("cannot start gen=1: {}", e.reason));
            int code = e.err == ENOENT ? kExitNotFound
                       : (e.err == EACCES || e.err == ENOEXEC || e.err == EISDIR || e.err == EPERM)
                           ? kExitNotExecutable
                           : kExitSystem;
            out_.push_back(Exit{code});
            return;
        }
        [[fallthrough]];
    case Phase::Upgrading:
        starting_gen_ = 0;
        start_failed(e.gen, e.reason);
        return;
    case Phase::Serving:
    case Phase::Stopping:
    case Phase::Stopped:
        log(LogLevel::Debug, fmt::format("ignored spawn failure of gen={}: not starting", e.gen));
        return;
    }
}

void UpgradeMachine::on(const Notified& e) {
    Worker* w = find(e.pid);
    if (w == nullptr) {
        log(LogLevel::Debug, fmt::format("ignored notify message from pid={}: not a worker", e.pid));
        return;
    }
    if (e.msg.status && *e.msg.status != w->status) {
        w->status = *e.msg.status;
        log(LogLevel::Info, fmt::format("status gen={} pid={} status=\"{}\"", w->gen, w->pid, w->status));
    }
    if (e.msg.stopping) log(LogLevel::Debug, fmt::format("stopping gen={} pid={}", w->gen, w->pid));
    if (!e.msg.ready) return;
    switch (phase_) {
    case Phase::Starting:
    case Phase::Upgrading:
        if (w->state != WorkerState::Starting) return;  // ignore: READY=1 repeated
        if (s_.ready_mode == ReadyMode::Delay) {
            log(LogLevel::Debug, fmt::format("READY=1 from gen={} pid={} noted; --ready delay decides", w->gen, w->pid));
            return;
        }
        become_ready(*w);
        return;
    case Phase::Serving:
    case Phase::Stopping:
    case Phase::Stopped:
        return;  // ignore: no worker is starting, so READY=1 changes nothing
    }
}

void UpgradeMachine::on(const WorkerExited& e) {
    Worker* found = find(e.pid);
    if (found == nullptr) {
        // We are a child subreaper: orphans a worker left behind end up here.
        log(LogLevel::Debug, fmt::format("reaped pid={} ({}): not a worker", e.pid, describe_wait_status(e.wait_status)));
        return;
    }
    Worker w = *found;
    workers_.erase(workers_.begin() + (found - workers_.data()));
    std::string how = describe_wait_status(e.wait_status);
    switch (w.state) {
    case WorkerState::Draining:
        if (!w.killed) out_.push_back(CancelTimer{{TimerId::Kind::Drain, w.gen}});
        log(w.killed ? LogLevel::Warn : LogLevel::Info,
            fmt::format("exited gen={} pid={} {} drain_ms={} uptime_ms={}", w.gen, w.pid, how,
                        since(w.drain_at).count(), since(w.spawned_at).count()));
        break;
    case WorkerState::Failed:
        log(LogLevel::Info, fmt::format("reaped failed gen={} pid={} {}", w.gen, w.pid, how));
        break;
    case WorkerState::Starting:
        out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.gen}});
        starting_gen_ = 0;
        start_failed(w.gen, fmt::format("exited before ready ({}) after {}ms", how, since(w.spawned_at).count()));
        break;
    case WorkerState::Ready:
        serving_died(w, how);
        break;
    }
    finish_stop_if_done();
}

void UpgradeMachine::on(const TimerFired& e) {
    switch (e.id.kind) {
    case TimerId::Kind::Ready: {
        Worker* w = find_gen(e.id.gen);
        if (w == nullptr || w->state != WorkerState::Starting) return;  // ignore: stale timer
        if (s_.ready_mode == ReadyMode::Delay) {
            become_ready(*w);
            return;
        }
        w->state = WorkerState::Failed;
        w->killed = true;
        starting_gen_ = 0;
        out_.push_back(KillGroup{w->pid});
        start_failed(w->gen, fmt::format("no READY=1 within the ready timeout of {}", format_duration(s_.ready_timeout)));
        return;
    }
    case TimerId::Kind::Drain: {
        Worker* w = find_gen(e.id.gen);
        if (w == nullptr || w->state != WorkerState::Draining || w->killed) return;  // ignore: stale timer
        w->killed = true;
        log(LogLevel::Warn, fmt::format("drain timeout gen={} pid={} after {}: killing its process group",
                                        w->gen, w->pid, format_duration(s_.drain_timeout)));
        out_.push_back(KillGroup{w->pid});
        return;
    }
    case TimerId::Kind::Respawn:
        if (!respawn_pending_) return;  // ignore: cancelled in the meantime
        respawn_pending_ = false;
        switch (phase_) {
        case Phase::Starting:
            spawn_next();
            return;
        case Phase::Serving:
        case Phase::Upgrading:
        case Phase::Stopping:
        case Phase::Stopped:
            return;  // ignore: something else already took over
        }
        return;
    }
}

void UpgradeMachine::on(const ForwardSignal& e) {
    for (const auto& w : workers_) {
        if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) {
            out_.push_back(Signal{w.pid, e.sig});
            log(LogLevel::Info, fmt::format("forwarded {} to gen={} pid={}", signal_name(e.sig), w.gen, w.pid));
        }
    }
}

// --- transitions ----------------------------------------------------------------------

void UpgradeMachine::spawn_next() {
    starting_gen_ = next_gen_++;
    out_.push_back(Spawn{starting_gen_});
}

void UpgradeMachine::start_upgrade() {
    pending_upgrade_ = false;
    phase_ = Phase::Upgrading;
    upgrade_from_gen_ = current_gen_;
    log(LogLevel::Info, fmt::format("upgrade started gen={} serving_gen={}", next_gen_, current_gen_));
    out_.push_back(NotifySystemd{fmt::format("RELOADING=1\nSTATUS=upgrading to gen={}", next_gen_)});
    spawn_upgrade();
}

void UpgradeMachine::spawn_upgrade() {
    if (phase_ != Phase::Upgrading) upgrade_from_gen_ = 0;  // nothing serves: nothing is replaced
    upgrade_gen_ = next_gen_;
    upgrade_at_ = now_;
    out_.push_back(UpgradeStarted{upgrade_gen_});
    if (!s_.pre_check) {
        spawn_next();
        return;
    }
    starting_gen_ = next_gen_++;
    pre_checking_ = true;
    out_.push_back(RunPreCheck{starting_gen_});
}

void UpgradeMachine::on(const PreCheckDone& e) {
    if (!pre_checking_ || e.gen != starting_gen_) return;  // ignore: a stop came first
    pre_checking_ = false;
    switch (phase_) {
    case Phase::Starting:
    case Phase::Upgrading:
        if (e.ok) {
            log(LogLevel::Info, fmt::format("pre-check passed gen={} after_ms={}", e.gen, since(upgrade_at_).count()));
            out_.push_back(Spawn{e.gen});
        } else {
            starting_gen_ = 0;
            start_failed(e.gen, e.reason);
        }
        return;
    case Phase::Serving:
    case Phase::Stopping:
    case Phase::Stopped:
        return;  // unreachable: pre_checking_ is cleared when a stop begins
    }
}

void UpgradeMachine::become_ready(Worker& w) {
    out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.gen}});
    w.state = WorkerState::Ready;
    w.ready_at = now_;
    starting_gen_ = 0;
    log(LogLevel::Info, fmt::format("ready gen={} pid={} after_ms={}", w.gen, w.pid, since(w.spawned_at).count()));
    for (auto& other : workers_)
        if (other.state == WorkerState::Ready && other.gen != w.gen) drain(other);
    current_gen_ = w.gen;
    ever_ready_ = true;
    phase_ = Phase::Serving;
    if (upgrade_gen_ == w.gen) {
        log(LogLevel::Info, fmt::format("upgrade done gen={} pid={} replaced_gen={} after_ms={}", w.gen, w.pid,
                                        upgrade_from_gen_, since(upgrade_at_).count()));
        verdict(w.gen, true, "");
    }
    out_.push_back(NotifySystemd{fmt::format("READY=1\nSTATUS=serving gen={} pid={}", w.gen, w.pid)});
    if (pending_upgrade_) start_upgrade();
}

void UpgradeMachine::drain(Worker& w) {
    w.state = WorkerState::Draining;
    w.drain_at = now_;
    log(LogLevel::Info, fmt::format("draining gen={} pid={} signal={} timeout={}", w.gen, w.pid,
                                    signal_name(s_.drain_signal), format_duration(s_.drain_timeout)));
    out_.push_back(Signal{w.pid, s_.drain_signal});
    out_.push_back(StartTimer{{TimerId::Kind::Drain, w.gen}, s_.drain_timeout});
}

void UpgradeMachine::start_failed(uint64_t gen, const std::string& reason) {
    switch (phase_) {
    case Phase::Upgrading:
        phase_ = Phase::Serving;
        log(LogLevel::Warn, fmt::format("upgrade failed gen={} reason=\"{}\" serving_gen={} (still serving)", gen,
                                        reason, current_gen_));
        verdict(gen, false, reason);
        out_.push_back(NotifySystemd{fmt::format("READY=1\nSTATUS=upgrade to gen={} failed: {}; serving gen={}",
                                                 gen, reason, current_gen_)});
        if (pending_upgrade_) start_upgrade();
        return;
    case Phase::Starting:
        if (upgrade_gen_ == gen) verdict(gen, false, reason);
        log(LogLevel::Warn, fmt::format("start failed gen={} reason=\"{}\" (nothing serving)", gen, reason));
        if (pending_upgrade_) {
            // An upgrade was asked for while this one started: try the new code at once.
            pending_upgrade_ = false;
            spawn_upgrade();
        } else {
            schedule_respawn();
        }
        return;
    case Phase::Serving:
    case Phase::Stopping:
    case Phase::Stopped:
        return;  // ignore: a worker that failed after a stop began is simply reaped
    }
}

void UpgradeMachine::serving_died(const Worker& w, const std::string& how) {
    Millis uptime = since(w.ready_at);
    backoff_.note_uptime(uptime);
    current_gen_ = 0;
    switch (phase_) {
    case Phase::Serving:
        phase_ = Phase::Starting;
        log(LogLevel::Warn, fmt::format("worker died gen={} pid={} {} uptime_ms={}", w.gen, w.pid, how,
                                        since(w.spawned_at).count()));
        out_.push_back(NotifySystemd{fmt::format("STATUS=gen={} died ({}); restarting", w.gen, how)});
        schedule_respawn();
        return;
    case Phase::Upgrading:
        phase_ = Phase::Starting;
        log(LogLevel::Warn, fmt::format("worker died gen={} pid={} {} during upgrade: gen={} takes over once ready",
                                        w.gen, w.pid, how, starting_gen_));
        return;
    case Phase::Starting:
    case Phase::Stopping:
    case Phase::Stopped:
        return;  // unreachable: no worker is Ready in these phases (see check_invariants)
    }
}

void UpgradeMachine::schedule_respawn() {
    Millis delay = backoff_.next();
    respawn_pending_ = true;
    log(LogLevel::Warn, fmt::format("respawn gen={} in_ms={}", next_gen_, delay.count()));
    out_.push_back(StartTimer{{TimerId::Kind::Respawn, 0}, delay});
}

void UpgradeMachine::finish_stop_if_done() {
    if (phase_ != Phase::Stopping || !workers_.empty()) return;
    phase_ = Phase::Stopped;
    log(LogLevel::Info, fmt::format("stopped after_ms={}", since(stop_at_).count()));
    out_.push_back(Exit{kExitOk});
}

void UpgradeMachine::verdict(uint64_t gen, bool ok, const std::string& reason) {
    if (upgrade_gen_ == gen) upgrade_gen_ = 0;
    out_.push_back(UpgradeVerdict{gen, ok, reason});
}

std::string UpgradeMachine::check_invariants() const {
    int starting = 0, ready = 0;
    for (const auto& w : workers_) {
        if (w.state == WorkerState::Starting) {
            starting++;
            if (w.gen != starting_gen_) return fmt::format("starting worker gen={} is not starting_gen={}", w.gen, starting_gen_);
        }
        if (w.state == WorkerState::Ready) {
            ready++;
            if (w.gen != current_gen_) return fmt::format("ready worker gen={} is not serving_gen={}", w.gen, current_gen_);
        }
    }
    if (starting > 1) return "more than one worker starting";
    if (ready > 1) return "more than one worker ready";
    switch (phase_) {
    case Phase::Serving:
        if (ready != 1 || starting_gen_ != 0 || respawn_pending_) return "serving needs one ready worker and nothing starting";
        break;
    case Phase::Upgrading:
        if (ready != 1 || starting_gen_ == 0) return "upgrading needs one ready and one starting worker";
        break;
    case Phase::Starting:
        if (ready != 0) return "starting phase with a ready worker";
        if ((starting_gen_ != 0) == respawn_pending_) return "starting phase needs exactly one of: a starting worker, a respawn timer";
        break;
    case Phase::Stopping:
    case Phase::Stopped:
        if (ready != 0 || starting != 0 || respawn_pending_) return "stopping with a live or pending worker";
        break;
    }
    return "";
}

} // namespace sv
