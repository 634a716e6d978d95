// --adopt-bind: servers that bind their own port (tests/fixtures/adopt_server.c) take the
// supervisor's listener through the preload, and are upgraded like any worker: no failed
// request under load, the listener held only by the supervisor and the current generation,
// nothing left after stop; other addresses bind normally; forking masters, exec'd children,
// blocking and non-blocking generations side by side; commands the preload cannot enter
// are refused at startup.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace svtest;

namespace {

std::string server_bin() { return env("ADOPT_SERVER_BIN"); }

// The inode of the socket listening on 127.0.0.1:port (/proc/net/tcp), 0 when none.
unsigned long listening_inode(int port) {
    std::ifstream f("/proc/net/tcp");
    std::string line;
    char want[16];
    std::snprintf(want, sizeof want, "0100007F:%04X", port);
    while (std::getline(f, line)) {
        std::istringstream in(line);
        std::string sl, local, remote, state, queues, tr, retr, uid, timeout;
        unsigned long inode = 0;
        in >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> inode;
        if (local == want && state == "0A") return inode;
    }
    return 0;
}

// The fd of `pid` open on socket inode `ino`, or -1.
int fd_of(pid_t pid, unsigned long ino) {
    const std::string target = "socket:[" + std::to_string(ino) + "]";
    for (int fd : proc::open_fds(pid)) {
        char link[64];
        std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
        ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
        if (n > 0 && std::string(link, static_cast<size_t>(n)) == target) return fd;
    }
    return -1;
}

// Every process with an fd on socket inode `ino` (the kernel's view, as `ss -ltnp`).
std::set<pid_t> holders(unsigned long ino) {
    std::set<pid_t> out;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return out;
    while (dirent* e = ::readdir(proc)) {
        pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
        if (pid <= 0) continue;
        if (fd_of(pid, ino) >= 0) out.insert(pid);
    }
    ::closedir(proc);
    return out;
}

// Clients on their own threads, a fresh connection per GET (each one meets the accept
// queue, the hardest moment of a handover), until stop(); counts answers.
class Load {
public:
    Load(int port, int clients) {
        for (int i = 0; i < clients; i++)
            threads_.emplace_back([this, port] {
                while (!stop_) {
                    auto r = http_get(port, "/", 5.0);
                    if (r && r->status == 200) ok_++;
                    else failed_++;
                }
            });
    }
    ~Load() { stop(); }
    void stop() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    long ok() const { return ok_; }
    long failed() const { return failed_; }

private:
    std::atomic<bool> stop_{false};
    std::atomic<long> ok_{0}, failed_{0};
    std::vector<std::thread> threads_;
};

struct Adopted {
    TempDir dir;
    int port = net::free_port();
    std::optional<Supervised> sv;

    // supervisor --adopt-bind -l 127.0.0.1:port … -- adopt_server 127.0.0.1 port <args>
    Supervised& start(const std::vector<std::string>& args = {}, const std::vector<std::string>& options = {}) {
        std::vector<std::string> opts{"-l", "127.0.0.1:" + std::to_string(port), "--drain-timeout", "5s",
                                      "--ready-timeout", "20s"};
        opts.insert(opts.end(), options.begin(), options.end());
        if (std::find(opts.begin(), opts.end(), "--adopt-bind=worker-only") == opts.end()) opts.push_back("--adopt-bind");
        std::vector<std::string> cmd{server_bin(), "127.0.0.1", std::to_string(port)};
        cmd.insert(cmd.end(), args.begin(), args.end());
        sv.emplace(dir, opts, cmd);
        return *sv;
    }
};

// HUPs `upgrades` times under load, each once the previous one is done; then checks that
// no request failed and that the old generations are gone.
void upgrade_under_load(Supervised& sv, int port, int upgrades, const std::function<void(int gen)>& between = {}) {
    Load load(port, 4);
    for (int gen = 2; gen <= upgrades + 1; gen++) {
        if (between) between(gen);
        REQUIRE(sv.hup());
        REQUIRE_MESSAGE(sv.wait_upgrade_done(static_cast<unsigned>(gen), 20.0) > 0, "upgrade to gen=", gen);
    }
    REQUIRE(wait_until([&] { return sv.count("exited gen=\\d+ pid=\\d+ exit=0") >= static_cast<size_t>(upgrades); }, 20.0));
    load.stop();
    MESSAGE("upgrades=", upgrades, " requests ok=", load.ok(), " failed=", load.failed());
    CHECK_EQ(load.failed(), 0);
    CHECK_GT(load.ok(), upgrades);
    CHECK_EQ(sv.count("exited gen=\\d+ pid=\\d+ (exit=[1-9]|signal)"), 0u);
}

} // namespace

TEST_CASE("adopt: a server binding 127.0.0.1:P itself, upgraded 20 times under load: no failed request") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    Adopted a;
    Supervised& sv = a.start();
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w1 = sv.wait_ready(1, 20.0);
    REQUIRE(w1 > 0);
    auto r = http_get(a.port, "/");
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 1});
    // The worker sees the blocking socket it made; the shared one stays non-blocking.
    CHECK_MESSAGE(r->body.find("nonblock=0") != std::string::npos, r->body);

    upgrade_under_load(sv, a.port, 20);
    pid_t last = sv.wait_upgrade_done(21, 1.0);
    REQUIRE(last > 0);
    unsigned long ino = listening_inode(a.port);
    REQUIRE(ino != 0);
    CHECK_EQ(holders(ino), std::set<pid_t>{sv.pid(), last});
    CHECK_EQ(sv.count("O_NONBLOCK (set|cleared) by a worker"), 0u);

    expect_clean_stop(*a.sv, 10.0);
    CHECK_EQ(listening_inode(a.port), 0ul);
    CHECK(holders(ino).empty());
    CHECK_FALSE(pid_alive(last));
}

TEST_CASE("adopt: an address the supervisor does not serve binds normally") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    Adopted a;
    int other = net::free_port();
    Supervised& sv = a.start({"--also", std::to_string(other)});
    INFO("supervisor log:\n", tail(sv.log()));
    pid_t w1 = sv.wait_ready(1, 20.0);
    REQUIRE(w1 > 0);
    auto r = http_get(other, "/");
    REQUIRE_MESSAGE(r, "the worker's own port ", other, " does not answer");
    CHECK_EQ(parse_pid_gen(r->body).first, w1);
    // Its own socket: held by the worker alone, not by the supervisor.
    unsigned long ino = listening_inode(other);
    REQUIRE(ino != 0);
    CHECK_EQ(holders(ino), std::set<pid_t>{w1});
    CHECK_NE(ino, listening_inode(a.port));
}

TEST_CASE("adopt: a forking server whose children accept, and children exec'd again") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    for (bool exec_children : {false, true}) {
        CAPTURE(exec_children);
        Adopted a;
        std::vector<std::string> args{"--fork", "3"};
        if (exec_children) args.push_back("--exec-children");
        Supervised& sv = a.start(args);
        INFO("supervisor log:\n", tail(sv.log()));
        REQUIRE(sv.wait_ready(1, 20.0) > 0);
        std::set<long> answered;
        REQUIRE(wait_until([&] {
            auto r = http_get(a.port, "/");
            if (r) answered.insert(parse_pid_gen(r->body).first);
            return answered.size() >= 2;
        }, 10.0));
        upgrade_under_load(sv, a.port, 3);
        pid_t last = sv.wait_upgrade_done(4, 1.0);
        // The master and its three acceptors, and the supervisor: nobody older.
        std::set<pid_t> h = holders(listening_inode(a.port));
        CHECK_EQ(h.size(), 5u);
        CHECK(h.count(sv.pid()) == 1);
        CHECK(h.count(last) == 1);
        for (pid_t p : h)
            if (p != sv.pid()) CHECK_EQ(pgid_of(p), pgid_of(last));
        expect_clean_stop(*a.sv, 10.0);
        for (pid_t p : h) CHECK_FALSE(pid_alive(p));
    }
}

TEST_CASE("adopt: blocking and non-blocking generations side by side under load") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    Adopted a;
    const std::string env_file = a.dir.file("server.env");
    REQUIRE(write_file(env_file, "ADOPT_SERVER_MODE=block\n"));
    Supervised& sv = a.start({}, {"--env-file", env_file});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1, 20.0) > 0);
    // Odd generations block in accept(), even ones set O_NONBLOCK and poll; each upgrade
    // has one of each serving at once until the old one drains.
    upgrade_under_load(sv, a.port, 6, [&](int gen) {
        REQUIRE(write_file(env_file, gen % 2 == 0 ? "ADOPT_SERVER_MODE=nonblock\n" : "ADOPT_SERVER_MODE=block\n"));
    });
    pid_t last = sv.wait_upgrade_done(7, 1.0);
    auto r = wait_served_by(a.port, last, 5.0);
    REQUIRE(r);
    CHECK_MESSAGE(r->body.find("nonblock=0") != std::string::npos, r->body);  // gen 7 blocks
    CHECK_EQ(sv.count("O_NONBLOCK (set|cleared) by a worker"), 0u);
    // The shared flag: as the supervisor created it, whatever the workers asked for.
    int fd = fd_of(sv.pid(), listening_inode(a.port));
    REQUIRE(fd >= 0);
    CHECK((proc::fd_flags(sv.pid(), fd) & O_NONBLOCK) != 0);
}

TEST_CASE("adopt: --adopt-bind=worker-only keeps the preload out of the programs the worker runs") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    for (bool worker_only : {false, true}) {
        CAPTURE(worker_only);
        TempDir dir;
        int port = net::free_port();
        const std::string seen = dir.file("child.env");
        // The worker is a shell; `env` is a program it runs; then it becomes the server.
        std::vector<std::string> cmd{"/bin/sh", "-c",
                                     "env > " + sh_quote(seen) + "; exec " + sh_quote(server_bin()) + " 127.0.0.1 " +
                                         std::to_string(port)};
        Supervised sv(dir, {"-l", "127.0.0.1:" + std::to_string(port), worker_only ? "--adopt-bind=worker-only" : "--adopt-bind"},
                      cmd);
        INFO("supervisor log:\n", tail(sv.log()));
        REQUIRE(wait_until([&] { return read_file(seen).find("PATH=") != std::string::npos; }, 10.0));
        std::string e = read_file(seen);
        CHECK_EQ(e.find("SUPERVISOR_ADOPT=") == std::string::npos, worker_only);
        CHECK_EQ(e.find("libsupervisor-adopt.so") == std::string::npos, worker_only);
        if (worker_only) {
            // The server exec'd by the shell has no preload: its bind fails next to ours.
            CHECK(sv.wait_log("cannot bind 127.0.0.1 " + std::to_string(port) + ": Address already in use", 10.0));
        } else {
            CHECK(sv.wait_ready(1, 20.0) > 0);
        }
    }
}

TEST_CASE("adopt: a bare-port (dual-stack) listener and an IPv4 bind: one line from the worker saying what to do") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    TempDir dir;
    int port = net::free_port();
    Supervised sv(dir, {"-l", std::to_string(port), "--adopt-bind"}, {server_bin(), "127.0.0.1", std::to_string(port)});
    INFO("supervisor log:\n", tail(sv.log()));
    CHECK(sv.wait_log("supervisor-adopt: bind 127.0.0.1:" + std::to_string(port) +
                      " not adopted: the supervisor serves this port on a dual-stack IPv6 listener", 10.0));
}

TEST_CASE("adopt: a static binary and a setuid one are refused at startup, with the reason") {
    const std::string static_bin = env("ADOPT_SERVER_STATIC_BIN");
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    TempDir dir;
    if (static_bin.empty() || !file_exists(static_bin)) {
        MESSAGE("skipped the static case: no static build of the fixture (glibc's libc.a: libc6-dev)");
    } else {
        auto o = run_supervisor(dir, {"-l", "127.0.0.1:0", "--adopt-bind", "--", static_bin, "127.0.0.1", "1"});
        expect_one_line_error(o, 2, {"--adopt-bind cannot enter", "statically linked", "LISTEN_FDS"});
    }
    const std::string suid = dir.file("suid_server");
    {
        std::ifstream in(server_bin(), std::ios::binary);
        std::ofstream out(suid, std::ios::binary);
        out << in.rdbuf();
    }
    REQUIRE(::chmod(suid.c_str(), 04755) == 0);
    auto o = run_supervisor(dir, {"-l", "127.0.0.1:0", "--adopt-bind", "--", suid, "127.0.0.1", "1"});
    expect_one_line_error(o, 2, {"--adopt-bind cannot enter", "setuid", "LISTEN_FDS"});
}

TEST_CASE("adopt: after a reexec, the next generation still adopts the listener") {
    if (!file_exists(server_bin())) FAIL("ADOPT_SERVER_BIN is not set or missing");
    Adopted a;
    std::string control = a.dir.file("c.sock");
    Supervised& sv = a.start({}, {"--control", control});
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1, 20.0) > 0);
    auto rx = supervisor_ctl(a.dir, {"--control", control, "reexec"}, 20.0);
    REQUIRE_MESSAGE(rx.code == 0, rx.output);
    // The resumed image must find its own preload again: without it gen 2 bound the port
    // itself and died of EADDRINUSE ("exited before ready (exit=1)").
    upgrade_under_load(sv, a.port, 2);
    CHECK_EQ(sv.count("upgrade failed"), 0u);
    expect_clean_stop(*a.sv, 10.0);
}
