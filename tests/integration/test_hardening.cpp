// Hardening: defects found in the field, each with the test that failed before its fix
// (pid file held by a second supervisor, ctl exit codes, signal forwarding, the notify
// socket's path, the pre-check's environment). docs/RELIABILITY.md names each test.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "harness.h"

using namespace svtest;

namespace {

struct Outcome {
    std::optional<int> status;
    std::string output;
};

Outcome run(const TempDir& dir, const std::vector<std::string>& argv, double seconds = 5.0) {
    static int n = 0;
    Process p(argv, dir.file("hrun" + std::to_string(n++) + ".log"));
    ProcessGuard guard(p, 1.0);
    Outcome o;
    o.status = p.wait_exit(seconds);
    o.output = p.log();
    return o;
}

int exit_code(const Outcome& o) { return o.status && WIFEXITED(*o.status) ? WEXITSTATUS(*o.status) : -1; }

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

} // namespace

// --- 6: the pid file is locked ------------------------------------------------------------

TEST_CASE("hardening: a second supervisor with the same --pid-file refuses (exit 1) and leaves the first's file") {
    TempDir dir;
    const std::string pid_file = dir.file("sv.pid");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--pid-file", pid_file}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(wait_until([&] { return trimmed(read_file(pid_file)) == std::to_string(sv.pid()); }, 2.0, &sv.proc()));

    auto second = run(dir, {bins().supervisor, "-l", "127.0.0.1:0", "--pid-file", pid_file, "--", bins().fake_worker}, 5.0);
    INFO("second supervisor: ", second.output);
    CHECK_EQ(exit_code(second), 1);
    CHECK_EQ(trimmed(second.output), "supervisor: cannot use the pid file " + pid_file + ": held by pid " +
                                         std::to_string(sv.pid()) + " (another supervisor is running)");
    CHECK_EQ(trimmed(read_file(pid_file)), std::to_string(sv.pid()));
    CHECK(sv.proc().alive());

    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(10.0);
    REQUIRE(st);
    CHECK_FALSE(file_exists(pid_file));
}

TEST_CASE("hardening: the pid file's fd is not inherited by workers") {
    TempDir dir;
    const std::string pid_file = dir.file("sv.pid");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--pid-file", pid_file}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w = sv.wait_ready(1);
    REQUIRE(w > 0);
    auto report = wait_report(report_prefix(dir), w, 5.0);
    CHECK_EQ(report["fds"], "0,1,2,3");
}

// --- 9b: ctl says "no supervisor" (3) only when nothing listens -------------------------

namespace {

// A stand-in control server (python3): accepts one connection, reads the request, sends
// `reply` (nothing when empty) and closes. dir/fake.up exists once it listens.
const char* kFakeServer =
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()\n"
    "open(sys.argv[1]+'.up','w').close()\n"
    "c,_=s.accept()\n"
    "if sys.argv[2]:\n"
    "    c.recv(4096); c.sendall(sys.argv[2].encode())\n"
    "c.close()\n";

Outcome ctl_against_fake(const TempDir& dir, const std::string& reply) {
    const std::string sock = dir.file("fake.sock");
    Process server({"python3", "-c", kFakeServer, sock, reply}, dir.file("fake_server.log"));
    ProcessGuard guard(server, 1.0);
    if (!wait_until([&] { return file_exists(sock + ".up"); }, 5.0, &server)) return {};
    return run(dir, {bins().supervisor, "ctl", "--control", sock, "status"}, 8.0);
}

} // namespace

TEST_CASE("hardening: ctl: a connection closed without an answer is exit 1, not 'no supervisor' (3)") {
    if (!have_program("python3")) return;
    TempDir dir;
    auto o = ctl_against_fake(dir, "");
    INFO("ctl output: ", o.output);
    CHECK_EQ(exit_code(o), 1);
    CHECK_EQ(trimmed(o.output), "supervisor ctl: the supervisor closed the connection without answering");
}

TEST_CASE("hardening: ctl: an error reply (the client cap) is exit 1 with the server's line") {
    if (!have_program("python3")) return;
    TempDir dir;
    auto o = ctl_against_fake(dir, "{\"error\":\"too many control clients (64)\"}\n");
    INFO("ctl output: ", o.output);
    CHECK_EQ(exit_code(o), 1);
    CHECK_EQ(trimmed(o.output), "supervisor ctl: too many control clients (64)");
}

TEST_CASE("hardening: ctl: nothing at the path, or a stale socket file, is exit 3") {
    if (!have_program("python3")) return;
    TempDir dir;
    auto missing = run(dir, {bins().supervisor, "ctl", "--control", dir.file("none.sock"), "status"});
    CHECK_EQ(exit_code(missing), 3);
    const std::string stale = dir.file("stale.sock");
    REQUIRE(exit_code(run(dir, {"python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", stale})) == 0);
    auto refused = run(dir, {bins().supervisor, "ctl", "--control", stale, "status"});
    INFO("ctl output: ", refused.output);
    CHECK_EQ(exit_code(refused), 3);
}

// --- 10: signal forwarding is opt-in ------------------------------------------------------

TEST_CASE("hardening: by default WINCH reaches no worker, and USR1/USR2 neither kill the supervisor nor reach workers") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0"}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w = sv.wait_ready(1);
    REQUIRE(w > 0);
    for (int sig : {SIGWINCH, SIGUSR1, SIGUSR2}) {
        REQUIRE(sv.proc().signal(sig));
        std::string name = sig == SIGWINCH ? "SIGWINCH" : sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2";
        CHECK(sv.wait_log(name + R"( ignored \(not forwarded; use --forward-signal\))", 3.0));
    }
    CHECK(sv.proc().alive());
    // The worker logs a signal before it logs the drain that follows it.
    REQUIRE(sv.term());
    REQUIRE(sv.wait_log("fake_worker pid=" + std::to_string(w) + " gen=1 draining", 5.0));
    CHECK_EQ(sv.count("got SIG"), 0u);
    CHECK_EQ(sv.count("forwarded SIG"), 0u);
}

TEST_CASE("hardening: --forward-signal WINCH forwards it to the workers; HUP is refused (exit 2)") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--forward-signal", "WINCH", "--forward-signal", "10"},
                  {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w = sv.wait_ready(1);
    REQUIRE(w > 0);
    REQUIRE(sv.proc().signal(SIGWINCH));
    CHECK(sv.wait_log("forwarded SIGWINCH to gen=1 pid=" + std::to_string(w), 3.0));
    CHECK(sv.wait_log("fake_worker pid=" + std::to_string(w) + " gen=1 got SIGWINCH", 3.0));
    REQUIRE(sv.proc().signal(SIGUSR1));
    CHECK(sv.wait_log("fake_worker pid=" + std::to_string(w) + " gen=1 got SIGUSR1", 3.0));
    REQUIRE(sv.proc().signal(SIGUSR2));
    CHECK(sv.wait_log(R"(SIGUSR2 ignored \(not forwarded)", 3.0));

    auto refused = run(dir, {bins().supervisor, "-l", "127.0.0.1:0", "--forward-signal", "SIGHUP", "--", bins().fake_worker});
    INFO("refused: ", refused.output);
    CHECK_EQ(exit_code(refused), 2);
    CHECK_EQ(count_log_lines(refused.output, "."), 1u);
    CHECK(refused.output.find("invalid --forward-signal 'SIGHUP'") != std::string::npos);
}

// --- 12: the pre-check gets the new worker's listeners and environment ---------------------

namespace {

Outcome ctl_upgrade(const TempDir& dir, const std::string& sock) {
    return run(dir, {bins().supervisor, "ctl", "--control", sock, "upgrade", "--timeout", "10s"}, 15.0);
}

} // namespace

TEST_CASE("hardening: --pre-check gets the listeners on fd 3, LISTEN_* with its own pid and the new generation") {
    TempDir dir;
    const std::string sock = dir.file("c.sock");
    // Each condition prints what it saw when it fails: the reason quotes it.
    const std::string check =
        "test -S /proc/self/fd/3 || { echo \"fd 3 is $(readlink /proc/self/fd/3)\"; exit 1; }; "
        "[ \"$LISTEN_FDS\" = 1 ] && [ \"$LISTEN_PID\" = $$ ] && [ \"$LISTEN_FDNAMES\" = web ] || "
        "{ echo \"LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID pid=$$ LISTEN_FDNAMES=$LISTEN_FDNAMES\"; exit 1; }; "
        "[ \"$SUPERVISOR_GENERATION\" = 2 ] || { echo \"SUPERVISOR_GENERATION=$SUPERVISOR_GENERATION\"; exit 1; }; "
        "[ -z \"$NOTIFY_SOCKET\" ] || { echo \"NOTIFY_SOCKET=$NOTIFY_SOCKET\"; exit 1; }; "
        "python3 -c 'import socket; s=socket.socket(fileno=3); "
        "assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1, \"not listening\"; s.detach()'";
    Supervised sv(dir, {"-l", "web=127.0.0.1:0", "--control", sock, "--pre-check", check},
                  {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(wait_until([&] { return file_exists(sock); }, 2.0, &sv.proc()));
    auto up = ctl_upgrade(dir, sock);
    INFO("ctl upgrade: ", up.output);
    CHECK_EQ(exit_code(up), 0);
    CHECK(sv.wait_log("pre-check passed gen=2", 1.0));
}

TEST_CASE("hardening: a pre-check that fails silently gives the reason 'pre-check failed (exit=3, no output)'") {
    TempDir dir;
    const std::string sock = dir.file("c.sock");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--control", sock, "--pre-check", "exit 3"},
                  {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(wait_until([&] { return file_exists(sock); }, 2.0, &sv.proc()));
    auto up = ctl_upgrade(dir, sock);
    INFO("ctl upgrade: ", up.output);
    CHECK_EQ(exit_code(up), 1);
    CHECK(up.output.find("failed: pre-check failed (exit=3, no output); gen 1 is still serving") != std::string::npos);
}

// --- 11: NOTIFY_SOCKET is a path by default -----------------------------------------------

namespace {

// A worker that knows only path sockets: sendto(NOTIFY_SOCKET) as given, no '@' handling.
// It writes what it got to argv[1] first.
const char* kPathOnlyWorker =
    "import os,signal,socket,sys,time\n"
    "signal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
    "p=os.environ.get('NOTIFY_SOCKET','')\n"
    "open(sys.argv[1]+'.tmp','w').write(p); os.rename(sys.argv[1]+'.tmp', sys.argv[1])\n"
    "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', p)\n"
    "while True: time.sleep(1)\n";

std::string dir_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

} // namespace

TEST_CASE("hardening: NOTIFY_SOCKET is a path a path-only client can use; its directory is private and removed at exit") {
    if (!have_program("python3")) return;
    TempDir dir;
    const std::string seen = dir.file("notify_socket");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--ready-timeout", "10s"},
                  {"python3", "-c", kPathOnlyWorker, seen});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(wait_until([&] { return file_exists(seen); }, 5.0, &sv.proc()));
    std::string path = read_file(seen);
    REQUIRE_FALSE(path.empty());
    CHECK_NE(path[0], '@');
    CHECK(sv.wait_ready(1, 5.0) > 0);
    struct stat st{};
    REQUIRE(::stat(dir_of(path).c_str(), &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0700u);
    CHECK_EQ(st.st_uid, ::geteuid());
    REQUIRE(sv.term());
    REQUIRE(sv.proc().wait_exit(10.0));
    CHECK_FALSE(file_exists(path));
    CHECK_FALSE(file_exists(dir_of(path)));
}

TEST_CASE("hardening: --notify-socket abstract gives an @ name, with nothing on disk") {
    TempDir dir;
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--notify-socket", "abstract"},
                  {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w = sv.wait_ready(1);
    REQUIRE(w > 0);
    auto report = wait_report(report_prefix(dir), w, 5.0);
    REQUIRE_FALSE(report["NOTIFY_SOCKET"].empty());
    CHECK_EQ(report["NOTIFY_SOCKET"][0], '@');
}

TEST_CASE("hardening: a Ruby worker using Debian's sd_notify library becomes ready") {
    TempDir dir;
    if (!have_program("ruby") || exit_code(run(dir, {"ruby", "-e", "require 'sd_notify'"}, 20.0)) != 0) {
        MESSAGE("skipped: needs ruby and ruby-sd-notify (apt-get install ruby-sd-notify)");
        return;
    }
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify", "--ready-timeout", "20s"},
                  {"ruby", "-e", "require 'sd_notify'; Signal.trap('TERM') { exit 0 }; SdNotify.ready; sleep"});
    INFO("supervisor log:\n", tail(sv.log()));
    CHECK(sv.wait_ready(1, 20.0) > 0);
}

TEST_CASE("hardening: haproxy -c with 'bind fd@3' passes as a pre-check") {
    if (!have_program("haproxy")) {
        MESSAGE("skipped: needs haproxy (apt-get install haproxy)");
        return;
    }
    TempDir dir;
    const std::string sock = dir.file("c.sock"), cfg = dir.file("haproxy.cfg");
    REQUIRE(write_file(cfg, "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"
                            "frontend web\n  bind fd@3\n  default_backend app\nbackend app\n  server s1 127.0.0.1:1\n"));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--control", sock, "--pre-check", "haproxy -c -f " + sh_quote(cfg)},
                  {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(wait_until([&] { return file_exists(sock); }, 2.0, &sv.proc()));
    auto up = ctl_upgrade(dir, sock);
    INFO("ctl upgrade: ", up.output);
    CHECK_EQ(exit_code(up), 0);
}
