// Our own sd_notify to the service manager that started us (READY=1, RELOADING=1,
// STOPPING=1, STATUS=, WATCHDOG=1, and the fd store). Workers never see systemd's socket,
// nor its watchdog variables: they get ours.
#pragma once

#include <optional>
#include <string>

#include "supervisor/config.h"

namespace sv {

class SystemdNotifier {
public:
    // Takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment and removes
    // them, so no child inherits them (a worker pinging systemd's watchdog would hide a hung
    // supervisor). A malformed WATCHDOG_USEC is logged (warn) and no watchdog is kept.
    static SystemdNotifier from_environment();

    bool enabled() const { return !socket_.empty(); }
    // The watchdog period systemd asked of us (WatchdogSec=), none when not asked.
    std::optional<Millis> watchdog_period() const { return watchdog_; }

    // Sends `state`; RELOADING=1 gets the MONOTONIC_USEC= that systemd requires with it.
    // Returns 1 sent, 0 disabled, -errno.
    int send(const std::string& state) const;

    // Hands `fd` to systemd's fd store under `name` (FDSTORE=1, FDNAME=, the fd as
    // SCM_RIGHTS; see sd_pid_notify_with_fds(3)): systemd keeps it across our restarts and
    // passes it back in LISTEN_FDS. Returns 1 sent, 0 disabled, -errno.
    int store_fd(const std::string& name, int fd) const;
    // Drops every fd stored under `name` (FDSTOREREMOVE=1). Returns 1 sent, 0 disabled, -errno.
    int remove_stored_fds(const std::string& name) const;

private:
    std::string socket_;
    std::optional<Millis> watchdog_;
};

} // namespace sv
