// Every transition of the upgrade state machine, with time passed in.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <csignal>

#include "supervisor/upgrade_machine.h"

using namespace sv;

namespace {

int exited(int code) { return code << 8; }  // a waitpid status for exit(code)
int killed_by(int sig) { return sig; }

// Drives the machine like the shell does (Spawn → WorkerSpawned with a made-up pid) and
// checks the invariants after every step.
struct Harness {
    UpgradeMachine m;
    Millis now{0};
    int next_pid = 100;
    std::vector<Action> last;
    std::vector<Action> all;

    explicit Harness(MachineSettings s = notify_settings()) : m(s) {}

    static MachineSettings notify_settings() {
        MachineSettings s;
        s.ready_mode = ReadyMode::Notify;
        s.ready_timeout = Millis(5000);
        s.drain_timeout = Millis(3000);
        return s;
    }

    std::vector<Action> feed(const Event& e) {
        auto out = m.handle(e, now);
        INFO("invariants: " << m.check_invariants());
        REQUIRE(m.check_invariants().empty());
        std::vector<Action> result;
        for (auto& a : out) {
            result.push_back(a);
            if (auto* s = std::get_if<Spawn>(&a)) {
                auto more = feed(WorkerSpawned{s->gen, next_pid++});
                result.insert(result.end(), more.begin(), more.end());
            }
        }
        last = result;
        all.insert(all.end(), result.begin(), result.end());
        return result;
    }
    void advance(Millis d) { now += d; }
    int pid_of(uint64_t gen) const {
        for (const auto& w : m.workers())
            if (w.gen == gen) return w.pid;
        return -1;
    }
    void ready(uint64_t gen) { feed(Notified{pid_of(gen), NotifyMessage{true, false, false, {}}}); }

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

} // namespace

TEST_CASE("boot: gen 1 is spawned, ready on READY=1, systemd told READY=1") {
    Harness h;
    auto out = h.feed(Boot{});
    CHECK_EQ(h.count<Spawn>(out), 1);
    CHECK_EQ(h.m.phase(), Phase::Starting);
    CHECK_EQ(h.m.starting_gen(), 1u);
    auto* t = h.first<StartTimer>(out);
    REQUIRE(t != nullptr);
    CHECK_EQ(t->after.count(), 5000);
    h.advance(Millis(212));
    h.ready(1);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 1u);
    CHECK(h.logged("ready gen=1 pid=100 after_ms=212", h.last));
    auto* n = h.first<NotifySystemd>(h.last);
    REQUIRE(n != nullptr);
    CHECK(n->state.find("READY=1") != std::string::npos);
}

TEST_CASE("delay mode: ready when the delay passes, READY=1 alone does not decide") {
    MachineSettings s;
    s.ready_mode = ReadyMode::Delay;
    s.ready_delay = Millis(1000);
    Harness h(s);
    h.feed(Boot{});
    h.ready(1);
    CHECK_EQ(h.m.phase(), Phase::Starting);
    h.advance(Millis(1000));
    h.feed(TimerFired{{TimerId::Kind::Ready, 1}});
    CHECK_EQ(h.m.phase(), Phase::Serving);
}

TEST_CASE("upgrade ok: new gen ready → old drains with the drain signal and a kill timer") {
    Harness h;
    h.serve();
    auto out = h.feed(UpgradeRequested{});
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    CHECK_EQ(h.m.starting_gen(), 2u);
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK(n->state.find("RELOADING=1") != std::string::npos);
    int old_pid = h.pid_of(1);
    h.advance(Millis(80));
    h.ready(2);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK(h.signalled(old_pid, SIGTERM, h.last));
    auto* verdict = h.first<UpgradeVerdict>(h.last);
    REQUIRE(verdict != nullptr);
    CHECK(verdict->ok);
    CHECK_EQ(verdict->gen, 2u);
    bool drain_timer = false;
    for (const auto& a : h.last)
        if (auto* t = std::get_if<StartTimer>(&a); t && t->id == TimerId{TimerId::Kind::Drain, 1}) drain_timer = t->after.count() == 3000;
    CHECK(drain_timer);
    SUBCASE("old exits: timer cancelled, logged with drain time") {
        h.advance(Millis(40));
        auto o = h.feed(WorkerExited{old_pid, exited(0)});
        CHECK(h.logged("exited gen=1", o));
        CHECK(h.logged("exit=0 drain_ms=40", o));
        CHECK_EQ(h.count<CancelTimer>(o), 1);
        CHECK_EQ(h.m.workers().size(), 1u);
    }
    SUBCASE("old ignores the drain signal: killed with its group at the deadline") {
        h.advance(Millis(3000));
        auto o = h.feed(TimerFired{{TimerId::Kind::Drain, 1}});
        CHECK(h.group_killed(old_pid, o));
        CHECK(h.logged("drain timeout gen=1", o));
        auto o2 = h.feed(WorkerExited{old_pid, killed_by(SIGKILL)});
        CHECK(h.logged("signal=SIGKILL", o2));
        CHECK_EQ(h.count<CancelTimer>(o2), 0);
    }
}

TEST_CASE("rollback: new gen exits before ready → old keeps serving, failure reported") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    int new_pid = h.pid_of(2);
    h.advance(Millis(30));
    auto out = h.feed(WorkerExited{new_pid, exited(1)});
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 1u);
    CHECK_FALSE(h.signalled(h.pid_of(1), SIGTERM, out));
    auto* v = h.first<UpgradeVerdict>(out);
    REQUIRE(v != nullptr);
    CHECK_FALSE(v->ok);
    CHECK(v->reason.find("exit=1") != std::string::npos);
    CHECK(h.logged("upgrade failed gen=2", out));
    CHECK(h.logged("serving_gen=1", out));
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK(n->state.find("READY=1") != std::string::npos);
    SUBCASE("the next upgrade gets a fresh generation") {
        auto o = h.feed(UpgradeRequested{});
        CHECK_EQ(h.m.starting_gen(), 3u);
        CHECK_EQ(h.count<Spawn>(o), 1);
    }
}

TEST_CASE("rollback: exec failure during an upgrade") {
    Harness h;
    h.serve();
    auto out = h.m.handle(UpgradeRequested{}, h.now);  // do not auto-spawn: the spawn fails
    REQUIRE(h.count<Spawn>(out) == 1);
    auto o = h.feed(SpawnFailed{2, EACCES, "cannot execute './server': Permission denied"});
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 1u);
    CHECK(h.logged("Permission denied", o));
    CHECK_EQ(h.count<Exit>(o), 0);
}

TEST_CASE("rollback: ready timeout kills the new gen's group, old keeps serving") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    int new_pid = h.pid_of(2);
    h.advance(Millis(5000));
    auto out = h.feed(TimerFired{{TimerId::Kind::Ready, 2}});
    CHECK(h.group_killed(new_pid, out));
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 1u);
    auto* v = h.first<UpgradeVerdict>(out);
    REQUIRE(v != nullptr);
    CHECK_FALSE(v->ok);
    CHECK(v->reason.find("no READY=1 within the ready timeout of 5s") != std::string::npos);
    SUBCASE("a late READY=1 from the killed worker changes nothing") {
        h.feed(Notified{new_pid, NotifyMessage{true, false, false, {}}});
        CHECK_EQ(h.m.serving_gen(), 1u);
    }
    SUBCASE("its exit is reaped quietly") {
        auto o = h.feed(WorkerExited{new_pid, killed_by(SIGKILL)});
        CHECK(h.logged("reaped failed gen=2", o));
        CHECK_EQ(h.m.serving_gen(), 1u);
        CHECK_EQ(h.m.workers().size(), 1u);
    }
}

TEST_CASE("coalescing: requests during an upgrade merge into exactly one more") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    for (int i = 0; i < 1000; i++) h.feed(UpgradeRequested{});
    CHECK(h.m.upgrade_pending());
    CHECK_EQ(h.m.starting_gen(), 2u);
    h.ready(2);
    // gen 2 took over and the one queued upgrade started at once
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK_EQ(h.m.starting_gen(), 3u);
    CHECK_FALSE(h.m.upgrade_pending());
    h.ready(3);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.count<Spawn>(h.all), 3);
    SUBCASE("and after a failed upgrade, the queued one still runs") {
        h.feed(UpgradeRequested{});
        h.feed(UpgradeRequested{});
        h.feed(WorkerExited{h.pid_of(4), exited(1)});
        CHECK_EQ(h.m.starting_gen(), 5u);
        CHECK_EQ(h.m.serving_gen(), 3u);
    }
}

TEST_CASE("crash of the serving worker: respawn with exponential backoff, reset after uptime") {
    Harness h;
    h.serve();
    h.advance(Millis(100));
    auto out = h.feed(WorkerExited{h.pid_of(1), killed_by(SIGSEGV)});
    CHECK_EQ(h.m.phase(), Phase::Starting);
    CHECK(h.logged("worker died gen=1", out));
    CHECK(h.logged("signal=SIGSEGV", out));
    auto* t = h.first<StartTimer>(out);
    REQUIRE(t != nullptr);
    CHECK(t->id == TimerId{TimerId::Kind::Respawn, 0});
    CHECK_EQ(t->after.count(), 100);
    CHECK(h.logged("respawn gen=2 in_ms=100", out));

    // The respawned one fails to start twice: 200 ms, then 400 ms.
    h.feed(TimerFired{{TimerId::Kind::Respawn, 0}});
    CHECK_EQ(h.m.starting_gen(), 2u);
    auto o2 = h.feed(WorkerExited{h.pid_of(2), exited(1)});
    CHECK_EQ(h.first<StartTimer>(o2)->after.count(), 200);
    h.feed(TimerFired{{TimerId::Kind::Respawn, 0}});
    auto o3 = h.feed(WorkerExited{h.pid_of(3), exited(1)});
    CHECK_EQ(h.first<StartTimer>(o3)->after.count(), 400);
    CHECK_EQ(h.count<Exit>(h.all), 0);

    // Then one comes up and stays up long enough: the next crash starts from 100 ms again.
    h.feed(TimerFired{{TimerId::Kind::Respawn, 0}});
    h.ready(4);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    h.advance(Millis(10'000));
    auto o4 = h.feed(WorkerExited{h.pid_of(4), exited(2)});
    CHECK_EQ(h.first<StartTimer>(o4)->after.count(), 100);
}

TEST_CASE("backoff is capped at 30 s") {
    Backoff b(Millis(100), Millis(30'000), Millis(10'000));
    Millis last{0};
    for (int i = 0; i < 20; i++) last = b.next();
    CHECK_EQ(last.count(), 30'000);
}

TEST_CASE("an upgrade request while a respawn waits starts the new code at once") {
    Harness h;
    h.serve();
    h.feed(WorkerExited{h.pid_of(1), exited(1)});
    auto out = h.feed(UpgradeRequested{});
    bool cancelled = false;
    for (const auto& a : out)
        if (auto* c = std::get_if<CancelTimer>(&a); c && c->id == TimerId{TimerId::Kind::Respawn, 0}) cancelled = true;
    CHECK(cancelled);
    CHECK_EQ(h.m.starting_gen(), 2u);
    h.ready(2);
    auto* v = h.first<UpgradeVerdict>(h.last);
    REQUIRE(v != nullptr);
    CHECK(v->ok);
    SUBCASE("the stale respawn timer firing later does nothing") {
        auto o = h.feed(TimerFired{{TimerId::Kind::Respawn, 0}});
        CHECK_EQ(h.count<Spawn>(o), 0);
    }
}

TEST_CASE("upgrade requested before the first generation is ready: queued, run after it") {
    Harness h;
    h.feed(Boot{});
    h.feed(UpgradeRequested{});
    h.feed(UpgradeRequested{});
    CHECK(h.m.upgrade_pending());
    CHECK_EQ(h.count<Spawn>(h.all), 1);
    h.ready(1);
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    CHECK_EQ(h.m.starting_gen(), 2u);
}

TEST_CASE("the serving worker crashes during an upgrade: the new one takes over") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    auto out = h.feed(WorkerExited{h.pid_of(1), killed_by(SIGKILL)});
    CHECK_EQ(h.m.phase(), Phase::Starting);
    CHECK_EQ(h.count<StartTimer>(out), 0);  // no respawn: gen 2 is already starting
    h.ready(2);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK(h.logged("upgrade done gen=2 pid=101 replaced_gen=1", h.last));
    SUBCASE("or, if the new one fails too, a respawn is scheduled") {
        Harness g;
        g.serve();
        g.feed(UpgradeRequested{});
        g.feed(WorkerExited{g.pid_of(1), killed_by(SIGKILL)});
        auto o = g.feed(WorkerExited{g.pid_of(2), exited(1)});
        CHECK_EQ(g.m.phase(), Phase::Starting);
        CHECK(g.logged("respawn gen=3", o));
        auto* v = g.first<UpgradeVerdict>(o);
        REQUIRE(v != nullptr);
        CHECK_FALSE(v->ok);
    }
}

TEST_CASE("first worker cannot be executed: a startup error with 127/126") {
    SUBCASE("not found") {
        Harness h;
        auto out = h.m.handle(Boot{}, h.now);
        REQUIRE(h.count<Spawn>(out) == 1);
        auto o = h.feed(SpawnFailed{1, ENOENT, "cannot execute './nope': No such file or directory"});
        auto* e = h.first<Exit>(o);
        REQUIRE(e != nullptr);
        CHECK_EQ(e->code, 127);
        CHECK_EQ(h.m.phase(), Phase::Stopped);
    }
    SUBCASE("not executable") {
        Harness h;
        (void)h.m.handle(Boot{}, h.now);
        auto o = h.feed(SpawnFailed{1, EACCES, "cannot execute './x': Permission denied"});
        CHECK_EQ(h.first<Exit>(o)->code, 126);
    }
    SUBCASE("but a later exec failure while nothing serves is retried, not fatal") {
        Harness h;
        h.serve();
        h.feed(WorkerExited{h.pid_of(1), exited(1)});
        auto out = h.m.handle(TimerFired{{TimerId::Kind::Respawn, 0}}, h.now);
        REQUIRE(h.count<Spawn>(out) == 1);
        auto o = h.feed(SpawnFailed{2, ENOENT, "gone"});
        CHECK_EQ(h.count<Exit>(o), 0);
        CHECK(h.logged("respawn gen=3 in_ms=200", o));
    }
}

TEST_CASE("first worker exits before ready: respawned with backoff, never an exit") {
    Harness h;
    h.feed(Boot{});
    auto out = h.feed(WorkerExited{h.pid_of(1), exited(1)});
    CHECK_EQ(h.count<Exit>(out), 0);
    CHECK(h.logged("start failed gen=1", out));
    CHECK(h.logged("respawn gen=2 in_ms=100", out));
}

TEST_CASE("stop: every worker drains, exit 0 once the last is reaped") {
    Harness h;
    h.serve();
    auto out = h.feed(StopRequested{});
    CHECK_EQ(h.m.phase(), Phase::Stopping);
    CHECK(h.signalled(h.pid_of(1), SIGTERM, out));
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, "STOPPING=1");
    CHECK_EQ(h.count<Exit>(out), 0);
    h.feed(UpgradeRequested{});  // ignored while stopping
    CHECK_EQ(h.count<Spawn>(h.last), 0);
    auto o = h.feed(WorkerExited{h.pid_of(1), exited(0)});
    auto* e = h.first<Exit>(o);
    REQUIRE(e != nullptr);
    CHECK_EQ(e->code, 0);
    CHECK_EQ(h.m.phase(), Phase::Stopped);
}

TEST_CASE("stop during an upgrade: both generations drain, the upgrade is reported failed") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    h.feed(UpgradeRequested{});  // queued, must be dropped
    int p1 = h.pid_of(1), p2 = h.pid_of(2);
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(p1, SIGTERM, out));
    CHECK(h.signalled(p2, SIGTERM, out));
    auto* v = h.first<UpgradeVerdict>(out);
    REQUIRE(v != nullptr);
    CHECK_FALSE(v->ok);
    CHECK_FALSE(h.m.upgrade_pending());
    h.feed(Notified{p2, NotifyMessage{true, false, false, {}}});  // late READY: ignored
    CHECK_EQ(h.m.phase(), Phase::Stopping);
    h.feed(WorkerExited{p2, exited(0)});
    CHECK_EQ(h.count<Exit>(h.last), 0);
    h.feed(WorkerExited{p1, exited(0)});
    CHECK_EQ(h.count<Exit>(h.last), 1);
}

TEST_CASE("a second stop request kills every worker's group at once") {
    Harness h;
    h.serve();
    h.feed(StopRequested{});
    auto out = h.feed(StopRequested{});
    CHECK(h.group_killed(h.pid_of(1), out));
    auto again = h.feed(StopRequested{});
    CHECK_EQ(h.count<KillGroup>(again), 0);  // already killed
}

TEST_CASE("stop while a respawn waits: the timer is cancelled, exit at once") {
    Harness h;
    h.serve();
    h.feed(WorkerExited{h.pid_of(1), exited(1)});
    auto out = h.feed(StopRequested{});
    CHECK_EQ(h.count<CancelTimer>(out), 1);
    CHECK_EQ(h.first<Exit>(out)->code, 0);
}

TEST_CASE("READY=1 from a stranger or another worker's child changes nothing") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    auto out = h.feed(Notified{4242, NotifyMessage{true, false, false, {}}});
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    CHECK(h.logged("ignored notify message from pid=4242", out));
    SUBCASE("nor does READY=1 from the old worker make the new one ready") {
        h.feed(Notified{h.pid_of(1), NotifyMessage{true, false, false, {}}});
        CHECK_EQ(h.m.phase(), Phase::Upgrading);
        CHECK_EQ(h.m.serving_gen(), 1u);
    }
}

TEST_CASE("STATUS= is recorded and logged once per change") {
    Harness h;
    h.serve();
    auto out = h.feed(Notified{h.pid_of(1), NotifyMessage{false, false, false, std::string("42 conns")}});
    CHECK(h.logged("status gen=1 pid=100 status=\"42 conns\"", out));
    CHECK_EQ(h.m.find_pid(100)->status, "42 conns");
    auto again = h.feed(Notified{h.pid_of(1), NotifyMessage{false, false, false, std::string("42 conns")}});
    CHECK_EQ(h.count<Log>(again), 0);
}

TEST_CASE("an unknown child (an orphan we reaped as subreaper) is only logged") {
    Harness h;
    h.serve();
    auto out = h.feed(WorkerExited{9999, exited(0)});
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK(h.logged("reaped pid=9999", out));
}

TEST_CASE("forwarded signals reach starting and ready workers, not draining ones") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    h.ready(2);
    h.feed(UpgradeRequested{});
    int draining = h.pid_of(1), ready = h.pid_of(2), starting = h.pid_of(3);
    auto out = h.feed(ForwardSignal{SIGUSR1});
    CHECK(h.signalled(ready, SIGUSR1, out));
    CHECK(h.signalled(starting, SIGUSR1, out));
    CHECK_FALSE(h.signalled(draining, SIGUSR1, out));
}

TEST_CASE("stale timers are ignored") {
    Harness h;
    h.serve();
    CHECK(h.feed(TimerFired{{TimerId::Kind::Ready, 1}}).empty());
    CHECK(h.feed(TimerFired{{TimerId::Kind::Drain, 7}}).empty());
    CHECK(h.feed(TimerFired{{TimerId::Kind::Respawn, 0}}).empty());
}

TEST_CASE("describe_wait_status") {
    CHECK_EQ(describe_wait_status(exited(3)), "exit=3");
    CHECK_EQ(describe_wait_status(killed_by(SIGKILL)), "signal=SIGKILL");
}

TEST_CASE("UpgradeStarted names the generation that answers the requests made before it") {
    Harness h;
    h.serve();
    auto out = h.feed(UpgradeRequested{});
    auto* s = h.first<UpgradeStarted>(out);
    REQUIRE(s != nullptr);
    CHECK_EQ(s->gen, 2u);
    auto queued = h.feed(UpgradeRequested{});
    CHECK_EQ(h.count<UpgradeStarted>(queued), 0);  // covered by the next one, not by gen 2
    h.ready(2);
    // gen 2's verdict comes before gen 3 starts, so a waiter never takes the wrong verdict
    int verdict_at = -1, started_at = -1;
    for (size_t i = 0; i < h.last.size(); i++) {
        if (auto* v = std::get_if<UpgradeVerdict>(&h.last[i]); v && v->gen == 2) verdict_at = static_cast<int>(i);
        if (auto* st = std::get_if<UpgradeStarted>(&h.last[i]); st && st->gen == 3) started_at = static_cast<int>(i);
    }
    CHECK(verdict_at >= 0);
    CHECK(started_at > verdict_at);
}

TEST_CASE("--pre-check runs before each upgrade's spawn; a failure is a rollback") {
    MachineSettings s = Harness::notify_settings();
    s.pre_check = true;
    Harness h(s);
    h.serve();  // booting does not run the pre-check
    CHECK_EQ(h.count<RunPreCheck>(h.all), 0);
    auto out = h.feed(UpgradeRequested{});
    auto* rp = h.first<RunPreCheck>(out);
    REQUIRE(rp != nullptr);
    CHECK_EQ(rp->gen, 2u);
    CHECK_EQ(h.count<Spawn>(out), 0);
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    SUBCASE("passes: the new generation is spawned") {
        auto o = h.feed(PreCheckDone{2, true, ""});
        CHECK_EQ(h.count<Spawn>(o), 1);
        h.ready(2);
        CHECK_EQ(h.m.serving_gen(), 2u);
    }
    SUBCASE("fails: nothing is spawned, the old generation keeps serving, the reason is reported") {
        auto o = h.feed(PreCheckDone{2, false, "pre-check failed (exit=1): bad config"});
        CHECK_EQ(h.count<Spawn>(o), 0);
        CHECK_EQ(h.m.phase(), Phase::Serving);
        CHECK_EQ(h.m.serving_gen(), 1u);
        auto* v = h.first<UpgradeVerdict>(o);
        REQUIRE(v != nullptr);
        CHECK(v->reason.find("bad config") != std::string::npos);
    }
    SUBCASE("a stop while it runs: its late result is ignored") {
        h.feed(StopRequested{});
        auto o = h.feed(PreCheckDone{2, true, ""});
        CHECK_EQ(h.count<Spawn>(o), 0);
    }
    SUBCASE("requests during the pre-check are queued behind it") {
        h.feed(UpgradeRequested{});
        CHECK(h.m.upgrade_pending());
    }
}
