// Probation (--probation): a ready new generation serves beside the old one for a while; if
// it dies in that window the upgrade fails and the old one, never drained, serves on.
#include <doctest/doctest.h>

#include "harness.h"
#include "net.h"

using namespace svtest;

TEST_CASE("probation: a new worker dying 300 ms after ready fails the upgrade; the old one serves on, no request fails") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{2, "--exit-after-ready-ms 300"}})));
    Supervised& sv = f.start({.options = {"--probation", "1s", "--control", f.control_socket()}});
    // `ctl upgrade` waits for the verdict while a client loop runs against the port.
    Process caller({bins().supervisor, "ctl", "--control", f.control_socket(), "upgrade"}, f.dir.file("ctl.log"));
    ProcessGuard guard(caller, 1.0);
    unsigned requests = 0, failures = 0;
    std::string why;
    Stopwatch clock;
    while (caller.alive() && clock.seconds() < 10.0) {
        requests++;
        if (!get_ok(f.port, &why)) failures++;
    }
    INFO("requests=", requests, " failures=", failures, " first failure: ", why, "\nctl: ", caller.log());
    std::printf("probation: requests=%u failures=%u\n", requests, failures);
    auto verdict = caller.wait_exit(3.0);
    REQUIRE(verdict);
    CHECK_EQ(exit_code_of(verdict), 1);
    CHECK(find_log_line(caller.log(), R"(upgrade to gen 2 failed: died 0\.\d+s after ready during probation \(exit=3, pid=\d+\); gen 1 is still serving)"));
    auto failed = sv.wait_log(R"re(upgrade failed gen=2 reason="died (\d+\.\d)s after ready during probation \(exit=3, pid=\d+\)")re");
    REQUIRE(failed);
    CHECK_GE(std::stod((*failed)[1]), 0.2);
    CHECK_EQ(failures, 0u);
    CHECK_EQ(sv.count("draining gen=1"), 0u);
    CHECK(wait_served_by(f.port, f.w1));
    CHECK(sv.wait_log("probation gen=2 pid=\\d+ for=1s"));

    // The next upgrade passes its probation: the verdict and the old generation's drain
    // come at the end of the window, not when the new worker is ready.
    Stopwatch upgrade;
    auto ok = f.ctl({"upgrade"});
    INFO("ctl upgrade:\n", ok.output);
    CHECK_EQ(ok.code, 0);
    CHECK_GE(upgrade.seconds(), 0.9);
    std::string log = sv.log();
    auto passed = log.find("probation passed gen=3");
    auto drained = log.find("draining gen=1 pid=" + std::to_string(f.w1));
    REQUIRE(passed != std::string::npos);
    REQUIRE(drained != std::string::npos);
    CHECK_LT(passed, drained);
    pid_t w3 = sv.spawned_pid(3);
    REQUIRE(w3 > 0);
    CHECK(wait_served_by(f.port, w3));
    expect_clean_stop(sv);
}

TEST_CASE("probation: ctl status shows the window while it runs") {
    Serving f;
    Supervised& sv = f.start({.options = {"--probation", "30s", "--control", f.control_socket()}});
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("probation gen=2 pid=\\d+ for=30s"));
    auto st = f.ctl({"status"});
    INFO("ctl status:\n", st.output);
    CHECK(st.output.find("upgrading (probation: ") != std::string::npos);
    auto js = f.ctl({"status", "--json"});
    CHECK(find_log_line(js.output, R"("probation_remaining_ms": [1-9]\d*)"));
    // A stop in the window: both generations drain, the upgrade is refused.
    expect_clean_stop(sv);
    CHECK(sv.wait_log(R"(draining gen=2 )"));
}
