// Startup and stop: the demo worker serves behind the supervisor, the pid file lives
// exactly as long as the supervisor, and SIGTERM leaves nothing behind.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "harness.h"

using namespace svtest;

TEST_CASE("startup: the demo worker serves GET /, SIGTERM stops everything and closes the port") {
    REQUIRE_MESSAGE(have_program(bins().demo_worker), "DEMO_WORKER_BIN is not executable: ", bins().demo_worker);
    TempDir dir;
    const std::string pid_file = dir.file("supervisor.pid");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--pid-file", pid_file}, {bins().demo_worker});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.pid() > 0);

    int port = sv.wait_port();
    REQUIRE(port > 0);
    pid_t worker = sv.wait_ready(1);
    REQUIRE(worker > 0);
    CHECK_EQ(read_file(pid_file), std::to_string(sv.pid()) + "\n");

    auto r = http_get(port);
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(r->body, "pid=" + std::to_string(worker) + " gen=1\n");

    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE_MESSAGE(st, "the supervisor did not exit within 5s of SIGTERM");
    CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), describe_status(st));
    CHECK(wait_until([&] { return !pid_alive(worker); }, 2.0));
    CHECK(find_log_line(sv.log(), "exited gen=1 pid=" + std::to_string(worker) + " exit=0 "));
    CHECK(find_log_line(sv.log(), "stopped after_ms=\\d+"));
    CHECK_FALSE(file_exists(pid_file));
    CHECK_FALSE(can_connect(port));
}

TEST_CASE("startup: --ready delay marks the worker ready after the delay, SIGINT stops like SIGTERM") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready-delay", "200ms"}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    auto spawned = sv.wait_log(R"(spawned gen=1 pid=(\d+) ready=delay delay=200ms)");
    REQUIRE(spawned);
    pid_t worker = sv.wait_ready(1);
    REQUIRE(worker > 0);
    CHECK_EQ(std::to_string(worker), (*spawned)[1]);

    auto r = http_get(port);
    REQUIRE(r);
    CHECK_EQ(r->body, "pid=" + std::to_string(worker) + " gen=1\n");

    REQUIRE(sv.proc().signal(SIGINT));
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), describe_status(st));
    CHECK(wait_until([&] { return !pid_alive(worker); }, 2.0));
    CHECK_FALSE(can_connect(port));
}

TEST_CASE("startup: a gen=1 that exits before ready is respawned with backoff; SIGHUP with a fix starts it now") {
    TempDir dir;
    const std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, "exit 1"));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {script});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    CHECK(sv.wait_log(R"re(start failed gen=1 reason="exited before ready \(exit=1\)[^"]*" \(nothing serving\))re"));
    CHECK(sv.wait_log("respawn gen=1 in_ms=100"));
    CHECK(sv.wait_log("respawn gen=1 in_ms=200"));
    CHECK(sv.wait_log("respawn gen=1 in_ms=400", 3.0));
    CHECK_EQ(sv.count("ready gen="), 0u);

    REQUIRE(write_script(script, fake_exec(dir)));
    REQUIRE(sv.hup());
    // Usually the backoff is waiting ("starting gen=N now"); if a doomed respawn is
    // starting at that moment, the request is queued behind it instead.
    auto ready = sv.wait_log(R"(ready gen=(\d+) pid=(\d+))", 3.0);
    REQUIRE(ready);
    CHECK((find_log_line(sv.log(), "upgrade requested while no worker serves: starting gen=" + (*ready)[1] + " now") ||
           find_log_line(sv.log(), "upgrade queued: gen=\\d+ is still starting")));
    auto r = http_get(port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{std::stol((*ready)[2]), std::stol((*ready)[1])});
}

TEST_CASE("startup: SIGTERM during the respawn backoff exits 0 at once") {
    TempDir dir;
    const std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, "exit 1"));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {script});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    REQUIRE(sv.wait_log("respawn gen=1 in_ms=200"));
    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(2.0);
    REQUIRE_MESSAGE(st, "the supervisor did not exit within 2s of SIGTERM");
    CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), describe_status(st));
    CHECK_FALSE(can_connect(port));
}

TEST_CASE("startup: SIGHUP while gen=1 is still starting is queued until it is ready") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready-delay", "500ms"}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    REQUIRE(sv.wait_log("spawned gen=1 pid=\\d+"));
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("upgrade queued: gen=1 is still starting"));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    pid_t w2 = sv.wait_upgrade_done(2, 3.0);
    REQUIRE(w2 > 0);
    auto r = wait_served_by(port, w2);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(w1) + " exit=0 "));
    CHECK_EQ(sv.count("upgrade started"), 1u);
}

TEST_CASE("startup: a stale unix socket file (nobody listening) is replaced") {
    TempDir dir;
    const std::string sock = dir.file("s.sock");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, sock.c_str(), sock.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::close(fd);  // the file stays: a leftover of a crashed server
    REQUIRE(file_exists(sock));

    Supervised sv(dir, {"-l", "unix:" + sock, "--ready", "notify"}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    auto r = http_get_unix(sock);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 1});
    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(WEXITSTATUS(*st), 0);
    CHECK_FALSE(file_exists(sock));
}
