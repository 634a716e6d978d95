// Readiness without cooperation, through the real supervisor: workers that boot slowly and
// never send READY=1 are judged ready when one of their processes waits on the inherited
// listener (accept, epoll, poll, select; a thread; acceptors forked by a master). The old
// generation keeps serving until then and is drained right after.
#include <doctest/doctest.h>

#include <chrono>

#include "harness.h"

using namespace svtest;

namespace {

using Clock = std::chrono::steady_clock;

struct Outcome {
    int ok = 0, failed = 0, by_old = 0;
};

// GETs in a loop (a fresh connection each) until `done` or the deadline; counts answers
// (by_old: answered by generation 1, whichever of its processes).
Outcome load_until(int port, const std::function<bool()>& done, double seconds) {
    Outcome o;
    auto end = Clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
    while (!done() && Clock::now() < end) {
        auto r = http_get(port, "/", 2.0);
        if (!r || r->status != 200) {
            o.failed++;
            continue;
        }
        o.ok++;
        if (parse_pid_gen(r->body).second == 1) o.by_old++;
    }
    return o;
}

std::vector<std::string> slow(const std::string& mode, int boot_ms, std::vector<std::string> extra = {}) {
    std::vector<std::string> cmd{env("SLOW_ACCEPTOR_BIN"), "--mode", mode, "--boot-ms", std::to_string(boot_ms)};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    return cmd;
}

// Boots gen 1, upgrades under a request loop; checks how gen 2 was seen and that gen 1
// answered while gen 2 booted, with no failed request.
// `how` is a regex: a worker woken by poll/select may be caught in the accept() that follows.
void upgrade_seen(const std::vector<std::string>& cmd, const std::string& how, int boot_ms,
                  const std::string& mode = "accepting") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", mode, "--ready-timeout", "20s", "--drain-timeout", "5s"}, cmd);
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    auto first = sv.wait_log("ready gen=1 pid=(\\d+) after_ms=\\d+ seen=(" + how + ")", 20.0);
    REQUIRE(first);
    long w1 = std::stol((*first)[1]);
    REQUIRE(sv.hup());
    auto o = load_until(port, [&] { return sv.count("upgrade done gen=2") > 0; }, 20.0);
    auto ready = find_log_line(sv.log(), "ready gen=2 pid=(\\d+) after_ms=(\\d+) seen=(\\w+)");
    REQUIRE(ready);
    CHECK_MESSAGE(find_log_line((*ready)[0], "seen=(" + how + ")$"), (*ready)[0]);
    // Not before it accepts: after_ms counts from the spawn's result, a few ms after the
    // worker's clock started, hence the margin.
    CHECK_GE(std::stol((*ready)[2]), boot_ms - 50);
    CHECK_EQ(o.failed, 0);
    CHECK_GT(o.by_old, 0);  // the old generation served while the new one booted
    // …and was told to drain right after the new one was seen.
    auto drain = sv.wait_log("draining gen=1 pid=" + std::to_string(w1), 3.0);
    CHECK(drain);
    CHECK(wait_until([&] { return !pid_alive(static_cast<pid_t>(w1)); }, 6.0));
}

} // namespace

TEST_CASE("readiness: --ready accepting sees each way of accepting; the old generation serves until then") {
    REQUIRE(file_exists(env("SLOW_ACCEPTOR_BIN")));
    SUBCASE("blocking accept") { upgrade_seen(slow("accept", 700), "accept", 700); }
    // An epoll worker woken for a connection the old generation took may be caught in the
    // accept4() that follows: waiting on the listener all the same.
    SUBCASE("epoll") { upgrade_seen(slow("epoll", 700), "epoll|accept", 700); }
    SUBCASE("accept in a second thread") { upgrade_seen(slow("thread", 700), "accept", 700); }
    SUBCASE("a master that forks its acceptors") { upgrade_seen(slow("fork", 700), "accept", 700); }
    SUBCASE("the listener dup'ed to fd 40") { upgrade_seen(slow("accept", 700, {"--dup-to", "40"}), "accept", 700); }
    SUBCASE("python selectors: poll and select") {
        if (!have_program("python3")) return;
        upgrade_seen({"python3", env("SELECTOR_WORKER"), "--selector", "poll", "--boot-ms", "700"}, "poll|accept", 700);
        upgrade_seen({"python3", env("SELECTOR_WORKER"), "--selector", "select", "--boot-ms", "700"}, "select|accept", 700);
    }
}

TEST_CASE("readiness: --ready auto judges a server that knows nothing by what it does") {
    upgrade_seen(slow("epoll", 700), "epoll|accept", 700, "auto");
}

TEST_CASE("readiness: a worker that never accepts is rolled back at --ready-timeout") {
    TempDir dir;
    // gen 1 accepts at once; every later generation boots for a minute.
    REQUIRE(write_script(dir.file("worker.sh"),
                         "if [ -e " + sh_quote(dir.file("booted")) + " ]; then exec " + sh_quote(env("SLOW_ACCEPTOR_BIN")) +
                             " --mode accept --boot-ms 60000; fi\ntouch " + sh_quote(dir.file("booted")) + "\nexec " +
                             sh_quote(env("SLOW_ACCEPTOR_BIN")) + " --mode accept --boot-ms 0\n"));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "accepting", "--ready-timeout", "1s"}, {dir.file("worker.sh")});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("upgrade failed gen=2 reason=\"never accepted on a listener within the ready timeout of 1s\"", 5.0));
    CHECK(pid_alive(w1));
}

TEST_CASE("readiness: under auto, READY=1 sent before the worker accepts does not make it ready") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "auto", "--ready-timeout", "20s"},
                  slow("accept", 800, {"--ready-first"}));
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    CHECK(sv.wait_log("READY=1 from gen=1 pid=\\d+; waiting until it accepts", 5.0));
    auto ready = sv.wait_log("ready gen=1 pid=\\d+ after_ms=(\\d+) seen=accept", 10.0);
    REQUIRE(ready);
    CHECK_GE(std::stol((*ready)[1]), 800 - 50);
}
