// --adopt-bind's pure C parts: address matching, SUPERVISOR_ADOPT, and the text helpers.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "supervisor/adopt/adopt_match.h"
#include "supervisor/adopt/adopt_text.h"

namespace {

struct Addr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

Addr v4(const char* ip, int port) {
    Addr a;
    auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, ip, &s->sin_addr);
    a.len = sizeof *s;
    return a;
}

Addr v6(const char* ip, int port, uint32_t scope = 0) {
    Addr a;
    auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(static_cast<uint16_t>(port));
    s->sin6_scope_id = scope;
    inet_pton(AF_INET6, ip, &s->sin6_addr);
    a.len = sizeof *s;
    return a;
}

// Pathname (with its NUL counted, as getsockname gives it) or abstract ("@name").
Addr unix_addr(const std::string& path, bool count_nul = true) {
    Addr a;
    auto* s = reinterpret_cast<sockaddr_un*>(&a.ss);
    s->sun_family = AF_UNIX;
    bool abstract = !path.empty() && path[0] == '@';
    std::memcpy(s->sun_path, path.data(), path.size());
    if (abstract) s->sun_path[0] = '\0';
    a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (count_nul && !abstract ? 1 : 0));
    return a;
}

int match(const Addr& listener, const Addr& req, int v6only = 0) {
    return adopt_match(listener.sa(), listener.len, v6only, req.sa(), req.len);
}

} // namespace

TEST_CASE("adopt_match: IPv4") {
    CHECK_EQ(match(v4("127.0.0.1", 8080), v4("127.0.0.1", 8080)), ADOPT_MATCH);
    CHECK_EQ(match(v4("127.0.0.1", 8080), v4("127.0.0.1", 8081)), ADOPT_NO);
    CHECK_EQ(match(v4("127.0.0.1", 8080), v4("127.0.0.2", 8080)), ADOPT_NO);
    SUBCASE("a wildcard listener serves every address of its port") {
        CHECK_EQ(match(v4("0.0.0.0", 8080), v4("127.0.0.1", 8080)), ADOPT_MATCH);
        CHECK_EQ(match(v4("0.0.0.0", 8080), v4("0.0.0.0", 8080)), ADOPT_MATCH);
    }
    SUBCASE("a wildcard bind is not served by one address: it binds normally") {
        CHECK_EQ(match(v4("127.0.0.1", 8080), v4("0.0.0.0", 8080)), ADOPT_NO);
    }
    SUBCASE("port 0 asks the kernel for a new port: never adopted") {
        CHECK_EQ(match(v4("0.0.0.0", 0), v4("0.0.0.0", 0)), ADOPT_NO);
    }
}

TEST_CASE("adopt_match: IPv6 and dual-stack") {
    CHECK_EQ(match(v6("::1", 80), v6("::1", 80)), ADOPT_MATCH);
    CHECK_EQ(match(v6("::1", 80), v6("::2", 80)), ADOPT_NO);
    CHECK_EQ(match(v6("::", 80), v6("::1", 80)), ADOPT_MATCH);
    CHECK_EQ(match(v6("::", 80), v6("::", 80), 1), ADOPT_MATCH);
    SUBCASE("link-local scopes") {
        CHECK_EQ(match(v6("fe80::1", 80, 2), v6("fe80::1", 80, 2)), ADOPT_MATCH);
        CHECK_EQ(match(v6("fe80::1", 80, 2), v6("fe80::1", 80, 3)), ADOPT_NO);
        CHECK_EQ(match(v6("fe80::1", 80, 2), v6("fe80::1", 80, 0)), ADOPT_MATCH);
    }
    SUBCASE("a bare-port listener ([::], dual-stack) and IPv4") {
        CHECK_EQ(match(v6("::", 8080), v4("0.0.0.0", 8080)), ADOPT_FAMILY);
        CHECK_EQ(match(v6("::", 8080), v4("127.0.0.1", 8080)), ADOPT_FAMILY);
        CHECK_EQ(match(v6("::", 8080), v4("127.0.0.1", 8081)), ADOPT_NO);
        CHECK_EQ(match(v6("::", 8080), v6("::ffff:127.0.0.1", 8080)), ADOPT_MATCH);
    }
    SUBCASE("a v6-only listener does not serve IPv4") {
        CHECK_EQ(match(v6("::", 8080), v4("0.0.0.0", 8080), 1), ADOPT_NO);
        CHECK_EQ(match(v6("::", 8080), v6("::ffff:127.0.0.1", 8080), 1), ADOPT_NO);
    }
    SUBCASE("an IPv4 listener does not serve IPv6") {
        CHECK_EQ(match(v4("0.0.0.0", 8080), v6("::", 8080)), ADOPT_NO);
        CHECK_EQ(match(v4("127.0.0.1", 8080), v6("::ffff:127.0.0.1", 8080)), ADOPT_NO);
        CHECK_EQ(match(v6("::1", 8080), v4("127.0.0.1", 8080)), ADOPT_NO);
    }
}

TEST_CASE("adopt_match: unix sockets") {
    CHECK_EQ(match(unix_addr("/run/x.sock"), unix_addr("/run/x.sock")), ADOPT_MATCH);
    CHECK_EQ(match(unix_addr("/run/x.sock"), unix_addr("/run/x.sock", false)), ADOPT_MATCH);
    CHECK_EQ(match(unix_addr("/run/x.sock"), unix_addr("/run/y.sock")), ADOPT_NO);
    CHECK_EQ(match(unix_addr("/run/x.sock"), unix_addr("/run/x.soc")), ADOPT_NO);
    CHECK_EQ(match(unix_addr("@app"), unix_addr("@app")), ADOPT_MATCH);
    CHECK_EQ(match(unix_addr("@app"), unix_addr("@ap")), ADOPT_NO);
    CHECK_EQ(match(unix_addr("@app"), unix_addr("/app")), ADOPT_NO);
    SUBCASE("unnamed (autobind) addresses are never served") {
        CHECK_EQ(match(unix_addr("", false), unix_addr("", false)), ADOPT_NO);
    }
    CHECK_EQ(match(unix_addr("/run/x.sock"), v4("127.0.0.1", 80)), ADOPT_NO);
}

TEST_CASE("adopt_match: short or missing addresses") {
    Addr l = v4("127.0.0.1", 80), r = v4("127.0.0.1", 80);
    CHECK_EQ(adopt_match(l.sa(), l.len, 0, r.sa(), 4), ADOPT_NO);
    CHECK_EQ(adopt_match(l.sa(), 1, 0, r.sa(), r.len), ADOPT_NO);
    CHECK_EQ(adopt_match(nullptr, 0, 0, r.sa(), r.len), ADOPT_NO);
    Addr l6 = v6("::", 80);
    CHECK_EQ(adopt_match(l6.sa(), l6.len, 0, r.sa(), 8), ADOPT_NO);
}

TEST_CASE("adopt_parse_env") {
    adopt_env e;
    SUBCASE("what the supervisor writes") {
        REQUIRE_EQ(adopt_parse_env("fds=3:1234,4:99 view=nonblocking scope=worker", &e), 0);
        CHECK_EQ(e.count, 2);
        CHECK_EQ(e.fds[0], 3);
        CHECK_EQ(e.inodes[0], 1234u);
        CHECK_EQ(e.fds[1], 4);
        CHECK_EQ(e.inodes[1], 99u);
        CHECK_EQ(e.view_nonblocking, 1);
        CHECK_EQ(e.scope_worker, 1);
    }
    SUBCASE("defaults: blocking view, scope all") {
        REQUIRE_EQ(adopt_parse_env("fds=3:18446744073709551615", &e), 0);
        CHECK_EQ(e.inodes[0], 18446744073709551615ull);
        CHECK_EQ(e.view_nonblocking, 0);
        CHECK_EQ(e.scope_worker, 0);
    }
    SUBCASE("malformed: refused whole, nothing half-parsed") {
        for (const char* bad : {"", "fds=", "fds=3", "fds=3:", "fds=3:1,", "fds=3:1,3:2", "fds=x:1", "fds=3:1 view=maybe",
                                "fds=3:1 scope=", "fds=3:1 other=1", "view=blocking", "fds=3:1 fds=4:1",
                                "fds=3:18446744073709551616", "fds=3:1;4:2"}) {
            CAPTURE(bad);
            CHECK_EQ(adopt_parse_env(bad, &e), -EINVAL);
            CHECK_EQ(e.count, 0);
        }
    }
    SUBCASE("at most ADOPT_MAX_FDS listeners") {
        std::string text = "fds=";
        for (int i = 0; i < ADOPT_MAX_FDS; i++) text += (i ? "," : "") + std::to_string(3 + i) + ":1";
        CHECK_EQ(adopt_parse_env(text.c_str(), &e), 0);
        CHECK_EQ(adopt_parse_env((text + ",999:1").c_str(), &e), -EINVAL);
    }
}

TEST_CASE("adopt_format_addr") {
    char buf[128];
    Addr a = v4("127.0.0.1", 8080);
    adopt_format_addr(a.sa(), a.len, buf, sizeof buf);
    CHECK_EQ(std::string(buf), "127.0.0.1:8080");
    a = v6("::1", 443);
    adopt_format_addr(a.sa(), a.len, buf, sizeof buf);
    CHECK_EQ(std::string(buf), "[::1]:443");
    a = unix_addr("/run/x.sock");
    adopt_format_addr(a.sa(), a.len, buf, sizeof buf);
    CHECK_EQ(std::string(buf), "unix:/run/x.sock");
    a = unix_addr("@app");
    adopt_format_addr(a.sa(), a.len, buf, sizeof buf);
    CHECK_EQ(std::string(buf), "unix:@app");
    adopt_format_addr(a.sa(), 1, buf, sizeof buf);
    CHECK_EQ(std::string(buf), "?");
    char tiny[4];
    a = v4("127.0.0.1", 8080);
    adopt_format_addr(a.sa(), a.len, tiny, sizeof tiny);
    CHECK_EQ(std::string(tiny), "127");
}

TEST_CASE("adopt_remove_preload_entry") {
    char out[256];
    REQUIRE_EQ(adopt_remove_preload_entry("/a.so:/lib/adopt.so", "/lib/adopt.so", out, sizeof out), 0);
    CHECK_EQ(std::string(out), "/a.so");
    REQUIRE_EQ(adopt_remove_preload_entry("/lib/adopt.so", "/lib/adopt.so", out, sizeof out), 0);
    CHECK_EQ(std::string(out), "");
    REQUIRE_EQ(adopt_remove_preload_entry("/a.so /b.so::/lib/adopt.so /c.so", "/lib/adopt.so", out, sizeof out), 0);
    CHECK_EQ(std::string(out), "/a.so:/b.so:/c.so");
    REQUIRE_EQ(adopt_remove_preload_entry("/lib/adopt.so.1", "/lib/adopt.so", out, sizeof out), 0);
    CHECK_EQ(std::string(out), "/lib/adopt.so.1");
    char tiny[4];
    CHECK_EQ(adopt_remove_preload_entry("/a.so", "/x", tiny, sizeof tiny), -ENOSPC);
}
