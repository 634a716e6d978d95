// The machine's state out and back in, for `ctl reexec`: only a machine with nothing in
// flight is exported (no upgrade, no pre-check, no stop), so what is carried is slots,
// workers, timers and counters; the restored machine is checked like any other.
#include <string>

#include "supervisor/upgrade_machine.h"

namespace sv {

bool same_worker(const Worker& a, const Worker& b) {
    return a.id == b.id && a.gen == b.gen && a.slot == b.slot && a.pid == b.pid && a.state == b.state &&
           a.spawned_at == b.spawned_at && a.ready_at == b.ready_at && a.drain_at == b.drain_at && a.killed == b.killed &&
           a.spoke == b.spoke && a.notified == b.notified && a.watched == b.watched && a.seen == b.seen &&
           a.status == b.status;
}

std::string UpgradeMachine::not_exportable() const {
    if (upgrade_) return "an upgrade is in flight (gen " + std::to_string(upgrade_->gen) + "); retry when it is decided";
    if (pending_upgrade_) return "an upgrade is queued; retry when it is decided";
    switch (phase_) {
    case Phase::Starting:
    case Phase::Serving: return "";
    case Phase::Upgrading: return "an upgrade is in flight; retry when it is decided";
    case Phase::Stopping:
    case Phase::Stopped: return "a stop is in progress";
    }
    return "unknown phase";
}

MachineState UpgradeMachine::export_state() const {
    MachineState st;
    st.phase = phase_;
    for (const auto& sl : slots_) st.slots.push_back({sl.gen, sl.backoff.peek(), sl.respawn_pending});
    st.workers = workers_;
    st.lingering = lingering_;
    st.timers = timers_;
    st.next_gen = next_gen_;
    st.next_worker_id = next_worker_id_;
    st.hung_total = hung_total_;
    st.booted = booted_;
    st.spawned_any = spawned_any_;
    st.stop_at = stop_at_;
    st.now = now_;
    return st;
}

namespace {

// What a restored state must satisfy beyond the invariants: numbers in range, ids unique.
std::string state_problem(const MachineSettings& s, const MachineState& st) {
    if (st.phase != Phase::Starting && st.phase != Phase::Serving)
        return std::string("phase ") + to_string(st.phase) + " cannot be resumed";
    if (st.slots.size() != static_cast<size_t>(s.workers))
        return std::to_string(st.slots.size()) + " slots, but --workers " + std::to_string(s.workers);
    std::vector<uint64_t> ids;
    for (const auto* list : {&st.workers, &st.lingering})
        for (const auto& w : *list) {
            if (w.slot < 0 || w.slot >= s.workers) return "worker id " + std::to_string(w.id) + " has slot " + std::to_string(w.slot);
            if (w.pid <= 0) return "worker id " + std::to_string(w.id) + " has pid " + std::to_string(w.pid);
            if (w.id == 0 || w.id >= st.next_worker_id) return "worker id " + std::to_string(w.id) + " is out of range";
            if (w.gen == 0 || w.gen >= st.next_gen) return "worker id " + std::to_string(w.id) + " has gen " + std::to_string(w.gen);
            for (uint64_t id : ids)
                if (id == w.id) return "worker id " + std::to_string(w.id) + " appears twice";
            ids.push_back(w.id);
        }
    for (const auto& sl : st.slots)
        if (sl.gen >= st.next_gen || sl.backoff_next.count() <= 0) return "a slot's generation or backoff is out of range";
    return "";
}

} // namespace

Result<UpgradeMachine> UpgradeMachine::restore(MachineSettings settings, const MachineState& st) {
    if (auto why = state_problem(settings, st); !why.empty()) return Error{EINVAL, why};
    UpgradeMachine m(settings);
    m.phase_ = st.phase;
    for (size_t i = 0; i < st.slots.size(); i++) {
        m.slots_[i].gen = st.slots[i].gen;
        m.slots_[i].backoff.resume_at(st.slots[i].backoff_next);
        m.slots_[i].respawn_pending = st.slots[i].respawn_pending;
    }
    m.workers_ = st.workers;
    m.lingering_ = st.lingering;
    m.timers_ = st.timers;
    m.next_gen_ = st.next_gen;
    m.next_worker_id_ = st.next_worker_id;
    m.hung_total_ = st.hung_total;
    m.booted_ = st.booted;
    m.spawned_any_ = st.spawned_any;
    m.stop_at_ = st.stop_at;
    m.now_ = st.now;
    if (auto broken = m.check_invariants(); !broken.empty()) return Error{EINVAL, "the state breaks an invariant: " + broken};
    return m;
}

} // namespace sv
