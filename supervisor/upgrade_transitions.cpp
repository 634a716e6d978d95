// The upgrade state machine's transitions: what the table in upgrade_machine.cpp calls.
// Every phase change happens here, in the functions that name it.
#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

#include "supervisor/upgrade_machine.h"

namespace sv {

namespace {

std::string pid_list(const std::vector<Worker>& workers, uint64_t gen) {
    std::string pids;
    for (const auto& w : workers)
        if (w.gen == gen && w.state == WorkerState::Ready) pids += (pids.empty() ? "" : ",") + std::to_string(w.pid);
    return pids;
}

} // namespace

void UpgradeMachine::boot() {
    uint64_t gen = next_gen_++;
    for (auto& sl : slots_) sl.gen = gen;
    for (int s = 0; s < s_.workers; s++) out_.push_back(Spawn{gen, s});
}

// --- upgrades -----------------------------------------------------------------------------

void UpgradeMachine::queue_upgrade(uint64_t client) {
    pending_waiters_.push_back(client);
    if (pending_upgrade_) {
        log(LogLevel::Debug, "upgrade request merged into the one already queued");
        return;
    }
    pending_upgrade_ = true;
    log(LogLevel::Info, upgrade_ ? fmt::format("upgrade queued behind gen={}, which is still starting", upgrade_->gen)
                                 : fmt::format("upgrade queued: gen={} is still starting", serving_gen()));
}

void UpgradeMachine::start_upgrade() {
    pending_upgrade_ = false;
    Upgrade u;
    u.gen = next_gen_++;
    u.at = now_;
    u.from_gen = serving_gen();
    std::erase(pending_waiters_, uint64_t{0});  // 0: a signal, nobody to answer
    u.waiters = std::move(pending_waiters_);
    pending_waiters_.clear();
    upgrade_ = std::move(u);
    phase_ = Phase::Upgrading;
    log(LogLevel::Info, fmt::format("upgrade started gen={} serving_gen={}{}", upgrade_->gen, serving_gen(),
                                    s_.workers > 1 ? fmt::format(" workers={} mode={}", s_.workers, s_.rolling ? "rolling" : "all") : ""));
    out_.push_back(NotifySystemd{SdState::Reloading, fmt::format("upgrading to gen={}", upgrade_->gen)});
    // Restarts waiting out a backoff in the slots the upgrade takes are moot (and come back
    // if the upgrade fails).
    for (int s = 0; s < s_.workers; s++) {
        if (!slot(s).respawn_pending || respawn_allowed(s)) continue;
        slot(s).respawn_pending = false;
        cancel_timer({TimerId::Kind::Respawn, static_cast<uint64_t>(s)});
    }
    if (s_.pre_check) {
        upgrade_->pre_checking = true;
        out_.push_back(RunPreCheck{upgrade_->gen});
        return;
    }
    spawn_upgrade_workers();
}

void UpgradeMachine::spawn_upgrade_workers() {
    if (s_.rolling) {
        out_.push_back(Spawn{upgrade_->gen, upgrade_->roll_slot});
        return;
    }
    for (int s = 0; s < s_.workers; s++) out_.push_back(Spawn{upgrade_->gen, s});
}

void UpgradeMachine::finish_upgrade() {
    uint64_t gen = upgrade_->gen;
    std::string pids = pid_list(workers_, gen);
    log(LogLevel::Info, fmt::format("upgrade done gen={} pid={} replaced_gen={} after_ms={}", gen, pids, upgrade_->from_gen,
                                    since(upgrade_->at).count()));
    auto waiters = std::move(upgrade_->waiters);
    upgrade_.reset();
    booted_ = true;
    phase_ = Phase::Serving;
    verdict(gen, true, "", std::move(waiters));
    out_.push_back(NotifySystemd{SdState::Ready, fmt::format("serving gen={} pid={}", gen, pids)});
    after_upgrade();
}

// The upgrade in flight failed: what of it is not serving a slot yet is killed; the slots
// keep their generation.
void UpgradeMachine::upgrade_failed(const std::string& why) {
    uint64_t gen = upgrade_->gen;
    cancel_timer({TimerId::Kind::Probation, gen});
    std::string reason = why;
    int kept = static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [&](const Slot& sl) { return sl.gen == gen; }));
    if (kept > 0)
        reason += fmt::format(" (the roll stopped: {} of {} slots run gen={}, the rest their previous generation)", kept,
                              s_.workers, gen);
    for (auto& w : workers_) {
        if (w.gen != gen || slot(w.slot).gen == gen) continue;
        if (w.state == WorkerState::Starting) cancel_timer({TimerId::Kind::Ready, w.id});
        if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) {
            cancel_timer({TimerId::Kind::Watchdog, w.id});
            w.state = WorkerState::Failed;
            w.killed = true;
            out_.push_back(KillGroup{w.pid});
        }
    }
    auto waiters = std::move(upgrade_->waiters);
    upgrade_.reset();
    phase_ = booted_ ? Phase::Serving : Phase::Starting;
    log(LogLevel::Warn, fmt::format("upgrade failed gen={} reason=\"{}\" serving_gen={} (still serving)", gen, reason, serving_gen()));
    verdict(gen, false, reason, std::move(waiters));
    out_.push_back(NotifySystemd{SdState::Ready, fmt::format("upgrade to gen={} failed: {}; serving gen={}", gen, reason,
                                                             serving_gen())});
    ensure_slots();
    after_upgrade();
}

// A decided upgrade makes way for the one queued behind it.
void UpgradeMachine::after_upgrade() {
    if (pending_upgrade_) start_upgrade();
}

void UpgradeMachine::verdict(uint64_t gen, bool ok, const std::string& reason, std::vector<uint64_t> waiters) {
    out_.push_back(UpgradeVerdict{gen, ok, reason});
    for (uint64_t c : waiters) out_.push_back(AnswerUpgrade{c, gen, ok, reason, serving_gen()});
}

void UpgradeMachine::refuse_waiters(std::vector<uint64_t>& waiters, const std::string& why) {
    for (uint64_t c : waiters)
        if (c != 0) out_.push_back(AnswerUpgrade{c, 0, false, why, serving_gen()});
    waiters.clear();
}

// --- spawns -------------------------------------------------------------------------------

// A spawn whose result a later decision made moot (defect: the rest of a cancelled
// generation kept serving): killed at once, and tracked until reaped.
void UpgradeMachine::reject_spawn(const WorkerSpawned& e, const char* why) {
    spawned_any_ = true;
    workers_.push_back(new_worker(e, WorkerState::Failed));
    workers_.back().killed = true;
    out_.push_back(KillGroup{e.pid});
    log(LogLevel::Warn, fmt::format("killed gen={} pid={}{}: {}", e.gen, e.pid, slot_tag(e.slot), why));
}

void UpgradeMachine::spawn_failed(const SpawnFailed& e) {
    if (upgrade_ && e.gen == upgrade_->gen && !upgrade_->pre_checking) {
        upgrade_failed(e.reason + slot_tag(e.slot));
        return;
    }
    if (e.slot >= 0 && e.slot < s_.workers && e.gen == slot(e.slot).gen && !slot_staffed(e.slot)) {
        slot_failed(e.slot, e.gen, e.reason);
        return;
    }
    log(LogLevel::Debug, fmt::format("spawn of gen={} failed after its generation was decided: {}", e.gen, e.reason));
}

// The very first worker cannot run: a startup error, not a crash to retry.
void UpgradeMachine::startup_failed(const SpawnFailed& e) {
    phase_ = Phase::Stopped;
    log(LogLevel::Error, fmt::format("cannot start gen={}: {}", e.gen, e.reason));
    int code = e.err == ENOENT ? kExitNotFound
               : (e.err == EACCES || e.err == ENOEXEC || e.err == EISDIR) ? kExitNotExecutable
                                                                          : kExitSystem;
    for (auto id : timers_) out_.push_back(CancelTimer{id});
    timers_.clear();
    refuse_waiters(pending_waiters_, "the supervisor could not start its first worker");
    pending_upgrade_ = false;
    out_.push_back(Exit{code});
}

// --- workers ------------------------------------------------------------------------------

void UpgradeMachine::worker_exited(const Worker& w, const WorkerExited& e) {
    std::string how = describe_wait_status(e.wait_status);
    cancel_timer({TimerId::Kind::Watchdog, w.id});
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
        if (!w.killed && e.group_alive) {
            // Its children may still finish requests; they get the rest of the drain time.
            lingering_.push_back(w);
            log(LogLevel::Warn, fmt::format("process group of gen={} pid={} outlives it: killed at the drain deadline unless it exits first",
                                            w.gen, w.pid));
        } else {
            cancel_timer({TimerId::Kind::Drain, w.id});
        }
        return;
    case WorkerState::Failed: log(LogLevel::Info, fmt::format("reaped failed gen={} pid={} {}", w.gen, w.pid, how)); return;
    case WorkerState::Starting: {
        cancel_timer({TimerId::Kind::Ready, w.id});
        std::string reason = fmt::format("exited before ready ({}) after {}ms", how, since(w.spawned_at).count());
        if (upgrade_ && w.gen == upgrade_->gen) upgrade_failed(reason + slot_tag(w.slot));
        else slot_failed(w.slot, w.gen, reason);
        return;
    }
    case WorkerState::Ready:
        if (upgrade_ && w.gen == upgrade_->gen && slot(w.slot).gen != w.gen) {
            upgrade_failed(upgrade_->on_probation ? probation_failure(w, how)
                                                  : fmt::format("pid={} died after ready ({}) before the generation was complete{}",
                                                                w.pid, how, slot_tag(w.slot)));
            return;
        }
        slot(w.slot).backoff.note_uptime(since(w.ready_at));
        log(LogLevel::Warn, fmt::format("worker died gen={} pid={} {} uptime_ms={}{}", w.gen, w.pid, how,
                                        since(w.spawned_at).count(), slot_tag(w.slot)));
        out_.push_back(NotifySystemd{SdState::Status, fmt::format("gen={} pid={} died ({}){}", w.gen, w.pid, how,
                                                                  phase_ == Phase::Stopping ? "" : "; restarting")});
        ensure_slots();
        return;
    }
}

void UpgradeMachine::drain_timer(uint64_t id) {
    auto it = std::find_if(lingering_.begin(), lingering_.end(), [&](const Worker& x) { return x.id == id; });
    if (it != lingering_.end()) {
        log(LogLevel::Warn, fmt::format("drain timeout gen={} pid={} after {}: killing the process group it left behind",
                                        it->gen, it->pid, format_duration(s_.drain_timeout)));
        out_.push_back(KillGroup{it->pid});
        lingering_.erase(it);
        finish_stop_if_done();
        return;
    }
    Worker* w = find_id(id);
    if (w == nullptr || w->state != WorkerState::Draining || w->killed) return;  // ignore: stale
    w->killed = true;
    log(LogLevel::Warn, fmt::format("drain timeout gen={} pid={} after {}: killing its process group", w->gen, w->pid,
                                    format_duration(s_.drain_timeout)));
    out_.push_back(KillGroup{w->pid});
}

void UpgradeMachine::respawn_timer(int s) {
    if (s < 0 || s >= s_.workers || !slot(s).respawn_pending) return;  // ignore: cancelled
    slot(s).respawn_pending = false;
    if (phase_ == Phase::Stopping || slot_staffed(s) || !respawn_allowed(s)) return;  // ignore: taken over
    out_.push_back(Spawn{slot(s).gen, s});
}

void UpgradeMachine::become_ready(Worker& w) {
    cancel_timer({TimerId::Kind::Ready, w.id});
    w.state = WorkerState::Ready;
    w.ready_at = now_;
    log(LogLevel::Info, fmt::format("ready gen={} pid={} after_ms={}{}{}", w.gen, w.pid, since(w.spawned_at).count(),
                                    w.seen.empty() ? "" : " seen=" + w.seen, slot_tag(w.slot)));
    if (!upgrade_ || w.gen != upgrade_->gen) {
        check_booted();  // a boot or respawned worker of its slot's generation
        return;
    }
    if (s_.rolling) {
        if (s_.probation.count() > 0) start_probation();
        else slot_ready(w);
        return;
    }
    auto ready = std::count_if(workers_.begin(), workers_.end(), [&](const Worker& x) {
        return x.gen == upgrade_->gen && x.state == WorkerState::Ready;
    });
    if (ready < s_.workers) return;  // all at once: wait for the whole generation
    if (s_.probation.count() > 0) start_probation();
    else generation_ready();
}

// Rolling: the new worker of the slot being rolled takes it over; the next slot starts.
void UpgradeMachine::slot_ready(Worker& w) {
    replace_slot(w.slot, w.gen);
    if (++upgrade_->roll_slot < s_.workers) out_.push_back(Spawn{upgrade_->gen, upgrade_->roll_slot});
    else finish_upgrade();
}

// All at once: the whole new generation is ready (and past its probation) and takes every slot.
void UpgradeMachine::generation_ready() {
    for (int s = 0; s < s_.workers; s++) replace_slot(s, upgrade_->gen);
    finish_upgrade();
}

// `gen` takes over `s`: older workers of the slot drain, a waiting restart is moot.
void UpgradeMachine::replace_slot(int s, uint64_t gen) {
    slot(s).gen = gen;
    for (auto& other : workers_) {
        if (other.slot != s || other.gen >= gen) continue;
        if (other.state == WorkerState::Starting) cancel_timer({TimerId::Kind::Ready, other.id});
        if (other.state == WorkerState::Starting || other.state == WorkerState::Ready) drain(other);
    }
    if (slot(s).respawn_pending) {
        slot(s).respawn_pending = false;
        cancel_timer({TimerId::Kind::Respawn, static_cast<uint64_t>(s)});
    }
}

void UpgradeMachine::drain(Worker& w) {
    cancel_timer({TimerId::Kind::Watchdog, w.id});
    w.state = WorkerState::Draining;
    w.drain_at = now_;
    log(LogLevel::Info, fmt::format("draining gen={} pid={} signal={} timeout={}{}", w.gen, w.pid,
                                    signal_name(s_.drain_signal), format_duration(s_.drain_timeout), slot_tag(w.slot)));
    out_.push_back(Signal{w.pid, s_.drain_signal});
    start_timer({TimerId::Kind::Drain, w.id}, s_.drain_timeout);
}

// A worker of a slot's own generation (boot or respawn) did not come up.
void UpgradeMachine::slot_failed(int s, uint64_t gen, const std::string& what) {
    log(LogLevel::Warn, fmt::format("start failed gen={} reason=\"{}\"{}{}", gen, what, slot_tag(s),
                                    phase_ == Phase::Starting ? " (nothing serving)" : ""));
    ensure_slots();
    // An upgrade asked for while this one started: try the new code at once.
    if (pending_upgrade_ && !upgrade_) start_upgrade();
}

// Restarts every slot that has no live worker of its generation, except the slots an
// upgrade in flight is about to take. If that upgrade fails, upgrade_failed() calls this again.
void UpgradeMachine::ensure_slots() {
    if (phase_ == Phase::Stopping || phase_ == Phase::Stopped) return;
    for (int s = 0; s < s_.workers; s++)
        if (respawn_allowed(s) && !slot_staffed(s) && !slot(s).respawn_pending) schedule_respawn(s);
}

void UpgradeMachine::schedule_respawn(int s) {
    Millis delay = slot(s).backoff.next();
    slot(s).respawn_pending = true;
    log(LogLevel::Warn, fmt::format("respawn gen={} in_ms={}{}", slot(s).gen, delay.count(), slot_tag(s)));
    start_timer({TimerId::Kind::Respawn, static_cast<uint64_t>(s)}, delay);
}

// The first generation is up once every slot has a ready worker.
void UpgradeMachine::check_booted() {
    if (booted_) return;
    for (int s = 0; s < s_.workers; s++) {
        bool ready = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
            return w.slot == s && w.gen == slot(s).gen && w.state == WorkerState::Ready;
        });
        if (!ready) return;
    }
    booted_ = true;
    std::string pids;
    for (const auto& w : workers_)
        if (w.state == WorkerState::Ready) pids += (pids.empty() ? "" : ",") + std::to_string(w.pid);
    out_.push_back(NotifySystemd{SdState::Ready, fmt::format("serving gen={} pid={}", serving_gen(), pids)});
    if (phase_ == Phase::Starting) {
        phase_ = Phase::Serving;
        after_upgrade();
    }
}

} // namespace sv
