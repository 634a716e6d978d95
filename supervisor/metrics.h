// Prometheus metrics (pure): the counters the shell keeps from the machine's events and
// actions, and the text exposition format 0.0.4 rendered from them and the status.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "supervisor/control_protocol.h"
#include "supervisor/machine_types.h"

namespace sv {

// Upper bounds (seconds) of supervisor_upgrade_duration_seconds; +Inf is implied.
constexpr std::array<double, 10> kUpgradeBuckets{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

// Counted from what the machine already says (UpgradeVerdict, Spawn, watchdog timers), so
// the machine needs no metrics of its own.
class MetricsCounters {
public:
    // Call with every event fed to the machine and every action it returned, with the time.
    void observe(const Event& e);
    void observe(const Action& a, Millis now);
    void invariant_broken() { broken_invariants_++; }

    uint64_t upgrades_ok() const { return upgrades_ok_; }
    uint64_t upgrades_failed() const { return upgrades_failed_; }
    uint64_t worker_restarts() const { return worker_restarts_; }
    uint64_t hung_workers() const { return hung_workers_; }
    uint64_t broken_invariants() const { return broken_invariants_; }
    // Cumulative counts per bucket of kUpgradeBuckets, then +Inf.
    const std::array<uint64_t, kUpgradeBuckets.size() + 1>& duration_buckets() const { return buckets_; }
    double duration_sum_seconds() const { return duration_sum_; }

private:
    uint64_t upgrades_ok_ = 0, upgrades_failed_ = 0, worker_restarts_ = 0, hung_workers_ = 0, broken_invariants_ = 0;
    std::array<uint64_t, kUpgradeBuckets.size() + 1> buckets_{};
    double duration_sum_ = 0;
    std::map<int, uint64_t> slot_gen_;           // the last generation spawned in each slot
    uint64_t newest_gen_ = 0;                    // the newest generation spawned or pre-checked
    std::map<uint64_t, Millis> upgrade_started_;  // generation → when its upgrade began
};

struct MetricsInput {
    const StatusSnapshot* status = nullptr;
    const MetricsCounters* counters = nullptr;
    std::string version;
};

// The text format 0.0.4 (HELP, TYPE, samples; label values escaped), ending with a newline.
std::string render_metrics(const MetricsInput& in);

// The Content-Type of render_metrics' text.
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

} // namespace sv
