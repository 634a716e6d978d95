// Startup errors: one plain line on stderr naming the input, and the documented exit
// code: 2 usage/config, 1 a system call failed, 127 command not found, 126 not executable.
#include <doctest/doctest.h>

#include <unistd.h>

#include "harness.h"

using namespace svtest;

TEST_CASE("errors: an unknown flag is a usage error (2)") {
    TempDir dir;
    expect_one_line_error(run_supervisor(dir, {"--bogus-flag", "-l", "127.0.0.1:0", "--", "/bin/true"}), 2,
                          {"--bogus-flag"});
}

TEST_CASE("errors: a bad --listen is a usage error (2)") {
    TempDir dir;
    expect_one_line_error(run_supervisor(dir, {"--listen", "nonsense:xx", "--", "/bin/true"}), 2, {"nonsense:xx"});
}

TEST_CASE("errors: a bad duration is a usage error (2)") {
    TempDir dir;
    expect_one_line_error(
        run_supervisor(dir, {"-l", "127.0.0.1:0", "--drain-timeout", "5parsecs", "--", "/bin/true"}), 2,
        {"--drain-timeout", "5parsecs"});
}

TEST_CASE("errors: no command is a usage error (2)") {
    TempDir dir;
    SUBCASE("nothing after the options") {
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0"}), 2, {"no command"});
    }
    SUBCASE("an empty command after --") {
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--"}), 2, {"no command"});
    }
}

TEST_CASE("errors: a port in use is a system error (1)") {
    TempDir dir;
    int port = 0;
    net::Fd taken = net::listen_loopback(&port);
    REQUIRE(taken.valid());
    std::string addr = "127.0.0.1:" + std::to_string(port);
    auto o = run_supervisor(dir, {"-l", addr, "--", bins().fake_worker});
    taken.reset();
    expect_one_line_error(o, 1, {"cannot bind " + addr + ": Address already in use"});
}

TEST_CASE("errors: a unix socket in a missing directory is a system error (1)") {
    TempDir dir;
    std::string path = dir.file("missing/s.sock");
    expect_one_line_error(run_supervisor(dir, {"-l", "unix:" + path, "--", bins().fake_worker}), 1,
                          {path, "No such file or directory"});
}

TEST_CASE("errors: a unix socket path that another process listens on is a system error (1)") {
    TempDir dir;
    std::string path = dir.file("busy.sock");
    net::Fd busy = net::bind_unix(path, true);
    REQUIRE(busy.valid());
    auto o = run_supervisor(dir, {"-l", "unix:" + path, "--", bins().fake_worker});
    busy.reset();
    expect_one_line_error(o, 1, {path});
    CHECK(file_exists(path));  // not ours: left alone
}

TEST_CASE("errors: a pid file in a missing directory is a system error (1), and nothing is left behind") {
    TempDir dir;
    std::string sock = dir.file("s.sock");
    std::string pid_file = dir.file("missing/sv.pid");
    expect_one_line_error(
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
    expect_one_line_error(run_to_exit(dir, argv), 1, {"cannot bind 127.0.0.1:80: Permission denied"});
}

TEST_CASE("errors: a command that does not exist exits 127") {
    TempDir dir;
    SUBCASE("a path") {
        std::string cmd = dir.file("no-such-server");
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd}), 127, {cmd, "No such file"});
    }
    SUBCASE("a name looked up in PATH") {
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", "no-such-server-xyz"}), 127,
                              {"no-such-server-xyz"});
    }
}

TEST_CASE("errors: a command that is not executable exits 126") {
    TempDir dir;
    SUBCASE("a file without +x") {
        std::string cmd = dir.file("server.sh");
        REQUIRE(write_script(cmd, "exit 0", 0644));
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd}), 126, {cmd, "Permission denied"});
    }
    SUBCASE("a directory") {
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", dir.path()}), 126, {dir.path()});
    }
}

// execve(2) alone would reject these: the supervisor reads the file's first bytes before
// binding anything, so the reason is one plain line (a shell says "bad interpreter" too).
TEST_CASE("errors: a command that execve(2) rejects: no interpreter exits 127, bad format 126") {
    TempDir dir;
    SUBCASE("#! names a missing interpreter") {
        std::string cmd = dir.file("server.sh");
        REQUIRE(write_file(cmd, "#!/nonexistent/interpreter\n", 0755));
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd}), 127,
                              {cmd, "bad interpreter '/nonexistent/interpreter'"});
    }
    SUBCASE("an executable file that is neither ELF nor #!") {
        std::string cmd = dir.file("server.bin");
        REQUIRE(write_file(cmd, std::string("\x7f""garbage\n"), 0755));
        expect_one_line_error(run_supervisor(dir, {"-l", "127.0.0.1:0", "--", cmd}), 126, {"Exec format error"});
    }
}

TEST_CASE("errors: --help and --version exit 0 on stdout") {
    TempDir dir;
    auto help = run_supervisor(dir, {"--help"});
    CHECK_EQ(help.code, 0);
    CHECK(help.output.find("Exit codes") != std::string::npos);
    auto version = run_supervisor(dir, {"--version"});
    CHECK_EQ(version.code, 0);
    CHECK(version.output.rfind("supervisor ", 0) == 0);
}
