// The upgrade state machine's table: one handler per event, each a switch over the stored
// phase with every case written out; "ignore" says why, as s6's action table does.
// The transitions the handlers call live in upgrade_transitions.cpp.
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

UpgradeMachine::UpgradeMachine(MachineSettings settings) : s_(settings) {
    s_.workers = std::max(1, s_.workers);
    slots_.assign(static_cast<size_t>(s_.workers),
                  Slot{0, Backoff(s_.backoff_initial, s_.backoff_max, s_.backoff_reset_after), false});
}

std::vector<Action> UpgradeMachine::handle(const Event& event, Millis now) {
    now_ = now;
    out_.clear();
    std::visit([this](const auto& e) { on(e); }, event);
    return std::move(out_);
}

// --- the table ----------------------------------------------------------------------------

void UpgradeMachine::on(const Boot&) {
    switch (phase_) {
    case Phase::Starting:
        if (next_gen_ != 1) return;  // ignore: booting happens once
        boot();
        return;
    case Phase::Serving:
    case Phase::Upgrading: return;  // ignore: booted already
    case Phase::Stopping:
    case Phase::Stopped: return;  // ignore: a stop came first
    }
}

void UpgradeMachine::on(const UpgradeRequested& e) {
    switch (phase_) {
    case Phase::Starting:
        if (any_starting()) {
            queue_upgrade(e.client);  // the first generation is still coming up
            return;
        }
        log(LogLevel::Info, fmt::format("upgrade requested while no worker serves: starting gen={} now", next_gen_));
        pending_waiters_.push_back(e.client);
        start_upgrade();
        return;
    case Phase::Serving:
        pending_waiters_.push_back(e.client);
        start_upgrade();
        return;
    case Phase::Upgrading: queue_upgrade(e.client); return;
    case Phase::Stopping:
    case Phase::Stopped: {
        log(LogLevel::Warn, "upgrade request ignored: stopping");
        std::vector<uint64_t> one{e.client};
        refuse_waiters(one, "the supervisor is stopping");
        return;
    }
    }
}

void UpgradeMachine::on(const ClientGone& e) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading:
    case Phase::Stopping:
    case Phase::Stopped:
        // In every phase: a client that hung up is answered by nobody.
        std::erase(pending_waiters_, e.client);
        if (upgrade_) std::erase(upgrade_->waiters, e.client);
        return;
    }
}

void UpgradeMachine::on(const StopRequested& e) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading: begin_stop(); return;
    case Phase::Stopping:
        if (lame_duck_ && e.source == StopSource::Signal) {
            end_stop_delay("second SIGTERM during the stop delay: skipping the rest of it");
            return;
        }
        if (e.source == StopSource::Control) {
            log(LogLevel::Info, "stop requested again through ctl: already stopping");  // ignore: ctl never escalates
            return;
        }
        kill_everything();
        return;
    case Phase::Stopped: return;  // ignore: already exiting
    }
}

void UpgradeMachine::on(const WorkerSpawned& e) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading:
        if (spawn_wanted(e.gen, e.slot)) accept_spawn(e);
        else reject_spawn(e, "its generation was decided while it was being spawned");
        return;
    case Phase::Stopping: reject_spawn(e, "a stop began while it was being spawned"); return;
    case Phase::Stopped:
        // Not tracked any more: the shell kills it, and exits.
        out_.push_back(KillGroup{e.pid});
        log(LogLevel::Warn, fmt::format("spawned gen={} pid={} while exiting: killed", e.gen, e.pid));
        return;
    }
}

void UpgradeMachine::on(const SpawnFailed& e) {
    switch (phase_) {
    case Phase::Starting:
        if (!spawned_any_) {
            startup_failed(e);
            return;
        }
        spawn_failed(e);
        return;
    case Phase::Serving:
    case Phase::Upgrading: spawn_failed(e); return;
    case Phase::Stopping:
    case Phase::Stopped: return;  // ignore: nothing is spawned once a stop began
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
    w->spoke = true;
    if (e.msg.watchdog) watchdog_ping(*w);
    if (!e.msg.ready || w->state != WorkerState::Starting) return;  // ignore: READY=1 repeated, or draining
    w->notified = true;
    readiness_news(*w);
}

void UpgradeMachine::on(const WorkerAccepting& e) {
    Worker* w = find(e.pid);
    if (w == nullptr || w->state != WorkerState::Starting || !w->seen.empty()) return;  // ignore: stale or repeated
    w->seen = e.how.empty() ? "accept" : e.how;
    readiness_news(*w);
}

// The row of the table for what a starting worker said (READY=1) or did (accepting).
void UpgradeMachine::readiness_news(Worker& w) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading: consider_ready(w); return;
    case Phase::Stopping:
    case Phase::Stopped: return;  // ignore: no worker is Starting once a stop began
    }
}

void UpgradeMachine::consider_ready(Worker& w) {
    if (ready_by_rule(w)) {
        become_ready(w);
        return;
    }
    if (s_.ready_mode == ReadyMode::Delay && w.notified)
        log(LogLevel::Debug, fmt::format("READY=1 from gen={} pid={} noted; --ready delay decides", w.gen, w.pid));
    else if (s_.ready_mode == ReadyMode::Auto && w.notified && w.seen.empty())
        log(LogLevel::Info, fmt::format("READY=1 from gen={} pid={}; waiting until it accepts", w.gen, w.pid));
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
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading:
    case Phase::Stopping:
        worker_exited(w, e);
        finish_stop_if_done();
        return;
    case Phase::Stopped:
        log(LogLevel::Debug, fmt::format("reaped gen={} pid={} while exiting", w.gen, w.pid));  // ignore: exiting
        return;
    }
}

void UpgradeMachine::on(const GroupGone& e) {
    auto it = std::find_if(lingering_.begin(), lingering_.end(), [&](const Worker& x) { return x.pid == e.pid; });
    if (it == lingering_.end()) return;  // ignore: not lingering (killed at its deadline already)
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading:
    case Phase::Stopping:
        log(LogLevel::Info, fmt::format("process group of gen={} pid={} gone after_ms={}", it->gen, it->pid,
                                        since(it->drain_at).count()));
        cancel_timer({TimerId::Kind::Drain, it->id});
        lingering_.erase(it);
        finish_stop_if_done();
        return;
    case Phase::Stopped: return;  // ignore: exiting
    }
}

void UpgradeMachine::on(const TimerFired& e) {
    if (!timer_running(e.id)) return;  // ignore: cancelled while its expiry was on its way
    std::erase(timers_, e.id);
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading:
    case Phase::Stopping:
        switch (e.id.kind) {
        case TimerId::Kind::Ready: ready_timer(e.id.key); return;
        case TimerId::Kind::Drain: drain_timer(e.id.key); return;
        case TimerId::Kind::Respawn: respawn_timer(static_cast<int>(e.id.key)); return;
        case TimerId::Kind::Watchdog: watchdog_timer(e.id.key); return;
        case TimerId::Kind::Probation: probation_timer(e.id.key); return;
        case TimerId::Kind::StopDelay:
            if (lame_duck_) end_stop_delay("stop delay over");  // else ignore: stale
            return;
        }
        return;
    case Phase::Stopped: return;  // ignore: exiting
    }
}

void UpgradeMachine::on(const ForwardSignal& e) {
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Upgrading:
        for (const auto& w : workers_) {
            if (w.state != WorkerState::Starting && w.state != WorkerState::Ready) continue;
            out_.push_back(Signal{w.pid, e.sig});
            log(LogLevel::Info, fmt::format("forwarded {} to gen={} pid={}", signal_name(e.sig), w.gen, w.pid));
        }
        return;
    case Phase::Stopping:
        if (lame_duck_) {  // the stop delay: the workers still serve
            for (const auto& w : workers_) {
                if (w.state != WorkerState::Ready) continue;
                out_.push_back(Signal{w.pid, e.sig});
                log(LogLevel::Info, fmt::format("forwarded {} to gen={} pid={}", signal_name(e.sig), w.gen, w.pid));
            }
            return;
        }
        [[fallthrough]];
    case Phase::Stopped:
        log(LogLevel::Info, fmt::format("{} not forwarded: stopping", signal_name(e.sig)));  // ignore: draining
        return;
    }
}

void UpgradeMachine::on(const PreCheckDone& e) {
    switch (phase_) {
    case Phase::Upgrading:
        if (!upgrade_->pre_checking || e.gen != upgrade_->gen) return;  // ignore: not the check we wait for
        upgrade_->pre_checking = false;
        if (!e.ok) {
            upgrade_failed(e.reason);
            return;
        }
        log(LogLevel::Info, fmt::format("pre-check passed gen={} after_ms={}", e.gen, since(upgrade_->at).count()));
        spawn_upgrade_workers();
        return;
    case Phase::Starting:
    case Phase::Serving:
    case Phase::Stopping:
    case Phase::Stopped: return;  // ignore: its upgrade was decided (a stop came first)
    }
}

// --- helpers ------------------------------------------------------------------------------

uint64_t UpgradeMachine::serving_gen() const {
    return std::min_element(slots_.begin(), slots_.end(), [](const Slot& a, const Slot& b) { return a.gen < b.gen; })->gen;
}

void UpgradeMachine::log(LogLevel level, std::string text) { out_.push_back(Log{level, std::move(text)}); }

void UpgradeMachine::start_timer(TimerId id, Millis after) {
    std::erase(timers_, id);  // restarting replaces
    timers_.push_back(id);
    out_.push_back(StartTimer{id, after});
}

void UpgradeMachine::cancel_timer(TimerId id) {
    if (!timer_running(id)) return;
    std::erase(timers_, id);
    out_.push_back(CancelTimer{id});
}

bool UpgradeMachine::timer_running(TimerId id) const { return std::find(timers_.begin(), timers_.end(), id) != timers_.end(); }

std::string UpgradeMachine::slot_tag(int s) const { return s_.workers > 1 ? fmt::format(" slot={}", s) : ""; }

Worker* UpgradeMachine::find_id(uint64_t id) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [id](const Worker& w) { return w.id == id; });
    return it == workers_.end() ? nullptr : &*it;
}

Worker* UpgradeMachine::find(int pid) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [pid](const Worker& w) { return w.pid == pid; });
    return it == workers_.end() ? nullptr : &*it;
}

const Worker* UpgradeMachine::find_pid(int pid) const { return const_cast<UpgradeMachine*>(this)->find(pid); }

bool UpgradeMachine::waiting(uint64_t client) const {
    auto has = [client](const std::vector<uint64_t>& v) { return std::find(v.begin(), v.end(), client) != v.end(); };
    return has(pending_waiters_) || (upgrade_ && has(upgrade_->waiters));
}

bool UpgradeMachine::any_starting() const {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.state == WorkerState::Starting; });
}

bool UpgradeMachine::slot_staffed(int s) const {
    return std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return w.slot == s && w.gen == slot(s).gen && (w.state == WorkerState::Starting || w.state == WorkerState::Ready);
    });
}

// A spawn result is still wanted when no decision made it moot since: its slot has no live
// worker of that generation, and the generation is the upgrade in flight (past its
// pre-check, and this slot's turn when rolling) or the slot's own target.
bool UpgradeMachine::spawn_wanted(uint64_t gen, int s) const {
    if (s < 0 || s >= s_.workers) return false;
    bool live = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return w.slot == s && w.gen == gen && (w.state == WorkerState::Starting || w.state == WorkerState::Ready);
    });
    if (live) return false;
    if (upgrade_ && gen == upgrade_->gen) return !upgrade_->pre_checking && (!s_.rolling || s == upgrade_->roll_slot);
    return gen == slot(s).gen && !slot(s).respawn_pending && respawn_allowed(s);
}

// An upgrade in flight is about to take every slot (all at once) or the slot it rolls:
// restarting the old generation there would only run the new binary under the old number.
bool UpgradeMachine::respawn_allowed(int s) const { return !upgrade_ || (s_.rolling && s != upgrade_->roll_slot); }

} // namespace sv
