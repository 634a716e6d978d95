// `supervisor ctl` against a live supervisor: status, upgrade verdicts (success and
// rollback), stop, refusal of other uids, malformed requests, no supervisor.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <set>

#include "harness.h"

using namespace svtest;

namespace {

// A control socket (f.control_socket()) and a status file: `f.start({.options = ctl_options(f)})`.
std::vector<std::string> ctl_options(const Serving& f) {
    return {"--ready-timeout", "2s", "--control", f.control_socket(), "--status-file", f.dir.file("status.json")};
}

bool status_file_has(const Serving& f, const std::string& text) {
    return wait_until([&] { return read_file(f.dir.file("status.json")).find(text) != std::string::npos; }, 3.0);
}

} // namespace

TEST_CASE("ctl: status as a table and as JSON; the status file follows") {
    Serving f;
    f.start({.options = ctl_options(f)});
    auto t = f.ctl({"status"});
    INFO("ctl output:\n", t.output);
    CHECK_EQ(t.code, 0);
    CHECK(t.output.find("serving, serving gen 1") != std::string::npos);
    CHECK(t.output.find(std::to_string(f.w1)) != std::string::npos);
    CHECK(t.output.find("listening listen0 127.0.0.1:" + std::to_string(f.port)) != std::string::npos);

    auto j = f.ctl({"status", "--json"});
    CHECK_EQ(j.code, 0);
    CHECK(find_log_line(j.output, "\"serving_gen\": 1,"));
    CHECK(find_log_line(j.output, "\"pid\": " + std::to_string(f.w1) + ","));
    CHECK(status_file_has(f, "\"pid\": " + std::to_string(f.w1)));
}

TEST_CASE("ctl: upgrade waits for the verdict: 0 when the new generation serves, 1 with the reason on rollback") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    auto ok = f.ctl({"upgrade"});
    INFO("ctl output:\n", ok.output);
    CHECK_EQ(ok.code, 0);
    CHECK(ok.output.find("upgrade to gen 2 succeeded") != std::string::npos);
    // The verdict came after the new worker was ready: it serves now.
    pid_t w2 = sv.spawned_pid(2);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(f.port, w2));
    CHECK(status_file_has(f, "\"ok\": true"));

    SUBCASE("exits before ready") {
        REQUIRE(write_script(f.script, "exit 1"));
        auto bad = f.ctl({"upgrade"});
        INFO("ctl output:\n", bad.output);
        CHECK_EQ(bad.code, 1);
        CHECK(bad.output.find("upgrade to gen 3 failed") != std::string::npos);
        CHECK(bad.output.find("exit=1") != std::string::npos);
        CHECK(bad.output.find("gen 2 is still serving") != std::string::npos);
        CHECK(status_file_has(f, "\"ok\": false"));
    }
    SUBCASE("not executable") {
        REQUIRE(write_script(f.script, fake_exec(f.dir), 0644));
        auto bad = f.ctl({"upgrade"});
        INFO("ctl output:\n", bad.output);
        CHECK_EQ(bad.code, 1);
        CHECK(bad.output.find("Permission denied") != std::string::npos);
    }
    SUBCASE("never ready: the verdict arrives after the ready timeout") {
        REQUIRE(write_script(f.script, fake_exec(f.dir, "--never-ready")));
        auto bad = f.ctl({"upgrade"});
        INFO("ctl output:\n", bad.output);
        CHECK_EQ(bad.code, 1);
        CHECK(bad.output.find("no READY=1") != std::string::npos);
    }
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body).first, w2);
}

TEST_CASE("ctl: concurrent upgrade callers all get a verdict, and at most two upgrades run") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--ready-after-ms 300")));
    std::vector<std::unique_ptr<Process>> callers;
    for (int i = 0; i < 4; i++)
        callers.push_back(std::make_unique<Process>(
            std::vector<std::string>{bins().supervisor, "ctl", "--control", f.control_socket(), "upgrade"},
            f.dir.file("caller" + std::to_string(i) + ".log")));
    std::set<std::string> gens;
    for (auto& c : callers) {
        ProcessGuard g(*c, 1.0);
        auto st = c->wait_exit(10.0);
        REQUIRE(st);
        CHECK_EQ(exit_code_of(st), 0);
        auto m = find_log_line(c->log(), "upgrade to gen (\\d+) succeeded");
        REQUIRE(m);
        gens.insert((*m)[1]);
    }
    CHECK(gens.size() <= 2);
    CHECK(sv.count("upgrade started") <= 2);
}

TEST_CASE("ctl: stop drains, waits until the supervisor has exited, and the socket is gone") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    auto s = f.ctl({"stop"});
    INFO("ctl output:\n", s.output);
    CHECK_EQ(s.code, 0);
    CHECK(s.output.find("stopped") != std::string::npos);
    auto st = sv.proc().wait_exit(3.0);
    REQUIRE(st);
    CHECK_EQ(exit_code_of(st), 0);
    CHECK_FALSE(pid_alive(f.w1));
    CHECK_FALSE(file_exists(f.control_socket()));
    auto gone = f.ctl({"status"});
    CHECK_EQ(gone.code, 3);
    CHECK_EQ(count_log_lines(gone.output, "."), 1u);
    CHECK(gone.output.find("cannot connect to " + f.control_socket()) != std::string::npos);
}

TEST_CASE("ctl: another uid is refused with a logged line; the supervisor keeps serving") {
    if (!can_be_nobody()) {
        MESSAGE("skipped: needs root and setpriv to act as another uid");
        return;
    }
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    const std::string sock = f.control_socket();
    struct stat st{};
    REQUIRE(::stat(sock.c_str(), &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600u);
    // Open the file (and its directory) up, so that only SO_PEERCRED stands in the way.
    REQUIRE(::chmod(sock.c_str(), 0666) == 0);
    REQUIRE(::chmod(f.dir.path().c_str(), 0755) == 0);
    auto o = supervisor_ctl(f.dir, {"--control", sock, "status"}, 10.0, kAsNobody);
    INFO("ctl output:\n", o.output);
    CHECK_EQ(o.code, 1);
    CHECK(o.output.find("permission denied") != std::string::npos);
    CHECK(sv.wait_log("control connection refused pid=\\d+ uid=65534"));
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body).first, f.w1);
}

TEST_CASE("ctl: malformed requests get an error reply and the connection stays usable") {
    Serving f;
    Supervised& sv = f.start({.options = ctl_options(f)});
    auto replies = net::exchange_lines(f.control_socket(), "garbage\n{}\n[1]\n{\"cmd\":\"reboot\"}\n\n{\"cmd\":\"status\"}\n", 5);
    REQUIRE_EQ(replies.size(), 5u);
    CHECK(replies[0].find("not valid JSON") != std::string::npos);
    CHECK(replies[1].find("cmd") != std::string::npos);
    CHECK(replies[2].find("object") != std::string::npos);
    CHECK(replies[3].find("unknown cmd") != std::string::npos);
    CHECK(replies[4].find("\"ok\":true") != std::string::npos);
    CHECK(replies[4].find("\"serving_gen\":1") != std::string::npos);
    CHECK(pid_alive(sv.pid()));
}

TEST_CASE("ctl: the control socket defaults to $RUNTIME_DIRECTORY/supervisor.sock for both sides") {
    Serving f;
    auto env = environment_with({"RUNTIME_DIRECTORY=" + f.dir.path()});
    f.start({.env = &env});
    CHECK(file_exists(f.dir.file("supervisor.sock")));
    auto o = supervisor_ctl(f.dir, {"upgrade"}, 10.0, {}, &env);
    INFO("ctl output:\n", o.output);
    CHECK_EQ(o.code, 0);
    auto missing = supervisor_ctl(f.dir, {"status"});  // no RUNTIME_DIRECTORY, no --control
    CHECK_EQ(missing.code, 2);
}

TEST_CASE("ctl: usage errors exit 2 with one line") {
    TempDir dir;
    auto o = supervisor_ctl(dir, {"--control", dir.file("x.sock"), "frobnicate"});
    CHECK_EQ(o.code, 2);
    auto t = supervisor_ctl(dir, {"--control", dir.file("x.sock"), "upgrade", "--timeout", "soon"});
    CHECK_EQ(t.code, 2);
    CHECK(t.output.find("--timeout 'soon'") != std::string::npos);
}
