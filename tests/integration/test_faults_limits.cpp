// Fault injection, exhausted limits: fork fails (RLIMIT_NPROC), no fd left (RLIMIT_NOFILE),
// a unix path too long. Failures are reported, the supervisor neither dies nor spins, and
// it recovers once the limit is lifted. docs/RELIABILITY.md maps each fault to its test.
#include <doctest/doctest.h>

#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "harness.h"

using namespace svtest;

namespace {

constexpr const char* kFailedGen2 = R"re(upgrade failed gen=2 reason="([^"]*)" serving_gen=1 \(still serving\))re";

// Sets the soft limit `resource` of `pid` (a process of nobody) from a child that is
// nobody too: a container's root may lack CAP_SYS_RESOURCE, which prlimit(2) on another
// uid's process needs. RLIM_INFINITY means "up to the hard limit". 0 or an errno.
int set_soft_limit_as_nobody(pid_t pid, int resource, rlim_t soft) {
    pid_t child = ::fork();
    if (child < 0) return errno;
    if (child == 0) {
        rlimit cur{};
        if (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 || ::setresuid(65534, 65534, 65534) < 0 ||
            ::prlimit(pid, static_cast<__rlimit_resource>(resource), nullptr, &cur) < 0)
            ::_exit(errno);
        cur.rlim_cur = soft == RLIM_INFINITY ? cur.rlim_max : soft;
        ::_exit(::prlimit(pid, static_cast<__rlimit_resource>(resource), &cur, nullptr) < 0 ? errno : 0);
    }
    auto st = wait_exit(child, 5.0);
    return st && WIFEXITED(*st) ? WEXITSTATUS(*st) : EIO;
}

} // namespace

TEST_CASE("faults: fork fails (RLIMIT_NPROC): upgrade and respawns fail with a logged reason, then recover") {
    if (!can_be_nobody()) {
        MESSAGE("skipped: needs root and setpriv (root ignores RLIMIT_NPROC, so the supervisor runs as nobody)");
        return;
    }
    Serving f;
    REQUIRE(::chmod(f.dir.path().c_str(), 0777) == 0);  // the workers (nobody) write their reports here
    Supervised& sv = f.start({.command = f.fake_worker(), .prefix = kAsNobody});
    REQUIRE_EQ(set_soft_limit_as_nobody(sv.pid(), RLIMIT_NPROC, 1), 0);

    REQUIRE(sv.hup());
    auto failed = sv.wait_log(kFailedGen2, 3.0);
    REQUIRE(failed);
    CHECK_MESSAGE((*failed)[1].find("cannot fork: Resource temporarily unavailable") != std::string::npos, (*failed)[1]);
    CHECK(wait_served_by(f.port, f.w1));

    // The serving worker dies while forks fail: respawns fail too, with backoff, and the
    // supervisor stays up; once forks work again the next respawn serves.
    REQUIRE(::kill(f.w1, SIGKILL) == 0);
    REQUIRE(sv.wait_log(R"(worker died gen=1 pid=\d+ signal=SIGKILL)", 3.0));
    CHECK(wait_until([&] { return sv.count(R"(start failed gen=\d+ reason="cannot fork)") >= 2; }, 3.0, &sv.proc()));
    REQUIRE_EQ(set_soft_limit_as_nobody(sv.pid(), RLIMIT_NPROC, RLIM_INFINITY), 0);
    pid_t w = sv.wait_nth_ready(2);
    REQUIRE(w > 0);
    CHECK(wait_served_by(f.port, w));
    CHECK(sv.proc().alive());
}

TEST_CASE("faults: the fd limit is reached (RLIMIT_NOFILE): the fd reserve carries an upgrade, ctl fails cleanly, no busy loop, then recover") {
    Serving f;
    Supervised& sv = f.start({.options = {"--control", f.control_socket()}, .command = f.fake_worker()});
    REQUIRE(wait_until([&] { return file_exists(f.control_socket()); }, 2.0));
    // The limit at the lowest free fd number: the supervisor cannot open a single new fd.
    auto fds = proc::open_fds(sv.pid());
    std::set<int> used(fds.begin(), fds.end());
    rlim_t lowest_free = 0;
    while (used.count(static_cast<int>(lowest_free))) lowest_free++;
    rlimit old{}, full{lowest_free, 0};
    REQUIRE(::prlimit(sv.pid(), RLIMIT_NOFILE, nullptr, &old) == 0);
    full.rlim_max = old.rlim_max;
    REQUIRE(::prlimit(sv.pid(), RLIMIT_NOFILE, &full, nullptr) == 0);

    // The spawn fails with EMFILE once; the supervisor's fd reserve (fd_reserve.h) makes
    // room for the retry and is refilled afterwards.
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("at the fd limit: using the fd reserve to spawn", 3.0));
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(f.port, w2));
    // The old worker's fds (its pidfd, its output) are gone now: clamp again at the lowest free fd.
    REQUIRE(wait_until([&] { return !pid_alive(f.w1); }, 3.0));
    auto fds2 = proc::open_fds(sv.pid());
    std::set<int> used2(fds2.begin(), fds2.end());
    rlim_t lowest_free2 = 0;
    while (used2.count(static_cast<int>(lowest_free2))) lowest_free2++;
    rlimit again{lowest_free2, old.rlim_max};
    REQUIRE(::prlimit(sv.pid(), RLIMIT_NOFILE, &again, nullptr) == 0);
    long cpu_before = proc::cpu_ms(sv.pid());
    // accept(2) fails with EMFILE: libuv's reserve-fd trick accepts and closes the connection;
    // ctl was connected, so that is a failure (1), not "no supervisor" (3).
    auto refused = f.ctl({"status"}, 8.0);
    INFO("ctl at the fd limit: ", refused.output);
    CHECK_EQ(refused.code, 1);
    CHECK(refused.output.find("closed the connection without answering") != std::string::npos);
    CHECK_FALSE(sv.wait_log("upgrade started gen=3", 0.5));  // a moment for a spin to show
    long cpu_used = proc::cpu_ms(sv.pid()) - cpu_before;
    MESSAGE("supervisor CPU while at the fd limit: ", cpu_used, " ms");
    CHECK_LT(cpu_used, 300);

    REQUIRE(::prlimit(sv.pid(), RLIMIT_NOFILE, &old, nullptr) == 0);
    REQUIRE(sv.hup());
    pid_t w3 = sv.wait_upgrade_done(3);
    REQUIRE(w3 > 0);
    CHECK(wait_served_by(f.port, w3));
    auto status = f.ctl({"status"}, 8.0);
    INFO("ctl output: ", status.output);
    CHECK_EQ(status.code, 0);
}

TEST_CASE("faults: a unix path too long: --listen is a usage error (2), --control a system error (1)") {
    TempDir dir;
    const std::string long_path = dir.file(std::string(120, 'x') + ".sock");
    SUBCASE("--listen unix:") {
        expect_one_line_error(run_supervisor(dir, {"-l", "unix:" + long_path, "--", bins().fake_worker}), 2,
                              {"unix socket path is longer than 107 bytes"});
    }
    SUBCASE("--control") {
        auto o = run_supervisor(dir, {"-l", "127.0.0.1:0", "--control", long_path, "--", bins().fake_worker});
        INFO("output:\n", o.output);
        CHECK_EQ(o.code, 1);
        CHECK_EQ(count_log_lines(o.output, "^supervisor: "), 1u);
        CHECK(o.output.find("cannot bind the control socket") != std::string::npos);
        CHECK_EQ(count_log_lines(o.output, "spawned gen="), 0u);
    }
}
