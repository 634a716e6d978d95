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

// Everything MetricsCounters holds: the counts, and what it needs to go on counting (each
// slot's generation, upgrades begun). A reexec carries it (resume_state.h).
struct CounterState {
    uint64_t upgrades_ok = 0, upgrades_failed = 0, worker_restarts = 0, hung_workers = 0, broken_invariants = 0;
    std::array<uint64_t, kUpgradeBuckets.size() + 1> buckets{};  // cumulative, then +Inf
    int64_t duration_sum_ms = 0;                                 // whole ms: carried exactly
    std::map<int, uint64_t> slot_gen;                            // the last generation spawned in each slot
    uint64_t newest_gen = 0;                                     // the newest generation spawned or pre-checked
    std::map<uint64_t, Millis> upgrade_started;                  // generation → when its upgrade began
};

// Counted from what the machine already says (UpgradeVerdict, Spawn, watchdog timers), so
// the machine needs no metrics of its own.
class MetricsCounters {
public:
    // Call with every event fed to the machine and every action it returned, with the time.
    void observe(const Event& e);
    void observe(const Action& a, Millis now);
    void invariant_broken() { s_.broken_invariants++; }

    uint64_t upgrades_ok() const { return s_.upgrades_ok; }
    uint64_t upgrades_failed() const { return s_.upgrades_failed; }
    uint64_t worker_restarts() const { return s_.worker_restarts; }
    uint64_t hung_workers() const { return s_.hung_workers; }
    uint64_t broken_invariants() const { return s_.broken_invariants; }
    // Cumulative counts per bucket of kUpgradeBuckets, then +Inf.
    const std::array<uint64_t, kUpgradeBuckets.size() + 1>& duration_buckets() const { return s_.buckets; }
    double duration_sum_seconds() const { return static_cast<double>(s_.duration_sum_ms) / 1000.0; }

    // For a reexec: what to carry, and the new image taking it in.
    const CounterState& state() const { return s_; }
    void restore(CounterState s) { s_ = std::move(s); }

private:
    CounterState s_;
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
