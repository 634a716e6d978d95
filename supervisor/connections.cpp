// Counting connections: one sock_diag dump per address family, then each worker's fds.
#include "supervisor/connections.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <set>
#include <string>

#include "supervisor/proc_io.h"
#include "supervisor/proc_parse.h"
#include "supervisor/readiness_probe.h"
#include "supervisor/sock_diag_parse.h"
#include "supervisor/unique_fd.h"

namespace sv {

namespace {

// The local endpoints of our TCP listeners (getsockname of our own copies); *unix_paths
// gets the names of the unix stream ones.
std::vector<ListenerEndpoint> endpoints_of(const std::vector<Listener>& listeners, std::vector<std::string>* unix_paths) {
    std::vector<ListenerEndpoint> out;
    for (const auto& l : listeners) {
        sockaddr_storage sa{};
        socklen_t len = sizeof sa;
        if (::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) < 0) continue;
        ListenerEndpoint e;
        e.family = sa.ss_family;
        if (sa.ss_family == AF_INET) {
            const auto* v4 = reinterpret_cast<const sockaddr_in*>(&sa);
            std::memcpy(e.addr.data(), &v4->sin_addr, 4);
            e.port = ntohs(v4->sin_port);
            e.any = v4->sin_addr.s_addr == htonl(INADDR_ANY);
        } else if (sa.ss_family == AF_INET6) {
            const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&sa);
            std::memcpy(e.addr.data(), &v6->sin6_addr, 16);
            e.port = ntohs(v6->sin6_port);
            e.any = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
        } else {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&sa);
            size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
            std::string name(un->sun_path, std::min(n, sizeof un->sun_path));
            if (!name.empty() && name[0] != '\0') name.resize(std::strlen(name.c_str()));
            if (sa.ss_family == AF_UNIX && !name.empty()) unix_paths->push_back(name);
            continue;
        }
        out.push_back(e);
    }
    return out;
}

// Dumps the established sockets of `family` (TCP for AF_INET/AF_INET6, stream and
// seqpacket for AF_UNIX, with names) into *out. 0 or a negative errno.
int dump_established(int family, std::vector<DiagSocket>* out) {
    UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!fd.valid()) return -errno;
    timeval tv{2, 0};  // the kernel answers at once; never hang the loop on it
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct {
        nlmsghdr h;
        inet_diag_req_v2 r;
    } req{};
    struct {
        nlmsghdr h;
        unix_diag_req r;
    } ureq{};
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = static_cast<uint8_t>(family);
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << TCP_ESTABLISHED;
    ureq.h = req.h;
    ureq.h.nlmsg_len = sizeof ureq;
    ureq.r.sdiag_family = AF_UNIX;
    ureq.r.udiag_states = 1u << TCP_ESTABLISHED;
    ureq.r.udiag_show = UDIAG_SHOW_NAME;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    const void* msg = family == AF_UNIX ? static_cast<const void*>(&ureq) : static_cast<const void*>(&req);
    size_t msg_len = family == AF_UNIX ? sizeof ureq : sizeof req;
    if (::sendto(fd.get(), msg, msg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return -errno;
    std::vector<std::byte> buf(64 * 1024);
    for (;;) {
        ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -EPROTO;
        int err = 0;
        switch (parse_inet_diag({buf.data(), static_cast<size_t>(n)}, out, &err)) {
        case DiagChunk::More: continue;
        case DiagChunk::Done: return 0;
        case DiagChunk::Error: return -err;
        }
    }
}

// Socket inodes open in any of `pids` (/proc/PID/fd); a process gone meanwhile has none.
std::set<uint64_t> sockets_held_by(const std::vector<int>& pids) {
    std::set<uint64_t> out;
    for (int pid : pids) {
        UniqueFd dir = open_proc_dir(pid);
        if (!dir.valid()) continue;
        for (int fd : list_numbers(dir.get(), "fd")) {
            std::string path = "fd/" + std::to_string(fd);
            if (auto link = read_link(dir.get(), path.c_str()))
                if (auto ino = parse_socket_link(*link)) out.insert(*ino);
        }
    }
    return out;
}

} // namespace

Result<std::map<int, int64_t>> count_connections(const std::vector<int>& worker_pids, const std::vector<Listener>& listeners) {
    std::map<int, int64_t> counts;
    std::vector<std::string> unix_paths;
    auto endpoints = endpoints_of(listeners, &unix_paths);
    std::set<int> families;
    if (!unix_paths.empty()) families.insert(AF_UNIX);
    for (const auto& e : endpoints) families.insert(e.family == AF_INET6 ? AF_INET6 : AF_INET);
    if (families.count(AF_INET6) != 0) families.insert(AF_INET);  // dual-stack peers can show in either dump
    std::set<uint64_t> ours;  // inodes of connections accepted on our listeners
    for (int family : families) {
        std::vector<DiagSocket> sockets;
        if (int rc = dump_established(family, &sockets); rc < 0)
            return Error{-rc, std::string("cannot count connections: sock_diag (NETLINK_SOCK_DIAG) failed: ") + std::strerror(-rc)};
        for (const auto& s : sockets)
            if (is_listener_connection(s, endpoints) || is_unix_listener_connection(s, unix_paths)) ours.insert(s.inode);
    }
    for (int pid : worker_pids) {
        int64_t n = 0;
        for (uint64_t ino : sockets_held_by(list_generation_pids(pid))) n += static_cast<int64_t>(ours.count(ino));
        counts[pid] = n;
    }
    return counts;
}

} // namespace sv
