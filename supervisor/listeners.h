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
    bool adopted = false; // passed by the service manager (socket unit or fd store), not bound by us
};

// Ownership and mode of unix listener files (-1: leave as bind(2) and the umask make them).
struct UnixSocketOptions {
    int mode = -1;
    int uid = -1;
    int gid = -1;
};

// How listeners are created: O_NONBLOCK from the start (--nonblocking), since the flag is
// shared by every generation and nobody should flip it later.
struct SocketFlags {
    bool nonblocking = false;
};

// Resolves --socket-owner USER[:GROUP] (names or numbers). Errors name the unknown part.
Result<UnixSocketOptions> resolve_socket_owner(const std::string& owner, int mode);

// Binds every spec in order. SO_REUSEADDR on TCP, never SO_REUSEPORT. A bare port binds
// [::] dual-stack (falling back to 0.0.0.0 without IPv6); "[::]:P" is IPv6 only. A stale
// unix socket file (nobody accepting) is replaced; a live one is refused.
// Errors read "cannot bind 127.0.0.1:80: Permission denied".
Result<std::vector<Listener>> bind_listeners(const std::vector<ListenSpec>& specs, int backlog,
                                             const UnixSocketOptions& unix_opts = {}, SocketFlags flags = {});

// A socket file at `path` that nobody accepts on is removed; a live one is refused
// ("cannot bind <display>: another process is listening on it"), and so is a file
// that is not a socket. `display` names the socket in messages ("unix:/run/app.sock").
Result<Ok> clear_stale_unix_socket(const std::string& path, const std::string& display);

// Socket activation: when LISTEN_FDS/LISTEN_PID name this process, takes fds 3.. as
// listeners (names from LISTEN_FDNAMES, "unknown" when absent), marks them close-on-exec
// and removes the variables. Returns none when not socket-activated.
Result<std::vector<Listener>> adopt_systemd_listeners();

// The listeners to run with: every spec whose NAME matches an adopted socket takes that
// socket, the others are bound; with no specs, all adopted sockets in order. Adopted
// sockets nobody asked for are closed (and named in `unused`).
Result<std::vector<Listener>> merge_listeners(std::vector<Listener> adopted, const std::vector<ListenSpec>& specs,
                                              int backlog, const UnixSocketOptions& unix_opts, SocketFlags flags,
                                              std::vector<std::string>* unused);

// At a stop, once nobody will accept again: closes our copies of the listeners that nobody
// else holds, so a late client is refused (ECONNREFUSED) once the draining workers have
// closed theirs. Adopted ones (socket activation, the fd store) stay, and every one stays
// when `fd_store_may_hold` (we run under systemd and stored them). Returns how many closed.
size_t close_own_listeners(std::vector<Listener>& listeners, bool fd_store_may_hold);

// Removes the unix socket files we created (if they are still the ones we bound).
void remove_unix_socket_files(const std::vector<Listener>& listeners);

} // namespace sv
