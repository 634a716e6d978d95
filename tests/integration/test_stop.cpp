// Stopping: the stop delay (lame duck: not ready, still serving, then the drain) and the
// listeners closed once nobody accepts again, so a late client is refused, never reset.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <csignal>

#include "harness.h"
#include "net.h"

using namespace svtest;

namespace {

std::vector<std::string> stop_options(const Serving& f, const std::string& delay) {
    return {"--stop-delay", delay, "--drain-timeout", "5s", "--control", f.control_socket()};
}

enum class Attempt { Served, Refused, Reset, Other };

// One connection to 127.0.0.1:port: refused at connect, or a GET answered, or accepted by
// the kernel and then closed without an answer (reset or EOF: what a late client must
// never see).
Attempt attempt(int port, std::string* detail) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Attempt::Other;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        int err = errno;
        ::close(fd);
        *detail = std::strerror(err);
        return err == ECONNREFUSED ? Attempt::Refused : Attempt::Other;
    }
    std::string req = "GET / HTTP/1.0\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string body;
    char buf[512];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) body.append(buf, static_cast<size_t>(n));
    int err = n < 0 ? errno : 0;
    ::close(fd);
    if (body.find(" 200 ") != std::string::npos) return Attempt::Served;
    *detail = err != 0 ? std::strerror(err) : "EOF before any answer";
    return err == EAGAIN ? Attempt::Other : Attempt::Reset;
}

} // namespace

TEST_CASE("stop delay: not ready at once (ctl status says stopping), requests still served, then the drain") {
    Serving f;
    Supervised& sv = f.start({.options = stop_options(f, "5s")});
    Stopwatch clock;
    REQUIRE(sv.term());
    REQUIRE(sv.wait_log(R"(stopping: stop delay 5s: gen=1 keeps serving)"));
    auto st = f.ctl({"status"});
    INFO("ctl status:\n", st.output);
    CHECK_EQ(st.code, 0);
    CHECK(st.output.find("stopping in ") != std::string::npos);
    CHECK(st.output.find("(stop delay)") != std::string::npos);
    auto js = f.ctl({"status", "--json"});
    CHECK(find_log_line(js.output, R"("phase": "stopping")"));
    CHECK(find_log_line(js.output, R"("stop_delay_remaining_ms": [1-9]\d*)"));
    // Still served by gen 1 during the delay, and not drained yet.
    for (int i = 0; i < 5; i++) {
        auto r = http_get(f.port);
        REQUIRE(r);
        CHECK_EQ(parse_pid_gen(r->body).first, f.w1);
    }
    CHECK_EQ(sv.count("draining gen=1"), 0u);
    CHECK(clock.seconds() < 5.0);  // the checks above ran inside the delay
    auto over = sv.wait_log(R"(stopping: stop delay over after_ms=(\d+))", 8.0);
    REQUIRE(over);
    std::printf("stop delay 5s: drained after_ms=%s\n", (*over)[1].c_str());
    CHECK_GE(std::stol((*over)[1]), 5000);
    CHECK(sv.wait_log("draining gen=1 pid=" + std::to_string(f.w1)));
    auto st2 = sv.proc().wait_exit(5.0);
    REQUIRE(st2);
    CHECK_EQ(exit_code_of(st2), 0);
    CHECK_GE(clock.seconds(), 4.9);
}

TEST_CASE("stop delay: a second SIGTERM skips the rest of the delay and drains now") {
    Serving f;
    Supervised& sv = f.start({.options = stop_options(f, "60s")});
    REQUIRE(sv.term());
    REQUIRE(sv.wait_log("stopping: stop delay 1m"));
    Stopwatch clock;
    REQUIRE(sv.term());
    CHECK(sv.wait_log("second SIGTERM during the stop delay: skipping the rest of it"));
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(exit_code_of(st), 0);
    CHECK(clock.seconds() < 5.0);
    CHECK_EQ(sv.count("killing"), 0u);  // drained, not killed
}

// The worker closes its listener at the drain signal and takes 1.5 s to finish. Connections
// attempted meanwhile used to be accepted into the backlog of the supervisor's own copy of
// the socket, and reset when the supervisor exited; now they are refused at once.
TEST_CASE("stop: connections attempted after the drain signal are served or refused, never accepted and reset") {
    Serving f;
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--drain-ms 1500")));
    Supervised& sv = f.start({.options = {"--drain-timeout", "5s"}});
    REQUIRE(sv.term());
    REQUIRE(sv.wait_log(R"(fake_worker pid=\d+ gen=1 draining drain_ms=1500)"));
    int served = 0, refused = 0, reset = 0, other = 0;
    std::string why;
    Stopwatch clock;
    while (sv.proc().alive() && clock.seconds() < 8.0) {
        std::string detail;
        switch (attempt(f.port, &detail)) {
        case Attempt::Served: served++; break;
        case Attempt::Refused: refused++; break;
        case Attempt::Reset: reset++, why = detail; break;
        case Attempt::Other: other++, why = detail; break;
        }
    }
    INFO("served=", served, " refused=", refused, " reset=", reset, " other=", other, " last: ", why);
    std::printf("late clients during a stop: served=%d refused=%d reset=%d other=%d\n", served, refused, reset, other);
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(exit_code_of(st), 0);
    CHECK_EQ(reset, 0);
    CHECK_EQ(other, 0);
    CHECK_GT(refused, 0);
    CHECK(sv.wait_log(R"(closed our copies of 1 listener\(s\))", 1.0));
}
