// The worker contract as the worker sees it: fds 3.. are the listeners and nothing else
// leaks, the LISTEN_* variables are systemd's, its own process group, and a notify
// socket that only believes its own workers.
#include <doctest/doctest.h>

#include "harness.h"

using namespace svtest;

namespace {

void check_worker_view(std::map<std::string, std::string> rep, pid_t worker, pid_t supervisor, unsigned gen,
                       const std::string& sock) {
    INFO("report of pid ", worker);
    CHECK_EQ(rep["pid"], std::to_string(worker));
    CHECK_EQ(rep["fds"], "0,1,2,3,4");
    CHECK_EQ(rep["fd3.listening"], "1");
    CHECK_EQ(rep["fd4.listening"], "1");
    CHECK_EQ(rep["fd3.cloexec"], "0");
    CHECK_EQ(rep["fd4.cloexec"], "0");
    CHECK_EQ(rep["fd3.nonblock"], "0");
    CHECK_EQ(rep["fd4.nonblock"], "0");
    CHECK_EQ(rep["fd3.family"], "inet");
    CHECK_EQ(rep["fd4.family"], "unix");
    CHECK_EQ(rep["LISTEN_PID"], std::to_string(worker));
    CHECK_EQ(rep["LISTEN_FDS"], "2");
    CHECK_EQ(rep["LISTEN_FDNAMES"], "a:b");
    CHECK_EQ(rep["listeners"], "2");
    CHECK_EQ(rep["SUPERVISOR_GENERATION"], std::to_string(gen));
    CHECK_EQ(rep["pgid"], std::to_string(worker));
    CHECK_EQ(rep["ppid"], std::to_string(supervisor));
    REQUIRE_FALSE(rep["NOTIFY_SOCKET"].empty());
    CHECK_EQ(rep["NOTIFY_SOCKET"][0], '/');  // a path by default (--notify-socket abstract gives '@')
    CHECK_EQ(rep["EINHORN_FDS"], "3 4");
    CHECK(rep["SERVER_STARTER_PORT"].find("=3;") != std::string::npos);
    CHECK(rep["SERVER_STARTER_PORT"].find(sock + "=4") != std::string::npos);
}

// gen=1 serving (debug log, 1 s ready timeout), then an upgrade to a fake worker run with
// `--never-ready <extra>`: gen=2's pid.
pid_t start_never_ready_gen2(Serving& f, const std::string& extra) {
    f.start({.options = {"--ready-timeout", "1s", "--log-level", "debug"}});
    return f.upgrade_to("--never-ready " + extra);
}

// A READY=1 from `sender` was ignored: gen=2 failed at the ready timeout, gen=1 serves.
void check_foreign_ready_ignored(Serving& f, const std::string& sender) {
    Supervised& sv = f.sv();
    CHECK(sv.wait_log("ignored notify message from pid=" + sender + ": not a worker"));
    CHECK(sv.wait_log(R"re(upgrade failed gen=2 reason="[^"]*no READY=1)re", 3.0));
    CHECK_EQ(sv.count("upgrade done"), 0u);
    CHECK_FALSE(find_log_line(sv.log(), "ready gen=2 "));
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{f.w1, 1});
}

} // namespace

TEST_CASE("contract: two listeners arrive on fds 3 and 4 with systemd's variables, nothing else leaks") {
    Serving f;
    const std::string sock = f.dir.file("s.sock");
    Supervised& sv = f.start({.command = f.fake_worker(), .listen = {"-l", "a=127.0.0.1:0", "-l", "b=unix:" + sock}});
    const int port = f.port;
    const pid_t w1 = f.w1;
    REQUIRE(port > 0);
    CHECK(find_log_line(sv.log(), "listening name=b addr=" + sock + " fd=4"));
    check_worker_view(wait_report(f.report(), w1, 3.0), w1, sv.pid(), 1, sock);

    auto tcp = http_get(port);
    REQUIRE(tcp);
    CHECK_EQ(parse_pid_gen(tcp->body), std::pair<long, long>{w1, 1});
    auto unix_r = http_get_unix(sock);
    REQUIRE(unix_r);
    CHECK_EQ(parse_pid_gen(unix_r->body), std::pair<long, long>{w1, 1});

    // The next generation sees the same: nothing accumulates across upgrades.
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    check_worker_view(wait_report(f.report(), w2, 3.0), w2, sv.pid(), 2, sock);
    unix_r = wait_served_by([&] { return http_get_unix(sock); }, w2);
    REQUIRE(unix_r);
    CHECK_EQ(parse_pid_gen(unix_r->body), std::pair<long, long>{w2, 2});

    expect_clean_stop(sv);
    CHECK_FALSE(file_exists(sock));  // the socket file we created is removed on exit
}

TEST_CASE("contract: READY=1 from a stranger does not make a starting worker ready") {
    Serving f;
    pid_t w2 = start_never_ready_gen2(f, "");
    std::string notify_socket = wait_report(f.report(), f.w1, 3.0)["NOTIFY_SOCKET"];
    REQUIRE_FALSE(notify_socket.empty());
    REQUIRE(send_notify(notify_socket, "READY=1"));
    check_foreign_ready_ignored(f, std::to_string(self_pid()));
    CHECK(wait_until([&] { return !pid_alive(w2); }, 2.0));
}

TEST_CASE("contract: fds the supervisor inherited do not reach workers") {
    Serving f;
    // The shell opens fds 5 and 7 without close-on-exec, then becomes the supervisor.
    Supervised& sv = f.start({.command = f.fake_worker(),
                              .prefix = {"/bin/sh", "-c", "exec 5</dev/null 7>/dev/null; exec \"$@\"", "sh"}});
    auto fds = read_file("/proc/" + std::to_string(sv.pid()) + "/fdinfo/7");
    CHECK_FALSE(fds.empty());  // the supervisor itself did inherit it
    CHECK_EQ(wait_report(f.report(), f.w1, 3.0)["fds"], "0,1,2,3");
}

TEST_CASE("contract: the supervisor tells its own NOTIFY_SOCKET; workers get the supervisor's, not it") {
    Serving f;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    // Inherited socket-activation variables are meant for the supervisor, not its workers.
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name(), "LISTEN_FDS=7", "LISTEN_PID=1",
                                 "LISTEN_FDNAMES=bogus", "SUPERVISOR_GENERATION=99"});
    Supervised& sv = f.start({.command = f.fake_worker(), .env = &env});
    auto ready = systemd.receive_until("READY=1", 3.0);
    REQUIRE(ready);
    CHECK(ready->find("gen=1") != std::string::npos);
    auto rep = wait_report(f.report(), f.w1, 3.0);
    CHECK_NE(rep["NOTIFY_SOCKET"], systemd.name());
    CHECK_EQ(rep["NOTIFY_SOCKET"].substr(0, 1), "/");
    CHECK_EQ(rep["LISTEN_FDS"], "1");
    CHECK_EQ(rep["LISTEN_PID"], std::to_string(f.w1));
    CHECK_EQ(rep["LISTEN_FDNAMES"], "listen0");
    CHECK_EQ(rep["SUPERVISOR_GENERATION"], "1");
    CHECK_EQ(rep["fds"], "0,1,2,3");

    REQUIRE(sv.hup());
    auto reloading = systemd.receive_until("RELOADING=1", 3.0);
    REQUIRE(reloading);
    CHECK(reloading->find("MONOTONIC_USEC=") != std::string::npos);
    ready = systemd.receive_until("READY=1", 3.0);
    REQUIRE(ready);
    CHECK(ready->find("gen=2") != std::string::npos);

    REQUIRE(sv.term());
    CHECK(systemd.receive_until("STOPPING=1", 3.0));
    auto st = sv.proc().wait_exit(3.0);
    REQUIRE(st);
    CHECK_EQ(exit_code_of(st), 0);
}

TEST_CASE("contract: READY=1 from a worker's own child does not count either") {
    Serving f;
    pid_t w2 = start_never_ready_gen2(f, "--spawn-grandchild --grandchild-ready");
    auto rep = wait_report(f.report(), w2, 3.0);
    REQUIRE(rep.count("grandchild"));
    check_foreign_ready_ignored(f, rep["grandchild"]);
    CHECK(wait_until([&] { return !pid_alive(std::stoi(rep["grandchild"])); }, 2.0));  // killed with its group
}

TEST_CASE("contract: SIGUSR1 to the supervisor is forwarded to the current worker with --forward-signal USR1") {
    Serving f;
    Supervised& sv = f.start({.options = {"--forward-signal", "USR1"}, .command = f.fake_worker()});
    REQUIRE(sv.proc().signal(SIGUSR1));
    CHECK(sv.wait_log("forwarded SIGUSR1 to gen=1 pid=" + std::to_string(f.w1)));
    CHECK(sv.wait_log("fake_worker pid=" + std::to_string(f.w1) + " gen=1 got SIGUSR1"));
    CHECK(pid_alive(f.w1));
}

TEST_CASE("contract: listeners are blocking by default; --nonblocking creates them with O_NONBLOCK") {
    for (bool nonblocking : {false, true}) {
        CAPTURE(nonblocking);
        Serving f;
        std::vector<std::string> options;
        if (nonblocking) options.push_back("--nonblocking");
        Supervised& sv = f.start({.options = options, .command = f.fake_worker()});
        // The open file description is shared: the supervisor's own fd shows the flag. Our
        // listener is the first socket the supervisor opened (fd 3 after stdio).
        long flags = proc::fd_flags(sv.pid(), proc::first_socket_fd(sv.pid()));
        REQUIRE(flags >= 0);
        CHECK_EQ((flags & 04000) != 0, nonblocking);  // O_NONBLOCK
    }
}
