// Fuzz target: the upgrade state machine (supervisor/upgrade_machine.*) driven by a model of
// the shell's executor. The input decodes into settings and a sequence of events: upgrade
// and stop requests from signals and clients, spawn results (success or failure, decided
// when the shell would run the Spawn: results are queued after the step, as the shell
// does), exits of any live process in any state (with or without leftovers), READY=1
// from workers and strangers, the probe seeing any process accept, timers firing (or arriving stale), pre-check results, lost
// clients, time passing; with and without a stop delay and a probation window. After every step: the machine's invariants, and the shell's view:
// no signal to a reaped pid, nothing spawned after Exit, every waiting client answered at
// most once (and exactly once by the end), Exit only for a stop or a startup failure.
// At the end the model stops the machine and lets everything exit: it must reach Exit.
#include <deque>
#include <map>
#include <set>
#include <string>

#include "supervisor/upgrade_machine.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace sv;

struct Input {
    const uint8_t* p;
    size_t n;
    uint8_t byte() {
        if (n == 0) return 0;
        n--;
        return *p++;
    }
    bool empty() const { return n == 0; }
};

class Model {
public:
    Model(MachineSettings s, Input& in) : m_(s), in_(in) {}

    void feed(const Event& first) {
        std::deque<Event> queue{first};
        while (!queue.empty()) {
            Event e = queue.front();
            queue.pop_front();
            if (std::holds_alternative<WorkerSpawned>(e)) spawned_any_ = true;
            auto actions = m_.handle(e, now_);
            steps_++;
            std::string broken = m_.check_invariants();
            if (!broken.empty()) std::fprintf(stderr, "fuzz: %s\n  %s\n", broken.c_str(), m_.describe().c_str());
            fuzz::check(broken.empty(), "the machine's invariants hold after every step");
            for (const auto& a : actions) execute(a, queue);
        }
    }

    void execute(const Action& a, std::deque<Event>& queue) {
        if (auto* sp = std::get_if<Spawn>(&a)) {
            fuzz::check(exit_code_ < 0, "nothing is spawned after Exit");
            fuzz::check(!listeners_closed_, "nothing is spawned once the listeners are closed");
            bool ok = (in_.byte() % 8) != 0 || force_ok_;
            if (ok) {
                int pid = next_pid_++;
                live_.insert(pid);
                queue.push_back(WorkerSpawned{sp->gen, sp->slot, pid});
            } else {
                queue.push_back(SpawnFailed{sp->gen, sp->slot, (in_.byte() & 1) ? 2 /*ENOENT*/ : 11 /*EAGAIN*/, "fuzz"});
            }
        } else if (auto* sg = std::get_if<Signal>(&a)) {
            fuzz::check(exit_code_ < 0, "nothing is signalled after Exit");
            fuzz::check(live_.count(sg->pid) == 1, "a signal goes only to a live, unreaped worker");
        } else if (auto* k = std::get_if<KillGroup>(&a)) {
            fuzz::check(live_.count(k->pid) == 1 || lingering_.count(k->pid) == 1,
                        "a kill goes only to a live worker or to what a reaped one left behind");
            lingering_.erase(k->pid);
        } else if (auto* t = std::get_if<StartTimer>(&a)) {
            fuzz::check(exit_code_ < 0, "no timer starts after Exit");
            timers_.erase(key(t->id));
            timers_.emplace(key(t->id), t->id);
        } else if (auto* c = std::get_if<CancelTimer>(&a)) {
            timers_.erase(key(c->id));
        } else if (std::get_if<RunPreCheck>(&a)) {
            pre_checks_.push_back(std::get<RunPreCheck>(a).gen);
        } else if (auto* ans = std::get_if<AnswerUpgrade>(&a)) {
            fuzz::check(ans->client != 0, "a signal's request is never answered");
            fuzz::check(outstanding_[ans->client] > 0, "a client is answered only for a request it made");
            outstanding_[ans->client]--;
        } else if (std::holds_alternative<CloseListeners>(a)) {
            fuzz::check(stop_asked_ && !listeners_closed_, "the listeners are closed once, and only at a stop");
            listeners_closed_ = true;
        } else if (auto* x = std::get_if<Exit>(&a)) {
            fuzz::check(exit_code_ < 0, "Exit comes once");
            fuzz::check(stop_asked_ ? x->code == 0 : (!spawned_any_ && x->code != 0),
                        "Exit only after a stop (code 0) or for a first spawn that failed");
            exit_code_ = x->code;
        }
    }

    void request_upgrade(uint64_t client) {
        if (client != 0) outstanding_[client]++;
        feed(UpgradeRequested{client});
    }
    void stop(StopSource s) {
        stop_asked_ = true;
        feed(StopRequested{s});
    }
    void exit_one(uint8_t pick, int status, bool group_alive) {
        if (live_.empty()) return;
        int pid = nth(live_, pick);
        live_.erase(pid);
        if (group_alive) lingering_.insert(pid);
        feed(WorkerExited{pid, status, group_alive});
    }
    void group_gone(uint8_t pick) {
        if (lingering_.empty()) return;
        int pid = nth(lingering_, pick);
        lingering_.erase(pid);
        feed(GroupGone{pid});
    }
    void fire(uint8_t pick) {
        if (timers_.empty()) {
            feed(TimerFired{TimerId{TimerId::Kind::Drain, 999}});  // stale
            return;
        }
        auto it = timers_.begin();
        std::advance(it, pick % timers_.size());
        TimerId id = it->second;
        timers_.erase(it);
        feed(TimerFired{id});
    }
    void ready(uint8_t pick) {
        NotifyMessage m;
        m.ready = (pick & 0x40) == 0;
        m.watchdog = (pick & 0x20) != 0;
        feed(Notified{live_.empty() || pick == 255 ? 1 : nth(live_, pick), m});
    }
    void accepting(uint8_t pick) {
        feed(WorkerAccepting{live_.empty() || pick == 255 ? 1 : nth(live_, pick), (pick & 1) ? "epoll" : "accept"});
    }
    void pre_check_done(uint8_t pick) {
        uint64_t gen = pre_checks_.empty() ? 77 : pre_checks_[pick % pre_checks_.size()];
        feed(PreCheckDone{gen, (pick & 0x80) == 0, "fuzz"});
    }
    void client_gone(uint64_t client) {
        outstanding_[client] = 0;
        feed(ClientGone{client});
    }
    void advance(uint8_t ms) { now_ += Millis(ms * 37); }

    // Stop, then let every process exit and every timer fire: the machine must exit.
    void finish() {
        force_ok_ = true;
        if (exit_code_ < 0) stop(StopSource::Signal);
        for (int round = 0; round < 64 && exit_code_ < 0; round++) {
            while (!live_.empty()) exit_one(0, 0, false);
            while (!lingering_.empty()) group_gone(0);
            if (!timers_.empty()) fire(0);
        }
        fuzz::check(exit_code_ >= 0, "a stopped machine exits once its processes are gone");
        for (const auto& [client, n] : outstanding_) fuzz::check(n == 0, "every waiting client is answered by the end");
    }

    bool done() const { return exit_code_ >= 0; }

private:
    static std::pair<int, uint64_t> key(const TimerId& id) { return {static_cast<int>(id.kind), id.key}; }
    static int nth(const std::set<int>& s, uint8_t pick) {
        auto it = s.begin();
        std::advance(it, pick % s.size());
        return *it;
    }

    UpgradeMachine m_;
    Input& in_;
    Millis now_{0};
    int next_pid_ = 100;
    std::set<int> live_;       // spawned, not reaped
    std::set<int> lingering_;  // reaped with leftovers not yet gone or killed
    std::map<std::pair<int, uint64_t>, TimerId> timers_;
    std::vector<uint64_t> pre_checks_;
    std::map<uint64_t, int> outstanding_;  // client → requests not answered yet
    bool stop_asked_ = false, spawned_any_ = false, force_ok_ = false, listeners_closed_ = false;
    int exit_code_ = -1;
    long steps_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in{data, size};
    uint8_t cfg = in.byte();
    MachineSettings s;
    s.workers = 1 + cfg % 3;
    s.rolling = (cfg & 0x04) != 0;
    s.pre_check = (cfg & 0x08) != 0;
    const ReadyMode modes[] = {ReadyMode::Notify, ReadyMode::Delay, ReadyMode::Accepting, ReadyMode::Auto};
    s.ready_mode = modes[(cfg >> 4) & 3];
    s.can_probe = (cfg & 0x40) == 0;
    s.worker_watchdog = (cfg & 0x80) != 0 ? Millis(250) : Millis(0);
    s.ready_delay = Millis(100);
    s.ready_timeout = Millis(500);
    s.drain_timeout = Millis(300);
    // A second settings byte: the stop delay and probation, off or on (each half the time).
    uint8_t cfg2 = in.byte();
    s.stop_delay = (cfg2 & 1) != 0 ? Millis(200) : Millis(0);
    s.probation = (cfg2 & 2) != 0 ? Millis(400) : Millis(0);
    Model model(s, in);
    model.feed(Boot{});
    while (!in.empty() && !model.done()) {
        uint8_t op = in.byte(), arg = in.byte();
        switch (op % 13) {
        case 0: model.request_upgrade(arg % 4); break;
        case 1: {
            const StopSource sources[] = {StopSource::Signal, StopSource::Control, StopSource::Interrupt, StopSource::Signal};
            model.stop(sources[arg & 3]);
            break;
        }
        case 2:
        case 3: model.exit_one(arg, (arg & 0x40) ? 9 /*SIGKILL*/ : (arg & 0x20) << 3, (arg & 0x80) != 0); break;
        case 4:
        case 5: model.ready(arg); break;
        case 6:
        case 7: model.fire(arg); break;
        case 8: model.pre_check_done(arg); break;
        case 9: model.group_gone(arg); break;
        case 10: model.client_gone(1 + arg % 3); break;
        case 11: model.advance(arg); break;
        case 12: model.accepting(arg); break;
        }
    }
    model.finish();
    return 0;
}
