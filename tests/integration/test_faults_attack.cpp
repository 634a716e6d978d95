// Fault injection, the supervisor attacked: SIGKILLed mid-upgrade, flooded with SIGHUPs,
// its port wanted by somebody else. No orphan serves, nothing leaks, no request fails.
// docs/RELIABILITY.md maps each fault to its test.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdio>

#include "harness.h"

using namespace svtest;

TEST_CASE("faults: SIGKILL of the supervisor mid-upgrade: draining, ready and starting workers all exit") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, "--drain-ms 1000"}, {3, "--never-ready"}})));
    Supervised& sv = f.start({.options = {"--ready-timeout", "20s"}});
    const pid_t w1 = f.w1;
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    REQUIRE(sv.hup());
    auto spawned = sv.wait_log(R"(spawned gen=3 pid=(\d+))");
    REQUIRE(spawned);
    pid_t w3 = std::stoi((*spawned)[1]);
    REQUIRE_EQ(wait_report(f.report(), w3, 3.0)["pid"], std::to_string(w3));  // its handler is installed
    REQUIRE(pid_alive(w1));  // still draining

    REQUIRE(sv.proc().signal(SIGKILL));
    REQUIRE(sv.proc().wait_exit(3.0));
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(w2) && !pid_alive(w3); }, 2.0), "ready or starting worker outlived the supervisor");
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(w1); }, 3.0), "draining worker outlived the supervisor");
    for (pid_t w : {w2, w3}) CHECK(find_log_line(sv.log(), "fake_worker pid=" + std::to_string(w) + " gen=\\d draining"));
    CHECK(wait_until([&] { return !can_connect(f.port); }, 2.0));
}

TEST_CASE("faults: 1000 SIGHUPs in a burst: at most one upgrade queued, no fd or process leak, no failed request") {
    Serving f;
    // Later generations take 300 ms to get ready: the whole burst lands during one upgrade.
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, ""}, {2, "--ready-after-ms 300"}, {3, "--ready-after-ms 300"}})));
    Supervised& sv = f.start({.options = {"--drain-timeout", "2s"}});
    const int port = f.port;
    REQUIRE(http_get(port));
    const pid_t sp = sv.pid();
    const size_t fds_before = proc::open_fds(sp).size();
    const long rss_before = proc::rss_kb(sp);
    REQUIRE_EQ(proc::children_of(sp).size(), 1u);

    Stopwatch burst_start;
    for (int i = 0; i < 1000; i++) REQUIRE(sv.hup());
    double burst_s = burst_start.seconds();

    auto decided = [&] { return sv.count("upgrade done gen=") + sv.count("upgrade failed gen="); };
    auto settled = [&] { return decided() >= 1 && (sv.count("upgrade queued") == 0 || decided() >= 2); };
    unsigned requests = 0, failures = 0;
    std::string why;
    Stopwatch start;
    while (!settled() && start.seconds() < 10.0 && sv.proc().alive()) {
        requests++;
        failures += !get_ok(port, &why);
    }
    REQUIRE(settled());
    // The drained generations are gone and reaped: one child left, no zombie, fds as before.
    CHECK(wait_until([&] { auto c = proc::children_of(sp); return c.size() == 1 && proc::zombies(c) == 0; }, 5.0, &sv.proc()));
    CHECK(wait_until([&] { return proc::open_fds(sp).size() == fds_before; }, 2.0, &sv.proc()));
    for (int i = 0; i < 20; i++) {
        requests++;
        failures += !get_ok(port, &why);
    }
    size_t started = sv.count("upgrade started gen=");
    std::printf("1000-SIGHUP burst: sent_in_ms=%.1f seen_by_supervisor=%zu upgrades_started=%zu queued=%zu "
                "requests=%u failures=%u fds=%zu->%zu children=%zu rss_kb=%ld->%ld\n",
                burst_s * 1000, sv.count("SIGHUP: upgrade requested"), started, sv.count("upgrade queued"), requests,
                failures, fds_before, proc::open_fds(sp).size(), proc::children_of(sp).size(), rss_before, proc::rss_kb(sp));
    CHECK_GE(started, 1u);
    CHECK_LE(started, 2u);
    CHECK_LE(sv.count("upgrade queued"), 1u);
    CHECK_EQ(sv.count("upgrade done gen="), started);
    CHECK_FALSE(find_log_line(sv.log(), "spawned gen=4 "));
    CHECK_MESSAGE(failures == 0, failures, " failed request(s), the first: ", why);
    CHECK_EQ(proc::open_fds(sp).size(), fds_before);
}

TEST_CASE("faults: nobody else can take the port while the supervisor holds it, even with no worker running") {
    Serving f;
    REQUIRE(write_script(f.script, once_armed(f.dir, "--exit-after-ready-ms 100")));
    REQUIRE(arm_worker_script(f.dir));
    Supervised& sv = f.start();
    const int port = f.port;
    CHECK_EQ(net::try_bind(port, false), EADDRINUSE);
    CHECK_EQ(net::try_bind(port, true), EADDRINUSE);  // SO_REUSEPORT needs both sides to set it
    REQUIRE(sv.wait_log(R"(worker died gen=1 pid=\d+ exit=3)", 3.0));
    CHECK_EQ(net::try_bind(port, false), EADDRINUSE);  // gen=1 is gone, gen=2 not yet started
    CHECK_EQ(net::try_bind(port, true), EADDRINUSE);
    REQUIRE(sv.wait_log(R"(respawn gen=\d+ in_ms=\d+)"));
    pid_t w2 = sv.wait_nth_ready(2);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(port, w2));
}
