// sock_diag inet dumps: messages, errors, truncation, and matching to listeners.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>

#include "supervisor/sock_diag_parse.h"

using namespace sv;

namespace {

void append_msg(std::vector<std::byte>* out, uint16_t type, const void* body, size_t len) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(len));
    h.nlmsg_type = type;
    size_t at = out->size();
    out->resize(at + NLMSG_SPACE(len));
    std::memcpy(out->data() + at, &h, sizeof h);
    if (len > 0) std::memcpy(out->data() + at + NLMSG_HDRLEN, body, len);
}

void append_socket(std::vector<std::byte>* out, int family, const char* local, uint16_t port, uint32_t inode) {
    inet_diag_msg m{};
    m.idiag_family = static_cast<uint8_t>(family);
    m.idiag_state = TCP_ESTABLISHED;
    inet_pton(family, local, m.id.idiag_src);
    m.id.idiag_sport = htons(port);
    m.idiag_inode = inode;
    append_msg(out, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
}

// unix_diag_msg with a UNIX_DIAG_NAME attribute of `name` (NUL included for a path, as the kernel stores it).
void append_unix(std::vector<std::byte>* out, const std::string& name, uint32_t inode) {
    unix_diag_msg m{};
    m.udiag_family = AF_UNIX;
    m.udiag_state = TCP_ESTABLISHED;
    m.udiag_ino = inode;
    std::vector<std::byte> body(sizeof m + RTA_SPACE(name.size()));
    std::memcpy(body.data(), &m, sizeof m);
    rtattr a{static_cast<unsigned short>(RTA_LENGTH(name.size())), UNIX_DIAG_NAME};
    std::memcpy(body.data() + sizeof m, &a, sizeof a);
    std::memcpy(body.data() + sizeof m + sizeof a, name.data(), name.size());
    append_msg(out, SOCK_DIAG_BY_FAMILY, body.data(), body.size());
}

ListenerEndpoint endpoint(int family, const char* addr, uint16_t port, bool any = false) {
    ListenerEndpoint e;
    e.family = family;
    inet_pton(family, addr, e.addr.data());
    e.port = port;
    e.any = any;
    return e;
}

DiagSocket socket_at(int family, const char* local, uint16_t port) {
    DiagSocket s;
    s.family = family;
    inet_pton(family, local, s.local.data());
    s.local_port = port;
    return s;
}

} // namespace

TEST_CASE("dump datagrams: sockets, then done") {
    std::vector<std::byte> d;
    append_socket(&d, AF_INET, "127.0.0.1", 8080, 111);
    append_socket(&d, AF_INET6, "::1", 8081, 222);
    std::vector<DiagSocket> out;
    int err = 0;
    CHECK_EQ(parse_inet_diag(d, &out, &err), DiagChunk::More);
    REQUIRE_EQ(out.size(), 2u);
    CHECK_EQ(out[0].inode, 111u);
    CHECK_EQ(out[0].local_port, 8080);
    CHECK_EQ(out[0].family, AF_INET);
    CHECK_EQ(out[1].inode, 222u);
    CHECK_EQ(out[1].local[15], 1);
    std::vector<std::byte> done;
    int zero = 0;
    append_msg(&done, NLMSG_DONE, &zero, sizeof zero);
    CHECK_EQ(parse_inet_diag(done, &out, &err), DiagChunk::Done);
    CHECK_EQ(parse_inet_diag({}, &out, &err), DiagChunk::More);
}

TEST_CASE("errors and malformed datagrams") {
    std::vector<DiagSocket> out;
    int err = 0;
    std::vector<std::byte> e;
    nlmsgerr ne{};
    ne.error = -EPERM;
    append_msg(&e, NLMSG_ERROR, &ne, sizeof ne);
    CHECK_EQ(parse_inet_diag(e, &out, &err), DiagChunk::Error);
    CHECK_EQ(err, EPERM);
    SUBCASE("an error field that is no errno (INT_MIN would overflow when negated)") {
        std::vector<std::byte> d;
        nlmsgerr bad{};
        bad.error = INT32_MIN;
        append_msg(&d, NLMSG_ERROR, &bad, sizeof bad);
        CHECK_EQ(parse_inet_diag(d, &out, &err), DiagChunk::Error);
        CHECK_EQ(err, EPROTO);
    }
    SUBCASE("a length past the datagram") {
        std::vector<std::byte> d;
        append_socket(&d, AF_INET, "127.0.0.1", 1, 1);
        d.resize(d.size() - 8);
        CHECK_EQ(parse_inet_diag(d, &out, &err), DiagChunk::Error);
        CHECK_EQ(err, EPROTO);
    }
    SUBCASE("a socket message too short for inet_diag_msg") {
        std::vector<std::byte> d;
        char small[8] = {};
        append_msg(&d, SOCK_DIAG_BY_FAMILY, small, sizeof small);
        CHECK_EQ(parse_inet_diag(d, &out, &err), DiagChunk::Error);
    }
    SUBCASE("a length below the header") {
        std::vector<std::byte> d(sizeof(nlmsghdr));
        CHECK_EQ(parse_inet_diag(d, &out, &err), DiagChunk::Error);
    }
    CHECK(out.empty());
}

TEST_CASE("matching connections to listeners") {
    std::vector<ListenerEndpoint> ls{endpoint(AF_INET, "127.0.0.1", 8080)};
    CHECK(is_listener_connection(socket_at(AF_INET, "127.0.0.1", 8080), ls));
    CHECK_FALSE(is_listener_connection(socket_at(AF_INET, "127.0.0.2", 8080), ls));
    CHECK_FALSE(is_listener_connection(socket_at(AF_INET, "127.0.0.1", 8081), ls));
    CHECK(is_listener_connection(socket_at(AF_INET6, "::ffff:127.0.0.1", 8080), ls));
    SUBCASE("wildcard listeners take every local address with their port") {
        ls = {endpoint(AF_INET, "0.0.0.0", 80, true), endpoint(AF_INET6, "::", 443, true)};
        CHECK(is_listener_connection(socket_at(AF_INET, "10.1.2.3", 80), ls));
        CHECK_FALSE(is_listener_connection(socket_at(AF_INET6, "::1", 80), ls));
        CHECK(is_listener_connection(socket_at(AF_INET6, "::1", 443), ls));
        CHECK(is_listener_connection(socket_at(AF_INET, "10.1.2.3", 443), ls));  // dual-stack
    }
}

TEST_CASE("unix sockets: names, and matching to unix listeners") {
    std::vector<std::byte> d;
    append_unix(&d, std::string("/run/app.sock\0", 14), 7);
    append_unix(&d, std::string("\0abstract", 9), 8);
    append_unix(&d, "", 9);  // a client's unnamed socket
    std::vector<DiagSocket> out;
    int err = 0;
    REQUIRE_EQ(parse_inet_diag(d, &out, &err), DiagChunk::More);
    REQUIRE_EQ(out.size(), 3u);
    CHECK_EQ(out[0].unix_path, "/run/app.sock");
    CHECK_EQ(out[0].inode, 7u);
    CHECK_EQ(out[1].unix_path, std::string("\0abstract", 9));
    CHECK(out[2].unix_path.empty());
    std::vector<std::string> paths{"/run/app.sock"};
    CHECK(is_unix_listener_connection(out[0], paths));
    CHECK_FALSE(is_unix_listener_connection(out[1], paths));
    CHECK_FALSE(is_unix_listener_connection(out[2], paths));
    CHECK_FALSE(is_listener_connection(out[0], {endpoint(AF_INET, "0.0.0.0", 0, true)}));  // never a TCP one
    SUBCASE("an attribute longer than its message is malformed") {
        std::vector<std::byte> bad;
        append_unix(&bad, "/x", 1);
        auto* len = reinterpret_cast<unsigned short*>(bad.data() + NLMSG_HDRLEN + sizeof(unix_diag_msg));
        *len = 200;
        CHECK_EQ(parse_inet_diag(bad, &out, &err), DiagChunk::Error);
    }
}
