// The reexec state: every machine state the machine tests reach goes through export →
// JSON → parse → restore and comes back the same, and behaves the same afterwards; a
// hostile, truncated, unknown or other-version document is refused with a line naming it.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "supervisor/resume_state.h"
#include "tests/unit/machine_harness.h"

using namespace machine_test;

namespace {

ResumeState wrap(const MachineState& m) {
    ResumeState st;
    st.exe = "/usr/local/bin/supervisor";
    st.argv = {"supervisor", "--listen", "127.0.0.1:0", "--", "true"};
    st.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    st.started_mono_ns = 123'456'789;
    st.started_unix_ms = 1'700'000'000'000;
    st.written_mono_ns = 987'654'321;
    st.listeners = {{"http", "127.0.0.1:8080", 5, 0, false}, {"sock", "/run/app.sock", 6, 4242, true}};
    st.notify_fd = 7;
    st.notify_name = "/tmp/sv.1/notify";
    st.notify_dir = "/tmp/sv.1";
    st.control_fd = 8;
    st.control_path = "/run/sv/supervisor.sock";
    st.control_inode = 99;
    st.client_fd = 9;
    st.containment_description = "process groups + pidfds (--cgroup off)";
    st.contained = {{100, "", 777, false, {{150, 778}}}};
    st.leftovers = {100};
    st.has_last_upgrade = true;
    st.last_upgrade_gen = 2;
    st.last_upgrade_reason = "exited before ready (exit=1)";
    st.http_fd = 10;
    st.http_address = "127.0.0.1:9180";
    st.counters.upgrades_ok = 3;
    st.counters.upgrades_failed = 1;
    st.counters.worker_restarts = 2;
    st.counters.hung_workers = 1;
    st.counters.broken_invariants = 0;
    st.counters.buckets = {0, 1, 2, 3, 3, 3, 3, 4, 4, 4, 4};
    st.counters.duration_sum_ms = 7345;
    st.counters.slot_gen = {{0, 2}};
    st.counters.newest_gen = 2;
    st.counters.upgrade_started = {{5, Millis(1200)}};
    st.machine = m;
    for (const auto& id : m.timers) st.timers.push_back({id, Millis(1234)});
    return st;
}

// Export, write, read, restore: the state must come back field for field, the machine
// must export the same again, and both must answer the next event the same way.
void round_trip(Harness& h, const Event& next) {
    INFO("state: " << h.m.describe());
    REQUIRE(h.m.not_exportable().empty());
    MachineState m = h.m.export_state();
    std::string text = serialize_resume_state(wrap(m));
    auto parsed = parse_resume_state(text);
    REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error().what));
    CHECK_EQ(serialize_resume_state(*parsed), text);
    CHECK_EQ(parsed->machine.timers, m.timers);
    CHECK_EQ(parsed->http_fd, 10);
    CHECK_EQ(parsed->http_address, "127.0.0.1:9180");
    CHECK_EQ(parsed->counters.upgrades_ok, 3u);
    CHECK_EQ(parsed->counters.buckets[7], 4u);
    CHECK_EQ(parsed->counters.duration_sum_ms, 7345);
    CHECK(parsed->counters.slot_gen == (std::map<int, uint64_t>{{0, 2}}));
    CHECK(parsed->counters.upgrade_started.at(5) == Millis(1200));
    REQUIRE_EQ(parsed->machine.workers.size(), m.workers.size());
    for (size_t i = 0; i < m.workers.size(); i++) CHECK(same_worker(parsed->machine.workers[i], m.workers[i]));
    auto restored = UpgradeMachine::restore(h.m.settings(), parsed->machine);
    REQUIRE_MESSAGE(restored, (restored ? "" : restored.error().what));
    CHECK_EQ(restored->describe(), h.m.describe());
    CHECK_EQ(serialize_resume_state(wrap(restored->export_state())), text);
    auto a = h.m.handle(next, h.now);
    auto b = restored->handle(next, h.now);
    CHECK_EQ(a.size(), b.size());
    CHECK_EQ(restored->describe(), h.m.describe());
    CHECK(restored->check_invariants().empty());
}

MachineSettings watched_every(Millis every) {
    MachineSettings s = Harness::notify_settings();
    s.worker_watchdog = every;
    return s;
}

} // namespace

TEST_CASE("resume state: every reachable idle machine state round-trips and behaves the same after") {
    SUBCASE("starting: gen 1 not ready yet") {
        Harness h;
        h.feed(Boot{});
        round_trip(h, TimerFired{h.tid(TimerId::Kind::Ready, 100)});
    }
    SUBCASE("serving") {
        Harness h;
        h.serve();
        round_trip(h, UpgradeRequested{});
    }
    SUBCASE("draining the old generation") {
        Harness h;
        h.serve();
        h.feed(UpgradeRequested{});
        h.ready(2);
        REQUIRE(h.m.phase() == Phase::Serving);
        round_trip(h, TimerFired{h.tid(TimerId::Kind::Drain, 100)});
    }
    SUBCASE("crash-loop backoff: a respawn waits") {
        Harness h;
        h.serve();
        h.feed(WorkerExited{h.pid_of(1), exited(1)});
        h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
        h.feed(WorkerExited{h.live_of(0), exited(1)});
        round_trip(h, TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
    }
    SUBCASE("crash loop before the first generation ever served") {
        Harness h;
        h.feed(Boot{});
        h.feed(WorkerExited{100, exited(1)});
        REQUIRE(h.m.phase() == Phase::Starting);
        round_trip(h, TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
    }
    SUBCASE("a lingering group of a drained worker") {
        Harness h;
        h.serve();
        h.feed(UpgradeRequested{});
        h.ready(2);
        h.feed(WorkerExited{100, exited(0), true});
        round_trip(h, GroupGone{100});
    }
    SUBCASE("a watchdogged worker") {
        Harness h(watched_every(Millis(2000)));
        h.serve();
        h.feed(Notified{h.pid_of(1), NotifyMessage{false, false, false, {}, true}});
        round_trip(h, TimerFired{h.tid(TimerId::Kind::Watchdog, 100)});
    }
    SUBCASE("--workers 3 after a rolling upgrade") {
        Harness h(n_workers(3, true));
        h.feed(Boot{});
        for (int s = 0; s < 3; s++) h.ready(1, s);
        h.feed(UpgradeRequested{});
        for (int s = 0; s < 3; s++) h.ready(2, s);
        REQUIRE(h.m.phase() == Phase::Serving);
        round_trip(h, WorkerExited{h.pid_of(2, 1), exited(1)});
    }
}

TEST_CASE("resume state: what is in flight is not exported") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    CHECK_EQ(h.m.not_exportable(), "an upgrade is in flight (gen 2); retry when it is decided");
    Harness s;
    s.serve();
    s.feed(StopRequested{});
    CHECK_EQ(s.m.not_exportable(), "a stop is in progress");
}

TEST_CASE("resume state: refused documents name what is wrong") {
    Harness h;
    h.serve();
    std::string good = serialize_resume_state(wrap(h.m.export_state()));
    auto j = nlohmann::json::parse(good);
    auto refused = [](const nlohmann::json& doc) {
        auto r = parse_resume_state(doc.dump());
        return r ? std::string("accepted") : r.error().what;
    };
    CHECK(parse_resume_state(good));
    CHECK_EQ(parse_resume_state(good.substr(0, good.size() / 2)).error().what, "resume state: not valid JSON (truncated?)");
    auto v = j;
    v["version"] = kResumeStateVersion + 1;
    CHECK_EQ(refused(v), "resume state: version 3 is newer than this binary reads (2): reexec into a binary at least as new "
                         "as the running one");
    v["version"] = kResumeStateOldestVersion - 1;
    CHECK_EQ(refused(v), "resume state: version 0 is older than this binary reads (1): no older format is carried forward");
    auto hf = j;
    hf["http"]["fd"] = 8;  // the control socket's
    CHECK_EQ(refused(hf), "resume state: an fd is named twice");
    auto mb = j;
    mb["metrics"]["duration_buckets"].erase(0);
    CHECK_EQ(refused(mb), "resume state: metrics.duration_buckets must hold 11 counts");
    auto mm = j;
    mm.erase("metrics");
    CHECK_EQ(refused(mm), "resume state: metrics is missing");
    auto u = j;
    u["machine"]["workers"][0]["probation_ms"] = 5;
    CHECK_EQ(refused(u), "resume state: machine.workers[0].probation_ms is not a field this binary knows");
    auto m = j;
    m["machine"]["workers"][0].erase("pid");
    CHECK_EQ(refused(m), "resume state: machine.workers[0].pid is missing");
    auto t = j;
    t["listeners"][0]["fd"] = "5";
    CHECK_EQ(refused(t), "resume state: listeners[0].fd must be an integer");
    auto d = j;
    d["listeners"][1]["fd"] = 7;  // the notify socket's
    CHECK_EQ(refused(d), "resume state: an fd is named twice");
    auto n = j;
    n["machine"]["workers"][0]["pid"] = -1;
    CHECK_EQ(refused(n), "resume state: machine.workers[0].pid is out of range");
    auto p = j;
    p["machine"]["phase"] = "upgrading";
    auto parsed = parse_resume_state(p.dump());
    REQUIRE(parsed);
    auto r = UpgradeMachine::restore(h.m.settings(), parsed->machine);
    CHECK_FALSE(r);
    CHECK_EQ(r.error().what, "phase upgrading cannot be resumed");
    auto s = j;
    s["machine"]["slots"][0]["gen"] = 9;  // a generation that was never started
    parsed = parse_resume_state(s.dump());
    REQUIRE(parsed);
    CHECK_FALSE(UpgradeMachine::restore(h.m.settings(), parsed->machine));
    auto w = j;
    w["machine"]["workers"][0]["slot"] = 3;  // one slot only
    parsed = parse_resume_state(w.dump());
    REQUIRE(parsed);
    CHECK_FALSE(UpgradeMachine::restore(h.m.settings(), parsed->machine));
}

// An older binary's state (version 1: no "http", no "metrics") is still taken over: the new
// image binds --http itself and counts from zero. Version 1 with version 2's fields is not.
TEST_CASE("resume state: a version 1 state is read without the --http listener and the counters") {
    Harness h;
    h.serve();
    auto j = nlohmann::json::parse(serialize_resume_state(wrap(h.m.export_state())));
    j["version"] = 1;
    auto with_v2_fields = j;
    j.erase("http");
    j.erase("metrics");
    auto st = parse_resume_state(j.dump());
    REQUIRE_MESSAGE(st, (st ? "" : st.error().what));
    CHECK_EQ(st->version, 1);
    CHECK_EQ(st->http_fd, -1);
    CHECK_EQ(st->counters.upgrades_ok, 0u);
    CHECK_EQ(serialize_resume_state(*st), j.dump());
    auto r = parse_resume_state(with_v2_fields.dump());
    REQUIRE_FALSE(r);
    CHECK_EQ(r.error().what, "resume state: http is not a field this binary knows");
}
