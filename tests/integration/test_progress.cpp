// `ctl upgrade` shows the upgrade while it waits: progress events on the control connection
// (only for a request that asks for them), as timestamped lines, or as JSON; and
// `ctl status --watch`.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "harness.h"
#include "net.h"

using namespace svtest;
using json = nlohmann::json;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

// The index of the first event named `name` of generation `gen`, or -1.
int index_of(const std::vector<json>& evs, const std::string& name, long gen) {
    for (size_t i = 0; i < evs.size(); i++)
        if (evs[i].value("event", "") == name && evs[i].value("gen", 0L) == gen) return static_cast<int>(i);
    return -1;
}

} // namespace

TEST_CASE("progress: ctl upgrade --json prints the events in order, one JSON object per line, then the verdict") {
    Serving f;
    f.start({.options = {"--control", f.control_socket()}});
    auto o = f.ctl({"upgrade", "--json"});
    INFO("ctl output:\n", o.output);
    CHECK_EQ(o.code, 0);
    std::vector<json> evs;
    for (const auto& line : lines_of(o.output)) {
        json j = json::parse(line, nullptr, false);
        REQUIRE_MESSAGE(j.is_object(), "not a JSON object: ", line);
        evs.push_back(j);
    }
    REQUIRE_GE(evs.size(), 5u);
    const json& verdict = evs.back();
    CHECK(verdict.value("ok", false));
    CHECK_EQ(verdict.value("gen", 0), 2);
    evs.pop_back();
    int started = index_of(evs, "started", 2), spawned = index_of(evs, "spawned", 2), ready = index_of(evs, "ready", 2),
        draining = index_of(evs, "draining", 1);
    CHECK_EQ(started, 0);
    CHECK_LT(started, spawned);
    CHECK_LT(spawned, ready);
    CHECK_LT(ready, draining);
    REQUIRE_GE(ready, 0);
    CHECK_EQ(evs[static_cast<size_t>(ready)].value("how", ""), "READY=1");
    CHECK_EQ(evs[static_cast<size_t>(draining)].value("pid", 0), f.w1);
}

TEST_CASE("progress: a failed upgrade shows the exit, as lines with a time, and still exits 1") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{2, "--exit-code 1"}})));
    f.start({.options = {"--control", f.control_socket()}});
    auto o = f.ctl({"upgrade"});
    INFO("ctl output:\n", o.output);
    CHECK_EQ(o.code, 1);
    CHECK(find_log_line(o.output, R"(^\d\d:\d\d:\d\d\.\d{3} gen 2 starting \(gen 1 serves\)$)"));
    CHECK(find_log_line(o.output, R"(^\d\d:\d\d:\d\d\.\d{3} gen 2 spawned pid \d+$)"));
    CHECK(find_log_line(o.output, R"(^\d\d:\d\d:\d\d\.\d{3} gen 2 pid \d+ exited \(exit=1\)$)"));
    CHECK(o.output.find("upgrade to gen 2 failed") != std::string::npos);
    CHECK(o.output.find("gen 1 is still serving") != std::string::npos);
}

TEST_CASE("progress: a client that does not ask for events gets the verdict line alone") {
    Serving f;
    f.start({.options = {"--control", f.control_socket()}});
    auto replies = net::exchange_lines(f.control_socket(), "{\"cmd\":\"upgrade\"}\n", 1);
    REQUIRE_EQ(replies.size(), 1u);
    json j = json::parse(replies[0], nullptr, false);
    REQUIRE(j.is_object());
    CHECK_FALSE(j.contains("event"));
    CHECK(j.value("ok", false));
    auto with = net::exchange_lines(f.control_socket(), "{\"cmd\":\"upgrade\",\"progress\":true}\n", 20);
    REQUIRE_GE(with.size(), 2u);
    CHECK(with.front().find("\"event\":\"started\"") != std::string::npos);
    CHECK(with.back().find("\"ok\":true") != std::string::npos);
}

TEST_CASE("progress: ctl status --watch shows the status again every interval") {
    Serving f;
    f.start({.options = {"--control", f.control_socket()}});
    Process watch({bins().supervisor, "ctl", "--control", f.control_socket(), "status", "--watch", "--interval", "100ms"},
                  f.dir.file("watch.log"));
    ProcessGuard guard(watch, 1.0);
    CHECK(wait_until([&] { return count_log_lines(watch.log(), "^--- ") >= 3; }, 5.0, &watch));
    CHECK_GE(count_log_lines(watch.log(), "serving, serving gen 1"), 3u);
    REQUIRE(watch.signal(SIGTERM));
    CHECK(watch.wait_exit(3.0));
}

TEST_CASE("progress: on a terminal, one live line rewritten in place, then the verdict") {
    if (!have_program("script")) {
        MESSAGE("script(1) not installed (bsdutils): skipped");
        return;
    }
    Serving f;
    f.start({.options = {"--control", f.control_socket()}});
    std::string cmd = sh_quote(bins().supervisor) + " ctl --control " + sh_quote(f.control_socket()) + " upgrade";
    auto o = run_to_exit(f.dir, {"script", "-qec", cmd, "/dev/null"}, 10.0);
    INFO("output on the terminal:\n", o.output);
    CHECK_EQ(o.code, 0);
    CHECK(o.output.find("\r\033[K") != std::string::npos);
    CHECK(o.output.find("gen 2 spawned pid ") != std::string::npos);
    CHECK(o.output.find("ready after ") != std::string::npos);
    CHECK(o.output.find("upgrade to gen 2 succeeded") != std::string::npos);
    // Not one timestamped line per event: those are for pipes and files.
    CHECK_FALSE(find_log_line(o.output, R"(^\d\d:\d\d:\d\d\.\d{3} gen 2 spawned)"));
}
