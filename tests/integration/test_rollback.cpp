// Rollback: a new generation that exits, cannot be executed, or never says READY=1
// leaves the old one serving; the next good upgrade then succeeds.
#include <doctest/doctest.h>

#include "harness.h"

using namespace svtest;

namespace {

constexpr const char* kFailed = R"re(upgrade failed gen=2 reason="([^"]*)" serving_gen=1 \(still serving\))re";

// The gen=1 worker still answers.
void check_old_serves(const Serving& f) {
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{f.w1, 1});
    CHECK(pid_alive(f.w1));
}

// A fixed script upgrades to `gen`, which serves; gen=1 drains and exits 0.
void check_recovers(Serving& f, unsigned gen) {
    REQUIRE(write_script(f.script, fake_exec(f.dir)));
    REQUIRE(f.sv().hup());
    pid_t w = f.sv().wait_upgrade_done(gen);
    REQUIRE(w > 0);
    auto r = wait_served_by(f.port, w);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w, gen});
    CHECK(f.sv().wait_log("exited gen=1 pid=" + std::to_string(f.w1) + " exit=0 "));
}

} // namespace

TEST_CASE("rollback: the next generation exits 1 before ready; the old one keeps serving") {
    Serving f;
    Supervised& sv = f.start();
    REQUIRE(write_script(f.script, "exit 1"));
    REQUIRE(sv.hup());
    auto failed = sv.wait_log(kFailed);
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("exit=1") != std::string::npos, (*failed)[1]);
    CHECK_EQ(sv.count("upgrade done"), 0u);
    check_old_serves(f);
    check_recovers(f, 3);
}

TEST_CASE("rollback: the next generation is not executable; the old one keeps serving") {
    Serving f;
    Supervised& sv = f.start();
    REQUIRE(write_script(f.script, fake_exec(f.dir), 0644));
    REQUIRE(sv.hup());
    auto failed = sv.wait_log(kFailed);
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("Permission denied") != std::string::npos, (*failed)[1]);
    CHECK_MESSAGE((*failed)[1].find(f.script) != std::string::npos, (*failed)[1]);
    check_old_serves(f);
    check_recovers(f, 3);
}

TEST_CASE("rollback: the next generation never sends READY=1; it is killed at --ready-timeout") {
    Serving f;
    Supervised& sv = f.start({.options = {"--ready-timeout", "500ms"}});
    // It really is the never-ready fake worker (its report), not a shell that died.
    pid_t w2 = f.upgrade_to("--never-ready");
    CHECK(sv.wait_log("spawned gen=2 pid=" + std::to_string(w2) + " ready=notify timeout=500ms"));
    auto failed = sv.wait_log(kFailed, 3.0);
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("no READY=1") != std::string::npos, (*failed)[1]);
    CHECK(wait_until([&] { return !pid_alive(w2); }, 2.0));
    CHECK(sv.wait_log("reaped failed gen=2 pid=" + std::to_string(w2) + " signal=SIGKILL"));
    check_old_serves(f);
    check_recovers(f, 3);
}
