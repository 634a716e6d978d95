// The upgrade state machine's probation (--probation): a ready new generation (rolling: the
// new worker of one slot) serves beside the old one for a while before it takes over; if it
// dies meanwhile the upgrade fails and the old one, never drained, keeps serving.
#include <algorithm>
#include <fmt/format.h>

#include "supervisor/upgrade_machine.h"

namespace sv {

void UpgradeMachine::start_probation() {
    upgrade_->on_probation = true;
    upgrade_->probation_at = now_;
    uint64_t gen = upgrade_->gen;
    start_timer({TimerId::Kind::Probation, gen}, s_.probation);
    std::string pids;
    for (const auto& w : workers_)
        if (w.gen == gen && w.state == WorkerState::Ready) pids += (pids.empty() ? "" : ",") + std::to_string(w.pid);
    log(LogLevel::Info, fmt::format("probation gen={} pid={} for={}{}: the old generation serves beside it until then", gen,
                                    pids, format_duration(s_.probation), s_.rolling ? slot_tag(upgrade_->roll_slot) : ""));
    out_.push_back(NotifySystemd{SdState::Status, fmt::format("gen={} on probation for {}", gen, format_duration(s_.probation))});
}

void UpgradeMachine::probation_timer(uint64_t gen) {
    if (!upgrade_ || upgrade_->gen != gen || !upgrade_->on_probation) return;  // ignore: stale
    upgrade_->on_probation = false;
    log(LogLevel::Info, fmt::format("probation passed gen={} after_ms={}{}", gen, since(upgrade_->probation_at).count(),
                                    s_.rolling ? slot_tag(upgrade_->roll_slot) : ""));
    if (!s_.rolling) {
        generation_ready();
        return;
    }
    int s = upgrade_->roll_slot;
    auto it = std::find_if(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return w.gen == gen && w.slot == s && w.state == WorkerState::Ready;
    });
    if (it == workers_.end()) return;  // cannot happen: its death failed the upgrade and cancelled this timer
    slot_ready(*it);
}

// "died 2.1s after ready during probation (exit=1, pid=812)".
std::string UpgradeMachine::probation_failure(const Worker& w, const std::string& how) const {
    return fmt::format("died {:.1f}s after ready during probation ({}, pid={}){}", static_cast<double>(since(w.ready_at).count()) / 1000,
                       how, w.pid, slot_tag(w.slot));
}

} // namespace sv
