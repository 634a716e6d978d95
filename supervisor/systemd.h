// Our own sd_notify to the service manager that started us (READY=1, RELOADING=1,
// STOPPING=1, STATUS=). Workers never see systemd's socket: they get ours.
#pragma once

#include <string>

namespace sv {

class SystemdNotifier {
public:
    // Takes NOTIFY_SOCKET from the environment and removes it, so no child inherits it.
    static SystemdNotifier from_environment();

    bool enabled() const { return !socket_.empty(); }
    // Sends `state`; RELOADING=1 gets the MONOTONIC_USEC= that systemd requires with it.
    // Returns 1 sent, 0 disabled, -errno.
    int send(const std::string& state) const;

private:
    std::string socket_;
};

} // namespace sv
