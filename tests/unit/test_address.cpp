// --listen spec parser.
#include <doctest/doctest.h>

#include "supervisor/address.h"

using namespace sv;

TEST_CASE("listen specs that parse") {
    SUBCASE("bare port: all interfaces") {
        auto r = parse_listen_spec("8080");
        REQUIRE(r.ok());
        CHECK_EQ(r->kind, ListenSpec::Kind::Tcp);
        CHECK_EQ(r->host, "");
        CHECK_EQ(r->port, 8080);
        CHECK_EQ(r->name, "");
    }
    SUBCASE("host:port") {
        auto r = parse_listen_spec("127.0.0.1:80");
        REQUIRE(r.ok());
        CHECK_EQ(r->host, "127.0.0.1");
        CHECK_EQ(r->port, 80);
        CHECK_EQ(r->text, "127.0.0.1:80");
    }
    SUBCASE("host name") {
        auto r = parse_listen_spec("localhost:0");
        REQUIRE(r.ok());
        CHECK_EQ(r->host, "localhost");
        CHECK_EQ(r->port, 0);
    }
    SUBCASE("[v6]:port") {
        auto r = parse_listen_spec("[::1]:8443");
        REQUIRE(r.ok());
        CHECK_EQ(r->host, "::1");
        CHECK_EQ(r->port, 8443);
    }
    SUBCASE("unix path") {
        auto r = parse_listen_spec("unix:/run/app.sock");
        REQUIRE(r.ok());
        CHECK_EQ(r->kind, ListenSpec::Kind::Unix);
        CHECK_EQ(r->path, "/run/app.sock");
    }
    SUBCASE("NAME= prefix") {
        auto r = parse_listen_spec("http=0.0.0.0:80");
        REQUIRE(r.ok());
        CHECK_EQ(r->name, "http");
        CHECK_EQ(r->host, "0.0.0.0");
        auto u = parse_listen_spec("admin=unix:/tmp/a.sock");
        REQUIRE(u.ok());
        CHECK_EQ(u->name, "admin");
        CHECK_EQ(u->path, "/tmp/a.sock");
    }
}

TEST_CASE("malformed listen specs name the input and the problem") {
    auto expect_error = [](const char* spec, const char* needle) {
        auto r = parse_listen_spec(spec);
        REQUIRE_FALSE(r.ok());
        INFO(r.error().what);
        CHECK(r.error().what.find(std::string("'") + spec + "'") != std::string::npos);
        CHECK(r.error().what.find(needle) != std::string::npos);
    };
    expect_error("", "empty");
    expect_error("http", "not a number");
    expect_error("65536", "out of range");
    expect_error("-1", "not a number");
    expect_error("host:", "not a number");
    expect_error(":80", "empty host");
    expect_error("::1:80", "brackets");
    expect_error("[::1]80", "missing ':PORT'");
    expect_error("[::1:80", "missing ']'");
    expect_error("[]:80", "empty IPv6");
    expect_error("unix:", "empty unix socket path");
    expect_error("a:b=80", "name");
    expect_error("=80", "name");
    expect_error("sp ace=80", "name");
    expect_error(("unix:/" + std::string(200, 'x')).c_str(), "longer than 107");
}

TEST_CASE("fd names") {
    CHECK(valid_fd_name("http"));
    CHECK(valid_fd_name("a.b-c_d"));
    CHECK_FALSE(valid_fd_name(""));
    CHECK_FALSE(valid_fd_name("a:b"));
    CHECK_FALSE(valid_fd_name("a b"));
    CHECK_FALSE(valid_fd_name(std::string(256, 'a')));
}
