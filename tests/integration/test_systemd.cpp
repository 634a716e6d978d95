// systemd, both directions: socket activation (systemd-socket-activate passes the socket)
// and our own sd_notify messages to the service manager, in order, around an upgrade.
#include <doctest/doctest.h>

#include "harness.h"

using namespace svtest;

namespace {

bool have_socket_activate() {
    if (have_program("systemd-socket-activate")) return true;
    MESSAGE("skipped: systemd-socket-activate is not installed (Debian package systemd)");
    return false;
}

// systemd-socket-activate listening on 127.0.0.1:port, passing the socket as `name`; it execs
// the supervisor (same pid) on the first connection; setsid (also an exec) keeps its signal
// handling away from the test's process group.
std::vector<std::string> socket_activate(int port, const std::string& name) {
    return {"setsid", "systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port), "--fdname=" + name};
}

} // namespace

TEST_CASE("systemd: socket activation passes the socket; requests are served and an upgrade works") {
    if (!have_socket_activate()) return;
    Serving f;
    int port = net::free_port();
    REQUIRE(port > 0);
    Supervised& sv = f.start({.command = {bins().demo_worker}, .listen = {}, .prefix = socket_activate(port, "http"),
                              .await = Serving::Await::Nothing});
    // The first request that connects arrives before the supervisor even runs: the kernel
    // queues it until the worker accepts.
    std::optional<Response> first;
    REQUIRE(wait_until([&] { return (first = http_get(port, "/", 5.0)).has_value(); }, 5.0, &sv.proc()));
    CHECK_EQ(first->status, 200);
    CHECK(sv.wait_log("socket activation: adopted 1 socket"));
    CHECK(sv.wait_log("listening name=http addr=127.0.0.1:" + std::to_string(port) + " fd=3"));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    auto r = wait_served_by(port, w2);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    expect_clean_stop(sv);
}

TEST_CASE("systemd: --listen NAME=… takes the adopted socket of that name instead of binding") {
    if (!have_socket_activate()) return;
    Serving f;
    int port = net::free_port();
    REQUIRE(port > 0);
    // The spec names a port that is taken: binding it would fail, adopting it cannot.
    int taken_port = 0;
    net::Fd blocker = net::listen_loopback(&taken_port);
    REQUIRE(blocker.valid());
    std::string taken = "127.0.0.1:" + std::to_string(taken_port);
    Supervised& sv = f.start({.command = {bins().demo_worker}, .listen = {"--listen", "web=" + taken},
                              .prefix = socket_activate(port, "web"), .await = Serving::Await::Nothing});
    std::optional<Response> r;
    wait_until([&] { return (r = http_get(port, "/", 5.0)).has_value(); }, 5.0, &sv.proc());
    blocker.reset();
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK(sv.wait_log("listening name=web addr=127.0.0.1:" + std::to_string(port) + " fd=3"));
}

TEST_CASE("systemd: READY=1, then RELOADING=1 and READY=1 around an upgrade and a rollback, then STOPPING=1") {
    Serving f;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name()});
    Supervised& sv = f.start({.options = {"--drain-timeout", "7s"}, .env = &env, .await = Serving::Await::Nothing});

    auto next = [&] { return systemd.receive(5.0).value_or("(nothing)"); };
    auto m1 = next();
    CHECK(m1.find("READY=1") != std::string::npos);
    CHECK(m1.find("gen=1") != std::string::npos);

    REQUIRE(sv.hup());
    auto m2 = next();
    CHECK(m2.find("RELOADING=1") != std::string::npos);
    CHECK(m2.find("MONOTONIC_USEC=") != std::string::npos);
    auto m3 = next();
    CHECK(m3.find("READY=1") != std::string::npos);
    CHECK(m3.find("serving gen=2") != std::string::npos);

    REQUIRE(write_script(f.script, "exit 1"));
    REQUIRE(sv.hup());
    auto m4 = next();
    CHECK(m4.find("RELOADING=1") != std::string::npos);
    auto m5 = next();
    CHECK(m5.find("READY=1") != std::string::npos);
    CHECK(m5.find("upgrade to gen=3 failed") != std::string::npos);
    CHECK(m5.find("serving gen=2") != std::string::npos);

    REQUIRE(sv.term());
    auto m6 = next();
    CHECK(m6.find("STOPPING=1") != std::string::npos);
    CHECK(m6.find("EXTEND_TIMEOUT_USEC=12000000") != std::string::npos);  // drain timeout 7s + 5s
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(exit_code_of(st), 0);
}
