// Draining and dying: the drain timeout kills a worker's whole process group, a crashed
// worker is respawned, a killed supervisor takes its workers along (PDEATHSIG), and a
// second SIGTERM stops at once.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include "harness.h"

using namespace svtest;

TEST_CASE("drain: a worker ignoring SIGTERM is SIGKILLed with its process group at --drain-timeout") {
    Serving f;
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--ignore-term --spawn-grandchild")));
    Supervised& sv = f.start({.options = {"--drain-timeout", "500ms"}});
    const pid_t w1 = f.w1;
    auto report = wait_report(f.report(), w1, 3.0);
    REQUIRE(report.count("grandchild"));
    pid_t grandchild = std::stoi(report["grandchild"]);
    REQUIRE(pid_alive(grandchild));

    REQUIRE(write_script(f.script, fake_exec(f.dir)));
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    CHECK(sv.wait_log("draining gen=1 pid=" + std::to_string(w1) + " signal=SIGTERM timeout=500ms"));
    CHECK(pid_alive(w1));  // it ignores the drain signal
    CHECK(sv.wait_log("drain timeout gen=1 pid=" + std::to_string(w1) + " after 500ms: killing its process group", 3.0));
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(w1) + " signal=SIGKILL"));
    CHECK(wait_until([&] { return !pid_alive(w1); }, 2.0));
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(grandchild); }, 2.0), "grandchild ", grandchild, " survived");
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
}

TEST_CASE("drain: a draining worker may take its time below the timeout and exits 0") {
    Serving f;
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--drain-ms 300")));
    Supervised& sv = f.start({.options = {"--drain-timeout", "5s"}});
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_upgrade_done(2) > 0);
    auto exited = sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + R"( exit=0 drain_ms=(\d+))", 3.0);
    REQUIRE(exited);
    CHECK_GE(std::stoi((*exited)[1]), 250);
    CHECK_EQ(sv.count("drain timeout"), 0u);
}

TEST_CASE("drain: a serving worker that crashes is respawned; clients queue meanwhile") {
    Serving f;
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--exit-after-ready-ms 300")));
    Supervised& sv = f.start();
    const pid_t w1 = f.w1;
    // gen=1 runs the fake worker (it said READY=1), so the next spawn reads the new script.
    REQUIRE(write_script(f.script, fake_exec(f.dir)));

    REQUIRE(sv.wait_log("worker died gen=1 pid=" + std::to_string(w1) + " exit=3 uptime_ms=\\d+", 3.0));
    // Nothing serves now, but the socket stays open: this request waits for the respawn,
    // which takes gen=1's slot and keeps its generation.
    auto r = http_get(f.port, "/", 5.0);
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK(sv.wait_log(R"(respawn gen=1 in_ms=\d+)"));
    REQUIRE(wait_until([&] { return sv.count("ready gen=1 pid=") >= 2; }, 5.0, &sv.proc()));
    pid_t w2 = std::stoi(find_log_lines(sv.log(), R"(ready gen=1 pid=(\d+))").back()[1]);
    CHECK_NE(w2, w1);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 1});
    r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 1});
}

TEST_CASE("drain: SIGKILL of the supervisor sends the drain signal to its worker (PDEATHSIG)") {
    Serving f;
    Supervised& sv = f.start({.command = f.fake_worker()});
    REQUIRE(sv.proc().signal(SIGKILL));
    auto st = sv.proc().wait_exit(3.0);
    REQUIRE(st);
    CHECK(WIFSIGNALED(*st));
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(f.w1); }, 3.0), "worker ", f.w1, " outlived its supervisor");
    CHECK(find_log_line(sv.log(), "fake_worker pid=" + std::to_string(f.w1) + " gen=1 draining"));
    CHECK(wait_until([&] { return !can_connect(f.port); }, 2.0));
}

TEST_CASE("drain: a second SIGTERM while a worker ignores the first kills it at once; exit 0") {
    Serving f;
    Supervised& sv = f.start({.command = f.fake_worker({"--ignore-term"})});
    const pid_t w1 = f.w1;
    REQUIRE(sv.term());
    REQUIRE(sv.wait_log("draining gen=1 pid=" + std::to_string(w1) + " signal=SIGTERM timeout=30s"));
    CHECK(pid_alive(w1));
    CHECK(sv.proc().alive());
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("upgrade request ignored: stopping"));
    CHECK_FALSE(find_log_line(sv.log(), "spawned gen=2 "));
    REQUIRE(sv.term());
    CHECK(svtest::wait_log(sv.proc(), "second stop request: killing 1 worker\\(s\\) now", 3.0, true));
    auto st = sv.proc().wait_exit(3.0);
    REQUIRE_MESSAGE(st, "the supervisor did not exit within 3s of the second SIGTERM");
    CHECK_MESSAGE(exit_code_of(st) == 0, describe_status(st));
    CHECK(find_log_line(sv.log(), "exited gen=1 pid=" + std::to_string(w1) + " signal=SIGKILL"));
    CHECK(wait_until([&] { return !pid_alive(w1); }, 2.0));
}

TEST_CASE("drain: SIGTERM while an upgrade is in flight drains both generations; exit 0") {
    Serving f;
    Supervised& sv = f.start();
    const pid_t w1 = f.w1;
    pid_t w2 = f.upgrade_to("--never-ready");
    expect_clean_stop(sv, 3.0);
    CHECK(find_log_line(sv.log(), "exited gen=1 pid=" + std::to_string(w1) + " exit=0 "));
    CHECK(find_log_line(sv.log(), "exited gen=2 pid=" + std::to_string(w2) + " exit=0 "));
    CHECK(wait_until([&] { return !pid_alive(w1) && !pid_alive(w2); }, 2.0));
    CHECK_FALSE(can_connect(f.port));
}

TEST_CASE("drain: the serving worker dies during an upgrade; the new generation takes over when ready") {
    Serving f;
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--exit-after-ready-ms 300")));
    Supervised& sv = f.start();
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--ready-after-ms 1000")));
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("spawned gen=2 pid=\\d+"));
    REQUIRE(sv.wait_log("worker died gen=1 pid=" + std::to_string(f.w1) + " exit=3 uptime_ms=\\d+", 3.0));
    CHECK_EQ(sv.count("ready gen=2"), 0u);  // this test needs gen=1 to die first
    // Nothing accepts until gen=2 is ready: this request waits in the kernel's queue.
    auto r = http_get(f.port, "/", 5.0);
    REQUIRE(r);
    pid_t w2 = sv.wait_ready(2);
    REQUIRE(w2 > 0);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    CHECK(sv.wait_log("upgrade done gen=2 pid=" + std::to_string(w2)));
    CHECK_EQ(sv.count("respawn gen="), 0u);
}

TEST_CASE("drain: --drain-signal QUIT is what the old demo worker gets, and it exits 0") {
    REQUIRE(have_program(bins().demo_worker));
    Serving f;
    Supervised& sv = f.start({.options = {"--drain-signal", "QUIT"}, .command = {bins().demo_worker}});
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_upgrade_done(2) > 0);
    CHECK(sv.wait_log("draining gen=1 pid=" + std::to_string(f.w1) + " signal=SIGQUIT"));
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + " exit=0 "));
}

TEST_CASE("drain: on stop, a worker ignoring SIGTERM is killed at --drain-timeout; exit 0") {
    Serving f;
    Supervised& sv = f.start({.options = {"--drain-timeout", "300ms"},
                              .command = f.fake_worker({"--ignore-term", "--spawn-grandchild"})});
    pid_t grandchild = std::stoi(wait_report(f.report(), f.w1, 3.0)["grandchild"]);
    expect_clean_stop(sv, 3.0);
    CHECK(find_log_line(sv.log(), "drain timeout gen=1 pid=" + std::to_string(f.w1) + " after 300ms"));
    CHECK(wait_until([&] { return !pid_alive(f.w1) && !pid_alive(grandchild); }, 2.0));
    CHECK_FALSE(can_connect(f.port));
}
