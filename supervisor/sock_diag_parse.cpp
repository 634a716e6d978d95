// Parsing NETLINK_SOCK_DIAG inet dumps (see sock_diag(7)), bounds-checked message by message.
#include "supervisor/sock_diag_parse.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sv {

namespace {

// unix_diag_msg, then rtattrs; UNIX_DIAG_NAME's payload is the sun_path bytes.
bool parse_unix_msg(const std::byte* body, size_t len, std::vector<DiagSocket>* out) {
    if (len < sizeof(unix_diag_msg)) return false;
    unix_diag_msg m;
    std::memcpy(&m, body, sizeof m);
    DiagSocket s;
    s.family = AF_UNIX;
    s.state = m.udiag_state;
    s.inode = m.udiag_ino;
    size_t off = NLMSG_ALIGN(sizeof m);
    while (off < len && len - off >= sizeof(rtattr)) {
        rtattr a;
        std::memcpy(&a, body + off, sizeof a);
        if (a.rta_len < sizeof a || a.rta_len > len - off) return false;
        if (a.rta_type == UNIX_DIAG_NAME)
            s.unix_path.assign(reinterpret_cast<const char*>(body + off + sizeof a), a.rta_len - sizeof a);
        // A path name is stored with its NUL; an abstract one starts with NUL and is kept whole.
        if (!s.unix_path.empty() && s.unix_path[0] != '\0') s.unix_path.resize(std::strlen(s.unix_path.c_str()));
        off += RTA_ALIGN(a.rta_len);
    }
    out->push_back(std::move(s));
    return true;
}

} // namespace

DiagChunk parse_inet_diag(std::span<const std::byte> datagram, std::vector<DiagSocket>* out, int* err) {
    size_t off = 0;
    while (datagram.size() - off >= sizeof(nlmsghdr)) {
        nlmsghdr h;
        std::memcpy(&h, datagram.data() + off, sizeof h);
        if (h.nlmsg_len < sizeof h || h.nlmsg_len > datagram.size() - off) {
            *err = EPROTO;
            return DiagChunk::Error;
        }
        const std::byte* body = datagram.data() + off + NLMSG_HDRLEN;
        size_t body_len = h.nlmsg_len >= NLMSG_HDRLEN ? h.nlmsg_len - NLMSG_HDRLEN : 0;
        if (h.nlmsg_type == NLMSG_DONE) return DiagChunk::Done;
        if (h.nlmsg_type == NLMSG_ERROR) {
            nlmsgerr e{};
            if (body_len >= sizeof e) std::memcpy(&e, body, sizeof e);
            // An errno, negated; anything else (0, INT_MIN: -INT_MIN overflows) is a broken reply.
            *err = e.error < 0 && e.error > -4096 ? -e.error : EPROTO;
            return DiagChunk::Error;
        }
        if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY && body_len >= 1 && static_cast<uint8_t>(body[0]) == AF_UNIX) {
            if (!parse_unix_msg(body, body_len, out)) {
                *err = EPROTO;
                return DiagChunk::Error;
            }
        } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            if (body_len < sizeof(inet_diag_msg)) {
                *err = EPROTO;
                return DiagChunk::Error;
            }
            inet_diag_msg m;
            std::memcpy(&m, body, sizeof m);
            DiagSocket s;
            s.family = m.idiag_family;
            s.state = m.idiag_state;
            std::memcpy(s.local.data(), m.id.idiag_src, s.local.size());
            s.local_port = ntohs(m.id.idiag_sport);
            s.inode = m.idiag_inode;
            out->push_back(s);
        }
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step > datagram.size() - off) break;
        off += step;
    }
    return DiagChunk::More;
}

namespace {

// ::ffff:a.b.c.d → a.b.c.d (an IPv4 peer accepted on a dual-stack socket).
bool v4_mapped(const std::array<uint8_t, 16>& a) {
    static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.data(), prefix, sizeof prefix) == 0;
}

bool same_address(const DiagSocket& s, const ListenerEndpoint& l) {
    if (s.family == l.family) return std::memcmp(s.local.data(), l.addr.data(), l.family == AF_INET ? 4 : 16) == 0;
    if (s.family == AF_INET6 && l.family == AF_INET && v4_mapped(s.local))
        return std::memcmp(s.local.data() + 12, l.addr.data(), 4) == 0;
    return false;
}

} // namespace

bool is_unix_listener_connection(const DiagSocket& s, const std::vector<std::string>& paths) {
    return s.family == AF_UNIX && !s.unix_path.empty() && std::find(paths.begin(), paths.end(), s.unix_path) != paths.end();
}

bool is_listener_connection(const DiagSocket& s, const std::vector<ListenerEndpoint>& listeners) {
    if (s.family != AF_INET && s.family != AF_INET6) return false;
    return std::any_of(listeners.begin(), listeners.end(), [&](const ListenerEndpoint& l) {
        if (l.port != s.local_port) return false;
        if (l.any) return l.family == AF_INET6 || s.family == AF_INET || v4_mapped(s.local);
        return same_address(s, l);
    });
}

} // namespace sv
