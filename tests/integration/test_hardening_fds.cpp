// Hardening under fd pressure and drift: --log-workers at the fd limit, idle control
// clients (the cap, the idle timeout, the fd reserve), and workers that change what every
// generation shares (O_NONBLOCK, a unix listener's path). docs/RELIABILITY.md names each test.
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>

#include "harness.h"

using namespace svtest;

namespace {

using Clock = std::chrono::steady_clock;

std::set<int> open_fds(pid_t pid) {
    std::set<int> fds;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') fds.insert(std::atoi(e->d_name));
        ::closedir(d);
    }
    return fds;
}

// Lowers pid's soft RLIMIT_NOFILE so that exactly `free_fds` fd numbers below it are unused.
bool limit_free_fds(pid_t pid, int free_fds, rlimit* old) {
    if (::prlimit(pid, RLIMIT_NOFILE, nullptr, old) < 0) return false;
    auto used = open_fds(pid);
    int lim = 0;
    for (int n = 0;; lim++)
        if (!used.count(lim) && n++ == free_fds) break;
    rlimit low{static_cast<rlim_t>(lim), old->rlim_max};
    return ::prlimit(pid, RLIMIT_NOFILE, &low, nullptr) == 0;
}

// A connected unix stream socket with receive/send timeouts, or -1.
int connect_unix(const std::string& path, double timeout = 3.0) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    timeval tv{static_cast<time_t>(timeout), static_cast<suseconds_t>((timeout - static_cast<long>(timeout)) * 1e6)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// What the peer sent until it closed (or the receive timeout); *closed says which.
std::string read_to_eof(int fd, bool* closed) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        *closed = n == 0 || (n < 0 && errno == ECONNRESET);
        if (n <= 0) return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

struct FdsGuard {
    std::vector<int> fds;
    ~FdsGuard() {
        for (int fd : fds) ::close(fd);
    }
};

struct LimitGuard {
    pid_t pid;
    rlimit old;
    ~LimitGuard() { ::prlimit(pid, RLIMIT_NOFILE, &old, nullptr); }
};

std::string json_worker_status(const TempDir& dir, const std::string& sock) {
    static int n = 0;
    Process p({bins().supervisor, "ctl", "--control", sock, "status", "--json"}, dir.file("st" + std::to_string(n++) + ".log"));
    ProcessGuard guard(p, 1.0);
    p.wait_exit(8.0);
    return p.log();
}

} // namespace

// --- 3: --log-workers when the output pipes cannot be made --------------------------------

TEST_CASE("hardening: --log-workers at the fd limit: the worker gets neither pipe, inherits ours and keeps running") {
    TempDir dir;
    // notify: at the fd limit the readiness probe cannot open /proc files (README, Readiness).
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--log-workers", "--ready", "notify"}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    REQUIRE(sv.wait_ready(1) > 0);
    // Three free fds: the stdout pipe fits, the stderr pipe does not; once the first is
    // closed again, the spawn's exec-error pipe fits.
    LimitGuard limit{sv.pid(), {}};
    REQUIRE(limit_free_fds(sv.pid(), 3, &limit.old));
    REQUIRE(sv.hup());
    CHECK(sv.wait_log(R"(cannot create pipes for gen=2's output: Too many open files; it inherits ours)", 5.0));
    pid_t w2 = sv.wait_upgrade_done(2, 10.0);
    REQUIRE(w2 > 0);
    CHECK_EQ(sv.count(R"(cannot create pipes for gen=2)"), 1u);
    // Its own line, straight to our stderr (not through a pipe, so not tagged).
    CHECK(sv.wait_log("^fake_worker pid=" + std::to_string(w2) + " gen=2 started", 3.0));
    CHECK(wait_served_by(port, w2));
    CHECK(pid_alive(w2));
}

// --- 7: idle control clients cannot starve spawns ----------------------------------------

TEST_CASE("hardening: 1020 idle control connections under a 1024 fd limit: an upgrade and a respawn still work") {
    TempDir dir;
    const std::string sock = dir.file("c.sock");
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--control", sock}, {bins().fake_worker, "--report", report_prefix(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(wait_until([&] { return file_exists(sock); }, 2.0, &sv.proc()));
    LimitGuard limit{sv.pid(), {}};
    REQUIRE(::prlimit(sv.pid(), RLIMIT_NOFILE, nullptr, &limit.old) == 0);
    rlimit low{1024, limit.old.rlim_max};
    REQUIRE(::prlimit(sv.pid(), RLIMIT_NOFILE, &low, nullptr) == 0);

    FdsGuard conns;
    for (int i = 0; i < 1020; i++) {
        int fd = connect_unix(sock);
        if (fd < 0) break;
        conns.fds.push_back(fd);
    }
    CHECK_EQ(conns.fds.size(), 1020u);
    bool closed = false;
    std::string refused = read_to_eof(conns.fds.back(), &closed);
    CHECK(closed);
    CHECK_EQ(refused, "{\"error\":\"too many control clients (64)\",\"ok\":false}\n");
    CHECK_EQ(sv.count("control clients at the cap \\(64\\)"), 1u);
    CHECK_LT(open_fds(sv.pid()).size(), 64u + 40u);

    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2, 10.0);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(port, w2));
    REQUIRE(::kill(w2, SIGKILL) == 0);
    pid_t respawned = 0;
    wait_until(
        [&] {
            for (const auto& m : find_log_lines(sv.log(), R"(spawned gen=2 pid=(\d+))"))
                if (std::stoi(m[1]) != w2) respawned = std::stoi(m[1]);
            return respawned > 0;
        },
        5.0, &sv.proc());
    REQUIRE(respawned > 0);
    CHECK(wait_served_by(port, respawned, 5.0));
}

TEST_CASE("hardening: idle control clients are closed after --control-idle-timeout; one waiting for an upgrade is not") {
    TempDir dir;
    const std::string sock = dir.file("c.sock");
    const std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, "case \"$SUPERVISOR_GENERATION\" in 1) " + fake_exec(dir) + " ;; *) " +
                                     fake_exec(dir, "--ready-after-ms 2500") + " ;; esac"));
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--control", sock, "--control-idle-timeout", "1s", "--ready", "notify"}, {script});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    REQUIRE(wait_until([&] { return file_exists(sock); }, 2.0, &sv.proc()));
    FdsGuard idle;
    for (int i = 0; i < 5; i++) idle.fds.push_back(connect_unix(sock, 5.0));
    auto opened = Clock::now();
    Process upgrade({bins().supervisor, "ctl", "--control", sock, "upgrade", "--timeout", "20s"}, dir.file("ctl.log"));
    ProcessGuard upgrade_guard(upgrade, 1.0);
    for (int fd : idle.fds) {
        REQUIRE(fd >= 0);
        bool closed = false;
        CHECK_EQ(read_to_eof(fd, &closed), "");
        CHECK(closed);
    }
    double waited = std::chrono::duration<double>(Clock::now() - opened).count();
    CHECK_GE(waited, 0.9);
    CHECK_LT(waited, 4.0);
    auto st = upgrade.wait_exit(15.0);
    INFO("ctl upgrade: ", upgrade.log());
    REQUIRE(st);
    CHECK_EQ(WEXITSTATUS(*st), 0);
    CHECK(upgrade.log().find("upgrade to gen 2 succeeded") != std::string::npos);
}

// --- 9a: drift of what every generation shares -------------------------------------------

TEST_CASE("hardening: drift: a worker that sets O_NONBLOCK on fd 3 is reported once (warn line, status)") {
    if (!have_program("python3")) return;
    TempDir dir;
    const std::string sock = dir.file("c.sock");
    const char* worker =
        "import os,signal,socket,sys,time\n"
        "signal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
        "os.set_blocking(3, False)\n"
        "p=os.environ['NOTIFY_SOCKET']; p='\\0'+p[1:] if p.startswith('@') else p\n"
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', p)\n"
        "while True: time.sleep(1)\n";
    Supervised sv(dir, {"-l", "web=127.0.0.1:0", "--ready", "notify", "--control", sock}, {"python3", "-c", worker});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    CHECK(sv.wait_log(R"(warning +supervisor\[\d+\]: listener drift name=web addr=127\.0\.0\.1:\d+ O_NONBLOCK set by a worker \(created blocking\): )"
                      R"(older generations' blocking accept\(\) now fails with EAGAIN)", 3.0));
    std::string status = json_worker_status(dir, sock);
    INFO("status: ", status);
    CHECK(status.find("\"drift\"") != std::string::npos);
    CHECK(status.find("O_NONBLOCK set by a worker") != std::string::npos);
    CHECK_EQ(sv.count("listener drift name=web"), 1u);
}

TEST_CASE("hardening: drift: a worker that unlinks the unix listener's path is reported (warn line, status)") {
    TempDir dir;
    const std::string sock = dir.file("c.sock"), app = dir.file("app.sock");
    Supervised sv(dir, {"-l", "app=unix:" + app, "--ready", "notify", "--control", sock},
                  {"sh", "-c", "rm -f " + sh_quote(app) + "; " + fake_exec(dir)});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    CHECK(sv.wait_log(R"(warning +supervisor\[\d+\]: listener drift name=app addr=\S+ unix socket path \S+app\.sock was removed: new clients cannot )"
                      R"(connect; upgrade or restart to re-create it)", 3.0));
    std::string status = json_worker_status(dir, sock);
    INFO("status: ", status);
    CHECK(status.find("app.sock was removed") != std::string::npos);
}
