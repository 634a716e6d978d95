// `supervisor ctl reexec`: the supervisor replaces its own binary under load, keeping its
// pid, its sockets, its workers and their timers; a binary that cannot take the state
// over is refused and nothing changes.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace svtest;

namespace {

std::string exe_of(pid_t pid) {
    char buf[4096];
    ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// A copy of the supervisor binary at `path`, executable.
bool copy_binary(const std::string& path) {
    return write_file(path, read_file(bins().supervisor), 0755);
}

std::vector<std::string> ctl_options(const Serving& f) { return {"--control", f.control_socket()}; }

// One keep-alive connection sending requests back to back; false on any failure.
struct KeepAlive {
    int fd = -1;
    std::string buf;
    ~KeepAlive() {
        if (fd >= 0) ::close(fd);
    }
    bool connect_to(int port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval tv{3, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    bool request() {
        static const std::string req = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
        for (;;) {
            auto head_end = buf.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                auto cl = buf.find("Content-Length: ");
                if (cl == std::string::npos || cl > head_end) return false;
                size_t len = std::stoul(buf.substr(cl + 16));
                if (buf.size() >= head_end + 4 + len) {
                    bool ok = buf.rfind("HTTP/1.1 200", 0) == 0;
                    buf.erase(0, head_end + 4 + len);
                    return ok;
                }
            }
            char tmp[4096];
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            buf.append(tmp, static_cast<size_t>(n));
        }
    }
};

// Two request loops (a new connection per request, and keep-alive) until stopped.
struct Load {
    std::atomic<bool> stop{false};
    std::atomic<unsigned> ok{0}, failed{0}, reconnects{0};
    std::thread close_loop, keep_loop;
    explicit Load(int port) {
        close_loop = std::thread([this, port] {
            while (!stop) {
                auto r = http_get(port, "/", 3.0);
                (r && r->status == 200 ? ok : failed)++;
            }
        });
        keep_loop = std::thread([this, port] {
            while (!stop) {
                KeepAlive c;
                if (!c.connect_to(port)) {
                    failed++;
                    continue;
                }
                // The worker may close an idle keep-alive connection: a new one is no failure,
                // an error on a request in flight is.
                for (unsigned i = 0; i < 1000 && !stop; i++) (c.request() ? ok : failed)++;
                reconnects++;
            }
        });
    }
    void finish() {
        stop = true;
        close_loop.join();
        keep_loop.join();
    }
};

// The samples a reexec must carry: the counters, the histogram, the last upgrade, the start.
std::vector<std::string> carried_samples(const std::string& metrics) {
    static const char* const kCarried[] = {"supervisor_upgrades_total{", "supervisor_last_upgrade_",
                                           "supervisor_upgrade_duration_seconds_", "supervisor_worker_restarts_total ",
                                           "supervisor_hung_workers_total ", "supervisor_invariant_violations_total ",
                                           "supervisor_start_time_seconds "};
    std::vector<std::string> out;
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);)
        for (const char* name : kCarried)
            if (line.rfind(name, 0) == 0) out.push_back(line);
    return out;
}

std::string metrics_of(int port) {
    auto r = http_get(port, "/metrics", 3.0);
    return r && r->status == 200 ? r->body : "";
}

enum class Probe { Ok, Refused, Unanswered };

// One GET /readyz on a new connection: refused (connect failed), answered 200, or not.
Probe probe_readyz(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return Probe::Refused;
    }
    static const std::string req = "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    std::string resp;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return resp.rfind("HTTP/1.1 200", 0) == 0 ? Probe::Ok : Probe::Unanswered;
}

// /readyz in a loop, a new connection each time, until stopped.
struct Probes {
    std::atomic<bool> stop{false};
    std::atomic<unsigned> ok{0}, refused{0}, unanswered{0};
    std::thread loop;
    explicit Probes(int port) {
        loop = std::thread([this, port] {
            while (!stop) {
                Probe p = probe_readyz(port);
                (p == Probe::Ok ? ok : p == Probe::Refused ? refused : unanswered)++;
            }
        });
    }
    ~Probes() {
        if (loop.joinable()) finish();
    }
    void finish() {
        stop = true;
        loop.join();
    }
};

} // namespace

TEST_CASE("reexec: --http answers every probe through the swap; the counters and the fd count are kept") {
    REQUIRE(have_program(bins().demo_worker));
    Serving f;
    const std::string metrics_file = f.dir.file("m.prom");
    // A fixed port, as a load balancer's health check is configured: bound again after the
    // execve, it would refuse probes during the swap.
    const int hp = net::free_port();
    const std::string http = "127.0.0.1:" + std::to_string(hp);
    Supervised& sv = f.start({.options = {"--control", f.control_socket(), "--http", http, "--metrics-file", metrics_file},
                              .command = {bins().demo_worker}});
    REQUIRE(sv.wait_log("http listening addr=" + http));
    const pid_t pid = sv.pid();
    // An upgrade (success, duration) and a restart of its worker (same generation again).
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    ::kill(w2, SIGKILL);
    REQUIRE(sv.wait_nth_ready(3) > 0);
    REQUIRE(wait_until([&] { return metrics_of(hp).find("supervisor_worker_restarts_total 1") != std::string::npos; }, 5.0));
    const auto before = carried_samples(metrics_of(hp));
    const std::string file_before = read_file(metrics_file);
    const size_t fds_before = proc::open_fds(pid).size();
    REQUIRE_EQ(before.size(), 21u);  // 2 + 2 + 11 buckets + sum + count + 3 counters + start time: all present

    Probes probes(hp);
    REQUIRE(wait_until([&] { return probes.ok > 20; }, 5.0));
    auto r = f.ctl({"reexec"});
    INFO(r.output);
    REQUIRE_EQ(r.code, 0);
    CHECK(wait_until([&, n = probes.ok.load()] { return probes.ok > n + 20; }, 5.0));
    probes.finish();
    std::printf("reexec with --http: /readyz ok=%u refused=%u unanswered=%u\n", probes.ok.load(), probes.refused.load(),
                probes.unanswered.load());
    CHECK_EQ(probes.refused.load(), 0u);
    // A request the old image had accepted but not yet read when it exec'd is closed unanswered
    // (its client connections are not carried): at most the one in flight.
    CHECK_LE(probes.unanswered.load(), 1u);
    CHECK(sv.wait_log("resumed pid=" + std::to_string(pid) + " "));
    CHECK(sv.wait_log("http taken over addr=127\\.0\\.0\\.1:" + std::to_string(hp) + " "));
    CHECK_EQ(sv.count("http listening addr="), 1u);  // not bound again

    const auto after = carried_samples(metrics_of(hp));
    CHECK_EQ(after, before);
    CHECK(wait_until([&] { return read_file(metrics_file) == file_before; }, 3.0));
    CHECK_EQ(proc::open_fds(pid).size(), fds_before);

    // Counting goes on from there: the next upgrade is the second, with its duration.
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_upgrade_done(3) > 0);
    REQUIRE(wait_until([&] { return metrics_of(hp).find("supervisor_upgrades_total{result=\"success\"} 2") != std::string::npos; }, 5.0));
    CHECK(metrics_of(hp).find("supervisor_upgrade_duration_seconds_count 2") != std::string::npos);
    CHECK(metrics_of(hp).find("supervisor_worker_restarts_total 1") != std::string::npos);
}

TEST_CASE("reexec: 50 reexecs under load keep the pid, the sockets and the workers; an upgrade after works") {
    REQUIRE(have_program(bins().demo_worker));
    Serving f;
    const std::string a = f.dir.file("supervisor-a"), b = f.dir.file("supervisor-b");
    REQUIRE(copy_binary(a));
    REQUIRE(copy_binary(b));
    Supervised& sv = f.start({.options = ctl_options(f), .command = {bins().demo_worker}});
    const pid_t pid = sv.pid();
    const size_t fds_before = proc::open_fds(pid).size();
    Load load(f.port);
    REQUIRE(wait_until([&] { return load.ok > 20; }, 5.0));
    std::vector<double> took;
    constexpr int kReexecs = 50;
    for (int i = 0; i < kReexecs; i++) {
        const std::string& bin = i % 2 == 0 ? a : b;
        Stopwatch t;
        auto r = f.ctl({"reexec", "--binary", bin});
        took.push_back(t.seconds() * 1000);
        INFO("reexec #", i, ": ", r.output);
        REQUIRE_EQ(r.code, 0);
        CHECK(r.output.find("supervisor pid " + std::to_string(pid) + " re-executed " + bin) != std::string::npos);
        CHECK_EQ(exe_of(pid), bin);
    }
    REQUIRE(wait_until([&, n = load.ok.load()] { return load.ok > n + 20; }, 5.0));
    load.finish();
    std::sort(took.begin(), took.end());
    std::printf("reexec x%d under load: requests ok=%u failed=%u keepalive_conns=%u ctl_reexec_ms median=%.1f max=%.1f\n",
                kReexecs, load.ok.load(), load.failed.load(), load.reconnects.load(), took[took.size() / 2], took.back());
    CHECK_EQ(load.failed.load(), 0u);
    CHECK(sv.proc().alive());
    CHECK_EQ(sv.count("resumed pid=" + std::to_string(pid) + " "), static_cast<size_t>(kReexecs));
    CHECK_EQ(sv.count("spawned gen="), 1u);  // the worker was never restarted
    CHECK(pid_alive(f.w1));
    CHECK_EQ(proc::open_fds(pid).size(), fds_before);

    auto up = f.ctl({"upgrade"});
    INFO("upgrade: ", up.output);
    CHECK_EQ(up.code, 0);
    pid_t w2 = sv.spawned_pid(2);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(f.port, w2));
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + " exit=0"));
    CHECK(wait_until([&] { return !pid_alive(f.w1); }, 3.0));  // reaped by the resumed image: no zombie
    expect_clean_stop(sv);
}

TEST_CASE("reexec: a draining worker is still killed at its original drain deadline") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, "--ignore-term"}})));
    Supervised& sv = f.start({.options = {"--control", f.control_socket(), "--drain-timeout", "1500ms"}});
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("draining gen=1 pid=" + std::to_string(f.w1)));
    Stopwatch since_drain;
    // Half way through the drain: a deadline restarted by the swap would fire 0.75 s late.
    wait_until([&] { return since_drain.seconds() >= 0.75; }, 1.0);
    auto r = f.ctl({"reexec"});
    INFO(r.output);
    REQUIRE_EQ(r.code, 0);
    REQUIRE(sv.wait_log("drain timeout gen=1 pid=" + std::to_string(f.w1), 3.0));
    double killed_after = since_drain.seconds();
    std::printf("reexec during a drain: killed %.3f s after the drain began (deadline 1.5 s)\n", killed_after);
    CHECK_GE(killed_after, 1.3);
    CHECK_LT(killed_after, 1.8);  // a deadline restarted at the swap: 2.25 s
    CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(f.w1) + " signal=SIGKILL"));
    CHECK(wait_until([&] { return !pid_alive(f.w1); }, 2.0));
}

TEST_CASE("reexec: a crash-loop backoff is kept, not reset") {
    Serving f;
    REQUIRE(write_script(f.script, "exit 1"));
    Supervised& sv = f.start({.options = ctl_options(f), .await = Serving::Await::Port});
    // 100, 200, 400, 800 ms: wait for the 800 ms one, then swap while it waits.
    REQUIRE(sv.wait_log("respawn gen=1 in_ms=800", 5.0));
    auto r = f.ctl({"reexec"});
    INFO(r.output);
    REQUIRE_EQ(r.code, 0);
    CHECK(sv.wait_log("resumed pid="));
    CHECK(sv.wait_log("respawn gen=1 in_ms=1600", 5.0));
    CHECK_EQ(sv.count("respawn gen=1 in_ms=100\\b"), 1u);
}

TEST_CASE("reexec: a binary that cannot take over is refused and nothing changes") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    const pid_t pid = sv.pid();
    const std::string exe = exe_of(pid);
    const size_t fds_before = proc::open_fds(pid).size();
    struct Case {
        std::string name, body;
        unsigned mode;
        std::vector<std::string> extra;
        std::string reason;
    };
    std::vector<Case> cases{
        {"fails", "echo 'supervisor: resume state: version 1 is newer than this binary reads (0)' >&2; exit 1", 0755, {},
         "--check-state failed (exit=1): supervisor: resume state: version 1 is newer than this binary reads (0)"},
        {"not-executable", "exit 0", 0644, {}, "Permission denied"},
        {"hangs", "exec sleep 30", 0755, {"--timeout", "300ms"}, "--check-state did not finish within 300ms"},
    };
    for (const auto& c : cases) {
        std::string path = f.dir.file(c.name);
        REQUIRE(write_script(path, c.body, c.mode));
        std::vector<std::string> args{"reexec", "--binary", path};
        args.insert(args.end(), c.extra.begin(), c.extra.end());
        auto r = f.ctl(args);
        INFO(c.name, ": ", r.output);
        CHECK_EQ(r.code, 1);
        CHECK(r.output.find("reexec refused: ") != std::string::npos);
        CHECK(r.output.find(c.reason) != std::string::npos);
        CHECK_EQ(exe_of(pid), exe);
        CHECK(sv.proc().alive());
    }
    auto missing = f.ctl({"reexec", "--binary", f.dir.file("nothing-here")});
    CHECK_EQ(missing.code, 1);
    CHECK(missing.output.find("No such file or directory") != std::string::npos);
    CHECK_EQ(sv.count("resumed pid="), 0u);
    CHECK(pid_alive(f.w1));
    CHECK(wait_served_by(f.port, f.w1));
    CHECK_EQ(proc::open_fds(pid).size(), fds_before);
    CHECK_EQ(f.ctl({"reexec"}).code, 0);  // and the real one still works
}

TEST_CASE("reexec: refused while an upgrade is in flight") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{2, "--never-ready"}})));
    Supervised& sv = f.start({.options = {"--control", f.control_socket(), "--ready-timeout", "30s"}});
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("upgrade started gen=2"));
    auto r = f.ctl({"reexec"});
    INFO(r.output);
    CHECK_EQ(r.code, 1);
    CHECK(r.output.find("reexec refused: an upgrade is in flight (gen 2); retry when it is decided") != std::string::npos);
    CHECK(sv.proc().alive());
}

TEST_CASE("reexec: --check-state reads a state built by hand: the versions either side are refused in one line") {
    TempDir dir;
    auto check = [&](const std::string& json) {
        REQUIRE(write_file(dir.file("state.json"), json));
        return run_to_exit(dir, {"/bin/sh", "-c", "exec \"$0\" --check-state 5 5<\"$1\"", bins().supervisor, dir.file("state.json")});
    };
    expect_one_line_error(check(R"({"version":3,"exe":"/x","future_field":1})"), 1,
                          {"resume state: version 3 is newer than this binary reads (2)"});
    expect_one_line_error(check(R"({"version":0,"argv":["supervisor"]})"), 1,
                          {"resume state: version 0 is older than this binary reads (1)"});
    expect_one_line_error(check(R"({"version":1,"exe":"/x"})"), 1, {"resume state: argv is missing"});
    expect_one_line_error(check(R"({"version":1,)"), 1, {"resume state: not valid JSON (truncated?)"});
}

TEST_CASE("reexec: systemd hears RELOADING=1 then READY=1 from the same pid, and nothing goes to the fd store again") {
    Serving f;
    NotifyListener systemd;
    REQUIRE_FALSE(systemd.name().empty());
    auto env = environment_with({"NOTIFY_SOCKET=" + systemd.name()});
    f.start({.options = ctl_options(f), .env = &env});
    std::vector<std::string> fdstore;
    auto next = [&] {
        for (;;) {
            auto m = systemd.receive(5.0);
            if (!m) return std::string("(nothing)");
            if (m->rfind("FDSTORE=", 0) == 0) fdstore.push_back(*m);
            else if (m->rfind("STATUS=", 0) != 0) return *m;
        }
    };
    CHECK(next().find("READY=1") != std::string::npos);
    const size_t stored = fdstore.size();
    auto r = f.ctl({"reexec"});
    INFO(r.output);
    REQUIRE_EQ(r.code, 0);
    auto m1 = next();
    CHECK(m1.find("RELOADING=1") != std::string::npos);
    CHECK(m1.find("MONOTONIC_USEC=") != std::string::npos);
    auto m2 = next();
    CHECK(m2.find("READY=1") != std::string::npos);
    CHECK(m2.find("re-executed") != std::string::npos);
    CHECK_EQ(fdstore.size(), stored);
}

TEST_CASE("reexec: a failed execve leaves the old image running, its fds and signals as they were") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    const pid_t pid = sv.pid();
    const std::string exe = exe_of(pid);
    const size_t fds_before = proc::open_fds(pid).size();
    // It passes the check and then removes itself: the execve that follows finds nothing.
    const std::string vanishing = f.dir.file("vanishing");
    REQUIRE(write_script(vanishing, "rm -f \"$0\"; exit 0"));
    auto r = f.ctl({"reexec", "--binary", vanishing});
    INFO(r.output);
    CHECK_EQ(r.code, 1);
    CHECK(r.output.find("reexec failed: execve " + vanishing + ": No such file or directory") != std::string::npos);
    CHECK(sv.wait_log("reexec failed binary=.*still running the old image"));
    CHECK_EQ(exe_of(pid), exe);
    CHECK_EQ(proc::open_fds(pid).size(), fds_before);  // CLOEXEC restored, the memfd closed
    REQUIRE(sv.hup());                                  // signals are unblocked again
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(f.port, w2));
    CHECK_EQ(f.ctl({"reexec"}).code, 0);
}

TEST_CASE("reexec: a worker that exits during the swap is reaped by the new image and respawned") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    const pid_t w1 = f.w1;
    // The new binary's check kills the worker and waits until it is a zombie: its SIGCHLD
    // reaches the old image just before the execve, so only the new image's sweep sees it.
    const std::string wrapper = f.dir.file("killing-check");
    REQUIRE(write_script(wrapper, "if [ \"$1\" = --check-state ]; then kill -TERM " + std::to_string(w1) +
                                      "; while [ \"$(cut -d' ' -f3 /proc/" + std::to_string(w1) +
                                      "/stat)\" != Z ]; do :; done; fi\nexec " + sh_quote(bins().supervisor) + " \"$@\""));
    auto r = f.ctl({"reexec", "--binary", wrapper});
    INFO(r.output);
    REQUIRE_EQ(r.code, 0);
    const std::string died = "worker died gen=1 pid=" + std::to_string(w1) + " ";
    REQUIRE(sv.wait_log(died));
    auto text = sv.log();
    CHECK_LT(text.find("resumed pid="), text.find(died));
    CHECK(wait_until([&] { return !pid_alive(w1); }, 2.0));  // reaped: no zombie left
    CHECK(sv.wait_log("respawn gen=1"));
    CHECK(sv.wait_nth_ready(2) > 0);
}

TEST_CASE("reexec: ctl usage errors exit 2 with one line") {
    TempDir dir;
    auto r = supervisor_ctl(dir, {"--control", dir.file("c.sock"), "reexec", "--timeout", "0"});
    CHECK_EQ(r.code, 2);
    CHECK(r.output.find("invalid --timeout '0'") != std::string::npos);
    auto nobody = supervisor_ctl(dir, {"--control", dir.file("c.sock"), "reexec"});
    CHECK_EQ(nobody.code, 3);  // nothing listens there
}
