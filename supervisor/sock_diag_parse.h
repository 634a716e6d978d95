// sock_diag replies (pure): the sockets in a NETLINK_SOCK_DIAG inet dump, and which of them
// are connections accepted on one of our listeners. The syscalls are in connections.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sv {

struct DiagSocket {
    int family = 0;                    // AF_INET or AF_INET6
    uint8_t state = 0;                 // TCP_ESTABLISHED, …
    std::array<uint8_t, 16> local{};   // network order; 4 bytes used for AF_INET
    uint16_t local_port = 0;           // host order
    uint64_t inode = 0;
    std::string unix_path;             // AF_UNIX: the bound name (UNIX_DIAG_NAME); accepted sockets carry the listener's
};

// A listener's local endpoint; `any`: bound to the wildcard (0.0.0.0 or ::), so every local
// address with its port is one of its connections.
struct ListenerEndpoint {
    int family = 0;
    std::array<uint8_t, 16> addr{};
    uint16_t port = 0;
    bool any = false;
};

// One datagram of a dump (inet_diag_msg, or unix_diag_msg with its UNIX_DIAG_NAME
// attribute): its messages' sockets are appended to *out.
enum class DiagChunk {
    More,   // read the next datagram
    Done,   // NLMSG_DONE: the dump is complete
    Error,  // NLMSG_ERROR (then *err is the positive errno) or a malformed message (EPROTO)
};
DiagChunk parse_inet_diag(std::span<const std::byte> datagram, std::vector<DiagSocket>* out, int* err);

// True when `s` is a connection accepted on one of `listeners` (its local address and port
// are a listener's; an IPv4 peer of a dual-stack listener shows as ::ffff:a.b.c.d).
bool is_listener_connection(const DiagSocket& s, const std::vector<ListenerEndpoint>& listeners);
// The same for a unix stream listener bound to `path`: an accepted socket has its name.
bool is_unix_listener_connection(const DiagSocket& s, const std::vector<std::string>& paths);

} // namespace sv
