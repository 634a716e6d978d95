// Metrics: counters from the machine's events and actions, and the text exposition.
#include <doctest/doctest.h>

#include "supervisor/metrics.h"

using namespace sv;

namespace {

StatusSnapshot serving_snapshot() {
    StatusSnapshot s;
    s.phase = "serving";
    s.serving_gen = 2;
    s.started_unix_ms = 1'700'000'000'500;
    WorkerStatus ready{.gen = 2, .slot = 0, .pid = 20, .state = "ready"};
    ready.connections = 3;
    WorkerStatus draining{.gen = 1, .slot = 0, .pid = 10, .state = "draining"};
    draining.connections = 14;
    s.workers = {ready, draining};
    return s;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

} // namespace

TEST_CASE("counters: verdicts, restarts, durations, hung workers") {
    MetricsCounters c;
    c.observe(Spawn{1, 0}, Millis{0});  // boot: not an upgrade, not a restart
    CHECK_EQ(c.worker_restarts(), 0);
    c.observe(Spawn{1, 0}, Millis{50});  // gen 1 again in slot 0: a respawn
    CHECK_EQ(c.worker_restarts(), 1);
    c.observe(Spawn{2, 0}, Millis{1000});
    c.observe(UpgradeVerdict{2, true, ""}, Millis{1300});
    CHECK_EQ(c.upgrades_ok(), 1);
    CHECK_EQ(c.duration_buckets()[0], 0);  // 0.3 s > 0.25
    CHECK_EQ(c.duration_buckets()[2], 1);  // ≤ 0.5
    CHECK_EQ(c.duration_buckets().back(), 1);
    CHECK_EQ(c.duration_sum_seconds(), doctest::Approx(0.3));
    SUBCASE("a pre-checked upgrade is timed from its pre-check") {
        c.observe(RunPreCheck{3}, Millis{2000});
        c.observe(Spawn{3, 0}, Millis{4000});
        c.observe(UpgradeVerdict{3, false, "exited"}, Millis{5000});
        CHECK_EQ(c.upgrades_failed(), 1);
        CHECK_EQ(c.duration_buckets()[5], 2);  // cumulative: 3 s is ≤ 5 but not ≤ 2.5
        CHECK_EQ(c.duration_buckets()[4], 1);
        CHECK_EQ(c.duration_buckets().back(), 2);
        CHECK_EQ(c.worker_restarts(), 1);  // a new generation in the slot is no restart
    }
    SUBCASE("a verdict without a start (refused) is counted, not timed") {
        c.observe(UpgradeVerdict{9, false, "refused"}, Millis{6000});
        CHECK_EQ(c.upgrades_failed(), 1);
        CHECK_EQ(c.duration_buckets().back(), 1);
    }
    c.observe(Event{TimerFired{{TimerId::Kind::Watchdog, 4}}});
    c.observe(Event{TimerFired{{TimerId::Kind::Drain, 4}}});
    CHECK_EQ(c.hung_workers(), 1);
}

TEST_CASE("rendering: every family, labels, histogram") {
    MetricsCounters c;
    c.observe(Spawn{1, 0}, Millis{0});
    c.observe(Spawn{2, 0}, Millis{100});
    c.observe(UpgradeVerdict{2, true, ""}, Millis{200});
    c.invariant_broken();
    StatusSnapshot s = serving_snapshot();
    s.has_last_upgrade = true;
    s.last_upgrade = {2, true, "", 1'700'000'001'250};
    std::string text = render_metrics({&s, &c, "1.2.3"});
    CHECK(has_line(text, "supervisor_build_info{version=\"1.2.3\"} 1"));
    CHECK(has_line(text, "supervisor_up 1"));
    CHECK(has_line(text, "supervisor_serving_generation 2"));
    CHECK(has_line(text, "supervisor_upgrades_total{result=\"success\"} 1"));
    CHECK(has_line(text, "supervisor_upgrades_total{result=\"failed\"} 0"));
    CHECK(has_line(text, "supervisor_last_upgrade_success 1"));
    CHECK(has_line(text, "supervisor_last_upgrade_timestamp_seconds 1700000001.25"));
    CHECK(has_line(text, "supervisor_upgrade_duration_seconds_bucket{le=\"0.1\"} 1"));
    CHECK(has_line(text, "supervisor_upgrade_duration_seconds_bucket{le=\"+Inf\"} 1"));
    CHECK(has_line(text, "supervisor_upgrade_duration_seconds_count 1"));
    CHECK(has_line(text, "supervisor_upgrade_duration_seconds_sum 0.1"));
    CHECK(has_line(text, "supervisor_worker_restarts_total 0"));
    CHECK(has_line(text, "supervisor_invariant_violations_total 1"));
    CHECK(has_line(text, "supervisor_workers{state=\"ready\"} 1"));
    CHECK(has_line(text, "supervisor_workers{state=\"draining\"} 1"));
    CHECK(has_line(text, "supervisor_workers{state=\"starting\"} 0"));
    CHECK(has_line(text, "supervisor_connections{generation=\"1\"} 14"));
    CHECK(has_line(text, "supervisor_connections{generation=\"2\"} 3"));
    CHECK(has_line(text, "# TYPE supervisor_upgrade_duration_seconds histogram"));
    CHECK_EQ(text.back(), '\n');
    SUBCASE("before any upgrade the last-upgrade gauges have no sample") {
        s.has_last_upgrade = false;
        text = render_metrics({&s, &c, "1"});
        CHECK(text.find("\nsupervisor_last_upgrade_success ") == std::string::npos);
        CHECK(text.find("# TYPE supervisor_last_upgrade_success gauge") != std::string::npos);
    }
    SUBCASE("unknown connection counts are left out; label values are escaped") {
        for (auto& w : s.workers) w.connections = -1;
        text = render_metrics({&s, &c, "a\"b\\c\nd"});
        CHECK(text.find("supervisor_connections{") == std::string::npos);
        CHECK(has_line(text, "supervisor_build_info{version=\"a\\\"b\\\\c\\nd\"} 1"));
    }
    SUBCASE("stopping is not up") {
        s.phase = "stopping";
        CHECK(has_line(render_metrics({&s, &c, "1"}), "supervisor_up 0"));
    }
}
