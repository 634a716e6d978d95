// Drives the upgrade state machine like the shell does, for the machine's unit tests:
// one event at a time, spawn results queued after the step, invariants after every step.
#pragma once

#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "supervisor/upgrade_machine.h"

namespace machine_test {

using namespace sv;

inline int exited(int code) { return code << 8; }  // a waitpid status for exit(code)
inline int killed_by(int sig) { return sig; }

// Drives the machine like the shell does (Spawn → WorkerSpawned with a made-up pid) and
// checks the invariants after every step.
struct Harness {
    UpgradeMachine m;
    Millis now{0};
    int next_pid = 100;
    std::vector<Action> last;
    std::vector<Action> all;
    std::map<int, uint64_t> ids;  // pid → the machine's worker id

    explicit Harness(MachineSettings s = notify_settings()) : m(s) {}

    static MachineSettings notify_settings() {
        MachineSettings s;
        s.ready_mode = ReadyMode::Notify;
        s.ready_timeout = Millis(5000);
        s.drain_timeout = Millis(3000);
        return s;
    }

    // Like the shell: one event at a time; a spawn's result is queued and fed after the
    // step that asked for it, never inside it.
    std::vector<Action> feed(const Event& e) {
        std::deque<Event> queue{e};
        std::vector<Action> result;
        while (!queue.empty()) {
            Event next = queue.front();
            queue.pop_front();
            auto out = m.handle(next, now);
            INFO("invariants: " << m.check_invariants() << " state: " << m.describe());
            REQUIRE(m.check_invariants().empty());
            for (const auto& w : m.workers()) ids[w.pid] = w.id;
            for (auto& a : out) {
                result.push_back(a);
                if (auto* s = std::get_if<Spawn>(&a)) queue.push_back(WorkerSpawned{s->gen, s->slot, next_pid++});
            }
        }
        last = result;
        all.insert(all.end(), result.begin(), result.end());
        return result;
    }
    // The timer of the worker that has (or had) `pid`: the machine keys timers by worker id.
    TimerId tid(TimerId::Kind kind, int pid) const {
        auto it = ids.find(pid);
        return TimerId{kind, it == ids.end() ? 1'000'000u + static_cast<uint64_t>(pid) : it->second};
    }
    void advance(Millis d) { now += d; }
    int pid_of(uint64_t gen, int slot = 0) const {
        for (const auto& w : m.workers())
            if (w.gen == gen && w.slot == slot) return w.pid;
        return -1;
    }
    int live_of(int slot) const {  // the pid of the slot's live (starting or ready) worker
        for (const auto& w : m.workers())
            if (w.slot == slot && (w.state == WorkerState::Starting || w.state == WorkerState::Ready)) return w.pid;
        return -1;
    }
    void ready(uint64_t gen, int slot = 0) { feed(Notified{pid_of(gen, slot), NotifyMessage{true, false, false, {}}}); }

    template <typename A>
    int count(const std::vector<Action>& v) const {
        int n = 0;
        for (const auto& a : v) n += std::holds_alternative<A>(a);
        return n;
    }
    template <typename A>
    const A* first(const std::vector<Action>& v) const {
        for (const auto& a : v)
            if (auto* x = std::get_if<A>(&a)) return x;
        return nullptr;
    }
    bool signalled(int pid, int sig, const std::vector<Action>& v) const {
        for (const auto& a : v)
            if (auto* s = std::get_if<Signal>(&a); s && s->pid == pid && s->sig == sig) return true;
        return false;
    }
    bool group_killed(int pid, const std::vector<Action>& v) const {
        for (const auto& a : v)
            if (auto* k = std::get_if<KillGroup>(&a); k && k->pid == pid) return true;
        return false;
    }
    bool logged(const std::string& needle, const std::vector<Action>& v) const {
        for (const auto& a : v)
            if (auto* l = std::get_if<Log>(&a); l && l->text.find(needle) != std::string::npos) return true;
        return false;
    }
    // Boots gen 1 and makes it ready.
    void serve() {
        feed(Boot{});
        advance(Millis(50));
        ready(1);
        REQUIRE(m.phase() == Phase::Serving);
    }
};


inline bool started_timer(const std::vector<Action>& v, TimerId id, long ms) {
    for (const auto& a : v)
        if (auto* t = std::get_if<StartTimer>(&a); t && t->id == id && t->after.count() == ms) return true;
    return false;
}
inline bool cancelled(const std::vector<Action>& v, TimerId id) {
    for (const auto& a : v)
        if (auto* c = std::get_if<CancelTimer>(&a); c && c->id == id) return true;
    return false;
}
inline MachineSettings n_workers(int n, bool rolling = false) {
    MachineSettings s = Harness::notify_settings();
    s.workers = n;
    s.rolling = rolling;
    return s;
}
inline bool pid_alive_in(const Harness& h, int pid) {
    const Worker* w = h.m.find_pid(pid);
    return w != nullptr && w->state == WorkerState::Ready;
}

} // namespace machine_test
