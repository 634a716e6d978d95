// The upgrade state machine. Each event handler decides by the facts it is given; every
// case that changes nothing says why ("ignore: …"), as s6's action table does.
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
    : s_(settings),
      backoff_(static_cast<size_t>(std::max(1, settings.workers)),
               Backoff(settings.backoff_initial, settings.backoff_max, settings.backoff_reset_after)),
      slot_gen_(static_cast<size_t>(std::max(1, settings.workers)), 0),
      respawn_pending_(static_cast<size_t>(std::max(1, settings.workers)), false) {
    s_.workers = std::max(1, s_.workers);
}

std::vector<Action> UpgradeMachine::handle(const Event& event, Millis now) {
    now_ = now;
    out_.clear();
    std::visit([this](const auto& e) { on(e); }, event);
    return std::move(out_);
}

Phase UpgradeMachine::phase() const {
    if (stopped_) return Phase::Stopped;
    if (stopping_) return Phase::Stopping;
    if (upgrade_gen_ != 0) return Phase::Upgrading;
    bool ready = std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.state == WorkerState::Ready; });
    return ready ? Phase::Serving : Phase::Starting;
}

uint64_t UpgradeMachine::serving_gen() const { return *std::min_element(slot_gen_.begin(), slot_gen_.end()); }

void UpgradeMachine::log(LogLevel level, std::string text) { out_.push_back(Log{level, std::move(text)}); }

std::string UpgradeMachine::slot_tag(int slot) const { return s_.workers > 1 ? fmt::format(" slot={}", slot) : ""; }

Worker* UpgradeMachine::find(int pid) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [pid](const Worker& w) { return w.pid == pid; });
    return it == workers_.end() ? nullptr : &*it;
}

const Worker* UpgradeMachine::find_pid(int pid) const { return const_cast<UpgradeMachine*>(this)->find(pid); }

bool UpgradeMachine::slot_staffed(int slot) const {
    return std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return w.slot == slot && w.gen == slot_gen_[static_cast<size_t>(slot)] &&
               (w.state == WorkerState::Starting || w.state == WorkerState::Ready);
    });
}

// --- events -------------------------------------------------------------------------

void UpgradeMachine::on(const Boot&) {
    if (next_gen_ != 1 || stopping()) return;  // ignore: booting happens once
    uint64_t gen = next_gen_++;
    std::fill(slot_gen_.begin(), slot_gen_.end(), gen);
    for (int s = 0; s < s_.workers; s++) spawn(gen, s);
}

void UpgradeMachine::on(const UpgradeRequested&) {
    if (stopping()) {
        log(LogLevel::Warn, "upgrade request ignored: stopping");
        return;
    }
    bool starting = std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.state == WorkerState::Starting; });
    if (upgrade_gen_ != 0 || (!booted_ && starting)) {
        if (pending_upgrade_) {
            log(LogLevel::Debug, "upgrade request merged into the one already queued");
        } else {
            pending_upgrade_ = true;
            log(LogLevel::Info, upgrade_gen_ != 0 ? fmt::format("upgrade queued behind gen={}, which is still starting", upgrade_gen_)
                                                  : fmt::format("upgrade queued: gen={} is still starting", serving_gen()));
        }
        return;
    }
    if (phase() == Phase::Starting)
        log(LogLevel::Info, fmt::format("upgrade requested while no worker serves: starting gen={} now", next_gen_));
    start_upgrade();
}

void UpgradeMachine::on(const StopRequested&) {
    if (stopped_) return;  // ignore: already exiting
    if (stopping_) {
        log(LogLevel::Warn, fmt::format("second stop request: killing {} worker(s) now", workers_.size() + lingering_.size()));
        for (auto& w : workers_) {
            if (!w.killed) out_.push_back(KillGroup{w.pid});
            w.killed = true;
        }
        for (const auto& w : lingering_) {
            out_.push_back(CancelTimer{{TimerId::Kind::Drain, w.pid}});
            out_.push_back(KillGroup{w.pid});
        }
        lingering_.clear();
        finish_stop_if_done();
        return;
    }
    stopping_ = true;
    stop_at_ = now_;
    pending_upgrade_ = false;
    pre_checking_ = false;
    if (upgrade_gen_ != 0) verdict(upgrade_gen_, false, "stopped before the new generation was ready");
    upgrade_gen_ = 0;
    for (int s = 0; s < s_.workers; s++) {
        if (!respawn_pending_[static_cast<size_t>(s)]) continue;
        respawn_pending_[static_cast<size_t>(s)] = false;
        out_.push_back(CancelTimer{{TimerId::Kind::Respawn, s}});
    }
    log(LogLevel::Info, fmt::format("stopping: draining {} worker(s)", workers_.size()));
    out_.push_back(NotifySystemd{"STOPPING=1"});
    for (auto& w : workers_) {
        if (w.state == WorkerState::Starting) out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.pid}});
        if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) drain(w);
    }
    finish_stop_if_done();
}

void UpgradeMachine::on(const WorkerSpawned& e) {
    if (stopping()) {
        // Spawning is synchronous in the shell, so this cannot follow a stop; a stray
        // worker is still one we must not keep.
        out_.push_back(KillGroup{e.pid});
        log(LogLevel::Error, fmt::format("unexpected spawn result gen={} pid={}: killed", e.gen, e.pid));
        return;
    }
    spawned_any_ = true;
    workers_.push_back(Worker{e.gen, e.slot, e.pid, WorkerState::Starting, now_, {}, {}, false, {}});
    bool notify = s_.ready_mode == ReadyMode::Notify;
    log(LogLevel::Info, fmt::format("spawned gen={} pid={} ready={} {}={}ms{}", e.gen, e.pid, notify ? "notify" : "delay",
                                    notify ? "timeout" : "delay", (notify ? s_.ready_timeout : s_.ready_delay).count(),
                                    slot_tag(e.slot)));
    out_.push_back(StartTimer{{TimerId::Kind::Ready, e.pid}, notify ? s_.ready_timeout : s_.ready_delay});
}

void UpgradeMachine::on(const SpawnFailed& e) {
    if (stopping()) return;  // ignore: nothing is spawned once a stop began
    if (!spawned_any_) {
        // The very first worker cannot run: a startup error, not a crash to retry.
        stopped_ = true;
        log(LogLevel::Error, fmt::format("cannot start gen={}: {}", e.gen, e.reason));
        int code = e.err == ENOENT ? kExitNotFound
                   : (e.err == EACCES || e.err == ENOEXEC || e.err == EISDIR) ? kExitNotExecutable
                                                                              : kExitSystem;
        out_.push_back(Exit{code});
        return;
    }
    if (e.gen == upgrade_gen_) upgrade_failed(e.reason + slot_tag(e.slot));
    else slot_failed(e.slot, e.gen, e.reason);
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
    if (!e.msg.ready || w->state != WorkerState::Starting) return;  // ignore: READY=1 repeated, or draining
    if (s_.ready_mode == ReadyMode::Delay) {
        log(LogLevel::Debug, fmt::format("READY=1 from gen={} pid={} noted; --ready delay decides", w->gen, w->pid));
        return;
    }
    become_ready(*w);
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
    if (e.group_alive && !w.killed && w.state != WorkerState::Draining) {
        // What a failed or crashed worker left behind would accept on the shared socket.
        out_.push_back(KillGroup{w.pid});
        log(LogLevel::Warn, fmt::format("killed the process group of gen={} pid={}: it outlived its leader", w.gen, w.pid));
    }
    switch (w.state) {
    case WorkerState::Draining:
        log(w.killed ? LogLevel::Warn : LogLevel::Info,
            fmt::format("exited gen={} pid={} {} drain_ms={} uptime_ms={}{}", w.gen, w.pid, how, since(w.drain_at).count(),
                        since(w.spawned_at).count(), slot_tag(w.slot)));
        if (w.killed) break;
        if (e.group_alive) {
            // Its children may still finish requests; they get the rest of the drain time.
            lingering_.push_back(w);
            log(LogLevel::Warn, fmt::format("process group of gen={} pid={} outlives it: killed at the drain deadline",
                                            w.gen, w.pid));
        } else {
            out_.push_back(CancelTimer{{TimerId::Kind::Drain, w.pid}});
        }
        break;
    case WorkerState::Failed:
        log(LogLevel::Info, fmt::format("reaped failed gen={} pid={} {}", w.gen, w.pid, how));
        break;
    case WorkerState::Starting: {
        out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.pid}});
        std::string reason = fmt::format("exited before ready ({}) after {}ms", how, since(w.spawned_at).count());
        if (w.gen == upgrade_gen_) upgrade_failed(reason + slot_tag(w.slot));
        else slot_failed(w.slot, w.gen, reason);
        break;
    }
    case WorkerState::Ready:
        if (w.gen == upgrade_gen_ && slot_gen_[static_cast<size_t>(w.slot)] != w.gen) {
            upgrade_failed(fmt::format("pid={} died after ready ({}) before the generation was complete{}", w.pid, how,
                                       slot_tag(w.slot)));
            break;
        }
        backoff_[static_cast<size_t>(w.slot)].note_uptime(since(w.ready_at));
        log(LogLevel::Warn, fmt::format("worker died gen={} pid={} {} uptime_ms={}{}", w.gen, w.pid, how,
                                        since(w.spawned_at).count(), slot_tag(w.slot)));
        out_.push_back(NotifySystemd{fmt::format("STATUS=gen={} pid={} died ({}); restarting", w.gen, w.pid, how)});
        ensure_slots();
        break;
    }
    finish_stop_if_done();
}

void UpgradeMachine::on(const TimerFired& e) {
    switch (e.id.kind) {
    case TimerId::Kind::Ready: {
        Worker* w = find(e.id.key);
        if (w == nullptr || w->state != WorkerState::Starting) return;  // ignore: stale timer
        if (s_.ready_mode == ReadyMode::Delay) {
            become_ready(*w);
            return;
        }
        w->state = WorkerState::Failed;
        w->killed = true;
        out_.push_back(KillGroup{w->pid});
        std::string reason = fmt::format("no READY=1 within the ready timeout of {}", format_duration(s_.ready_timeout));
        if (w->gen == upgrade_gen_) upgrade_failed(reason + slot_tag(w->slot));
        else slot_failed(w->slot, w->gen, reason);
        return;
    }
    case TimerId::Kind::Drain: {
        auto it = std::find_if(lingering_.begin(), lingering_.end(), [&](const Worker& x) { return x.pid == e.id.key; });
        if (it != lingering_.end()) {
            log(LogLevel::Warn, fmt::format("drain timeout gen={} pid={} after {}: killing the process group it left behind",
                                            it->gen, it->pid, format_duration(s_.drain_timeout)));
            out_.push_back(KillGroup{it->pid});
            lingering_.erase(it);
            finish_stop_if_done();
            return;
        }
        Worker* w = find(e.id.key);
        if (w == nullptr || w->state != WorkerState::Draining || w->killed) return;  // ignore: stale timer
        w->killed = true;
        log(LogLevel::Warn, fmt::format("drain timeout gen={} pid={} after {}: killing its process group", w->gen,
                                        w->pid, format_duration(s_.drain_timeout)));
        out_.push_back(KillGroup{w->pid});
        return;
    }
    case TimerId::Kind::Respawn: {
        int slot = e.id.key;
        if (slot < 0 || slot >= s_.workers || !respawn_pending_[static_cast<size_t>(slot)]) return;  // ignore: cancelled
        respawn_pending_[static_cast<size_t>(slot)] = false;
        if (stopping() || slot_staffed(slot)) return;  // ignore: something else took over
        spawn(slot_gen_[static_cast<size_t>(slot)], slot);
        return;
    }
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

void UpgradeMachine::on(const PreCheckDone& e) {
    if (!pre_checking_ || e.gen != upgrade_gen_) return;  // ignore: a stop came first
    pre_checking_ = false;
    if (!e.ok) {
        upgrade_failed(e.reason);
        return;
    }
    log(LogLevel::Info, fmt::format("pre-check passed gen={} after_ms={}", e.gen, since(upgrade_at_).count()));
    spawn_upgrade_workers();
}

// A lingering worker's leftovers are all gone before its drain deadline: nothing is left
// to kill, so its timer stops and a stop need not wait for it.
void UpgradeMachine::on(const GroupGone& e) {
    auto it = std::find_if(lingering_.begin(), lingering_.end(), [&](const Worker& x) { return x.pid == e.pid; });
    if (it == lingering_.end()) return;  // ignore: killed at the deadline already, or never lingering
    log(LogLevel::Info, fmt::format("process group of gen={} pid={} gone after_ms={}", it->gen, it->pid,
                                    since(it->drain_at).count()));
    out_.push_back(CancelTimer{{TimerId::Kind::Drain, it->pid}});
    lingering_.erase(it);
    finish_stop_if_done();
}

// --- transitions ----------------------------------------------------------------------

void UpgradeMachine::spawn(uint64_t gen, int slot) { out_.push_back(Spawn{gen, slot}); }

void UpgradeMachine::start_upgrade() {
    pending_upgrade_ = false;
    upgrade_gen_ = next_gen_++;
    upgrade_at_ = now_;
    upgrade_from_gen_ = serving_gen();
    roll_slot_ = 0;
    log(LogLevel::Info, fmt::format("upgrade started gen={} serving_gen={}{}", upgrade_gen_, serving_gen(),
                                    s_.workers > 1 ? fmt::format(" workers={} mode={}", s_.workers, s_.rolling ? "rolling" : "all") : ""));
    out_.push_back(UpgradeStarted{upgrade_gen_});
    out_.push_back(NotifySystemd{fmt::format("RELOADING=1\nSTATUS=upgrading to gen={}", upgrade_gen_)});
    if (!s_.rolling) {
        // The new generation takes every slot: restarts waiting out a backoff are moot
        // (and come back if the upgrade fails).
        for (int s = 0; s < s_.workers; s++) {
            if (!respawn_pending_[static_cast<size_t>(s)]) continue;
            respawn_pending_[static_cast<size_t>(s)] = false;
            out_.push_back(CancelTimer{{TimerId::Kind::Respawn, s}});
        }
    }
    if (s_.pre_check) {
        pre_checking_ = true;
        out_.push_back(RunPreCheck{upgrade_gen_});
        return;
    }
    spawn_upgrade_workers();
}

void UpgradeMachine::spawn_upgrade_workers() {
    if (s_.rolling) {
        roll_slot_ = 0;
        spawn(upgrade_gen_, 0);
        return;
    }
    for (int s = 0; s < s_.workers; s++) spawn(upgrade_gen_, s);
}

void UpgradeMachine::become_ready(Worker& w) {
    out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.pid}});
    w.state = WorkerState::Ready;
    w.ready_at = now_;
    log(LogLevel::Info, fmt::format("ready gen={} pid={} after_ms={}{}", w.gen, w.pid, since(w.spawned_at).count(), slot_tag(w.slot)));
    if (w.gen != upgrade_gen_) {
        check_booted();  // a boot or respawned worker of its slot's generation
        return;
    }
    if (s_.rolling) {
        replace_slot(w.slot, w.gen);
        if (++roll_slot_ < s_.workers) spawn(upgrade_gen_, roll_slot_);
        else finish_upgrade();
        return;
    }
    auto ready = std::count_if(workers_.begin(), workers_.end(), [&](const Worker& x) {
        return x.gen == upgrade_gen_ && x.state == WorkerState::Ready;
    });
    if (ready < s_.workers) return;  // all at once: wait for the whole generation
    for (int s = 0; s < s_.workers; s++) replace_slot(s, upgrade_gen_);
    finish_upgrade();
}

// `gen` takes over `slot`: older workers of the slot drain, a waiting restart is moot.
void UpgradeMachine::replace_slot(int slot, uint64_t gen) {
    slot_gen_[static_cast<size_t>(slot)] = gen;
    for (auto& other : workers_) {
        if (other.slot != slot || other.gen >= gen) continue;
        if (other.state == WorkerState::Starting) out_.push_back(CancelTimer{{TimerId::Kind::Ready, other.pid}});
        if (other.state == WorkerState::Starting || other.state == WorkerState::Ready) drain(other);
    }
    if (respawn_pending_[static_cast<size_t>(slot)]) {
        respawn_pending_[static_cast<size_t>(slot)] = false;
        out_.push_back(CancelTimer{{TimerId::Kind::Respawn, slot}});
    }
}

void UpgradeMachine::finish_upgrade() {
    uint64_t gen = upgrade_gen_;
    std::string pids;
    for (const auto& w : workers_)
        if (w.gen == gen && w.state == WorkerState::Ready) pids += (pids.empty() ? "" : ",") + std::to_string(w.pid);
    log(LogLevel::Info, fmt::format("upgrade done gen={} pid={} replaced_gen={} after_ms={}", gen, pids, upgrade_from_gen_,
                                    since(upgrade_at_).count()));
    upgrade_gen_ = 0;
    booted_ = true;
    verdict(gen, true, "");
    out_.push_back(NotifySystemd{fmt::format("READY=1\nSTATUS=serving gen={} pid={}", gen, pids)});
    if (pending_upgrade_) start_upgrade();
}

void UpgradeMachine::drain(Worker& w) {
    w.state = WorkerState::Draining;
    w.drain_at = now_;
    log(LogLevel::Info, fmt::format("draining gen={} pid={} signal={} timeout={}{}", w.gen, w.pid,
                                    signal_name(s_.drain_signal), format_duration(s_.drain_timeout), slot_tag(w.slot)));
    out_.push_back(Signal{w.pid, s_.drain_signal});
    out_.push_back(StartTimer{{TimerId::Kind::Drain, w.pid}, s_.drain_timeout});
}

// The upgrade in flight failed: what of it is not serving a slot yet is killed; the
// slots keep their generation.
void UpgradeMachine::upgrade_failed(const std::string& why) {
    uint64_t gen = upgrade_gen_;
    std::string reason = why;
    int kept = static_cast<int>(std::count(slot_gen_.begin(), slot_gen_.end(), gen));
    if (kept > 0)
        reason += fmt::format(" (the roll stopped: {} of {} slots run gen={}, the rest their previous generation)", kept,
                              s_.workers, gen);
    for (auto& w : workers_) {
        if (w.gen != gen || slot_gen_[static_cast<size_t>(w.slot)] == gen) continue;
        if (w.state == WorkerState::Starting) out_.push_back(CancelTimer{{TimerId::Kind::Ready, w.pid}});
        if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) {
            w.state = WorkerState::Failed;
            w.killed = true;
            out_.push_back(KillGroup{w.pid});
        }
    }
    upgrade_gen_ = 0;
    pre_checking_ = false;
    log(LogLevel::Warn, fmt::format("upgrade failed gen={} reason=\"{}\" serving_gen={} (still serving)", gen, reason, serving_gen()));
    verdict(gen, false, reason);
    out_.push_back(NotifySystemd{fmt::format("READY=1\nSTATUS=upgrade to gen={} failed: {}; serving gen={}", gen,
                                             reason, serving_gen())});
    ensure_slots();
    if (pending_upgrade_) start_upgrade();
}

// A worker of a slot's own generation (boot or respawn) did not come up.
void UpgradeMachine::slot_failed(int slot, uint64_t gen, const std::string& what) {
    log(LogLevel::Warn, fmt::format("start failed gen={} reason=\"{}\"{}{}", gen, what, slot_tag(slot),
                                    phase() == Phase::Starting ? " (nothing serving)" : ""));
    ensure_slots();
    // An upgrade asked for while this one started: try the new code at once.
    if (pending_upgrade_ && upgrade_gen_ == 0) start_upgrade();
}

// Restarts every slot that has no live worker of its generation, except the slots an
// upgrade in flight is about to take (all of them, or the one being rolled): restarting
// the old generation there would only run the new binary under the old number. If that
// upgrade fails, upgrade_failed() calls this again.
void UpgradeMachine::ensure_slots() {
    if (stopping()) return;
    for (int s = 0; s < s_.workers; s++) {
        if (upgrade_gen_ != 0 && (!s_.rolling || s == roll_slot_)) continue;
        if (!slot_staffed(s) && !respawn_pending_[static_cast<size_t>(s)]) schedule_respawn(s);
    }
}

void UpgradeMachine::schedule_respawn(int slot) {
    Millis delay = backoff_[static_cast<size_t>(slot)].next();
    respawn_pending_[static_cast<size_t>(slot)] = true;
    log(LogLevel::Warn, fmt::format("respawn gen={} in_ms={}{}", slot_gen_[static_cast<size_t>(slot)], delay.count(), slot_tag(slot)));
    out_.push_back(StartTimer{{TimerId::Kind::Respawn, slot}, delay});
}

// The first generation is up once every slot has a ready worker.
void UpgradeMachine::check_booted() {
    if (booted_) return;
    for (int s = 0; s < s_.workers; s++) {
        bool ready = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
            return w.slot == s && w.gen == slot_gen_[static_cast<size_t>(s)] && w.state == WorkerState::Ready;
        });
        if (!ready) return;
    }
    booted_ = true;
    std::string pids;
    for (const auto& w : workers_)
        if (w.state == WorkerState::Ready) pids += (pids.empty() ? "" : ",") + std::to_string(w.pid);
    out_.push_back(NotifySystemd{fmt::format("READY=1\nSTATUS=serving gen={} pid={}", serving_gen(), pids)});
    if (pending_upgrade_) start_upgrade();
}

void UpgradeMachine::finish_stop_if_done() {
    if (!stopping_ || stopped_ || !workers_.empty() || !lingering_.empty()) return;
    stopped_ = true;
    log(LogLevel::Info, fmt::format("stopped after_ms={}", since(stop_at_).count()));
    out_.push_back(Exit{kExitOk});
}

void UpgradeMachine::verdict(uint64_t gen, bool ok, const std::string& reason) {
    out_.push_back(UpgradeVerdict{gen, ok, reason});
}

std::string UpgradeMachine::check_invariants() const {
    for (int s = 0; s < s_.workers; s++) {
        int ready_current = 0, ready_new = 0;
        for (const auto& w : workers_) {
            if (w.slot != s || w.state != WorkerState::Ready) continue;
            if (w.gen == slot_gen_[static_cast<size_t>(s)]) ready_current++;
            else if (w.gen == upgrade_gen_) ready_new++;
            else return fmt::format("slot {}: ready worker pid={} of gen={} is neither the slot's nor the upgrade's", s, w.pid, w.gen);
        }
        if (ready_current > 1 || ready_new > 1) return fmt::format("slot {}: more than one ready worker of a generation", s);
        if (respawn_pending_[static_cast<size_t>(s)] && slot_staffed(s))
            return fmt::format("slot {}: a respawn waits although a worker is live", s);
    }
    for (const auto& w : workers_) {
        if (w.state == WorkerState::Starting && w.gen != slot_gen_[static_cast<size_t>(w.slot)] && w.gen != upgrade_gen_)
            return fmt::format("starting worker pid={} gen={} belongs to no slot target and no upgrade", w.pid, w.gen);
        if ((w.state == WorkerState::Starting || w.state == WorkerState::Ready) && stopping())
            return "a live worker while stopping";
    }
    if (stopping() && std::find(respawn_pending_.begin(), respawn_pending_.end(), true) != respawn_pending_.end())
        return "a respawn waits while stopping";
    if (pre_checking_ && upgrade_gen_ == 0) return "a pre-check runs with no upgrade";
    return "";
}

} // namespace sv
