// Workers in other languages (tests/workers/): each serves, upgrades on SIGHUP and drains.
// Skipped with a message when the interpreter or the worker file is missing.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include "harness.h"

using namespace svtest;

namespace {

void run_language_worker(const std::string& interpreter, const std::string& file, std::vector<std::string> options) {
    if (file.empty() || !file_exists(file)) {
        MESSAGE("skipped: worker file '", file, "' is missing");
        return;
    }
    if (!have_program(interpreter)) {
        MESSAGE("skipped: '", interpreter, "' is not installed");
        return;
    }
    TempDir dir;
    options.insert(options.begin(), {"-l", "127.0.0.1:0"});
    Supervised sv(dir, options, {interpreter, file});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    pid_t w1 = sv.wait_ready(1, 15.0);
    REQUIRE(w1 > 0);
    auto r = http_get(port, "/", 5.0);
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 1});

    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2, 15.0);
    REQUIRE(w2 > 0);
    CHECK_NE(w2, w1);
    r = wait_served_by(port, w2, 5.0);
    REQUIRE_MESSAGE(r, "gen=2 never answered");
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(w1) + " exit=0 ", 10.0));
}

} // namespace

TEST_CASE("languages: the Python worker (--ready notify)") {
    run_language_worker("python3", bins().py_worker, {"--ready", "notify"});
}

TEST_CASE("languages: the Node.js worker (--ready delay --ready-delay 500ms)") {
    run_language_worker("node", bins().node_worker, {"--ready", "delay", "--ready-delay", "500ms"});
}
