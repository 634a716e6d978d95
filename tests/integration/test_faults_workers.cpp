// Fault injection, workers misbehaving: a new worker that exits right after READY=1, an old
// one that crashes mid-drain, a grandchild that keeps holding the socket. The running
// generation keeps serving and nothing is left behind. docs/RELIABILITY.md maps each fault
// to its test.
#include <doctest/doctest.h>

#include <set>

#include "harness.h"

using namespace svtest;

TEST_CASE("faults: a new worker that exits right after READY=1: rollback or respawn, no failed request") {
    Serving f;
    REQUIRE(write_script(f.script, once_armed(f.dir, "--exit-after-ready-ms 0")));
    Supervised& sv = f.start();
    REQUIRE(arm_worker_script(f.dir));
    REQUIRE(sv.hup());
    // READY=1 and the exit race: whichever the supervisor sees first decides the path.
    auto decided = [&] { return sv.count("upgrade failed gen=2 ") + sv.count("worker died gen=2 ") > 0; };
    unsigned requests = 0, failures = 0;
    std::string why;
    Stopwatch start;
    while (!decided() && start.seconds() < 5.0 && sv.proc().alive()) {
        requests++;
        failures += !get_ok(f.port, &why);
    }
    REQUIRE(decided());
    pid_t serving = f.w1;
    if (sv.count("upgrade failed gen=2 ")) {
        MESSAGE("gen=2's exit was seen before its READY=1: rolled back to gen=1");
        CHECK(sv.wait_log(R"re(upgrade failed gen=2 reason="exited before ready \(exit=3\))re"));
    } else {
        MESSAGE("gen=2's READY=1 was seen first: gen=1 drained, gen=2 died and was respawned");
        CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + " exit=0 "));
        CHECK(sv.wait_log(R"(respawn gen=\d+ in_ms=\d+)"));
        serving = sv.wait_nth_ready(3);  // gen=1, gen=2, the respawned one
        REQUIRE(serving > 0);
    }
    for (int i = 0; i < 10; i++) {
        requests++;
        failures += !get_ok(f.port, &why);
    }
    CHECK_MESSAGE(failures == 0, failures, " failed request(s), the first: ", why);
    CHECK(wait_served_by(f.port, serving));
    CHECK(sv.proc().alive());
    MESSAGE("requests=", requests, " failures=", failures);
}

TEST_CASE("faults: an old worker that crashes mid-drain is reaped as drained: no respawn, the new one serves") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, "--drain-ms 200 --crash-on-drain"}})));
    Supervised& sv = f.start({.options = {"--drain-timeout", "1s"}});
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    auto exited = sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + R"( signal=SIGSEGV drain_ms=(\d+))", 3.0);
    REQUIRE(exited);
    CHECK_GE(std::stoi((*exited)[1]), 150);
    // Its drain timer was cancelled: nothing is killed when it would have fired.
    CHECK_FALSE(sv.wait_log("drain timeout", 1.3));
    CHECK_EQ(sv.count("worker died"), 0u);
    CHECK_EQ(sv.count("respawn gen="), 0u);
    auto r = wait_served_by(f.port, w2);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    CHECK(pid_alive(w2));
}

// A draining worker that exits at once but leaves a grandchild holding (and accepting on)
// the socket: the group is killed at the drain deadline all the same, so the old
// generation cannot keep serving through its children.
TEST_CASE("faults: a grandchild holding the socket is killed with the worker's group at the drain deadline") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, "--grandchild-serves"}})));
    Supervised& sv = f.start({.options = {"--drain-timeout", "500ms"}});
    auto report = wait_report(f.report(), f.w1, 3.0);
    REQUIRE(report.count("grandchild"));
    pid_t grandchild = std::stoi(report["grandchild"]);
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    REQUIRE(sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + " exit=0 "));
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(grandchild); }, 2.5),
                  "gen=1's grandchild ", grandchild, " still holds the socket 2.5s after the 500ms drain deadline");
    std::set<long> pids;
    for (int i = 0; i < 20; i++)
        if (auto r = http_get(f.port)) pids.insert(parse_pid_gen(r->body).first);
    CHECK_EQ(pids, std::set<long>{w2});
}

// On stop the same grandchild would keep the port open (and answering) after the
// supervisor exited: the supervisor kills the group at the drain deadline before exiting.
TEST_CASE("faults: on stop, no grandchild holding the socket outlives the supervisor") {
    Serving f;
    Supervised& sv = f.start({.options = {"--drain-timeout", "500ms"}, .command = f.fake_worker({"--grandchild-serves"})});
    pid_t grandchild = std::stoi(wait_report(f.report(), f.w1, 3.0)["grandchild"]);
    expect_clean_stop(sv, 3.0);
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(grandchild); }, 1.0), "grandchild ", grandchild,
                  " outlived the supervisor");
    CHECK_MESSAGE(wait_until([&] { return !can_connect(f.port); }, 1.0), "port ", f.port,
                  " still open after the supervisor exited");
}
