// The core's hard edges, with real processes: a fork that fails in the middle of a batch of
// spawns, a stop while nothing is alive, a supervisor stalled past its ready timeout. Each
// case failed on the machine that was driven re-entrantly (docs/RELIABILITY.md).
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <chrono>
#include <set>

#include "harness.h"

using namespace svtest;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> with_fail_fork(const std::string& at) {
    // ASan wants its runtime first; the shim is plain C and intercepts nothing ASan needs.
    return environment_with({"LD_PRELOAD=" + env("FAIL_FORK_LIB"), "FAIL_FORK_AT=" + at,
                             "ASAN_OPTIONS=" + env("ASAN_OPTIONS") + ":verify_asan_link_order=0"});
}

std::set<long> pids_answering(int port, int requests) {
    std::set<long> pids;
    for (int i = 0; i < requests; i++)
        if (auto r = http_get(port, "/", 2.0); r && r->status == 200) pids.insert(parse_pid_gen(r->body).first);
    return pids;
}

} // namespace

TEST_CASE("core: a fork that fails first in an all-at-once upgrade of 3 rolls the whole generation back") {
    REQUIRE(file_exists(env("FAIL_FORK_LIB")));
    TempDir dir;
    auto e = with_fail_fork("4");  // forks 1-3 boot gen 1; the 4th is gen 2's first
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--workers", "3"}, {bins().fake_worker}, &e);
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    REQUIRE(sv.wait_log("ready gen=1 pid=\\d+ after_ms=\\d+ slot=2"));
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("upgrade failed gen=2 reason=\"cannot fork: Resource temporarily unavailable slot=0\""));
    // The two spawns that did succeed belong to a decided generation: killed, reaped.
    auto killed = wait_until([&] { return sv.count("reaped failed gen=2 pid=") == 2; }, 5.0, &sv.proc());
    CHECK(killed);
    for (const auto& m : find_log_lines(sv.log(), "killed gen=2 pid=(\\d+) slot=\\d: (.*)"))
        CHECK_FALSE(pid_alive(std::stol(m[1])));
    CHECK_EQ(sv.count("killed gen=2 pid="), 2u);
    // Only gen 1 answers; the supervisor is alive and its invariants held.
    std::set<long> gen1;
    for (const auto& m : find_log_lines(sv.log(), "spawned gen=1 pid=(\\d+)")) gen1.insert(std::stol(m[1]));
    for (long pid : pids_answering(port, 30)) CHECK(gen1.count(pid) == 1);
    CHECK(sv.proc().alive());
    CHECK_EQ(sv.count("invariant broken"), 0u);
    SUBCASE("the next upgrade works") {
        REQUIRE(sv.hup());
        CHECK(sv.wait_upgrade_done(3) > 0);
    }
}

TEST_CASE("core: ctl stop while no worker is alive (crash loop in its backoff) exits 0 at once") {
    TempDir dir;
    // Serves once, then every later start exits 1: a crash loop with a growing backoff.
    REQUIRE(write_script(dir.file("worker.sh"), "if [ -e " + sh_quote(dir.file("served")) + " ]; then exit 1; fi\n"
                                                "touch " + sh_quote(dir.file("served")) + "\n" +
                                                fake_exec(dir, "--exit-after-ready-ms 50")));
    std::string sock = dir.file("c.sock");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--control", sock}, {dir.file("worker.sh")});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_log("worker died gen=1"));
    REQUIRE(wait_until([&] { return sv.count("respawn gen=1 in_ms=") >= 2; }, 5.0, &sv.proc()));
    Process ctl({bins().supervisor, "ctl", "--control", sock, "stop"}, dir.file("ctl.log"));
    auto ctl_status = ctl.wait_exit(10.0);
    REQUIRE(ctl_status);
    CHECK_EQ(describe_status(ctl_status), "exit=0");
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(describe_status(st), "exit=0");
    CHECK(find_log_line(sv.log(), "stopped after_ms=\\d+"));
    CHECK_EQ(count_log_lines(sv.log(), "AddressSanitizer|runtime error"), 0u);
}

TEST_CASE("core: a supervisor stalled past --ready-timeout with READY=1 queued keeps the good upgrade") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--ready-timeout", "1s"},
                  {"/bin/sh", "-c", fake_exec(dir, "--ready-after-ms 200")});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("spawned gen=2 pid=\\d+"));
    REQUIRE(sv.proc().signal(SIGSTOP));
    auto stopped_at = Clock::now();
    pid_t w2 = sv.spawned_pid(2);
    REQUIRE(w2 > 0);
    // The new worker says READY=1 into the socket of a supervisor that cannot read it…
    // (the worker's own output goes to the same log file, stalled supervisor or not)
    CHECK(wait_until([&] { return sv.count("fake_worker pid=" + std::to_string(w2) + " gen=2 ready notify=1") == 1; }, 5.0));
    // …and stays stalled until its ready timer is overdue (a wait for the clock, not a process).
    wait_until([&] { return Clock::now() - stopped_at > std::chrono::milliseconds(1300); }, 3.0);
    REQUIRE(sv.proc().signal(SIGCONT));
    CHECK(sv.wait_upgrade_done(2) == w2);
    CHECK_EQ(sv.count("upgrade failed gen=2"), 0u);
}

TEST_CASE("core: --worker-watchdog: a worker that pinged and then hung is killed and respawned; workers get WATCHDOG_USEC") {
    if (!have_program("python3")) return;
    TempDir dir;
    // Pings WATCHDOG=1 for 0.3 s after READY=1, then hangs (alive, silent).
    REQUIRE(write_file(dir.file("hangs.py"), R"(import os, socket, sys, time
sys.stderr.write("hangs.py pid=%d WATCHDOG_USEC=%s\n" % (os.getpid(), os.environ.get("WATCHDOG_USEC")))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s.sendto(b"READY=1", addr)
for _ in range(6):
    s.sendto(b"WATCHDOG=1", addr)
    time.sleep(0.05)
time.sleep(600)
)"));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--worker-watchdog", "400ms"},
                  {"python3", dir.file("hangs.py")});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    CHECK(sv.wait_log("hangs.py pid=" + std::to_string(w1) + " WATCHDOG_USEC=400000"));
    CHECK(sv.wait_log("watchdog gen=1 pid=" + std::to_string(w1) + " timeout=400ms"));
    CHECK(sv.wait_log("hung: no WATCHDOG=1 for 400ms gen=1 pid=" + std::to_string(w1) + ": killing it and its processes \\(hung_total=1\\)", 5.0));
    CHECK(sv.wait_log("worker died gen=1 pid=" + std::to_string(w1) + " signal=SIGKILL", 3.0));
    CHECK(sv.wait_log("respawn gen=1 in_ms=", 3.0));
    CHECK(wait_until([&] { return !pid_alive(w1); }, 3.0));
    CHECK(wait_until([&] { return sv.count("ready gen=1 pid=") >= 2; }, 5.0, &sv.proc()));
}
