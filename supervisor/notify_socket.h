// The supervisor's notify socket: a unix datagram socket with SO_PASSCRED, so every
// datagram is attributed to the sending pid by the kernel, never by its content. By default
// a path in a private directory (every sd_notify client can use it); `abstract` on request.
#pragma once

#include <sys/types.h>

#include <string>

#include "supervisor/config.h"
#include "supervisor/result.h"
#include "supervisor/unique_fd.h"

namespace sv {

struct NotifyDatagram {
    pid_t pid = 0;      // from SCM_CREDENTIALS; 0 when the kernel gave none
    std::string data;
};

class NotifySocket {
public:
    // Path: binds <dir>/notify in a fresh directory (mkdtemp under $RUNTIME_DIRECTORY,
    // $XDG_RUNTIME_DIR or /tmp). The directory is 0700 when workers run as we do; with
    // --user/--group (worker_gid >= 0, we are root) it is 0710 root:<worker gid> and the
    // socket 0660: the workers can send, nobody but us can replace or remove the socket.
    // Abstract: a kernel-chosen unique abstract name (autobind), nothing on disk.
    // Non-blocking. The directory and socket are removed by the destructor.
    static Result<NotifySocket> create(NotifySocketKind kind = NotifySocketKind::Path, int worker_gid = -1);
    // `ctl reexec`: the socket the previous image created; `dir` is removed at exit ("": none).
    static NotifySocket adopt(int fd, std::string name, std::string dir);
    const std::string& dir() const { return dir_; }
    NotifySocket() = default;
    ~NotifySocket();
    NotifySocket(NotifySocket&& o) noexcept;
    NotifySocket& operator=(NotifySocket&& o) noexcept;

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }  // a path or "@…", for NOTIFY_SOCKET

    // Reads one datagram. Returns 1 with *out filled, 0 when nothing is pending (EAGAIN),
    // 2 when a datagram was dropped (oversized or without credentials), -errno on error.
    // File descriptors passed along (SCM_RIGHTS) are closed: we never store them.
    int receive(NotifyDatagram* out);

private:
    Result<Ok> bind_abstract();
    Result<Ok> bind_path(int worker_gid);
    void remove_files();

    UniqueFd fd_;
    std::string name_;
    std::string dir_;  // ours to remove (Path only)
};

} // namespace sv
