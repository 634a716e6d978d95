// `supervisor ctl` against a live supervisor: status, upgrade verdicts (success and
// rollback), stop, refusal of other uids, malformed requests, no supervisor.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <set>

#include "harness.h"

using namespace svtest;

namespace {

struct CtlOutcome {
    int code = -1;  // exit code, -1 when it did not exit in time
    std::string output;
};

// Runs `supervisor ctl ARGS` (optionally through `prefix`, e.g. setpriv) and waits for it.
CtlOutcome run_ctl(const TempDir& dir, const std::vector<std::string>& args, double seconds = 10.0,
                   const std::vector<std::string>& prefix = {}, const std::vector<std::string>* env = nullptr) {
    static int n = 0;
    std::vector<std::string> argv = prefix;
    argv.push_back(bins().supervisor);
    argv.push_back("ctl");
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, dir.file("ctl" + std::to_string(n++) + ".log"), env);
    ProcessGuard guard(p, 1.0);
    CtlOutcome o;
    auto st = p.wait_exit(seconds);
    if (st && WIFEXITED(*st)) o.code = WEXITSTATUS(*st);
    o.output = p.log();
    return o;
}

// Sends raw lines on one connection and reads `replies` reply lines (bounded).
std::vector<std::string> raw_exchange(const std::string& path, const std::string& data, size_t replies) {
    std::vector<std::string> out;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
        ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size())) {
        std::string buf;
        char tmp[4096];
        while (out.size() < replies) {
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) break;
            buf.append(tmp, static_cast<size_t>(n));
            for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) out.push_back(buf.substr(0, nl));
        }
    }
    ::close(fd);
    return out;
}

// A supervisor with a control socket whose COMMAND is dir/worker.sh (a fake worker).
struct CtlFixture {
    TempDir dir;
    std::string script = dir.file("worker.sh");
    std::string sock = dir.file("c.sock");
    std::string status_file = dir.file("status.json");
    std::unique_ptr<Supervised> sv;
    int port = 0;
    pid_t w1 = 0;

    explicit CtlFixture(std::vector<std::string> extra = {}) {
        REQUIRE(write_script(script, fake_exec(dir)));
        std::vector<std::string> options{"-l", "127.0.0.1:0", "--ready", "notify", "--ready-timeout", "2s",
                                         "--control", sock, "--status-file", status_file};
        options.insert(options.end(), extra.begin(), extra.end());
        sv = std::make_unique<Supervised>(dir, options, std::vector<std::string>{script});
        port = sv->wait_port();
        w1 = sv->wait_ready(1);
        REQUIRE(port > 0);
        REQUIRE(w1 > 0);
    }
};

} // namespace

TEST_CASE("ctl: status as a table and as JSON; the status file follows") {
    CtlFixture f;
    INFO("supervisor log:\n", tail(f.sv->log()));
    auto t = run_ctl(f.dir, {"--control", f.sock, "status"});
    INFO("ctl output:\n", t.output);
    CHECK_EQ(t.code, 0);
    CHECK(t.output.find("serving, serving gen 1") != std::string::npos);
    CHECK(t.output.find(std::to_string(f.w1)) != std::string::npos);
    CHECK(t.output.find("listening listen0 127.0.0.1:" + std::to_string(f.port)) != std::string::npos);

    auto j = run_ctl(f.dir, {"--control", f.sock, "status", "--json"});
    CHECK_EQ(j.code, 0);
    CHECK(find_log_line(j.output, "\"serving_gen\": 1,"));
    CHECK(find_log_line(j.output, "\"pid\": " + std::to_string(f.w1) + ","));
    CHECK(wait_until([&] { return read_file(f.status_file).find("\"pid\": " + std::to_string(f.w1)) != std::string::npos; }, 3.0));
}

TEST_CASE("ctl: upgrade waits for the verdict: 0 when the new generation serves, 1 with the reason on rollback") {
    CtlFixture f;
    INFO("supervisor log:\n", tail(f.sv->log()));
    auto ok = run_ctl(f.dir, {"--control", f.sock, "upgrade"});
    INFO("ctl output:\n", ok.output);
    CHECK_EQ(ok.code, 0);
    CHECK(ok.output.find("upgrade to gen 2 succeeded") != std::string::npos);
    // The verdict came after the new worker was ready: it serves now.
    pid_t w2 = f.sv->spawned_pid(2);
    REQUIRE(w2 > 0);
    CHECK(wait_served_by(f.port, w2));
    CHECK(wait_until([&] { return read_file(f.status_file).find("\"ok\": true") != std::string::npos; }, 3.0));

    SUBCASE("exits before ready") {
        REQUIRE(write_script(f.script, "exit 1"));
        auto bad = run_ctl(f.dir, {"--control", f.sock, "upgrade"});
        INFO("ctl output:\n", bad.output);
        CHECK_EQ(bad.code, 1);
        CHECK(bad.output.find("upgrade to gen 3 failed") != std::string::npos);
        CHECK(bad.output.find("exit=1") != std::string::npos);
        CHECK(bad.output.find("gen 2 is still serving") != std::string::npos);
        CHECK(wait_until([&] { return read_file(f.status_file).find("\"ok\": false") != std::string::npos; }, 3.0));
    }
    SUBCASE("not executable") {
        REQUIRE(write_script(f.script, fake_exec(f.dir), 0644));
        auto bad = run_ctl(f.dir, {"--control", f.sock, "upgrade"});
        INFO("ctl output:\n", bad.output);
        CHECK_EQ(bad.code, 1);
        CHECK(bad.output.find("Permission denied") != std::string::npos);
    }
    SUBCASE("never ready: the verdict arrives after the ready timeout") {
        REQUIRE(write_script(f.script, fake_exec(f.dir, "--never-ready")));
        auto bad = run_ctl(f.dir, {"--control", f.sock, "upgrade"});
        INFO("ctl output:\n", bad.output);
        CHECK_EQ(bad.code, 1);
        CHECK(bad.output.find("no READY=1") != std::string::npos);
    }
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body).first, w2);
}

TEST_CASE("ctl: concurrent upgrade callers all get a verdict, and at most two upgrades run") {
    CtlFixture f;
    INFO("supervisor log:\n", tail(f.sv->log()));
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--ready-after-ms 300")));
    std::vector<std::unique_ptr<Process>> callers;
    for (int i = 0; i < 4; i++)
        callers.push_back(std::make_unique<Process>(
            std::vector<std::string>{bins().supervisor, "ctl", "--control", f.sock, "upgrade"},
            f.dir.file("caller" + std::to_string(i) + ".log")));
    std::set<std::string> gens;
    for (auto& c : callers) {
        ProcessGuard g(*c, 1.0);
        auto st = c->wait_exit(10.0);
        REQUIRE(st);
        CHECK_EQ(WEXITSTATUS(*st), 0);
        auto m = find_log_line(c->log(), "upgrade to gen (\\d+) succeeded");
        REQUIRE(m);
        gens.insert((*m)[1]);
    }
    CHECK(gens.size() <= 2);
    CHECK(f.sv->count("upgrade started") <= 2);
}

TEST_CASE("ctl: stop drains, waits until the supervisor has exited, and the socket is gone") {
    CtlFixture f;
    INFO("supervisor log:\n", tail(f.sv->log()));
    auto s = run_ctl(f.dir, {"--control", f.sock, "stop"});
    INFO("ctl output:\n", s.output);
    CHECK_EQ(s.code, 0);
    CHECK(s.output.find("stopped") != std::string::npos);
    auto st = f.sv->proc().wait_exit(3.0);
    REQUIRE(st);
    CHECK_EQ(WEXITSTATUS(*st), 0);
    CHECK_FALSE(pid_alive(f.w1));
    CHECK_FALSE(file_exists(f.sock));
    auto gone = run_ctl(f.dir, {"--control", f.sock, "status"});
    CHECK_EQ(gone.code, 3);
    CHECK_EQ(count_log_lines(gone.output, "."), 1u);
    CHECK(gone.output.find("cannot connect to " + f.sock) != std::string::npos);
}

TEST_CASE("ctl: another uid is refused with a logged line; the supervisor keeps serving") {
    if (::geteuid() != 0 || !have_program("setpriv")) {
        MESSAGE("skipped: needs root and setpriv to act as another uid");
        return;
    }
    CtlFixture f;
    INFO("supervisor log:\n", tail(f.sv->log()));
    struct stat st{};
    REQUIRE(::stat(f.sock.c_str(), &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600u);
    // Open the file (and its directory) up, so that only SO_PEERCRED stands in the way.
    REQUIRE(::chmod(f.sock.c_str(), 0666) == 0);
    REQUIRE(::chmod(f.dir.path().c_str(), 0755) == 0);
    auto o = run_ctl(f.dir, {"--control", f.sock, "status"}, 10.0,
                     {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    INFO("ctl output:\n", o.output);
    CHECK_EQ(o.code, 1);
    CHECK(o.output.find("permission denied") != std::string::npos);
    CHECK(f.sv->wait_log("control connection refused pid=\\d+ uid=65534"));
    auto r = http_get(f.port);
    REQUIRE(r);
    CHECK_EQ(parse_pid_gen(r->body).first, f.w1);
}

TEST_CASE("ctl: malformed requests get an error reply and the connection stays usable") {
    CtlFixture f;
    INFO("supervisor log:\n", tail(f.sv->log()));
    auto replies = raw_exchange(f.sock, "garbage\n{}\n[1]\n{\"cmd\":\"reboot\"}\n\n{\"cmd\":\"status\"}\n", 5);
    REQUIRE_EQ(replies.size(), 5u);
    CHECK(replies[0].find("not valid JSON") != std::string::npos);
    CHECK(replies[1].find("cmd") != std::string::npos);
    CHECK(replies[2].find("object") != std::string::npos);
    CHECK(replies[3].find("unknown cmd") != std::string::npos);
    CHECK(replies[4].find("\"ok\":true") != std::string::npos);
    CHECK(replies[4].find("\"serving_gen\":1") != std::string::npos);
    CHECK(pid_alive(f.sv->pid()));
}

TEST_CASE("ctl: the control socket defaults to $RUNTIME_DIRECTORY/supervisor.sock for both sides") {
    TempDir dir;
    REQUIRE(write_script(dir.file("worker.sh"), fake_exec(dir)));
    auto env = environment_with({"RUNTIME_DIRECTORY=" + dir.path()});
    Supervised sv(dir, {"-l", "127.0.0.1:0", "--ready", "notify"}, {dir.file("worker.sh")}, &env);
    INFO("supervisor log:\n", tail(sv.log()));
    REQUIRE(sv.wait_ready(1) > 0);
    CHECK(file_exists(dir.file("supervisor.sock")));
    auto o = run_ctl(dir, {"upgrade"}, 10.0, {}, &env);
    INFO("ctl output:\n", o.output);
    CHECK_EQ(o.code, 0);
    auto missing = run_ctl(dir, {"status"});  // no RUNTIME_DIRECTORY, no --control
    CHECK_EQ(missing.code, 2);
}

TEST_CASE("ctl: usage errors exit 2 with one line") {
    TempDir dir;
    auto o = run_ctl(dir, {"--control", dir.file("x.sock"), "frobnicate"});
    CHECK_EQ(o.code, 2);
    auto t = run_ctl(dir, {"--control", dir.file("x.sock"), "upgrade", "--timeout", "soon"});
    CHECK_EQ(t.code, 2);
    CHECK(t.output.find("--timeout 'soon'") != std::string::npos);
}
