// Listener drift: a worker changing what every generation shares, against the contract.
// O_NONBLOCK lives on the open file description that the supervisor and every generation
// share, so a worker that sets it makes the others' blocking accept() fail with EAGAIN;
// a worker that unlinks a unix listener's path leaves new clients nothing to connect to.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "supervisor/listeners.h"

namespace sv {

// What check_drift() remembers between calls, one entry per listener.
struct DriftState {
    bool created_nonblocking = false;  // --nonblocking: what every listener was created with
    struct PerListener {
        bool nonblock_drift = false;
        bool path_drift = false;
        ino_t inode = 0;  // the unix socket file at bind (or at the first check, for adopted ones)
    };
    std::vector<PerListener> listeners;
};

// A change since the last call: a new drift (warn) or a recovery (info).
struct DriftChange {
    bool recovered = false;
    std::string text;
};

// One fcntl(F_GETFL) per listener, plus a stat(2) for unix ones with a path. Returns only
// what changed since the last call (each drift once, and once more when it goes away).
std::vector<DriftChange> check_drift(const std::vector<Listener>& listeners, DriftState& state);

// The drifts in effect for listener i, for the status document ("drift": [...]).
std::vector<std::string> current_drift(const std::vector<Listener>& listeners, const DriftState& state, size_t i);

} // namespace sv
