// The supervisor's notify socket: an abstract unix datagram socket with SO_PASSCRED, so
// every datagram is attributed to the sending pid by the kernel, never by its content.
#pragma once

#include <sys/types.h>

#include <string>

#include "supervisor/result.h"
#include "supervisor/unique_fd.h"

namespace sv {

struct NotifyDatagram {
    pid_t pid = 0;      // from SCM_CREDENTIALS; 0 when the kernel gave none
    std::string data;
};

class NotifySocket {
public:
    // Binds an abstract socket with a kernel-chosen unique name (autobind), non-blocking.
    static Result<NotifySocket> create();

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }  // "@…", for NOTIFY_SOCKET

    // Reads one datagram. Returns 1 with *out filled, 0 when nothing is pending (EAGAIN),
    // 2 when a datagram was dropped (oversized or without credentials), -errno on error.
    // File descriptors passed along (SCM_RIGHTS) are closed: we never store them.
    int receive(NotifyDatagram* out);

private:
    UniqueFd fd_;
    std::string name_;
};

} // namespace sv
