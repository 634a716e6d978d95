// The upgrade state machine's invariants (stated in upgrade_machine.h), checked after every
// step by the unit tests and the fuzzer, and by the running supervisor, which logs a broken
// one with describe() instead of aborting.
#include <algorithm>
#include <fmt/format.h>

#include "supervisor/upgrade_machine.h"

namespace sv {

namespace {

bool live(const Worker& w) { return w.state == WorkerState::Starting || w.state == WorkerState::Ready; }

const char* kind_name(TimerId::Kind k) {
    switch (k) {
    case TimerId::Kind::Ready: return "ready";
    case TimerId::Kind::Drain: return "drain";
    case TimerId::Kind::Respawn: return "respawn";
    case TimerId::Kind::Watchdog: return "watchdog";
    case TimerId::Kind::StopDelay: return "stop-delay";
    case TimerId::Kind::Probation: return "probation";
    }
    return "?";
}

} // namespace

std::string UpgradeMachine::invariant_of_phase() const {
    bool stopping = phase_ == Phase::Stopping || phase_ == Phase::Stopped;
    if ((phase_ == Phase::Upgrading) != upgrade_.has_value()) return "an upgrade is in flight if and only if Upgrading";
    if (phase_ == Phase::Serving && !booted_) return "Serving before the first generation was up";
    if (phase_ == Phase::Starting && booted_) return "Starting after the first generation was up";
    if (pending_upgrade_ && phase_ != Phase::Starting && phase_ != Phase::Upgrading)
        return fmt::format("an upgrade is pending in phase {}", to_string(phase_));
    if (!pending_upgrade_ && !pending_waiters_.empty()) return "clients wait for an upgrade that nobody queued";
    if (upgrade_ && upgrade_->pre_checking &&
        std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) { return w.gen == upgrade_->gen; }))
        return "a worker of the upgrade runs before its pre-check passed";
    if (upgrade_ && (upgrade_->roll_slot < 0 || upgrade_->roll_slot >= s_.workers)) return "the roll is past the last slot";
    if (lame_duck_ && phase_ != Phase::Stopping) return "the stop delay runs outside Stopping";
    if (upgrade_ && upgrade_->on_probation &&
        std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
            return w.gen == upgrade_->gen && w.state == WorkerState::Starting;
        }))
        return "a generation on probation has a worker still starting";
    if (!stopping) return "";
    if (std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.state == WorkerState::Starting; }))
        return "a starting worker while stopping";
    for (const auto& w : workers_)
        if (w.state == WorkerState::Ready && (!lame_duck_ || w.gen != slot(w.slot).gen))
            return fmt::format("ready worker pid={} while stopping{}", w.pid, lame_duck_ ? ", not its slot's" : " after the stop delay");
    if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& sl) { return sl.respawn_pending; }))
        return "a respawn waits while stopping";
    if (pending_upgrade_ || !pending_waiters_.empty()) return "an upgrade waits while stopping";
    if (phase_ == Phase::Stopped && !timers_.empty()) return "a timer runs after the machine exited";
    return "";
}

std::string UpgradeMachine::invariant_of_timers() const {
    for (const auto& w : workers_) {
        bool ready_timer = timer_running({TimerId::Kind::Ready, w.id});
        bool drain_timer = timer_running({TimerId::Kind::Drain, w.id});
        if ((w.state == WorkerState::Starting) != ready_timer)
            return fmt::format("worker pid={} is {} but its ready timer {}", w.pid, to_string(w.state),
                               ready_timer ? "runs" : "does not");
        if (w.state == WorkerState::Draining && !w.killed && !drain_timer)
            return fmt::format("draining worker pid={} has no drain timer", w.pid);
    }
    for (const auto& w : lingering_)
        if (!timer_running({TimerId::Kind::Drain, w.id})) return fmt::format("lingering pid={} has no drain timer", w.pid);
    for (int s = 0; s < s_.workers; s++)
        if (slot(s).respawn_pending != timer_running({TimerId::Kind::Respawn, static_cast<uint64_t>(s)}))
            return fmt::format("slot {}: respawn pending and its timer disagree", s);
    for (const auto& id : timers_) {
        bool owned = false;
        switch (id.kind) {
        case TimerId::Kind::Ready:
        case TimerId::Kind::Drain:
            owned = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) { return w.id == id.key; }) ||
                    std::any_of(lingering_.begin(), lingering_.end(), [&](const Worker& w) { return w.id == id.key; });
            break;
        case TimerId::Kind::Respawn: owned = id.key < static_cast<uint64_t>(s_.workers); break;
        case TimerId::Kind::Watchdog:
            // Only a live worker that is not being killed is watched.
            owned = std::any_of(workers_.begin(), workers_.end(),
                                [&](const Worker& w) { return w.id == id.key && live(w) && !w.killed; });
            break;
        case TimerId::Kind::StopDelay: owned = lame_duck_ && id.key == 0; break;
        case TimerId::Kind::Probation: owned = upgrade_ && upgrade_->on_probation && id.key == upgrade_->gen; break;
        }
        if (!owned) return fmt::format("{} timer {} belongs to nothing", kind_name(id.kind), id.key);
    }
    if (lame_duck_ != timer_running({TimerId::Kind::StopDelay, 0})) return "the stop delay and its timer disagree";
    if (upgrade_ && upgrade_->on_probation && !timer_running({TimerId::Kind::Probation, upgrade_->gen}))
        return fmt::format("gen={} is on probation without its timer", upgrade_->gen);
    return "";
}

std::string UpgradeMachine::check_invariants() const {
    if (auto broken = invariant_of_phase(); !broken.empty()) return broken;
    if (auto broken = invariant_of_timers(); !broken.empty()) return broken;
    uint64_t upgrade_gen = upgrade_ ? upgrade_->gen : 0;
    for (int s = 0; s < s_.workers; s++) {
        int ready_current = 0, ready_new = 0;
        for (const auto& w : workers_) {
            if (w.slot != s || w.state != WorkerState::Ready) continue;
            if (w.gen == slot(s).gen) ready_current++;
            else if (w.gen == upgrade_gen) ready_new++;
            else return fmt::format("slot {}: ready worker pid={} of gen={} is neither the slot's nor the upgrade's", s, w.pid, w.gen);
        }
        if (ready_current > 1 || ready_new > 1) return fmt::format("slot {}: more than one ready worker of a generation", s);
        if (slot(s).respawn_pending && slot_staffed(s)) return fmt::format("slot {}: a respawn waits although a worker is live", s);
    }
    for (const auto& w : workers_) {
        if (w.slot < 0 || w.slot >= s_.workers) return fmt::format("worker pid={} has no slot", w.pid);
        if (w.state == WorkerState::Starting && w.gen != slot(w.slot).gen && w.gen != upgrade_gen)
            return fmt::format("starting worker pid={} gen={} belongs to no slot target and no upgrade", w.pid, w.gen);
        if (std::count_if(workers_.begin(), workers_.end(), [&](const Worker& x) { return x.pid == w.pid; }) > 1)
            return fmt::format("pid={} is two workers", w.pid);
    }
    return "";
}

std::string UpgradeMachine::describe() const {
    std::string text = fmt::format("phase={} serving_gen={} upgrade_gen={} pending={} booted={}{}{}", to_string(phase_),
                                   serving_gen(), upgrade_ ? upgrade_->gen : 0, pending_upgrade_, booted_,
                                   upgrade_ && upgrade_->on_probation ? " probation" : "", lame_duck_ ? " stop_delay" : "");
    for (int s = 0; s < s_.workers; s++)
        text += fmt::format(" slot{}=[gen={}{}]", s, slot(s).gen, slot(s).respawn_pending ? " respawn" : "");
    for (const auto& w : workers_)
        text += fmt::format(" worker=[id={} gen={} slot={} pid={} {}{}]", w.id, w.gen, w.slot, w.pid, to_string(w.state), w.killed ? " killed" : "");
    for (const auto& w : lingering_) text += fmt::format(" lingering=[gen={} pid={}]", w.gen, w.pid);
    for (const auto& id : timers_) text += fmt::format(" timer=[{} {}]", kind_name(id.kind), id.key);
    return text;
}

} // namespace sv
