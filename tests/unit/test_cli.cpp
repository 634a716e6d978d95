// Command line → Config, and one-line usage errors with exit code 2.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>

#include "supervisor/cli.h"
#include "supervisor_version.h"

using namespace sv;

namespace {

CliOutcome parse(std::vector<std::string> args) {
    args.insert(args.begin(), "supervisor");
    return parse_command_line(args);
}

void expect_usage_error(std::vector<std::string> args, const std::string& needle) {
    auto out = parse(std::move(args));
    auto* e = std::get_if<CliExit>(&out);
    REQUIRE(e != nullptr);
    CHECK_EQ(e->code, kExitUsage);
    INFO(e->text);
    CHECK(e->text.find(needle) != std::string::npos);
    CHECK(e->text.rfind("supervisor: ", 0) == 0);
    CHECK(e->text.find('\n') == std::string::npos);  // one line
}

} // namespace

TEST_CASE("defaults") {
    auto out = parse({"-l", "8080", "--", "./server", "--port", "3"});
    auto* c = std::get_if<Config>(&out);
    REQUIRE(c != nullptr);
    CHECK_EQ(c->listeners.size(), 1u);
    CHECK_EQ(c->listeners[0].name, "listen0");
    CHECK_EQ(c->ready_mode, ReadyMode::Auto);
    CHECK_EQ(c->ready_delay.count(), 1000);
    CHECK_EQ(c->ready_timeout.count(), 60'000);
    CHECK_EQ(c->drain_signal, SIGTERM);
    CHECK_EQ(c->drain_timeout.count(), 30'000);
    CHECK_EQ(c->backlog, SOMAXCONN);
    CHECK_EQ(c->command, std::vector<std::string>{"./server", "--port", "3"});
}

TEST_CASE("every option") {
    auto out = parse({"--listen", "http=127.0.0.1:80", "-l", "unix:/tmp/x.sock", "--backlog", "64", "--ready", "notify",
                      "--ready-delay", "250ms", "--ready-timeout", "5s", "--drain-signal", "QUIT", "--drain-timeout",
                      "1m", "--pid-file", "/tmp/p", "--log-level", "debug", "--control", "/run/c.sock",
                      "--status-file", "/run/s.json", "--", "srv"});
    auto* c = std::get_if<Config>(&out);
    REQUIRE(c != nullptr);
    CHECK_EQ(c->listeners.size(), 2u);
    CHECK_EQ(c->listeners[0].name, "http");
    CHECK_EQ(c->listeners[1].name, "listen1");
    CHECK_EQ(c->backlog, 64);
    CHECK_EQ(c->ready_mode, ReadyMode::Notify);
    CHECK_EQ(c->ready_delay.count(), 250);
    CHECK_EQ(c->ready_timeout.count(), 5000);
    CHECK_EQ(c->drain_signal, SIGQUIT);
    CHECK_EQ(c->drain_timeout.count(), 60'000);
    CHECK_EQ(c->pid_file, "/tmp/p");
    CHECK_EQ(c->log_level, "debug");
    CHECK_EQ(c->control_path, "/run/c.sock");
    CHECK_EQ(c->status_file, "/run/s.json");
}

TEST_CASE("--listen may be left out (socket activation supplies the sockets)") {
    auto out = parse({"--", "srv"});
    auto* c = std::get_if<Config>(&out);
    REQUIRE(c != nullptr);
    CHECK(c->listeners.empty());
}

TEST_CASE("a worker's own flags after -- are not ours") {
    auto out = parse({"-l", "1", "--", "srv", "--listen", "nonsense", "--help"});
    auto* c = std::get_if<Config>(&out);
    REQUIRE(c != nullptr);
    CHECK_EQ(c->command.size(), 4u);
}

TEST_CASE("usage errors: one line, exit 2, naming the input") {
    expect_usage_error({"-l", "8080"}, "no command");
    expect_usage_error({"--frobnicate", "-l", "1", "--", "srv"}, "frobnicate");
    expect_usage_error({"-l", "nonsense:xx", "--", "srv"}, "nonsense:xx");
    expect_usage_error({"-l", "1", "--ready", "sometimes", "--", "srv"}, "sometimes");
    expect_usage_error({"-l", "1", "--drain-timeout", "5parsecs", "--", "srv"}, "--drain-timeout '5parsecs'");
    expect_usage_error({"-l", "1", "--ready-delay", "soon", "--", "srv"}, "--ready-delay 'soon'");
    expect_usage_error({"-l", "1", "--ready-timeout", "0", "--", "srv"}, "--ready-timeout");
    expect_usage_error({"-l", "1", "--drain-signal", "KILL", "--", "srv"}, "--drain-signal 'KILL'");
    expect_usage_error({"-l", "1", "--backlog", "0", "--", "srv"}, "backlog");
    expect_usage_error({"-l", "1", "--log-level", "loud", "--", "srv"}, "loud");
}

TEST_CASE("--help and --version exit 0 with text for stdout") {
    auto out = parse({"--help"});
    auto* e = std::get_if<CliExit>(&out);
    REQUIRE(e != nullptr);
    CHECK_EQ(e->code, 0);
    CHECK(e->text.find("--listen") != std::string::npos);
    CHECK(e->text.find("Exit codes") != std::string::npos);
    auto v = parse({"--version"});
    CHECK_EQ(std::get<CliExit>(v).code, 0);
}

// meson test passes project(version:) as SV_PROJECT_VERSION (tests/meson.build): the binary
// must say the version the build was configured with, not a copy of it. Run by hand,
// without that variable, only the generated header is compared.
TEST_CASE("--version prints the version from meson's project()") {
    const char* from_meson = std::getenv("SV_PROJECT_VERSION");
    if (from_meson == nullptr) MESSAGE("SV_PROJECT_VERSION is not set (not run by meson test): checking against kVersion");
    const std::string expected = from_meson != nullptr ? from_meson : std::string(kVersion);
    CHECK_FALSE(expected.empty());
    auto v = parse({"--version"});
    auto* e = std::get_if<CliExit>(&v);
    REQUIRE(e != nullptr);
    CHECK_EQ(e->code, 0);
    CHECK_EQ(e->text, "supervisor " + expected + "\n");
}

TEST_CASE("--compat, --socket-mode, --socket-owner") {
    auto c = std::get<Config>(parse({"-l", "1", "--", "srv"}));
    CHECK(c.compat == Compat{true, true, false});
    CHECK_EQ(c.socket_mode, -1);
    auto n = std::get<Config>(parse({"-l", "1", "--compat", "none", "--socket-mode", "660", "--socket-owner", "www:web", "--", "srv"}));
    CHECK(n.compat == Compat{false, false, false});
    CHECK_EQ(n.socket_mode, 0660);
    CHECK_EQ(n.socket_owner, "www:web");
    CHECK(parse_compat("nginx,einhorn") == Compat{false, true, true});
    CHECK(parse_compat("server-starter") == Compat{true, false, false});
    CHECK(parse_compat("all,nginx") == Compat{true, true, true});
    CHECK_FALSE(parse_compat("einhorn,,nginx").has_value());
    CHECK_FALSE(parse_compat("upstart").has_value());
    CHECK_FALSE(parse_compat("").has_value());
    expect_usage_error({"-l", "1", "--compat", "upstart", "--", "srv"}, "--compat 'upstart'");
    expect_usage_error({"-l", "1", "--socket-mode", "999", "--", "srv"}, "--socket-mode '999'");
}

TEST_CASE("--forward-signal: names, SIG names and numbers; none by default; our own signals refused") {
    auto def = parse({"-l", "80", "--", "srv"});
    REQUIRE(std::holds_alternative<Config>(def));
    CHECK(std::get<Config>(def).forward_signals.empty());
    auto out = parse({"-l", "80", "--forward-signal", "USR1", "--forward-signal", "SIGWINCH", "--forward-signal", "12",
                      "--forward-signal", "usr1", "--", "srv"});
    REQUIRE(std::holds_alternative<Config>(out));
    CHECK_EQ(std::get<Config>(out).forward_signals, std::vector<int>{SIGUSR1, SIGWINCH, SIGUSR2});
    for (const char* own : {"HUP", "SIGTERM", "INT", "CHLD", "17", "KILL", "STOP", "SEGV", "PIPE", "nope", "0"})
        expect_usage_error({"-l", "80", "--forward-signal", own, "--", "srv"}, std::string("invalid --forward-signal '") + own + "'");
}

TEST_CASE("--stop-delay and --probation: durations, 0 by default, bad ones named") {
    auto out = parse({"-l", "1", "--stop-delay", "4s", "--probation", "1m", "--", "srv"});
    auto* c = std::get_if<Config>(&out);
    REQUIRE(c != nullptr);
    CHECK_EQ(c->stop_delay.count(), 4000);
    CHECK_EQ(c->probation.count(), 60'000);
    auto plain = parse({"-l", "1", "--", "srv"});
    REQUIRE(std::get_if<Config>(&plain) != nullptr);
    CHECK_EQ(std::get<Config>(plain).stop_delay.count(), 0);
    CHECK_EQ(std::get<Config>(plain).probation.count(), 0);
    expect_usage_error({"-l", "1", "--stop-delay", "a while", "--", "srv"}, "invalid --stop-delay 'a while'");
    expect_usage_error({"-l", "1", "--probation", "-1s", "--", "srv"}, "--probation '-1s'");
}

TEST_CASE("--http and --metrics-file") {
    expect_usage_error({"-l", "1", "--http", "9180", "--", "srv"}, "--http '9180'");
    expect_usage_error({"-l", "1", "--http", "localhost:9180", "--", "srv"}, "literal address");
    expect_usage_error({"-l", "1", "--http", "127.0.0.1:70000", "--", "srv"}, "--http '127.0.0.1:70000'");
    expect_usage_error({"-l", "1", "--http", "x=127.0.0.1:1", "--", "srv"}, "--http 'x=127.0.0.1:1'");
    for (const char* ok : {"127.0.0.1:9180", "[::1]:0", "0.0.0.0:9180", "unix:/run/app/health.sock"}) {
        auto out = parse({"-l", "1", "--http", ok, "--metrics-file", "/tmp/m.prom", "--", "srv"});
        INFO(ok);
        auto* c = std::get_if<Config>(&out);
        REQUIRE(c != nullptr);
        CHECK_EQ(c->http, ok);
        CHECK_EQ(c->metrics_file, "/tmp/m.prom");
    }
}

TEST_CASE("--adopt-bind: off by default, all when given bare, worker-only when asked") {
    auto off = parse({"-l", "8080", "--", "srv"});
    REQUIRE(std::holds_alternative<Config>(off));
    CHECK_EQ(std::get<Config>(off).adopt_bind, AdoptBind::Off);
    auto all = parse({"-l", "8080", "--adopt-bind", "--", "srv"});
    REQUIRE(std::holds_alternative<Config>(all));
    CHECK_EQ(std::get<Config>(all).adopt_bind, AdoptBind::All);
    auto worker = parse({"--adopt-bind=worker-only", "-l", "8080", "--", "srv"});
    REQUIRE(std::holds_alternative<Config>(worker));
    CHECK_EQ(std::get<Config>(worker).adopt_bind, AdoptBind::WorkerOnly);
    expect_usage_error({"-l", "8080", "--adopt-bind=maybe", "--", "srv"}, "invalid --adopt-bind 'maybe'");
}
