// Workers in other languages (tests/workers/): each serves, upgrades on SIGHUP and drains.
// Skipped with a message when the interpreter or the worker file is missing.
#include <doctest/doctest.h>

#include "harness.h"

using namespace svtest;

namespace {

void run_language_worker(const std::string& interpreter, const std::string& file, const std::vector<std::string>& ready) {
    if (file.empty() || !file_exists(file)) {
        MESSAGE("skipped: worker file '", file, "' is missing");
        return;
    }
    if (!have_program(interpreter)) {
        MESSAGE("skipped: '", interpreter, "' is not installed");
        return;
    }
    Serving f;
    Supervised& sv = f.start({.command = {interpreter, file}, .ready = ready, .seconds = 15.0});
    const int port = f.port;
    const pid_t w1 = f.w1;
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
