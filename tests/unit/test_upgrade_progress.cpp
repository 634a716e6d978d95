// Progress events for `ctl upgrade`: derived from the machine's worker table after each step.
#include <doctest/doctest.h>

#include "supervisor/control_protocol.h"
#include "supervisor/ctl_progress.h"
#include "supervisor/upgrade_progress.h"
#include "tests/unit/machine_harness.h"

using namespace machine_test;
using json = nlohmann::json;

namespace {

// Feeds one event and returns the names of the progress events it caused.
std::vector<std::string> step(Harness& h, ProgressTracker& p, const Event& e, std::vector<json>* full = nullptr) {
    h.feed(e);
    auto evs = p.update(h.m, e, h.now);
    std::vector<std::string> names;
    for (const auto& ev : evs) names.push_back(ev.value("event", "") + " " + std::to_string(ev.value("gen", 0)));
    if (full) *full = evs;
    return names;
}

} // namespace

TEST_CASE("progress: an upgrade reads started, spawned, ready, then draining of the old one") {
    Harness h;
    ProgressTracker p;
    h.feed(Boot{});
    p.update(h.m, Boot{}, h.now);
    h.ready(1);
    p.update(h.m, Boot{}, h.now);
    // The spawn result is fed within the same feed() as the request.
    CHECK_EQ(step(h, p, UpgradeRequested{1}), std::vector<std::string>{"started 2", "spawned 2"});
    int p2 = h.pid_of(2);
    h.advance(Millis(1200));
    std::vector<json> full;
    CHECK_EQ(step(h, p, Notified{p2, NotifyMessage{true, false, false, {}}}, &full),
             std::vector<std::string>{"ready 2", "draining 1"});
    CHECK_EQ(full[0].value("how", ""), "READY=1");
    CHECK_EQ(full[0].value("after_ms", 0), 1200);
    CHECK_EQ(describe_progress(full[0]), "gen 2 pid " + std::to_string(p2) + " ready after 1.2s (READY=1)");
    auto names = step(h, p, WorkerExited{h.pid_of(1), exited(0)}, &full);
    CHECK_EQ(names, std::vector<std::string>{"exited 1"});
    CHECK_EQ(full[0].value("status", ""), "exit=0");
}

TEST_CASE("progress: probation is announced once; a failed start shows its exit") {
    MachineSettings s = Harness::notify_settings();
    s.probation = Millis(1000);
    Harness h(s);
    ProgressTracker p;
    h.serve();
    p.update(h.m, Boot{}, h.now);
    step(h, p, UpgradeRequested{});
    std::vector<json> full;
    CHECK_EQ(step(h, p, Notified{h.pid_of(2), NotifyMessage{true, false, false, {}}}, &full),
             std::vector<std::string>{"ready 2", "probation 2"});
    CHECK_EQ(full[1].value("ms", 0), 1000);
    CHECK_EQ(describe_progress(full[1]), "gen 2 on probation for 1.0s");
    auto names = step(h, p, WorkerExited{h.pid_of(2), exited(1)}, &full);
    CHECK_EQ(names, std::vector<std::string>{"exited 2"});
    CHECK_EQ(describe_progress(full[0]).find("exited (exit=1)") != std::string::npos, true);
}

TEST_CASE("progress: the upgrade request asks for events with \"progress\":true only") {
    auto plain = parse_control_request(R"({"cmd":"upgrade"})");
    REQUIRE(plain);
    CHECK_FALSE(plain->progress);
    auto with = parse_control_request(R"({"cmd":"upgrade","progress":true})");
    REQUIRE(with);
    CHECK(with->progress);
    auto odd = parse_control_request(R"({"cmd":"upgrade","progress":"yes"})");
    REQUIRE(odd);
    CHECK_FALSE(odd->progress);
    CHECK_EQ(describe_progress(json{{"event", 3}}), "?");
    CHECK_EQ(describe_progress(json::object()), "?");
}
