#include "supervisor/upgrade_progress.h"

#include <algorithm>
#include <iterator>

namespace sv {

using json = nlohmann::json;

std::string ready_how(const Worker& w) {
    if (!w.seen.empty()) return "accepting, " + w.seen;
    return w.notified ? "READY=1" : "delay";
}

namespace {

json worker_event(const char* name, const Worker& w) {
    return json{{"event", name}, {"gen", w.gen}, {"pid", w.pid}, {"slot", w.slot}};
}

} // namespace

std::vector<json> ProgressTracker::update(const UpgradeMachine& m, const Event& cause, Millis now_ms) {
    std::vector<json> out;
    if (m.upgrading_gen() != 0 && m.upgrading_gen() != upgrading_)
        out.push_back(json{{"event", "started"}, {"gen", m.upgrading_gen()}, {"serving_gen", m.serving_gen()}});
    upgrading_ = m.upgrading_gen();
    std::map<int, Seen> now;
    for (const auto& w : m.workers()) {
        now[w.pid] = Seen{w.gen, w.slot, w.state};
        auto it = seen_.find(w.pid);
        if (it == seen_.end()) out.push_back(worker_event("spawned", w));
        if (it != seen_.end() && it->second.state == w.state) continue;
        switch (w.state) {
        case WorkerState::Starting: break;
        case WorkerState::Ready: {
            json e = worker_event("ready", w);
            e["how"] = ready_how(w);
            e["after_ms"] = (w.ready_at - w.spawned_at).count();
            out.push_back(std::move(e));
            break;
        }
        case WorkerState::Draining: out.push_back(worker_event("draining", w)); break;
        case WorkerState::Failed: out.push_back(worker_event("failed", w)); break;
        }
    }
    for (const auto& [pid, s] : seen_) {
        if (now.count(pid) != 0) continue;
        json e{{"event", "exited"}, {"gen", s.gen}, {"pid", pid}, {"slot", s.slot}};
        if (auto* x = std::get_if<WorkerExited>(&cause); x != nullptr && x->pid == pid)
            e["status"] = describe_wait_status(x->wait_status);
        out.push_back(std::move(e));
    }
    seen_ = std::move(now);
    auto probation = m.probation_ends();
    if (probation && !probation_)
        out.push_back(json{{"event", "probation"}, {"gen", m.upgrading_gen()}, {"ms", (*probation - now_ms).count()}});
    probation_ = probation.has_value();
    // Within one step, in the order things follow from each other: a new worker is ready,
    // so the old one drains.
    static const char* const kOrder[] = {"started", "spawned", "ready", "probation", "failed", "exited", "draining"};
    auto rank = [](const json& e) {
        std::string name = e.value("event", "");
        return std::find(std::begin(kOrder), std::end(kOrder), name) - std::begin(kOrder);
    };
    std::stable_sort(out.begin(), out.end(), [&](const json& a, const json& b) { return rank(a) < rank(b); });
    return out;
}

} // namespace sv
