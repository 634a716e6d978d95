// Production features: --workers N (all at once and rolling), --user/--group, --env-file
// rolled out by an upgrade (and a broken one rolled back), --chdir through a switched
// release symlink, --pre-check, --log-workers.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <sstream>

#include "harness.h"

using namespace svtest;

namespace {

// A worker script that records what it sees in dir/info.<pid> and then becomes the fake
// worker (exec keeps the pid). `before` runs first (e.g. echo lines for --log-workers).
std::string info_script(const TempDir& dir, const std::string& before = "") {
    return before + "echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G | tr ' ' ,) cwd=$(pwd -P) "
                    "index=$SUPERVISOR_WORKER_INDEX gen=$SUPERVISOR_GENERATION greeting=$GREETING\" > " +
           sh_quote(dir.file("info")) + ".$$\n" + fake_exec(dir);
}

std::map<std::string, std::string> info_of(const TempDir& dir, pid_t pid) {
    std::map<std::string, std::string> out;
    std::string path = dir.file("info." + std::to_string(pid));
    wait_until([&] { return read_file(path).find('\n') != std::string::npos; }, 3.0);
    std::string text = read_file(path);
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find_first_of(" \n", start);
        if (end == std::string::npos) end = text.size();
        std::string kv = text.substr(start, end - start);
        if (auto eq = kv.find('='); eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
        start = end + 1;
    }
    return out;
}

std::vector<pid_t> ready_pids(const Supervised& sv, unsigned gen) {
    std::vector<pid_t> out;
    for (const auto& m : find_log_lines(sv.log(), "ready gen=" + std::to_string(gen) + " pid=(\\d+)"))
        out.push_back(std::stoi(m[1]));
    return out;
}

// Index of the first log line matching `regex`, or -1.
long line_of(const std::string& log, const std::string& regex) {
    std::regex re(regex);
    std::istringstream in(log);
    std::string line;
    for (long i = 0; std::getline(in, line); i++)
        if (std::regex_search(line, re)) return i;
    return -1;
}

} // namespace

TEST_CASE("production: --workers 3 runs three workers with indices 0-2; an upgrade replaces all three at once") {
    Serving f;
    REQUIRE(write_script(f.script, info_script(f.dir)));
    Supervised& sv = f.start({.options = {"--workers", "3"}, .await = Serving::Await::Port});
    REQUIRE(wait_until([&] { return ready_pids(sv, 1).size() == 3; }, 5.0, &sv.proc()));
    auto gen1 = ready_pids(sv, 1);
    std::set<std::string> indices;
    for (pid_t p : gen1) {
        auto info = info_of(f.dir, p);
        CHECK_EQ(info["gen"], "1");
        indices.insert(info["index"]);
    }
    CHECK_EQ(indices, std::set<std::string>{"0", "1", "2"});

    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("upgrade done gen=2 pid=\\d+,\\d+,\\d+ replaced_gen=1", 5.0));
    // No gen=1 worker drained before the whole of gen=2 was ready.
    long last_ready = -1;
    auto log = sv.log();
    for (int s = 0; s < 3; s++)
        last_ready = std::max(last_ready, line_of(log, "ready gen=2 pid=\\d+ after_ms=\\d+ slot=" + std::to_string(s)));
    CHECK(last_ready >= 0);
    CHECK(line_of(log, "draining gen=1") > last_ready);
    for (pid_t p : gen1) CHECK(sv.wait_log("exited gen=1 pid=" + std::to_string(p) + " exit=0 "));
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body).second, 2);
}

TEST_CASE("production: --upgrade rolling replaces one slot at a time, each new worker ready before its old one drains") {
    Serving f;
    REQUIRE(write_script(f.script, info_script(f.dir)));
    Supervised& sv = f.start({.options = {"--workers", "2", "--upgrade", "rolling"}, .await = Serving::Await::Port});
    REQUIRE(wait_until([&] { return ready_pids(sv, 1).size() == 2; }, 5.0, &sv.proc()));
    REQUIRE(sv.hup());
    REQUIRE(sv.wait_log("upgrade done gen=2", 5.0));
    auto log = sv.log();
    long ready0 = line_of(log, "ready gen=2 pid=\\d+ after_ms=\\d+ slot=0");
    long drain0 = line_of(log, "draining gen=1 pid=\\d+ .*slot=0");
    long spawn1 = line_of(log, "spawned gen=2 pid=\\d+ .*slot=1");
    long ready1 = line_of(log, "ready gen=2 pid=\\d+ after_ms=\\d+ slot=1");
    long drain1 = line_of(log, "draining gen=1 pid=\\d+ .*slot=1");
    CHECK(ready0 >= 0);
    CHECK(ready0 < drain0);
    CHECK(drain0 < spawn1);
    CHECK(spawn1 < ready1);
    CHECK(ready1 < drain1);
}

TEST_CASE("production: --user/--group run workers unprivileged, with the user's groups") {
    if (::geteuid() != 0) {
        MESSAGE("skipped: needs root");
        return;
    }
    Serving f;
    REQUIRE(::chmod(f.dir.path().c_str(), 0777) == 0);  // the worker writes its info and report here
    REQUIRE(write_script(f.script, info_script(f.dir)));
    SUBCASE("--user nobody") {
        Supervised& sv = f.start({.options = {"--user", "nobody"}});
        auto info = info_of(f.dir, f.w1);
        CHECK_EQ(info["uid"], "65534");
        CHECK_EQ(info["gid"], "65534");
        CHECK_EQ(info["groups"], "65534");
        // The supervisor itself still binds as root: an upgrade works the same.
        REQUIRE(sv.hup());
        CHECK(sv.wait_upgrade_done(2) > 0);
    }
    SUBCASE("--user nobody --group daemon: primary group replaced") {
        f.start({.options = {"--user", "nobody", "--group", "daemon"}});
        auto info = info_of(f.dir, f.w1);
        CHECK_EQ(info["uid"], "65534");
        CHECK_EQ(info["gid"], "1");
    }
}

TEST_CASE("production: --env-file is re-read at each upgrade; a broken one fails the upgrade with its line number") {
    Serving f;
    const std::string env = f.dir.file("app.env");
    REQUIRE(write_script(f.script, info_script(f.dir)));
    REQUIRE(write_file(env, "# app settings\nGREETING=hello\n"));
    Supervised& sv = f.start({.options = {"--env-file", env}});
    CHECK_EQ(info_of(f.dir, f.w1)["greeting"], "hello");

    REQUIRE(write_file(env, "GREETING=bye\n"));
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    CHECK_EQ(info_of(f.dir, w2)["greeting"], "bye");

    REQUIRE(write_file(env, "GREETING=ok\nthis line is wrong\n"));
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("upgrade failed gen=3 reason=\"" + env + " line 2: expected KEY=VALUE\" serving_gen=2"));
    CHECK(pid_alive(w2));
}

TEST_CASE("production: --chdir is resolved at every spawn, so a switched release symlink is picked up") {
    Serving f;
    const TempDir& dir = f.dir;
    REQUIRE(::mkdir(dir.file("v1").c_str(), 0755) == 0);
    REQUIRE(::mkdir(dir.file("v2").c_str(), 0755) == 0);
    REQUIRE(::symlink("v1", dir.file("current").c_str()) == 0);
    REQUIRE(write_script(f.script, info_script(dir)));
    Supervised& sv = f.start({.options = {"--chdir", dir.file("current")}});
    CHECK(info_of(dir, f.w1)["cwd"].ends_with("/v1"));
    REQUIRE(::unlink(dir.file("current").c_str()) == 0);
    REQUIRE(::symlink("v2", dir.file("current").c_str()) == 0);
    REQUIRE(sv.hup());
    pid_t w2 = sv.wait_upgrade_done(2);
    REQUIRE(w2 > 0);
    CHECK(info_of(dir, w2)["cwd"].ends_with("/v2"));
}

TEST_CASE("production: --pre-check runs before each upgrade; a failure keeps the old generation, with its output") {
    Serving f;
    const std::string broken = f.dir.file("broken");
    std::string check = "if [ -e " + sh_quote(broken) + " ]; then echo 'config test failed: line 7'; exit 4; fi";
    Supervised& sv = f.start({.options = {"--pre-check", check}});
    REQUIRE(write_file(broken, "x"));
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("upgrade failed gen=2 reason=\"pre-check failed \\(exit=4\\): config test failed: line 7\""));
    CHECK_EQ(sv.count("spawned gen=2"), 0u);
    CHECK(pid_alive(f.w1));
    REQUIRE(::unlink(broken.c_str()) == 0);
    REQUIRE(sv.hup());
    CHECK(sv.wait_log("pre-check passed gen=3"));
    CHECK(sv.wait_upgrade_done(3) > 0);
}

TEST_CASE("production: --log-workers tags each output line with generation and pid") {
    Serving f;
    REQUIRE(write_script(f.script, "echo 'to stdout'\necho 'to stderr' >&2\n" + fake_exec(f.dir)));
    Supervised& sv = f.start({.options = {"--log-workers"}});
    CHECK(sv.wait_log("supervisor\\[\\d+\\]: worker gen=1 pid=" + std::to_string(f.w1) + " stdout: to stdout"));
    CHECK(sv.wait_log("supervisor\\[\\d+\\]: worker gen=1 pid=" + std::to_string(f.w1) + " stderr: to stderr"));
}
