// Rollback: a new generation that exits, cannot be executed, or never says READY=1
// leaves the old one serving; the next good upgrade then succeeds.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <memory>

#include "harness.h"

using namespace svtest;

namespace {

// A supervisor whose COMMAND is dir/worker.sh, first a plain fake worker; gen=1 is ready.
struct Fixture {
    TempDir dir;
    std::string script = dir.file("worker.sh");
    std::unique_ptr<Supervised> sv;
    int port = 0;
    pid_t w1 = 0;

    explicit Fixture(std::vector<std::string> options) {
        REQUIRE(write_script(script, fake_exec(dir)));
        options.insert(options.begin(), {"-l", "127.0.0.1:0", "--ready", "notify"});
        sv = std::make_unique<Supervised>(dir, options, std::vector<std::string>{script});
        port = sv->wait_port();
        w1 = sv->wait_ready(1);
    }

    // The gen=1 worker still answers.
    void check_old_serves() const {
        auto r = http_get(port);
        REQUIRE(r);
        CHECK_EQ(r->status, 200);
        CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 1});
        CHECK(pid_alive(w1));
    }

    // A fixed script upgrades to `gen`, which serves; gen=1 drains and exits 0.
    void check_recovers(unsigned gen) {
        REQUIRE(write_script(script, fake_exec(dir)));
        REQUIRE(sv->hup());
        pid_t w = sv->wait_upgrade_done(gen);
        REQUIRE(w > 0);
        auto r = wait_served_by(port, w);
        REQUIRE(r);
        CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w, gen});
        CHECK(sv->wait_log("exited gen=1 pid=" + std::to_string(w1) + " exit=0 "));
    }
};

} // namespace

TEST_CASE("rollback: the next generation exits 1 before ready; the old one keeps serving") {
    Fixture f({});
    INFO("supervisor log:\n", tail(f.sv->log()));
    REQUIRE(f.port > 0);
    REQUIRE(f.w1 > 0);
    REQUIRE(write_script(f.script, "exit 1"));
    REQUIRE(f.sv->hup());
    auto failed = f.sv->wait_log(R"re(upgrade failed gen=2 reason="([^"]*)" serving_gen=1 \(still serving\))re");
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("exit=1") != std::string::npos, (*failed)[1]);
    CHECK_EQ(f.sv->count("upgrade done"), 0u);
    f.check_old_serves();
    f.check_recovers(3);
}

TEST_CASE("rollback: the next generation is not executable; the old one keeps serving") {
    Fixture f({});
    INFO("supervisor log:\n", tail(f.sv->log()));
    REQUIRE(f.port > 0);
    REQUIRE(f.w1 > 0);
    REQUIRE(write_script(f.script, fake_exec(f.dir), 0644));
    REQUIRE(f.sv->hup());
    auto failed = f.sv->wait_log(R"re(upgrade failed gen=2 reason="([^"]*)" serving_gen=1 \(still serving\))re");
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("Permission denied") != std::string::npos, (*failed)[1]);
    CHECK_MESSAGE((*failed)[1].find(f.script) != std::string::npos, (*failed)[1]);
    f.check_old_serves();
    f.check_recovers(3);
}

TEST_CASE("rollback: the next generation never sends READY=1; it is killed at --ready-timeout") {
    Fixture f({"--ready-timeout", "500ms"});
    INFO("supervisor log:\n", tail(f.sv->log()));
    REQUIRE(f.port > 0);
    REQUIRE(f.w1 > 0);
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--never-ready")));
    REQUIRE(f.sv->hup());
    auto spawned = f.sv->wait_log(R"(spawned gen=2 pid=(\d+) ready=notify timeout=500ms)");
    REQUIRE(spawned);
    pid_t w2 = std::stoi((*spawned)[1]);
    // It really is the never-ready fake worker (its report), not a shell that died.
    CHECK_EQ(wait_report(report_prefix(f.dir), w2, 3.0)["pid"], std::to_string(w2));
    auto failed = f.sv->wait_log(R"re(upgrade failed gen=2 reason="([^"]*)" serving_gen=1 \(still serving\))re", 3.0);
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("no READY=1") != std::string::npos, (*failed)[1]);
    CHECK(wait_until([&] { return !pid_alive(w2); }, 2.0));
    CHECK(f.sv->wait_log("reaped failed gen=2 pid=" + std::to_string(w2) + " signal=SIGKILL"));
    f.check_old_serves();
    f.check_recovers(3);
}
