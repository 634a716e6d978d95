// Fault injection on the notify socket: a stranger flooding it, junk datagrams from the
// worker itself, a ready worker repeating READY=1 while the next one starts. None makes a
// worker ready that did not say so itself, and none starves the loop.
// docs/RELIABILITY.md maps each fault to its test.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "harness.h"

using namespace svtest;

namespace {

// A forked child of this test (a "stranger" to the supervisor), SIGKILLed and reaped at
// scope end if still running.
struct ChildGuard {
    pid_t pid = -1;
    ~ChildGuard() {
        if (pid > 0 && !wait_exit(pid, 0.0)) {
            ::kill(pid, SIGKILL);
            wait_exit(pid, 2.0);
        }
    }
};

// In a forked child: sends up to 100k datagrams of five kinds to the abstract socket
// `name` ("@…") with blocking sends, marking progress in files `progress`.started (1000
// sent), .90k and .done ("sent=… timeouts=… ms=…"). Only syscalls, then _exit.
[[noreturn]] void flood(const std::string& name, const std::string& progress) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, name.data(), name.size());
    sa.sun_path[0] = '\0';
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const std::string msgs[] = {"READY=1", "STATUS=flood", "READY=1\nSTOPPING=1", std::string(4096, 'z'), "\x01\x02\xff"};
    long sent = 0, timeouts = 0;
    Stopwatch t0;
    while (sent < 100'000 && t0.seconds() < 30.0) {
        const std::string& m = msgs[sent % 5];
        if (::sendto(fd, m.data(), m.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                timeouts++;
                continue;
            }
            break;  // ECONNREFUSED: the supervisor is gone
        }
        if (++sent == 1000) write_file(progress + ".started", "");
        if (sent == 90'000) write_file(progress + ".90k", "");
    }
    char line[128];
    int n = std::snprintf(line, sizeof line, "sent=%ld timeouts=%ld ms=%ld\n", sent, timeouts,
                          static_cast<long>(t0.seconds() * 1000));
    write_file(progress + ".done", std::string(line, static_cast<size_t>(n)));
    ::_exit(0);
}

} // namespace

TEST_CASE("faults: a stranger flooding the notify socket with 100k datagrams starves neither an upgrade nor SIGTERM") {
    Serving f;
    // Abstract: the worst case, reachable by anyone in the network namespace (a path sits in a 0700 directory).
    Supervised& sv = f.start({.options = {"--ready-timeout", "10s", "--notify-socket", "abstract"}, .command = f.fake_worker()});
    const std::string name = sv.notify_socket();
    REQUIRE(name.size() > 1);
    const std::string progress = f.dir.file("flood");

    ChildGuard flooder;
    flooder.pid = ::fork();
    REQUIRE(flooder.pid >= 0);
    if (flooder.pid == 0) flood(name, progress);  // the child: no doctest, no destructors
    REQUIRE(wait_until([&] { return file_exists(progress + ".started"); }, 5.0));
    Stopwatch t_hup;
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2, 8.0);
    double upgrade_s = t_hup.seconds();
    REQUIRE(w2 > 0);
    // SIGTERM near the end of the flood, while it still runs.
    REQUIRE(wait_until([&] { return file_exists(progress + ".90k"); }, 20.0, &sv.proc()));
    bool flooding_at_term = !file_exists(progress + ".done");
    Stopwatch t_term;
    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(5.0);
    double stop_s = t_term.seconds();
    REQUIRE_MESSAGE(st, "the supervisor did not stop within 5s of SIGTERM under the flood");
    CHECK_EQ(exit_code_of(st), 0);
    CHECK(wait_exit(flooder.pid, 5.0));
    std::string done = read_file(progress + ".done");
    std::printf("notify flood: %s upgrade_ms=%.0f stop_ms=%.0f flooding_at_term=%d\n",
                done.substr(0, done.find('\n')).c_str(), upgrade_s * 1000, stop_s * 1000, flooding_at_term);
    CHECK_LT(upgrade_s, 3.0);
    CHECK_LT(stop_s, 2.0);
    CHECK_EQ(count_log_lines(sv.log(), "ready gen=2 pid=" + std::to_string(w2)), 1u);
    auto sent = find_log_line(done, R"(sent=(\d+))");
    REQUIRE(sent);
    CHECK_GE(std::stol((*sent)[1]), 90'000L);
}

TEST_CASE("faults: oversized, truncated, binary and malformed datagrams from the worker itself change nothing") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, ""}, {2, "--notify-garbage --never-ready"}, {3, "--notify-garbage"}})));
    Supervised& sv = f.start({.options = {"--ready-timeout", "1s", "--log-level", "debug"}});
    const size_t fds_before = proc::open_fds(sv.pid()).size();

    REQUIRE(sv.hup());
    auto spawned = sv.wait_log(R"(spawned gen=2 pid=(\d+))");
    REQUIRE(spawned);
    const std::string w2 = (*spawned)[1];
    REQUIRE(sv.wait_log("status gen=2 pid=" + w2 + " status=\"garbage sent\"", 3.0));
    REQUIRE(sv.wait_log(R"re(upgrade failed gen=2 reason="no READY=1)re", 3.0));
    CHECK_EQ(sv.count("ready gen=2 "), 0u);
    CHECK_GE(sv.count("ignored a notify datagram: oversized or without credentials"), 3u);
    CHECK_GE(sv.count("ignored a notify datagram from pid=" + w2 + ": nothing we understand"), 15u);
    // Control characters replaced, the text cut at 256 bytes.
    auto status = find_log_line(sv.log(), "status gen=2 pid=" + w2 + R"re( status="(\?\[31mred\?\?tab y*)")re");
    REQUIRE(status);
    CHECK_EQ((*status)[1].size(), 256u);
    // The 43 fds passed with two datagrams were closed, not kept.
    CHECK(wait_until([&] { return proc::open_fds(sv.pid()).size() == fds_before; }, 2.0, &sv.proc()));
    CHECK(wait_served_by(f.port, f.w1));

    REQUIRE(sv.hup());  // the same junk, then a real READY=1: that one counts
    pid_t w3 = sv.wait_upgrade_done(3, 3.0);
    REQUIRE(w3 > 0);
    CHECK(wait_served_by(f.port, w3));
    // Once gen 1 is reaped, its pidfd is closed too: the count is back where it started
    // (checked at once after the verdict, it could still include gen 1's: 21 vs 20).
    REQUIRE(sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1), 5.0));
    CHECK(wait_until([&] { return proc::open_fds(sv.pid()).size() == fds_before; }, 2.0, &sv.proc()));
}

TEST_CASE("faults: a ready worker repeating READY=1 cannot make a starting worker ready") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, "--notify-repeat-ms 20"}, {2, "--never-ready"}})));
    Supervised& sv = f.start({.options = {"--ready-timeout", "1s"}});
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log(R"re(upgrade failed gen=2 reason="no READY=1)re", 3.0));
    CHECK_EQ(sv.count("ready gen=2 "), 0u);
    CHECK_EQ(sv.count("ready gen=1 "), 1u);
    CHECK(wait_served_by(f.port, f.w1));
}
