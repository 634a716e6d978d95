// What `ctl upgrade` shows while it waits: the machine's worker table diffed after each
// step into progress events (spawned, ready, probation, draining, failed, exited), one JSON
// object each. Pure: derived from the machine's state and the event it just handled, so
// the machine knows nothing of it. See protocol/CONTROL.md ("Progress events").
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <vector>

#include "supervisor/upgrade_machine.h"

namespace sv {

class ProgressTracker {
public:
    // The events since the last call, in the order they happened within the step.
    std::vector<nlohmann::json> update(const UpgradeMachine& m, const Event& cause, Millis now);

private:
    struct Seen {
        uint64_t gen = 0;
        int slot = 0;
        WorkerState state = WorkerState::Starting;
    };
    std::map<int, Seen> seen_;  // by pid
    uint64_t upgrading_ = 0;
    bool probation_ = false;
};

// How the worker was judged ready, for people: "accepting, epoll", "READY=1", "delay".
std::string ready_how(const Worker& w);

} // namespace sv
