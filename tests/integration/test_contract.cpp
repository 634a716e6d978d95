// The worker contract as the worker sees it: fds 3.. are the listeners and nothing else
// leaks, the LISTEN_* variables are systemd's, its own process group, and a notify
// socket that only believes its own workers.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

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

} // namespace

TEST_CASE("contract: two listeners arrive on fds 3 and 4 with systemd's variables, nothing else leaks") {
    TempDir dir;
    const std::string sock = dir.file("s.sock");
    Supervised sv(dir, {"-l", "a=127.0.0.1:0", "-l", "b=unix:" + sock, "--ready", "notify"},
                  {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    CHECK(find_log_line(sv.log(), "listening name=b addr=" + sock + " fd=4"));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    check_worker_view(wait_report(report_prefix(dir), w1, 3.0), w1, sv.pid(), 1, sock);

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
    check_worker_view(wait_report(report_prefix(dir), w2, 3.0), w2, sv.pid(), 2, sock);
    unix_r = wait_served_by([&] { return http_get_unix(sock); }, w2);
    REQUIRE(unix_r);
    CHECK_EQ(parse_pid_gen(unix_r->body), std::pair<long, long>{w2, 2});

    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(WEXITSTATUS(*st), 0);
    CHECK_FALSE(file_exists(sock));  // the socket file we created is removed on exit
}

TEST_CASE("contract: READY=1 from a stranger does not make a starting worker ready") {
    TempDir dir;
    const std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, fake_exec(dir)));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--ready-timeout", "1s", "--log-level", "debug"},
                  {script});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    std::string notify_socket = wait_report(report_prefix(dir), w1, 3.0)["NOTIFY_SOCKET"];
    REQUIRE_FALSE(notify_socket.empty());

    REQUIRE(write_script(script, fake_exec(dir, "--never-ready")));
    REQUIRE(sv.hup());
    auto spawned = sv.wait_log(R"(spawned gen=2 pid=(\d+))");
    REQUIRE(spawned);
    REQUIRE(send_notify(notify_socket, "READY=1"));
    CHECK(sv.wait_log("ignored notify message from pid=" + std::to_string(self_pid()) + ": not a worker"));
    auto failed = sv.wait_log(R"re(upgrade failed gen=2 reason="([^"]*no READY=1[^"]*)")re", 3.0);
    CHECK(failed);
    CHECK_EQ(sv.count("upgrade done"), 0u);
    CHECK_FALSE(find_log_line(sv.log(), "ready gen=2 "));
    CHECK(wait_until([&] { return !pid_alive(std::stoi((*spawned)[1])); }, 2.0));
    auto r = http_get(port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 1});
}

TEST_CASE("contract: fds the supervisor inherited do not reach workers") {
    TempDir dir;
    // The shell opens fds 5 and 7 without close-on-exec, then becomes the supervisor.
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {bins().fake_worker, "--report", report_prefix(dir)},
                  nullptr, {"/bin/sh", "-c", "exec 5</dev/null 7>/dev/null; exec \"$@\"", "sh"});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    auto fds = read_file("/proc/" + std::to_string(sv.pid()) + "/fdinfo/7");
    CHECK_FALSE(fds.empty());  // the supervisor itself did inherit it
    CHECK_EQ(wait_report(report_prefix(dir), w1, 3.0)["fds"], "0,1,2,3");
}

TEST_CASE("contract: the supervisor tells its own NOTIFY_SOCKET; workers get the supervisor's, not it") {
    TempDir dir;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    // Inherited socket-activation variables are meant for the supervisor, not its workers.
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name(), "LISTEN_FDS=7", "LISTEN_PID=1",
                                 "LISTEN_FDNAMES=bogus", "SUPERVISOR_GENERATION=99"});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {bins().fake_worker, "--report", report_prefix(dir)},
                  &env);
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    auto ready = systemd.receive_until("READY=1", 3.0);
    REQUIRE(ready);
    CHECK(ready->find("gen=1") != std::string::npos);
    auto rep = wait_report(report_prefix(dir), w1, 3.0);
    CHECK_NE(rep["NOTIFY_SOCKET"], systemd.name());
    CHECK_EQ(rep["NOTIFY_SOCKET"].substr(0, 1), "/");
    CHECK_EQ(rep["LISTEN_FDS"], "1");
    CHECK_EQ(rep["LISTEN_PID"], std::to_string(w1));
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
    CHECK_EQ(WEXITSTATUS(*st), 0);
}

TEST_CASE("contract: READY=1 from a worker's own child does not count either") {
    TempDir dir;
    const std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, fake_exec(dir)));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--ready-timeout", "1s", "--log-level", "debug"},
                  {script});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    REQUIRE(write_script(script, fake_exec(dir, "--never-ready --spawn-grandchild --grandchild-ready")));
    REQUIRE(sv.hup());
    auto spawned = sv.wait_log(R"(spawned gen=2 pid=(\d+))");
    REQUIRE(spawned);
    auto rep = wait_report(report_prefix(dir), std::stoi((*spawned)[1]), 3.0);
    REQUIRE(rep.count("grandchild"));
    CHECK(sv.wait_log("ignored notify message from pid=" + rep["grandchild"] + ": not a worker"));
    CHECK(sv.wait_log(R"re(upgrade failed gen=2 reason="[^"]*no READY=1)re", 3.0));
    CHECK_FALSE(find_log_line(sv.log(), "ready gen=2 "));
    CHECK(wait_until([&] { return !pid_alive(std::stoi(rep["grandchild"])); }, 2.0));  // killed with its group
    auto r = http_get(port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 1});
}

TEST_CASE("contract: SIGUSR1 to the supervisor is forwarded to the current worker with --forward-signal USR1") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--forward-signal", "USR1"}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_port() > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    REQUIRE(sv.proc().signal(SIGUSR1));
    CHECK(sv.wait_log("forwarded SIGUSR1 to gen=1 pid=" + std::to_string(w1)));
    CHECK(sv.wait_log("fake_worker pid=" + std::to_string(w1) + " gen=1 got SIGUSR1"));
    CHECK(pid_alive(w1));
}

TEST_CASE("contract: listeners are blocking by default; --nonblocking creates them with O_NONBLOCK") {
    for (bool nonblocking : {false, true}) {
        CAPTURE(nonblocking);
        TempDir dir;
        std::vector<std::string> options{"-l", "127.0.0.1:0", "--ready", "notify"};
        if (nonblocking) options.push_back("--nonblocking");
        Supervised sv(dir, options, {bins().fake_worker, "--report", report_prefix(dir)});
        INFO("supervisor log:\n", tail(sv.log()));
        pid_t w = sv.wait_ready(1);
        REQUIRE(w > 0);
        // The open file description is shared: the supervisor's own fd shows the flag.
        std::string fdinfo;
        for (int fd = 3; fd < 64 && fdinfo.empty(); fd++) {
            std::string link = "/proc/" + std::to_string(sv.pid()) + "/fd/" + std::to_string(fd);
            char target[256] = {};
            ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
            if (n <= 0 || std::string(target).rfind("socket:", 0) != 0) continue;
            std::string info = read_file("/proc/" + std::to_string(sv.pid()) + "/fdinfo/" + std::to_string(fd));
            // Our listener is the first socket the supervisor opened (fd 3 after stdio).
            fdinfo = info;
        }
        auto flags_line = find_log_line(fdinfo, "flags:\\s+([0-7]+)");
        REQUIRE(flags_line);
        long flags = std::stol((*flags_line)[1], nullptr, 8);
        CHECK_EQ((flags & 04000) != 0, nonblocking);  // O_NONBLOCK
    }
}
