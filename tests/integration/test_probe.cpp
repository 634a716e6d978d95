// The readiness probe (supervisor/readiness_probe.cpp) against real workers that boot
// slowly and never send READY=1: while they boot it sees nothing, once they wait for
// connections on the inherited listener it says how (accept, epoll, poll, select).
// The workers are started by this process with the listener on fd 3, as the supervisor
// does, so the probe runs from their parent (Yama's ptrace_scope=1 allows that).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <cstdio>
#include <cstring>
#include <poll.h>

#include "harness.h"
#include "supervisor/readiness_probe.h"

using namespace svtest;

namespace {

// A TCP listener on 127.0.0.1:0, blocking, as the supervisor binds it.
struct Listener {
    int fd = -1;
    int port = 0;
    ino_t inode = 0;

    Listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        struct stat st {};
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(fd, 64) < 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0 || ::fstat(fd, &st) < 0)
            return;
        port = ntohs(a.sin_port);
        inode = st.st_ino;
    }
    ~Listener() {
        if (fd >= 0) ::close(fd);
    }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
};

// A worker exec'd with the listener on fd 3, LISTEN_FDS=1, LISTEN_PID=its pid,
// SUPERVISOR_GENERATION=7, in its own process group. The destructor SIGKILLs it and
// every process of its group or below it that is still alive, by pid, and reaps them.
class Worker {
public:
    Worker(const TempDir& dir, const Listener& l, const std::vector<std::string>& argv) : log_(dir.file("worker.log")) {
        std::vector<std::string> env = environment_with({"LISTEN_FDS=1", "LISTEN_FDNAMES=web", "SUPERVISOR_GENERATION=7"});
        env.push_back("LISTEN_PID=0000000000");  // filled in by the child: its own pid
        std::vector<char*> cargv, cenv;
        for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
        for (auto& e : env) cenv.push_back(e.data());
        cargv.push_back(nullptr);
        cenv.push_back(nullptr);
        char* pid_slot = cenv[cenv.size() - 2] + std::strlen("LISTEN_PID=");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setpgid(0, 0);
            char digits[16];
            int n = 0;
            for (unsigned long self = static_cast<unsigned long>(::getpid()); self > 0 || n == 0; self /= 10)
                digits[n++] = static_cast<char>('0' + self % 10);
            for (int i = 0; i < n; i++) pid_slot[i] = digits[n - 1 - i];
            pid_slot[n] = '\0';
            int in = ::open("/dev/null", O_RDONLY);
            int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (in < 0 || out < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0 ||
                ::dup2(l.fd, 3) < 0 || ::fcntl(3, F_SETFD, 0) < 0)  // dup2(3, 3) keeps close-on-exec
                ::_exit(126);
            ::closefrom(4);
            ::execvpe(cargv[0], cargv.data(), cenv.data());
            ::_exit(127);
        }
    }
    ~Worker() {
        std::vector<int> all = sv::list_generation_pids(pid_);
        for (int p : all) ::kill(p, SIGKILL);
        ::kill(pid_, SIGKILL);
        wait_exit(pid_, 5.0);
        // Orphaned acceptors come back to us (the test runner is a child subreaper).
        for (int p : all)
            if (p != pid_) wait_exit(p, 2.0);
    }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    pid_t pid() const { return pid_; }
    std::string log() const { return read_file(log_); }
    bool logged(const std::string& text) const { return log().find(text) != std::string::npos; }
    bool wait_logged(const std::string& text, double seconds = 10.0) const {
        return wait_until([&] { return logged(text) || !pid_alive(pid_); }, seconds) && logged(text);
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

std::string describe(const sv::ProbeResult& r) {
    if (!r) return "not accepting";
    return "pid=" + std::to_string(r->pid) + " tid=" + std::to_string(r->tid) + " how=" +
           std::string(sv::accept_via_name(r->how));
}

// The probe over the worker's whole generation, polled until it sees an acceptor. One
// AcceptProbe throughout, as the supervisor keeps one per starting generation: what it
// remembers of the booting worker must not hide the change.
sv::ProbeResult wait_accepting(const Worker& w, const std::set<ino_t>& inodes, double seconds = 10.0) {
    sv::AcceptProbe probe;
    sv::ProbeResult found;
    wait_until([&] { return (found = probe.probe(sv::list_generation_pids(w.pid()), inodes)).has_value(); }, seconds);
    return found;
}

// Boots `argv` (which must log "pid=<pid> " … at start and "booted" when done), checks
// the probe sees nothing while it boots, then that it sees `how` and the worker serves.
// `more` runs last, while the worker still runs.
using MoreChecks = std::function<void(const Worker&, const Listener&, const sv::Accepting&)>;
sv::ProbeResult boot_and_probe(const std::vector<std::string>& argv, sv::AcceptVia how, const MoreChecks& more = {}) {
    TempDir dir;
    Listener l;
    REQUIRE(l.port > 0);
    Worker w(dir, l, argv);
    REQUIRE(w.pid() > 0);
    INFO("worker log:\n", tail(w.log()));
    REQUIRE(w.wait_logged("pid=" + std::to_string(w.pid()) + " "));
    auto during_boot = sv::probe_accepting(sv::list_generation_pids(w.pid()), {l.inode});
    if (!w.logged("booted")) {
        CHECK_MESSAGE(!during_boot, "the probe saw a booting worker accept: ", describe(during_boot));
    } else {
        MESSAGE("inconclusive: the worker finished booting before the probe looked (slow machine)");
    }
    auto r = wait_accepting(w, {l.inode});
    REQUIRE_MESSAGE(r, "the probe never saw the worker accept");
    CHECK_EQ(sv::accept_via_name(r->how), sv::accept_via_name(how));
    auto resp = http_get(l.port, "/", 5.0);
    REQUIRE(resp);
    CHECK_EQ(parse_pid_gen(resp->body).second, 7);
    auto access = sv::can_inspect(w.pid());
    CHECK_MESSAGE(access.ok(), (access.ok() ? "" : access.error().what));
    if (more) more(w, l, *r);
    return r;
}

const std::string& slow_acceptor() {
    static const std::string path = env("SLOW_ACCEPTOR_BIN");
    return path;
}

size_t count_processes() {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc"))
        n += std::isdigit(static_cast<unsigned char>(e.path().filename().string()[0])) != 0;
    return n;
}

bool have_python_worker() {
    if (!have_program("python3") || !file_exists(env("SELECTOR_WORKER"))) {
        MESSAGE("skipped: python3 or SELECTOR_WORKER is missing");
        return false;
    }
    return true;
}

} // namespace

TEST_CASE("probe: a worker blocked in accept4") {
    auto r = boot_and_probe({slow_acceptor(), "--mode", "accept", "--boot-ms", "1500"}, sv::AcceptVia::Accept);
    CHECK_EQ(r->tid, r->pid);
}

TEST_CASE("probe: a worker that moved the listener to another fd is found by inode") {
    auto r = boot_and_probe({slow_acceptor(), "--mode", "accept", "--dup-to", "40", "--boot-ms", "1500"},
                            sv::AcceptVia::Accept);
    CHECK_EQ(r->tid, r->pid);
}

TEST_CASE("probe: an epoll worker, waiting in epoll_wait") {
    // Caught between epoll_ctl and epoll_wait, the set alone counts (tid 0); once the
    // worker has served a request it waits in epoll_wait, and that thread is named.
    boot_and_probe({slow_acceptor(), "--mode", "epoll", "--boot-ms", "1500"}, sv::AcceptVia::Epoll,
                   [](const Worker& w, const Listener& l, const sv::Accepting& first) {
                       CHECK((first.tid == 0 || first.tid == w.pid()));
                       REQUIRE(w.wait_logged("waiting"));
                       sv::ProbeResult r;
                       CHECK(wait_until([&] { return (r = sv::probe_accepting({w.pid()}, {l.inode})) && r->tid == w.pid(); }, 5.0));
                       CHECK(r->how == sv::AcceptVia::Epoll);
                   });
}

TEST_CASE("probe: a listener registered in an epoll set counts before anybody waits on it") {
    TempDir dir;
    Listener l;
    Worker w(dir, l, {slow_acceptor(), "--mode", "epoll", "--epoll-idle-ms", "2000"});
    INFO("worker log:\n", tail(w.log()));
    REQUIRE(w.wait_logged("registered"));
    auto r = sv::probe_accepting({w.pid()}, {l.inode});
    bool idle = !w.logged("waiting");
    REQUIRE_MESSAGE(r, "a registered listener was not seen");
    CHECK(r->how == sv::AcceptVia::Epoll);
    if (idle) CHECK_EQ(r->tid, 0);
}

TEST_CASE("probe: a thread other than the main one blocked in accept4") {
    auto r = boot_and_probe({slow_acceptor(), "--mode", "thread", "--boot-ms", "1500"}, sv::AcceptVia::Accept);
    CHECK_NE(r->tid, r->pid);
}

TEST_CASE("probe: a master that forks its acceptors and sleeps in wait()") {
    TempDir dir;
    Listener l;
    Worker w(dir, l, {slow_acceptor(), "--mode", "fork", "--acceptors", "2", "--boot-ms", "1000"});
    INFO("worker log:\n", tail(w.log()));
    REQUIRE(wait_until([&] { return count_log_lines(w.log(), "acceptor=") == 2; }, 10.0));
    auto r = wait_accepting(w, {l.inode});
    REQUIRE(r);
    CHECK(r->how == sv::AcceptVia::Accept);
    CHECK_NE(r->pid, w.pid());
    auto pids = sv::list_generation_pids(w.pid());
    CHECK_EQ(pids.size(), 3u);
    CHECK_EQ(pids.front(), w.pid());
    CHECK_MESSAGE(!sv::probe_accepting({w.pid()}, {l.inode}), "the master itself only waits for its children");
}

TEST_CASE("probe: poll() through Python's selectors.PollSelector") {
    if (!have_python_worker()) return;
    boot_and_probe({"python3", env("SELECTOR_WORKER"), "--selector", "poll", "--boot-ms", "1500"}, sv::AcceptVia::Poll);
}

TEST_CASE("probe: select() through Python's selectors.SelectSelector") {
    if (!have_python_worker()) return;
    boot_and_probe({"python3", env("SELECTOR_WORKER"), "--selector", "select", "--boot-ms", "1500"},
                   sv::AcceptVia::Select);
}

TEST_CASE("probe: accepting on another socket is not accepting on ours") {
    TempDir dir;
    Listener ours, theirs;
    Worker w(dir, theirs, {slow_acceptor(), "--mode", "epoll"});
    INFO("worker log:\n", tail(w.log()));
    REQUIRE(w.wait_logged("waiting"));
    REQUIRE(sv::probe_accepting({w.pid()}, {theirs.inode}));
    CHECK_FALSE(sv::probe_accepting({w.pid()}, {ours.inode}));
    CHECK_FALSE(sv::probe_accepting({w.pid()}, {}));
}

TEST_CASE("probe: can_inspect says why it cannot") {
    SUBCASE("no such process") {
        // A pid that existed and is gone: our own reaped child.
        pid_t gone = ::fork();
        if (gone == 0) ::_exit(0);
        REQUIRE(wait_exit(gone, 5.0));
        auto r = sv::can_inspect(gone);
        REQUIRE_FALSE(r.ok());
        CHECK_MESSAGE(r.error().what.find("no such process") != std::string::npos, r.error().what);
        CHECK_FALSE(sv::probe_accepting({gone}, {1}));
    }
    SUBCASE("another uid, without CAP_SYS_PTRACE") {
        if (::getuid() != 0) {
            MESSAGE("skipped: needs root to become another uid");
            return;
        }
        TempDir dir;
        Listener l;
        Worker w(dir, l, {slow_acceptor(), "--mode", "accept"});
        REQUIRE(w.wait_logged("booted"));
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        pid_t child = ::fork();
        if (child == 0) {
            // Becoming uid 65534 drops every capability (no keep-caps).
            std::string what = "setuid failed";
            if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
                auto access = sv::can_inspect(w.pid());
                what = access.ok() ? "allowed" : access.error().what;
            }
            ssize_t n = ::write(p[1], what.data(), what.size());
            ::_exit(n < 0);
        }
        ::close(p[1]);
        std::string what;
        char buf[512];
        struct pollfd pf { p[0], POLLIN, 0 };
        while (::poll(&pf, 1, 5000) == 1) {
            ssize_t n = ::read(p[0], buf, sizeof buf);
            if (n <= 0) break;
            what.append(buf, static_cast<size_t>(n));
        }
        ::close(p[0]);
        wait_exit(child, 5.0);
        CHECK_MESSAGE(what.find("runs as uid=0 and we as uid=65534 without CAP_SYS_PTRACE") != std::string::npos, what);
    }
}

TEST_CASE("probe: cost per call, a worker with 50 fds and 4 threads") {
    TempDir dir;
    Listener l;
    using Clock = std::chrono::steady_clock;
    // Mean microseconds per call of f over n calls.
    auto mean_us = [](int n, const std::function<void()>& f) {
        auto t0 = Clock::now();
        for (int i = 0; i < n; i++) f();
        return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count() / 1000.0 / n;
    };
    // fds 0-2, the listener and 46 more; the main thread and 3 more.
    const std::vector<std::string> load = {"--extra-fds", "46", "--threads", "3"};
    for (std::string mode : {"accept", "epoll"}) {
        std::vector<std::string> argv = {slow_acceptor(), "--mode", mode};
        argv.insert(argv.end(), load.begin(), load.end());
        auto booting_argv = argv;
        booting_argv.insert(booting_argv.end(), {"--boot-ms", "60000"});
        Worker booting(dir, l, booting_argv);
        Worker serving(dir, l, argv);
        REQUIRE(booting.wait_logged("pid=" + std::to_string(booting.pid()) + " mode="));
        REQUIRE(wait_accepting(serving, {l.inode}));
        int wrong = 0;
        double fresh_booting = mean_us(2000, [&] { wrong += sv::probe_accepting({booting.pid()}, {l.inode}).has_value(); });
        double fresh_found = mean_us(2000, [&] { wrong += !sv::probe_accepting({serving.pid()}, {l.inode}).has_value(); });
        sv::AcceptProbe kept;
        double kept_booting = mean_us(2000, [&] { wrong += kept.probe({booting.pid()}, {l.inode}).has_value(); });
        double listing = mean_us(200, [&] { wrong += sv::list_generation_pids(booting.pid()).size() != 1; });
        CHECK_EQ(wrong, 0);
        CHECK_MESSAGE(kept.stats().reused > 1000, "a sleeping worker was read again and again: reused=",
                      kept.stats().reused, " read=", kept.stats().read);
        MESSAGE("probe cost mode=", mode, " fds=50 threads=4 us_per_call: booting=", fresh_booting,
                " accepting=", fresh_found, " booting_kept_probe=", kept_booting, " (read ", kept.stats().read,
                " reused ", kept.stats().reused, ") list_generation_pids=", listing, " processes=", count_processes(),
                " loadavg=", read_file("/proc/loadavg"));
    }
}
