// Startup and stop: the demo worker serves behind the supervisor, the pid file lives
// exactly as long as the supervisor, and SIGTERM leaves nothing behind.
#include <doctest/doctest.h>

#include "harness.h"

using namespace svtest;

TEST_CASE("startup: the demo worker serves GET /, SIGTERM stops everything and closes the port") {
    REQUIRE_MESSAGE(have_program(bins().demo_worker), "DEMO_WORKER_BIN is not executable: ", bins().demo_worker);
    Serving f;
    const std::string pid_file = f.dir.file("supervisor.pid");
    Supervised& sv = f.start({.options = {"--pid-file", pid_file}, .command = {bins().demo_worker}});
    CHECK_EQ(read_file(pid_file), std::to_string(sv.pid()) + "\n");

    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(r->body, "pid=" + std::to_string(f.w1) + " gen=1\n");

    expect_clean_stop(sv);
    CHECK(wait_until([&] { return !pid_alive(f.w1); }, 2.0));
    CHECK(find_log_line(sv.log(), "exited gen=1 pid=" + std::to_string(f.w1) + " exit=0 "));
    CHECK(find_log_line(sv.log(), "stopped after_ms=\\d+"));
    CHECK_FALSE(file_exists(pid_file));
    CHECK_FALSE(can_connect(f.port));
}

TEST_CASE("startup: --ready delay marks the worker ready after the delay, SIGINT stops like SIGTERM") {
    Serving f;
    Supervised& sv = f.start({.command = f.fake_worker(), .ready = {"--ready", "delay", "--ready-delay", "200ms"}, .await = Serving::Await::Port});
    auto spawned = sv.wait_log(R"(spawned gen=1 pid=(\d+) ready=delay delay=200ms)");
    REQUIRE(spawned);
    pid_t worker = sv.wait_ready(1);
    REQUIRE(worker > 0);
    CHECK_EQ(std::to_string(worker), (*spawned)[1]);

    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(r->body, "pid=" + std::to_string(worker) + " gen=1\n");

    expect_clean_stop(sv, 5.0, SIGINT);
    CHECK(wait_until([&] { return !pid_alive(worker); }, 2.0));
    CHECK_FALSE(can_connect(f.port));
}

TEST_CASE("startup: a gen=1 that exits before ready is respawned with backoff; SIGHUP with a fix starts it now") {
    Serving f;
    REQUIRE(write_script(f.script, "exit 1"));
    Supervised& sv = f.start({.await = Serving::Await::Port});
    CHECK(sv.wait_log(R"re(start failed gen=1 reason="exited before ready \(exit=1\)[^"]*" \(nothing serving\))re"));
    CHECK(sv.wait_log("respawn gen=1 in_ms=100"));
    CHECK(sv.wait_log("respawn gen=1 in_ms=200"));
    CHECK(sv.wait_log("respawn gen=1 in_ms=400", 3.0));
    CHECK_EQ(sv.count("ready gen="), 0u);

    REQUIRE(write_script(f.script, fake_exec(f.dir)));
    REQUIRE(sv.hup());
    // Usually the backoff is waiting ("starting gen=N now"); if a doomed respawn is
    // starting at that moment, the request is queued behind it instead.
    auto ready = sv.wait_log(R"(ready gen=(\d+) pid=(\d+))", 3.0);
    REQUIRE(ready);
    CHECK((find_log_line(sv.log(), "upgrade requested while no worker serves: starting gen=" + (*ready)[1] + " now") ||
           find_log_line(sv.log(), "upgrade queued: gen=\\d+ is still starting")));
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{std::stol((*ready)[2]), std::stol((*ready)[1])});
}

TEST_CASE("startup: SIGTERM during the respawn backoff exits 0 at once") {
    Serving f;
    REQUIRE(write_script(f.script, "exit 1"));
    Supervised& sv = f.start({.await = Serving::Await::Port});
    REQUIRE(sv.wait_log("respawn gen=1 in_ms=200"));
    expect_clean_stop(sv, 2.0);
    CHECK_FALSE(can_connect(f.port));
}

TEST_CASE("startup: SIGHUP while gen=1 is still starting is queued until it is ready") {
    Serving f;
    Supervised& sv = f.start({.command = f.fake_worker(), .ready = {"--ready", "delay", "--ready-delay", "500ms"}, .await = Serving::Await::Port});
    REQUIRE(sv.wait_log("spawned gen=1 pid=\\d+"));
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("upgrade queued: gen=1 is still starting"));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    pid_t w2 = sv.wait_upgrade_done(2, 3.0);
    REQUIRE(w2 > 0);
    auto r = wait_served_by(f.port, w2);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(w1) + " exit=0 "));
    CHECK_EQ(sv.count("upgrade started"), 1u);
}

TEST_CASE("startup: a stale unix socket file (nobody listening) is replaced") {
    Serving f;
    const std::string sock = f.dir.file("s.sock");
    REQUIRE(net::bind_unix(sock, false).valid());  // closed again: the file stays, as a crashed server leaves it
    REQUIRE(file_exists(sock));

    Supervised& sv = f.start({.command = f.fake_worker(), .listen = {"-l", "unix:" + sock}});
    auto r = http_get_unix(sock);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{f.w1, 1});
    expect_clean_stop(sv);
    CHECK_FALSE(file_exists(sock));
}
