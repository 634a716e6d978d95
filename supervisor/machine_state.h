// MachineState: everything UpgradeMachine knows, as plain data, so a new supervisor image
// can carry on where the old one stopped (`ctl reexec`, resume_state.h). Times are Millis
// on the shell's clock (since the supervisor started), which a reexec keeps.
#pragma once

#include <cstdint>
#include <vector>

#include "supervisor/machine_types.h"

namespace sv {

struct MachineState {
    struct Slot {
        uint64_t gen = 0;
        Millis backoff_next{0};  // the delay the next respawn of this slot waits
        bool respawn_pending = false;
        bool operator==(const Slot&) const = default;
    };
    Phase phase = Phase::Starting;
    std::vector<Slot> slots;
    std::vector<Worker> workers;
    std::vector<Worker> lingering;  // reaped workers whose processes are not all gone yet
    std::vector<TimerId> timers;    // what the machine counts on the shell to run
    uint64_t next_gen = 1;
    uint64_t next_worker_id = 1;
    uint64_t hung_total = 0;
    bool booted = false;
    bool spawned_any = false;
    Millis stop_at{0};
    Millis now{0};  // the last time the machine was fed
    // Only a machine with nothing in flight is exported (see UpgradeMachine::exportable()).
};

// Worker has no operator==: field by field, for round-trip checks.
bool same_worker(const Worker& a, const Worker& b);

} // namespace sv
