// systemd, both directions: socket activation (systemd-socket-activate passes the socket)
// and our own sd_notify messages to the service manager, in order, around an upgrade.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

using namespace svtest;

namespace {

bool have_socket_activate() {
    if (have_program("systemd-socket-activate")) return true;
    MESSAGE("skipped: systemd-socket-activate is not installed (Debian package systemd)");
    return false;
}

// systemd-socket-activate listening on 127.0.0.1:port, passing the socket as `name`; it execs
// the supervisor (same pid) on the first connection; setsid (also an exec) keeps its signal
// handling away from the test's process group.
std::vector<std::string> socket_activate(int port, const std::string& name) {
    return {"setsid", "systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port), "--fdname=" + name};
}

} // namespace

TEST_CASE("systemd: socket activation passes the socket; requests are served and an upgrade works") {
    if (!have_socket_activate()) return;
    Serving f;
    int port = net::free_port();
    REQUIRE(port > 0);
    Supervised& sv = f.start({.command = {bins().demo_worker}, .listen = {}, .prefix = socket_activate(port, "http"),
                              .await = Serving::Await::Nothing});
    // The first request that connects arrives before the supervisor even runs: the kernel
    // queues it until the worker accepts.
    std::optional<Response> first;
    REQUIRE(wait_until([&] { return (first = http_get(port, "/", 5.0)).has_value(); }, 5.0, &sv.proc()));
    CHECK_EQ(first->status, 200);
    CHECK(sv.wait_log("socket activation: adopted 1 socket"));
    CHECK(sv.wait_log("listening name=http addr=127.0.0.1:" + std::to_string(port) + " fd=3"));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    auto r = wait_served_by(port, w2);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w2, 2});
    expect_clean_stop(sv);
}

TEST_CASE("systemd: --listen NAME=… takes the adopted socket of that name instead of binding") {
    if (!have_socket_activate()) return;
    Serving f;
    int port = net::free_port();
    REQUIRE(port > 0);
    // The spec names a port that is taken: binding it would fail, adopting it cannot.
    int taken_port = 0;
    net::Fd blocker = net::listen_loopback(&taken_port);
    REQUIRE(blocker.valid());
    std::string taken = "127.0.0.1:" + std::to_string(taken_port);
    Supervised& sv = f.start({.command = {bins().demo_worker}, .listen = {"--listen", "web=" + taken},
                              .prefix = socket_activate(port, "web"), .await = Serving::Await::Nothing});
    std::optional<Response> r;
    wait_until([&] { return (r = http_get(port, "/", 5.0)).has_value(); }, 5.0, &sv.proc());
    blocker.reset();
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    CHECK(sv.wait_log("listening name=web addr=127.0.0.1:" + std::to_string(port) + " fd=3"));
}

TEST_CASE("systemd: READY=1, then RELOADING=1 and READY=1 around an upgrade and a rollback, then STOPPING=1") {
    Serving f;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name()});
    Supervised& sv = f.start({.options = {"--drain-timeout", "7s"}, .env = &env, .await = Serving::Await::Nothing});

    // The state changes only: the fd store hand-over and the STATUS= updates between
    // them have tests of their own below.
    auto next = [&] {
        for (;;) {
            auto m = systemd.receive(5.0);
            if (!m) return std::string("(nothing)");
            if (m->rfind("STATUS=", 0) != 0 && m->rfind("FDSTORE=", 0) != 0) return *m;
        }
    };
    auto m1 = next();
    CHECK(m1.find("READY=1") != std::string::npos);
    CHECK(m1.find("gen=1") != std::string::npos);

    REQUIRE(sv.hup());
    auto m2 = next();
    CHECK(m2.find("RELOADING=1") != std::string::npos);
    CHECK(m2.find("MONOTONIC_USEC=") != std::string::npos);
    auto m3 = next();
    CHECK(m3.find("READY=1") != std::string::npos);
    CHECK(m3.find("serving gen=2") != std::string::npos);

    REQUIRE(write_script(f.script, "exit 1"));
    REQUIRE(sv.hup());
    auto m4 = next();
    CHECK(m4.find("RELOADING=1") != std::string::npos);
    auto m5 = next();
    CHECK(m5.find("READY=1") != std::string::npos);
    CHECK(m5.find("upgrade to gen=3 failed") != std::string::npos);
    CHECK(m5.find("serving gen=2") != std::string::npos);

    REQUIRE(sv.term());
    auto m6 = next();
    CHECK(m6.find("STOPPING=1") != std::string::npos);
    CHECK(m6.find("EXTEND_TIMEOUT_USEC=12000000") != std::string::npos);  // drain timeout 7s + 5s
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE(st);
    CHECK_EQ(exit_code_of(st), 0);
}

TEST_CASE("systemd: the watchdog is pinged at half WATCHDOG_USEC, and workers do not inherit it") {
    TempDir dir;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name(), "WATCHDOG_USEC=400000"});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {"sh", "-c", fake_exec(dir)}, &env);
    INFO("supervisor log:\n", tail(sv.log()));
    CHECK(sv.wait_log("watchdog every 200ms"));
    // Two pings, so the second came from the repeating timer, not from start-up.
    CHECK(systemd.receive_until("WATCHDOG=1", 5.0));
    CHECK(systemd.receive_until("WATCHDOG=1", 5.0));
    pid_t w = sv.wait_ready(1);
    REQUIRE(w > 0);
    auto report = parse_report(read_file(report_prefix(dir) + "." + std::to_string(w)));
    CHECK_EQ(report["WATCHDOG_USEC"], "");
    CHECK_EQ(report["WATCHDOG_PID"], "");
    CHECK_EQ(report["NOTIFY_SOCKET"].find(systemd.name()), std::string::npos);
}

TEST_CASE("systemd: WATCHDOG_PID of another process means no pings") {
    TempDir dir;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name(), "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {"sh", "-c", fake_exec(dir)}, &env);
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(systemd.receive_until("READY=1", 5.0));
    CHECK_EQ(sv.count("watchdog every"), 0u);
    // Half a period would be 50 ms: 500 ms without a ping is ten missed ones.
    CHECK_FALSE(systemd.receive_until("WATCHDOG=1", 0.5));
}

TEST_CASE("systemd: bound listeners go to the fd store under their names") {
    TempDir dir;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name()});
    Supervised sv(dir, {"-l", "web=127.0.0.1:0", "-l", "127.0.0.1:0", "--ready", "notify"}, {"sh", "-c", fake_exec(dir)},
                  &env);
    INFO("supervisor log:\n", tail(sv.log()));
    auto m1 = systemd.receive(5.0).value_or("(nothing)");
    auto m2 = systemd.receive(5.0).value_or("(nothing)");
    CHECK_EQ(m1, "FDSTORE=1\nFDNAME=web");
    CHECK_EQ(m2, "FDSTORE=1\nFDNAME=listen1");
    CHECK(sv.wait_log(R"(fd store: stored name=web addr=127\.0\.0\.1:\d+)"));
}

TEST_CASE("systemd: STATUS= names the serving gen and pid, and the last upgrade's verdict") {
    TempDir dir;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, fake_exec(dir)));
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name()});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {script}, &env);
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    REQUIRE(systemd.receive_until("serving gen=1 pid=" + std::to_string(w1), 5.0));
    REQUIRE(write_script(script, "exit 1"));
    REQUIRE(sv.hup());
    CHECK(systemd.receive_until("STATUS=serving gen=1 pid=" + std::to_string(w1) + "; last upgrade gen=2 failed: exited before ready", 5.0));
    // A worker that dies and is respawned: the status names the new pid once it serves.
    REQUIRE(write_script(script, fake_exec(dir)));
    REQUIRE(::kill(w1, SIGKILL) == 0);
    REQUIRE(wait_until([&] { return sv.count(R"(ready gen=1 pid=\d+)") >= 2; }, 5.0, &sv.proc()));
    std::string w1b = find_log_lines(sv.log(), R"(ready gen=1 pid=(\d+))").back()[1];
    CHECK(systemd.receive_until("STATUS=serving gen=1 pid=" + w1b + "; last upgrade gen=2 failed", 5.0));
}

TEST_CASE("systemd: to the journal, lines carry their priority and no timestamp; a worker's own prefix is kept") {
    TempDir dir;
    // JOURNAL_STREAM must name our stderr: the log file the harness appends to.
    std::string log_path = dir.file("supervisor.log");
    REQUIRE(write_file(log_path, ""));
    struct stat st{};
    REQUIRE(::stat(log_path.c_str(), &st) == 0);
    std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, "echo '<3>config broken' >&2; echo 'plain line'; echo '<4>low disk' >&2; " + fake_exec(dir)));
    auto env = environment_with({"JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--log-workers"}, {script}, &env);
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    CHECK(sv.wait_log(R"(^<6>listening name=listen0 addr=127\.0\.0\.1:\d+ fd=3$)"));
    CHECK(sv.wait_log(R"(^<3>worker gen=1 pid=\d+ stderr: config broken$)"));
    CHECK(sv.wait_log(R"(^<4>worker gen=1 pid=\d+ stderr: low disk$)"));
    CHECK(sv.wait_log(R"(^<6>worker gen=1 pid=\d+ stdout: plain line$)"));
    REQUIRE(write_script(script, "exit 1"));
    REQUIRE(sv.hup());
    CHECK(sv.wait_log(R"(^<4>upgrade failed gen=2 )"));
}

TEST_CASE("systemd: JOURNAL_STREAM naming another stream (inherited, stderr redirected) is ignored") {
    TempDir dir;
    auto env = environment_with({"JOURNAL_STREAM=1:1"});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {"sh", "-c", fake_exec(dir)}, &env);
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    CHECK(sv.wait_log(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info  supervisor\[\d+\]: listening name=listen0)"));
    CHECK_EQ(sv.count("^<"), 0u);
}
