// Listening sockets: bound once at startup, blocking, close-on-exec in the supervisor,
// shared by every generation of workers.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "supervisor/address.h"
#include "supervisor/result.h"
#include "supervisor/unique_fd.h"

namespace sv {

struct Listener {
    ListenSpec spec;
    UniqueFd fd;
    std::string address;  // as bound: "127.0.0.1:41235", "[::1]:80", "8080" (all interfaces), "/run/app.sock"
    ino_t unix_inode = 0; // the socket file we created, removed on exit only if still ours
};

// Binds every spec in order. SO_REUSEADDR on TCP, never SO_REUSEPORT. A bare port binds
// [::] dual-stack (falling back to 0.0.0.0 without IPv6); "[::]:P" is IPv6 only. A stale
// unix socket file (nobody accepting) is replaced; a live one is refused.
// Errors read "cannot bind 127.0.0.1:80: Permission denied".
Result<std::vector<Listener>> bind_listeners(const std::vector<ListenSpec>& specs, int backlog);

// Removes the unix socket files we created (if they are still the ones we bound).
void remove_unix_socket_files(const std::vector<Listener>& listeners);

} // namespace sv
