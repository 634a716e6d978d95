// Metrics: counters from the machine's events and actions, and their text exposition.
#include "supervisor/metrics.h"

#include <fmt/format.h>

#include <type_traits>
#include <variant>

#include "supervisor/health.h"

namespace sv {

void MetricsCounters::observe(const Event& e) {
    // A watchdog timer reaching the machine means a worker stayed silent past --worker-watchdog.
    if (const auto* t = std::get_if<TimerFired>(&e); t != nullptr && t->id.kind == TimerId::Kind::Watchdog) s_.hung_workers++;
}

void MetricsCounters::observe(const Action& a, Millis now) {
    if (const auto* s = std::get_if<Spawn>(&a)) {
        // The same generation spawned again in a slot is a restart; a new one is an upgrade (or the boot).
        auto it = s_.slot_gen.find(s->slot);
        if (it != s_.slot_gen.end() && it->second == s->gen) s_.worker_restarts++;
        s_.slot_gen[s->slot] = s->gen;
        if (s->gen > s_.newest_gen && s_.newest_gen > 0) s_.upgrade_started.emplace(s->gen, now);
        if (s->gen > s_.newest_gen) s_.newest_gen = s->gen;
    } else if (const auto* p = std::get_if<RunPreCheck>(&a)) {
        s_.upgrade_started.emplace(p->gen, now);  // the pre-check is part of the upgrade's time
        if (p->gen > s_.newest_gen) s_.newest_gen = p->gen;
    } else if (const auto* v = std::get_if<UpgradeVerdict>(&a)) {
        (v->ok ? s_.upgrades_ok : s_.upgrades_failed)++;
        auto it = s_.upgrade_started.find(v->gen);
        if (it == s_.upgrade_started.end()) return;
        int64_t ms = (now - it->second).count();
        double seconds = static_cast<double>(ms) / 1000.0;
        for (size_t i = 0; i < kUpgradeBuckets.size(); i++)
            if (seconds <= kUpgradeBuckets[i]) s_.buckets[i]++;
        s_.buckets.back()++;
        s_.duration_sum_ms += ms;
        // Older upgrades never get a verdict of their own once this one has one.
        s_.upgrade_started.erase(s_.upgrade_started.begin(), std::next(it));
    }
}

namespace {

// Label values: backslash, double quote and newline escaped (exposition format 0.0.4).
std::string escape_label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::string number(double v) { return fmt::format("{}", v); }

void render_upgrades(std::string& out, const StatusSnapshot& s, const MetricsCounters& c) {
    family(out, "supervisor_upgrades_total", "counter", "Upgrades by verdict (failed: rolled back, the old generation kept serving).");
    out += fmt::format("supervisor_upgrades_total{{result=\"success\"}} {}\n", c.upgrades_ok());
    out += fmt::format("supervisor_upgrades_total{{result=\"failed\"}} {}\n", c.upgrades_failed());
    family(out, "supervisor_last_upgrade_success", "gauge", "1 if the last upgrade succeeded, 0 if it failed (absent before any).");
    family(out, "supervisor_last_upgrade_timestamp_seconds", "gauge", "Unix time of the last upgrade's verdict.");
    if (s.has_last_upgrade) {
        out += fmt::format("supervisor_last_upgrade_success {}\n", s.last_upgrade.ok ? 1 : 0);
        out += fmt::format("supervisor_last_upgrade_timestamp_seconds {}\n", number(static_cast<double>(s.last_upgrade.at_unix_ms) / 1000.0));
    }
    family(out, "supervisor_upgrade_duration_seconds", "histogram", "Time from an upgrade's start to its verdict.");
    const auto& b = c.duration_buckets();
    for (size_t i = 0; i < kUpgradeBuckets.size(); i++)
        out += fmt::format("supervisor_upgrade_duration_seconds_bucket{{le=\"{}\"}} {}\n", number(kUpgradeBuckets[i]), b[i]);
    out += fmt::format("supervisor_upgrade_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", b.back());
    out += fmt::format("supervisor_upgrade_duration_seconds_sum {}\n", number(c.duration_sum_seconds()));
    out += fmt::format("supervisor_upgrade_duration_seconds_count {}\n", b.back());
}

void render_workers(std::string& out, const StatusSnapshot& s) {
    family(out, "supervisor_workers", "gauge", "Workers by state.");
    for (const char* state : {"starting", "ready", "draining", "failed"}) {
        size_t n = 0;
        for (const auto& w : s.workers) n += w.state == state ? 1 : 0;
        out += fmt::format("supervisor_workers{{state=\"{}\"}} {}\n", state, n);
    }
    family(out, "supervisor_connections", "gauge",
           "Established connections on the listeners held by each generation's workers (absent where unknown).");
    std::map<uint64_t, int64_t> per_gen;
    for (const auto& w : s.workers)
        if (w.connections >= 0) per_gen[w.gen] += w.connections;
    for (const auto& [gen, n] : per_gen) out += fmt::format("supervisor_connections{{generation=\"{}\"}} {}\n", gen, n);
}

} // namespace

std::string render_metrics(const MetricsInput& in) {
    const StatusSnapshot& s = *in.status;
    const MetricsCounters& c = *in.counters;
    std::string out;
    family(out, "supervisor_build_info", "gauge", "The supervisor's version (always 1).");
    out += fmt::format("supervisor_build_info{{version=\"{}\"}} 1\n", escape_label(in.version));
    family(out, "supervisor_up", "gauge", "1 when serving: phase serving or upgrading with a ready worker (as /readyz).");
    out += fmt::format("supervisor_up {}\n", health_of(status_json(s)).serving ? 1 : 0);
    family(out, "supervisor_serving_generation", "gauge", "The generation that serves (0: none yet).");
    out += fmt::format("supervisor_serving_generation {}\n", s.serving_gen);
    family(out, "supervisor_start_time_seconds", "gauge", "Unix time the supervisor started.");
    out += fmt::format("supervisor_start_time_seconds {}\n", number(static_cast<double>(s.started_unix_ms) / 1000.0));
    render_upgrades(out, s, c);
    family(out, "supervisor_worker_restarts_total", "counter", "Workers of the serving generation respawned after they died.");
    out += fmt::format("supervisor_worker_restarts_total {}\n", c.worker_restarts());
    family(out, "supervisor_hung_workers_total", "counter", "Workers killed for silence past --worker-watchdog.");
    out += fmt::format("supervisor_hung_workers_total {}\n", c.hung_workers());
    family(out, "supervisor_invariant_violations_total", "counter", "Broken state-machine invariants (a bug: please report).");
    out += fmt::format("supervisor_invariant_violations_total {}\n", c.broken_invariants());
    size_t drift = 0;
    for (const auto& l : s.listeners) drift += l.drift.size();
    family(out, "supervisor_listener_drift", "gauge", "Listener settings a worker changed that break the contract.");
    out += fmt::format("supervisor_listener_drift {}\n", drift);
    render_workers(out, s);
    return out;
}

} // namespace sv
