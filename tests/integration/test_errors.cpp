// Startup errors: one plain line on stderr naming the input, and the documented exit
// code: 2 usage/config, 1 a system call failed, 127 command not found, 126 not executable.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstring>

#include "harness.h"

using namespace svtest;

namespace {

struct Outcome {
    std::optional<int> status;
    std::string output;  // stdout and stderr
};

Outcome run(const TempDir& dir, std::vector<std::string> argv) {
    static int n = 0;
    Process p(argv, dir.file("run" + std::to_string(n++) + ".log"));
    ProcessGuard guard(p, 1.0);
    Outcome o;
    o.status = p.wait_exit(5.0);
    o.output = p.log();
    return o;
}

Outcome run_supervisor(const TempDir& dir, const std::vector<std::string>& args) {
    std::vector<std::string> argv{bins().supervisor};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(dir, argv);
}

// Exit code `code`, exactly one line "supervisor: …" that contains every one of `needles`.
void check_one_line_error(const Outcome& o, int code, const std::vector<std::string>& needles) {
    INFO("output:\n", o.output);
    REQUIRE_MESSAGE(o.status, "the supervisor did not exit within 5s");
    CHECK_MESSAGE(WIFEXITED(*o.status), describe_status(o.status));
    CHECK_EQ(WEXITSTATUS(*o.status), code);
    CHECK_EQ(count_log_lines(o.output, "."), 1u);
    CHECK_EQ(o.output.rfind("supervisor: ", 0), 0u);
    CHECK_EQ(o.output.back(), '\n');
    for (const auto& n : needles) CHECK_MESSAGE(o.output.find(n) != std::string::npos, "missing '", n, "'");
}

} // namespace

TEST_CASE("errors: an unknown flag is a usage error (2)") {
    TempDir dir;
    check_one_line_error(run_supervisor(dir, {"--bogus-flag", "-l", "127.0.0.1:0", "--", "/bin/true"}), 2,
                         {"--bogus-flag"});
}

TEST_CASE("errors: a bad --listen is a usage error (2)") {
    TempDir dir;
    check_one_line_error(run_supervisor(dir, {"--listen", "nonsense:xx", "--", "/bin/true"}), 2, {"nonsense:xx"});
}

TEST_CASE("errors: a bad duration is a usage error (2)") {
    TempDir dir;
    check_one_line_error(
        run_supervisor(dir, {"-l", "127.0.0.1:0", "--drain-timeout", "5parsecs", "--", "/bin/true"}), 2,
        {"--drain-timeout", "5parsecs"});
}

TEST_CASE("errors: no command is a usage error (2)") {
    TempDir dir;
    SUBCASE("nothing after the options") {
        check_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0"}), 2, {"no command"});
    }
    SUBCASE("an empty command after --") {
        check_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--"}), 2, {"no command"});
    }
}

TEST_CASE("errors: a port in use is a system error (1)") {
    TempDir dir;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    std::string addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    auto o = run_supervisor(dir, {"-l", addr, "--", bins().fake_worker});
    ::close(fd);
    check_one_line_error(o, 1, {"cannot bind " + addr + ": Address already in use"});
}

TEST_CASE("errors: a unix socket in a missing directory is a system error (1)") {
    TempDir dir;
    std::string path = dir.file("missing/s.sock");
    check_one_line_error(run_supervisor(dir, {"-l", "unix:" + path, "--", bins().fake_worker}), 1,
                         {path, "No such file or directory"});
}

TEST_CASE("errors: a unix socket path that another process listens on is a system error (1)") {
    TempDir dir;
    std::string path = dir.file("busy.sock");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    auto o = run_supervisor(dir, {"-l", "unix:" + path, "--", bins().fake_worker});
    ::close(fd);
    check_one_line_error(o, 1, {path});
    CHECK(file_exists(path));  // not ours: left alone
}

TEST_CASE("errors: a pid file in a missing directory is a system error (1), and nothing is left behind") {
    TempDir dir;
    std::string sock = dir.file("s.sock");
    std::string pid_file = dir.file("missing/sv.pid");
    check_one_line_error(
        run_supervisor(dir, {"-l", "unix:" + sock, "--pid-file", pid_file, "--", bins().fake_worker}), 1, {pid_file});
    CHECK_FALSE(file_exists(sock));
}

TEST_CASE("errors: binding a privileged port without permission is a system error (1)") {
    TempDir dir;
    std::string unprivileged = read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start");
    if (!unprivileged.empty() && std::stoi(unprivileged) <= 80) {
        MESSAGE("skipped: net.ipv4.ip_unprivileged_port_start=", std::stoi(unprivileged), " lets anybody bind port 80");
        return;
    }
    std::vector<std::string> argv;
    if (::geteuid() == 0) {
        if (!have_program("setpriv")) {
            MESSAGE("skipped: running as root without setpriv to drop privileges");
            return;
        }
        argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    }
    argv.insert(argv.end(), {bins().supervisor, "-l", "127.0.0.1:80", "--", "/bin/true"});
    check_one_line_error(run(dir, argv), 1, {"cannot bind 127.0.0.1:80: Permission denied"});
}

TEST_CASE("errors: a command that does not exist exits 127") {
    TempDir dir;
    SUBCASE("a path") {
        std::string cmd = dir.file("no-such-server");
        check_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd}), 127, {cmd, "No such file"});
    }
    SUBCASE("a name looked up in PATH") {
        check_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", "no-such-server-xyz"}), 127,
                             {"no-such-server-xyz"});
    }
}

TEST_CASE("errors: a command that is not executable exits 126") {
    TempDir dir;
    SUBCASE("a file without +x") {
        std::string cmd = dir.file("server.sh");
        REQUIRE(write_script(cmd, "exit 0", 0644));
        check_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd}), 126, {cmd, "Permission denied"});
    }
    SUBCASE("a directory") {
        check_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", dir.path()}), 126, {dir.path()});
    }
}

// execve(2) alone would reject these: the supervisor reads the file's first bytes before
// binding anything, so the reason is one plain line (a shell says "bad interpreter" too).
TEST_CASE("errors: a command that execve(2) rejects: no interpreter exits 127, bad format 126") {
    TempDir dir;
    SUBCASE("#! names a missing interpreter") {
        std::string cmd = dir.file("server.sh");
        REQUIRE(write_file(cmd, "#!/nonexistent/interpreter\n", 0755));
        auto o = run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd});
        INFO("output:\n", o.output);
        REQUIRE(o.status);
        CHECK_EQ(WEXITSTATUS(*o.status), 127);
        CHECK(o.output.find(cmd) != std::string::npos);
        CHECK(o.output.find("bad interpreter '/nonexistent/interpreter'") != std::string::npos);
        CHECK_EQ(count_log_lines(o.output, "."), 1u);
    }
    SUBCASE("an executable file that is neither ELF nor #!") {
        std::string cmd = dir.file("server.bin");
        REQUIRE(write_file(cmd, std::string("\x7f""garbage\n"), 0755));
        auto o = run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd});
        INFO("output:\n", o.output);
        REQUIRE(o.status);
        CHECK_EQ(WEXITSTATUS(*o.status), 126);
        CHECK(o.output.find("Exec format error") != std::string::npos);
        CHECK_EQ(count_log_lines(o.output, "."), 1u);
    }
}

TEST_CASE("errors: --help and --version exit 0 on stdout") {
    TempDir dir;
    auto help = run_supervisor(dir, {"--help"});
    REQUIRE(help.status);
    CHECK_EQ(WEXITSTATUS(*help.status), 0);
    CHECK(help.output.find("Exit codes") != std::string::npos);
    auto version = run_supervisor(dir, {"--version"});
    REQUIRE(version.status);
    CHECK_EQ(WEXITSTATUS(*version.status), 0);
    CHECK(version.output.find("supervisor") != std::string::npos);
}
