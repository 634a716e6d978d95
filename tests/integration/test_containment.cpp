// Containment: every process a worker starts is found and killed with its generation —
// a descendant that left the process group with setsid(), a helper that exits just after
// its worker (no waiting for the drain deadline), and a group id reused by another
// process (never killed by number). Each case runs with a cgroup (--cgroup auto, where one
// is delegated, as on the test machines) and without one (--cgroup off).
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <set>

#include "harness.h"

using namespace svtest;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> with_mode(const std::string& mode, std::vector<std::string> opts) {
    if (mode == "off") opts.insert(opts.end(), {"--cgroup", "off"});
    return opts;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Field 22 of /proc/PID/stat: with the pid, it names one process (0 when gone).
unsigned long long start_time_of(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return 0;
    std::istringstream in(stat.substr(paren + 2));
    std::string field;
    for (int i = 3; i <= 22 && in >> field; i++)
        if (i == 22) return std::stoull(field);
    return 0;
}

// SIGKILLs a process this test caused to exist if it is still there when the scope ends
// (a failed check must not leave it serving): through a pidfd, only if it is still the
// same process (start time).
class KillLater {
public:
    explicit KillLater(pid_t pid) : pid_(pid), start_(start_time_of(pid)) {}
    ~KillLater() {
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        if (fd < 0) return;
        if (start_ != 0 && start_time_of(pid_) == start_) {
            ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
            std::fprintf(stderr, "svtest: pid %d left behind: SIGKILL\n", pid_);
        }
        ::close(fd);
    }
    KillLater(const KillLater&) = delete;
    KillLater& operator=(const KillLater&) = delete;

private:
    pid_t pid_;
    unsigned long long start_;
};

// How many of `n` requests each generation answers ("gen=1:11 gen=2:9"), failures as gen=-1.
std::string answers_by_gen(int port, int n) {
    std::map<long, int> gens;
    for (int i = 0; i < n; i++) {
        auto r = http_get(port);
        gens[r ? parse_pid_gen(r->body).second : -1]++;
    }
    std::string out;
    for (auto [gen, count] : gens) out += (out.empty() ? "" : " ") + ("gen=" + std::to_string(gen)) + ":" + std::to_string(count);
    return out;
}

void setsid_descendant_case(const std::string& mode) {
    TempDir dir;
    const std::string script = dir.file("worker.sh");
    const std::string args = "--grandchild-serves --grandchild-setsid";
    REQUIRE(write_script(script, fake_exec(dir, args)));
    Supervised sv(dir, with_mode(mode, {"-l", "127.0.0.1:0", "--ready", "notify", "--drain-timeout", "500ms"}), {script});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    CHECK(find_log_line(sv.log(), mode == "off" ? "containment: process groups \\+ pidfds" : "containment: cgroup v2 "));
    pid_t gc1 = std::stoi(wait_report(report_prefix(dir), w1, 3.0)["grandchild"]);
    KillLater cleanup1(gc1);
    REQUIRE(wait_until([&] { return pgid_of(gc1) == gc1; }, 2.0));  // it left the worker's group

    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    pid_t gc2 = std::stoi(wait_report(report_prefix(dir), w2, 3.0)["grandchild"]);
    KillLater cleanup2(gc2);
    REQUIRE(sv.wait_log("exited gen=1 pid=" + std::to_string(w1) + " exit=0 "));
    CHECK_MESSAGE(wait_until([&] { return !pid_alive(gc1); }, 2.5), "gen=1's setsid() descendant ", gc1,
                  " still serves 2.5s after the 500ms drain deadline");
    CHECK_EQ(answers_by_gen(port, 20), "gen=2:20");

    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(5.0);
    REQUIRE_MESSAGE(st, "the supervisor did not exit within 5s of SIGTERM");
    CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), describe_status(st));
    for (pid_t p : {w1, gc1, w2, gc2})
        CHECK_MESSAGE(wait_until([&] { return !pid_alive(p); }, 1.0), "pid ", p, " outlived the supervisor");
    CHECK_MESSAGE(wait_until([&] { return !can_connect(port); }, 1.0), "port ", port, " still open after the supervisor exited");
}

void helper_case(const std::string& mode) {
    TempDir dir;
    Supervised sv(dir, with_mode(mode, {"-l", "127.0.0.1:0", "--ready", "notify", "--drain-timeout", "8s"}),
                  {bins().fake_worker, "--report", report_prefix(dir), "--helper"});
    INFO("supervisor log:\n", tail(sv.log()));
    int port = sv.wait_port();
    REQUIRE(port > 0);
    pid_t w1 = sv.wait_ready(1);
    REQUIRE(w1 > 0);
    KillLater cleanup1(std::stoi(wait_report(report_prefix(dir), w1, 3.0)["helper"]));

    // An upgrade: gen=1 drains at once, its helper 200 ms later.
    auto t0 = Clock::now();
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    KillLater cleanup2(std::stoi(wait_report(report_prefix(dir), w2, 3.0)["helper"]));
    auto gone = sv.wait_log("process group of gen=1 pid=" + std::to_string(w1) + R"( gone after_ms=(\d+))", 3.0);
    CHECK_MESSAGE(gone, "gen=1's helper exited but gen=1 still lingers (", seconds_since(t0), "s after the upgrade)");
    if (gone) CHECK_LT(std::stoi((*gone)[1]), 3000);

    // A stop: exits once gen=2 and its helper are gone, long before the 8 s drain deadline.
    t0 = Clock::now();
    REQUIRE(sv.term());
    auto st = sv.proc().wait_exit(3.0);
    REQUIRE_MESSAGE(st, "a stop with --drain-timeout 8s still runs after 3s: the helper's exit went unnoticed");
    CHECK_LT(seconds_since(t0), 3.0);
    CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), describe_status(st));
    CHECK(find_log_line(sv.log(), "process group of gen=2 pid=" + std::to_string(w2) + " gone"));
    CHECK_EQ(sv.count("drain timeout"), 0u);
    CHECK_FALSE(can_connect(port));
}

} // namespace

TEST_CASE("containment: a setsid() descendant serving the socket dies with its generation (cgroup)") {
    setsid_descendant_case("auto");
}

TEST_CASE("containment: a setsid() descendant serving the socket dies with its generation (--cgroup off)") {
    setsid_descendant_case("off");
}

TEST_CASE("containment: a helper exiting with its worker ends the drain at once, upgrade and stop (cgroup)") {
    helper_case("auto");
}

TEST_CASE("containment: a helper exiting with its worker ends the drain at once, upgrade and stop (--cgroup off)") {
    helper_case("off");
}

// --- pid reuse, forced in a pid namespace of our own ------------------------------------

namespace {

// The pids whose parent is `parent` (this kernel has no /proc/PID/task/TID/children).
std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        std::string stat = read_file(std::string("/proc/") + e->d_name + "/stat");
        size_t paren = stat.rfind(')');
        if (paren == std::string::npos) continue;
        std::istringstream in(stat.substr(paren + 2));
        std::string state;
        long ppid = 0;
        if (in >> state >> ppid && ppid == parent) out.push_back(std::stoi(e->d_name));
    }
    ::closedir(d);
    return out;
}

// Our pid of the process that is `inner` in the pid namespace of `ns_member` (NSpid).
pid_t outer_pid(pid_t ns_member, pid_t inner) {
    char want[64] = {0}, have[64] = {0};
    std::string link = "/proc/" + std::to_string(ns_member) + "/ns/pid";
    if (::readlink(link.c_str(), want, sizeof want - 1) < 0) return -1;
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return -1;
    pid_t found = -1;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        std::string base = std::string("/proc/") + e->d_name;
        std::memset(have, 0, sizeof have);
        if (::readlink((base + "/ns/pid").c_str(), have, sizeof have - 1) < 0 || std::strcmp(want, have) != 0) continue;
        auto line = find_log_line(read_file(base + "/status"), R"(^NSpid:\s+(\d+)\s+(\d+)$)");
        if (line && std::stoi((*line)[2]) == inner) found = std::stoi((*line)[1]);
    }
    ::closedir(d);
    return found;
}

// Runs `command` with `ns_member`'s pid and mount namespaces; true when it exits 0.
bool run_in_namespace(pid_t ns_member, const std::string& command, const TempDir& dir) {
    Process p({"nsenter", "-t", std::to_string(ns_member), "-p", "-m", "sh", "-c", command}, dir.file("nsenter.log"));
    auto st = p.wait_exit(5.0);
    return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0;
}

// Why this test cannot run here, or "".
std::string pid_namespace_unavailable(const TempDir& dir) {
    if (::geteuid() != 0) return "needs root (unshare --pid, and writing ns_last_pid)";
    if (!have_program("unshare") || !have_program("nsenter")) return "needs unshare and nsenter (util-linux)";
    Process probe({"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", "echo 100 > /proc/sys/kernel/ns_last_pid"},
                  dir.file("probe.log"));
    auto st = probe.wait_exit(5.0);
    if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0) return "cannot create a pid namespace and set ns_last_pid: " + read_file(dir.file("probe.log"));
    return "";
}

// gen=1 leaves a helper behind when it drains (lingering), the helper exits, and the
// test makes gen=3's worker take gen=1's pid. gen=2 ignores the drain signal, so its
// drain deadline (logged) comes after gen=1's: by then gen=1's deadline has passed and
// gen=3 must still be serving, never killed for gen=1's group.
void pid_reuse_case(const std::string& mode) {
    TempDir dir;
    if (auto why = pid_namespace_unavailable(dir); !why.empty()) {
        MESSAGE("skipped: ", why);
        return;
    }
    const std::string script = dir.file("worker.sh");
    REQUIRE(write_script(script, "case \"$SUPERVISOR_GENERATION\" in\n1) " + fake_exec(dir, "--helper") + " ;;\n2) " +
                                     fake_exec(dir, "--ignore-term") + " ;;\n*) " + fake_exec(dir) + " ;;\nesac"));
    std::vector<std::string> argv = {"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", bins().supervisor};
    for (const auto& o : with_mode(mode, {"-l", "127.0.0.1:0", "--ready", "notify", "--drain-timeout", "3s"})) argv.push_back(o);
    argv.insert(argv.end(), {"--", script});
    Process ns(argv, dir.file("supervisor.log"));
    ProcessGuard guard(ns, 1.0);  // SIGKILL to unshare kills the supervisor (--kill-child), then the namespace
    INFO("supervisor log:\n", tail(ns.log()));
    pid_t sup = -1;
    REQUIRE(wait_until([&] { auto c = children_of(ns.pid()); if (!c.empty()) sup = c[0]; return sup > 0; }, 3.0, &ns));
    auto port_line = wait_log(ns, R"(listening name=\S+ addr=127\.0\.0\.1:(\d+) )", 5.0);
    REQUIRE(port_line);
    int port = std::stoi((*port_line)[1]);
    auto ready1 = wait_log(ns, R"(ready gen=1 pid=(\d+))", 5.0);
    REQUIRE(ready1);
    const int w1 = std::stoi((*ready1)[1]);  // in the namespace
    const int helper_inner = std::stoi(wait_report(report_prefix(dir), w1, 3.0)["helper"]);
    const pid_t helper = outer_pid(sup, helper_inner);
    REQUIRE(helper > 0);
    KillLater cleanup(helper);

    REQUIRE(::kill(sup, SIGHUP) == 0);
    REQUIRE(wait_log(ns, "upgrade done gen=2 ", 5.0));
    REQUIRE(wait_log(ns, "exited gen=1 pid=" + std::to_string(w1) + " ", 3.0));
    REQUIRE(wait_until([&] { return !pid_alive(helper); }, 3.0));  // gen=1's group is empty: its pid is free
    // The next fork in the namespace gets w1: gen=3's worker.
    REQUIRE(run_in_namespace(sup, "echo " + std::to_string(w1 - 1) + " > /proc/sys/kernel/ns_last_pid", dir));
    REQUIRE(::kill(sup, SIGHUP) == 0);
    auto ready3 = wait_log(ns, R"(ready gen=3 pid=(\d+))", 5.0);
    REQUIRE(ready3);
    if (std::stoi((*ready3)[1]) != w1) {
        MESSAGE("skipped: gen=3 got pid ", (*ready3)[1], ", not gen=1's ", w1, ": the reuse could not be forced");
        return;
    }
    REQUIRE(wait_log(ns, "drain timeout gen=2 ", 8.0));  // after gen=1's deadline
    CHECK_EQ(count_log_lines(ns.log(), "drain timeout gen=1 "), 0u);
    CHECK_EQ(count_log_lines(ns.log(), "worker died gen=3 "), 0u);
    auto r = http_get(port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body), std::pair<long, long>{w1, 3});

    REQUIRE(::kill(sup, SIGTERM) == 0);
    auto st = ns.wait_exit(5.0);
    REQUIRE(st);
    CHECK_MESSAGE((WIFEXITED(*st) && WEXITSTATUS(*st) == 0), describe_status(st));
}

} // namespace

TEST_CASE("containment: a reaped worker's pid reused by a new worker is never killed for the old group (pid namespace, cgroup)") {
    pid_reuse_case("auto");
}

TEST_CASE("containment: a reaped worker's pid reused by a new worker is never killed for the old group (pid namespace, --cgroup off)") {
    pid_reuse_case("off");
}
