// The upgrade state machine's stop: the stop delay (lame duck: the ready workers keep
// serving while the service reports not ready), the drain, the escalation, the exit.
#include <algorithm>
#include <fmt/format.h>

#include "supervisor/upgrade_machine.h"

namespace sv {

namespace {

std::string seconds(Millis d) { return fmt::format("{:.1f}s", static_cast<double>(d.count()) / 1000); }

} // namespace

void UpgradeMachine::begin_stop() {
    phase_ = Phase::Stopping;
    stop_at_ = now_;
    pending_upgrade_ = false;
    if (upgrade_) {
        auto waiters = std::move(upgrade_->waiters);
        uint64_t gen = upgrade_->gen;
        bool probation = upgrade_->on_probation;
        cancel_timer({TimerId::Kind::Probation, gen});
        upgrade_.reset();
        verdict(gen, false, probation ? "stopped during probation" : "stopped before the new generation was ready",
                std::move(waiters));
    }
    refuse_waiters(pending_waiters_, "the supervisor is stopping");
    for (int s = 0; s < s_.workers; s++) {
        if (!slot(s).respawn_pending) continue;
        slot(s).respawn_pending = false;
        cancel_timer({TimerId::Kind::Respawn, static_cast<uint64_t>(s)});
    }
    bool serving = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return w.state == WorkerState::Ready && w.gen == slot(w.slot).gen;
    });
    if (s_.stop_delay.count() == 0 || !serving) {
        log(LogLevel::Info, fmt::format("stopping: draining {} worker(s)", workers_.size()));
        out_.push_back(NotifySystemd{SdState::Stopping, "stopping"});
        drain_for_stop();
        return;
    }
    // Lame duck: only the slots' own ready workers serve on; what was still coming up (or
    // belonged to the upgrade just decided) drains now.
    lame_duck_ = true;
    for (auto& w : workers_) {
        if (w.state == WorkerState::Ready && w.gen == slot(w.slot).gen) continue;
        if (w.state == WorkerState::Starting) cancel_timer({TimerId::Kind::Ready, w.id});
        if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) drain(w);
    }
    start_timer({TimerId::Kind::StopDelay, 0}, s_.stop_delay);
    log(LogLevel::Info, fmt::format("stopping: stop delay {}: gen={} keeps serving, reported not ready; draining after",
                                    format_duration(s_.stop_delay), serving_gen()));
    out_.push_back(NotifySystemd{SdState::Stopping, fmt::format("stopping in {} (stop delay)", seconds(s_.stop_delay))});
}

// The drain signal goes to every live worker; nobody accepts on the listeners after this.
void UpgradeMachine::drain_for_stop() {
    for (auto& w : workers_) {
        if (w.state == WorkerState::Starting) cancel_timer({TimerId::Kind::Ready, w.id});
        if (w.state == WorkerState::Starting || w.state == WorkerState::Ready) drain(w);
    }
    out_.push_back(CloseListeners{});
    finish_stop_if_done();
}

void UpgradeMachine::end_stop_delay(const char* why) {
    lame_duck_ = false;
    cancel_timer({TimerId::Kind::StopDelay, 0});
    log(LogLevel::Info, fmt::format("stopping: {} after_ms={}: draining {} worker(s)", why, since(stop_at_).count(),
                                    workers_.size()));
    out_.push_back(NotifySystemd{SdState::Status, "stopping: draining"});
    drain_for_stop();
}

// A second stop signal (during the stop delay: SIGINT): no more waiting for anyone.
void UpgradeMachine::kill_everything() {
    log(LogLevel::Warn, fmt::format("second stop request: killing {} worker(s) now", workers_.size() + lingering_.size()));
    if (lame_duck_) {
        lame_duck_ = false;
        cancel_timer({TimerId::Kind::StopDelay, 0});
        out_.push_back(CloseListeners{});
    }
    for (auto& w : workers_) {
        if (w.state == WorkerState::Ready) {  // served during the stop delay
            w.state = WorkerState::Draining;
            w.drain_at = now_;
        }
        if (!w.killed) out_.push_back(KillGroup{w.pid});
        cancel_timer({TimerId::Kind::Watchdog, w.id});
        w.killed = true;
    }
    for (const auto& w : lingering_) {
        cancel_timer({TimerId::Kind::Drain, w.id});
        out_.push_back(KillGroup{w.pid});
    }
    lingering_.clear();
    finish_stop_if_done();
}

void UpgradeMachine::finish_stop_if_done() {
    if (phase_ != Phase::Stopping || !workers_.empty() || !lingering_.empty()) return;
    phase_ = Phase::Stopped;
    lame_duck_ = false;
    for (auto id : timers_) out_.push_back(CancelTimer{id});
    timers_.clear();
    log(LogLevel::Info, fmt::format("stopped after_ms={}", since(stop_at_).count()));
    out_.push_back(Exit{kExitOk});
}

} // namespace sv
