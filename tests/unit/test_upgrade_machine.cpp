// Every transition of the upgrade state machine, with time passed in.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <csignal>

#include <deque>
#include <map>
#include <set>

#include "supervisor/upgrade_machine.h"
#include "tests/unit/machine_harness.h"

using namespace machine_test;

TEST_CASE("boot: gen 1 is spawned, ready on READY=1, systemd told READY=1") {
    Harness h;
    auto out = h.feed(Boot{});
    CHECK_EQ(h.count<Spawn>(out), 1);
    CHECK_EQ(h.m.phase(), Phase::Starting);
    CHECK(started_timer(out, h.tid(TimerId::Kind::Ready, 100), 5000));
    h.advance(Millis(212));
    h.ready(1);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 1u);
    CHECK(h.logged("ready gen=1 pid=100 after_ms=212", h.last));
    auto* n = h.first<NotifySystemd>(h.last);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, SdState::Ready);
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
    h.feed(TimerFired{h.tid(TimerId::Kind::Ready, 100)});
    CHECK_EQ(h.m.phase(), Phase::Serving);
}

TEST_CASE("upgrade ok: new gen ready → old drains with the drain signal and a kill timer") {
    Harness h;
    h.serve();
    auto out = h.feed(UpgradeRequested{});
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    CHECK_EQ(h.m.upgrading_gen(), 2u);
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, SdState::Reloading);
    int old_pid = h.pid_of(1);
    h.advance(Millis(80));
    h.ready(2);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK(h.signalled(old_pid, SIGTERM, h.last));
    CHECK(h.logged("upgrade done gen=2 pid=101 replaced_gen=1 after_ms=80", h.last));
    auto* verdict = h.first<UpgradeVerdict>(h.last);
    REQUIRE(verdict != nullptr);
    CHECK(verdict->ok);
    CHECK_EQ(verdict->gen, 2u);
    CHECK(started_timer(h.last, h.tid(TimerId::Kind::Drain, old_pid), 3000));
    SUBCASE("old exits: timer cancelled, logged with drain time") {
        h.advance(Millis(40));
        auto o = h.feed(WorkerExited{old_pid, exited(0)});
        CHECK(h.logged("exited gen=1", o));
        CHECK(h.logged("exit=0 drain_ms=40", o));
        CHECK(cancelled(o, h.tid(TimerId::Kind::Drain, old_pid)));
        CHECK_EQ(h.m.workers().size(), 1u);
    }
    SUBCASE("old ignores the drain signal: killed with its group at the deadline") {
        h.advance(Millis(3000));
        auto o = h.feed(TimerFired{h.tid(TimerId::Kind::Drain, old_pid)});
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
    CHECK_EQ(h.count<StartTimer>(out), 0);  // nothing to respawn: gen 1 still serves
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, SdState::Ready);
    SUBCASE("the next upgrade gets a fresh generation") {
        auto o = h.feed(UpgradeRequested{});
        CHECK_EQ(h.m.upgrading_gen(), 3u);
        CHECK_EQ(h.count<Spawn>(o), 1);
    }
}

TEST_CASE("rollback: exec failure during an upgrade") {
    Harness h;
    h.serve();
    auto out = h.m.handle(UpgradeRequested{}, h.now);  // do not auto-spawn: the spawn fails
    REQUIRE(h.count<Spawn>(out) == 1);
    auto o = h.feed(SpawnFailed{2, 0, EACCES, "cannot execute './server': Permission denied"});
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
    auto out = h.feed(TimerFired{h.tid(TimerId::Kind::Ready, new_pid)});
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
    CHECK_EQ(h.m.upgrading_gen(), 2u);
    h.ready(2);
    // gen 2 took over and the one queued upgrade started at once
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK_EQ(h.m.upgrading_gen(), 3u);
    CHECK_FALSE(h.m.upgrade_pending());
    h.ready(3);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.count<Spawn>(h.all), 3);
    SUBCASE("and after a failed upgrade, the queued one still runs") {
        h.feed(UpgradeRequested{});
        h.feed(UpgradeRequested{});
        h.feed(WorkerExited{h.pid_of(4), exited(1)});
        CHECK_EQ(h.m.upgrading_gen(), 5u);
        CHECK_EQ(h.m.serving_gen(), 3u);
    }
}

TEST_CASE("crash of the serving worker: respawned in its slot (same generation) with exponential backoff") {
    Harness h;
    h.serve();
    h.advance(Millis(100));
    auto out = h.feed(WorkerExited{h.pid_of(1), killed_by(SIGSEGV)});
    CHECK_EQ(h.m.phase(), Phase::Serving);  // booted: a crash is a respawn, not a new start
    CHECK(h.m.workers().empty());
    CHECK(h.logged("worker died gen=1", out));
    CHECK(h.logged("signal=SIGSEGV", out));
    CHECK(started_timer(out, {TimerId::Kind::Respawn, 0}, 100));
    CHECK(h.logged("respawn gen=1 in_ms=100", out));

    // The respawned one fails to start twice: 200 ms, then 400 ms.
    auto r1 = h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
    REQUIRE_EQ(h.count<Spawn>(r1), 1);
    CHECK_EQ(h.first<Spawn>(r1)->gen, 1u);
    auto o2 = h.feed(WorkerExited{h.live_of(0), exited(1)});
    CHECK(started_timer(o2, {TimerId::Kind::Respawn, 0}, 200));
    h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
    auto o3 = h.feed(WorkerExited{h.live_of(0), exited(1)});
    CHECK(started_timer(o3, {TimerId::Kind::Respawn, 0}, 400));
    CHECK_EQ(h.count<Exit>(h.all), 0);

    // Then one comes up and stays up long enough: the next crash starts from 100 ms again.
    h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
    int p = h.live_of(0);
    h.feed(Notified{p, NotifyMessage{true, false, false, {}}});
    CHECK_EQ(h.m.phase(), Phase::Serving);
    h.advance(Millis(10'000));
    auto o4 = h.feed(WorkerExited{p, exited(2)});
    CHECK(started_timer(o4, {TimerId::Kind::Respawn, 0}, 100));
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
    CHECK(cancelled(out, {TimerId::Kind::Respawn, 0}));
    CHECK_EQ(h.m.upgrading_gen(), 2u);
    h.ready(2);
    auto* v = h.first<UpgradeVerdict>(h.last);
    REQUIRE(v != nullptr);
    CHECK(v->ok);
    SUBCASE("the stale respawn timer firing later does nothing") {
        auto o = h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
        CHECK_EQ(h.count<Spawn>(o), 0);
    }
    SUBCASE("if that upgrade fails, the slot's restarts resume") {
        Harness g;
        g.serve();
        g.feed(WorkerExited{g.pid_of(1), exited(1)});
        g.feed(UpgradeRequested{});
        auto o = g.feed(WorkerExited{g.pid_of(2), exited(1)});
        CHECK(started_timer(o, {TimerId::Kind::Respawn, 0}, 200));
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
    CHECK_EQ(h.m.upgrading_gen(), 2u);
}

TEST_CASE("the serving worker crashes during an upgrade: the new one takes over") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    auto out = h.feed(WorkerExited{h.pid_of(1), killed_by(SIGKILL)});
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    CHECK_EQ(h.count<StartTimer>(out), 0);  // no restart of gen 1: gen 2 is on its way
    h.ready(2);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK(h.logged("upgrade done gen=2 pid=101 replaced_gen=1", h.last));
    SUBCASE("or, if the new one fails too, gen 1's slot is restarted") {
        Harness g;
        g.serve();
        g.feed(UpgradeRequested{});
        g.feed(WorkerExited{g.pid_of(1), killed_by(SIGKILL)});
        auto o = g.feed(WorkerExited{g.pid_of(2), exited(1)});
        CHECK_EQ(g.m.phase(), Phase::Serving);
        auto* v = g.first<UpgradeVerdict>(o);
        REQUIRE(v != nullptr);
        CHECK_FALSE(v->ok);
        CHECK(started_timer(o, {TimerId::Kind::Respawn, 0}, 100));
        auto r = g.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}});
        REQUIRE_EQ(g.count<Spawn>(r), 1);
        CHECK_EQ(g.first<Spawn>(r)->gen, 1u);
    }
}

TEST_CASE("first worker cannot be executed: a startup error with 127/126") {
    SUBCASE("not found") {
        Harness h;
        auto out = h.m.handle(Boot{}, h.now);
        REQUIRE(h.count<Spawn>(out) == 1);
        auto o = h.feed(SpawnFailed{1, 0, ENOENT, "cannot execute './nope': No such file or directory"});
        auto* e = h.first<Exit>(o);
        REQUIRE(e != nullptr);
        CHECK_EQ(e->code, 127);
        CHECK_EQ(h.m.phase(), Phase::Stopped);
    }
    SUBCASE("not executable") {
        Harness h;
        (void)h.m.handle(Boot{}, h.now);
        auto o = h.feed(SpawnFailed{1, 0, EACCES, "cannot execute './x': Permission denied"});
        CHECK_EQ(h.first<Exit>(o)->code, 126);
    }
    SUBCASE("a setup failure (bad --chdir) is a system error") {
        Harness h;
        (void)h.m.handle(Boot{}, h.now);
        auto o = h.feed(SpawnFailed{1, 0, 0, "cannot change directory"});
        CHECK_EQ(h.first<Exit>(o)->code, 1);
    }
    SUBCASE("but a later exec failure while nothing serves is retried, not fatal") {
        Harness h;
        h.serve();
        h.feed(WorkerExited{h.pid_of(1), exited(1)});
        auto out = h.m.handle(TimerFired{TimerId{TimerId::Kind::Respawn, 0}}, h.now);
        REQUIRE(h.count<Spawn>(out) == 1);
        auto o = h.feed(SpawnFailed{1, 0, ENOENT, "gone"});
        CHECK_EQ(h.count<Exit>(o), 0);
        CHECK(h.logged("respawn gen=1 in_ms=200", o));
    }
}

TEST_CASE("first worker exits before ready: respawned with backoff, never an exit") {
    Harness h;
    h.feed(Boot{});
    auto out = h.feed(WorkerExited{h.pid_of(1), exited(1)});
    CHECK_EQ(h.count<Exit>(out), 0);
    CHECK(h.logged("start failed gen=1", out));
    CHECK(h.logged("respawn gen=1 in_ms=100", out));
}

TEST_CASE("stop: every worker drains, exit 0 once the last is reaped") {
    Harness h;
    h.serve();
    auto out = h.feed(StopRequested{});
    CHECK_EQ(h.m.phase(), Phase::Stopping);
    CHECK(h.signalled(h.pid_of(1), SIGTERM, out));
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, SdState::Stopping);
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
    CHECK(cancelled(out, {TimerId::Kind::Respawn, 0}));
    CHECK_EQ(h.first<Exit>(out)->code, 0);
}

TEST_CASE("READY=1 from a stranger or another worker changes nothing") {
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
    CHECK(h.feed(TimerFired{h.tid(TimerId::Kind::Ready, 100)}).empty());
    CHECK(h.feed(TimerFired{h.tid(TimerId::Kind::Drain, 7)}).empty());
    CHECK(h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 0}}).empty());
    CHECK(h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 99}}).empty());
}

TEST_CASE("describe_wait_status") {
    CHECK_EQ(describe_wait_status(exited(3)), "exit=3");
    CHECK_EQ(describe_wait_status(killed_by(SIGKILL)), "signal=SIGKILL");
}

namespace {
const AnswerUpgrade* answer_for(const std::vector<Action>& v, uint64_t client) {
    for (const auto& a : v)
        if (auto* x = std::get_if<AnswerUpgrade>(&a); x && x->client == client) return x;
    return nullptr;
}
} // namespace

TEST_CASE("each waiting client is answered once, by the upgrade that covers its request") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{7});
    auto queued = h.feed(UpgradeRequested{8});  // covered by the next one, not by gen 2
    h.feed(UpgradeRequested{9});                // merged with 8's
    CHECK_EQ(answer_for(queued, 8), nullptr);
    h.ready(2);
    auto* a7 = answer_for(h.last, 7);
    REQUIRE(a7 != nullptr);
    CHECK_EQ(a7->gen, 2u);
    CHECK(a7->ok);
    CHECK_EQ(answer_for(h.last, 8), nullptr);
    CHECK_EQ(h.m.upgrading_gen(), 3u);
    SUBCASE("the queued ones get gen 3's verdict") {
        h.feed(WorkerExited{h.pid_of(3), exited(1)});
        auto* a8 = answer_for(h.last, 8);
        auto* a9 = answer_for(h.last, 9);
        REQUIRE(a8 != nullptr);
        REQUIRE(a9 != nullptr);
        CHECK_EQ(a8->gen, 3u);
        CHECK_FALSE(a9->ok);
        CHECK_EQ(a9->serving_gen, 2u);
    }
    SUBCASE("a client that hung up is not answered") {
        h.feed(ClientGone{8});
        h.ready(3);
        CHECK_EQ(answer_for(h.last, 8), nullptr);
        CHECK(answer_for(h.last, 9) != nullptr);
    }
    SUBCASE("a stop answers every waiter: the one in flight with its gen, the rest refused") {
        auto o = h.feed(StopRequested{});
        REQUIRE(answer_for(o, 8) != nullptr);
        CHECK_EQ(answer_for(o, 8)->gen, 3u);
        CHECK_FALSE(answer_for(o, 8)->ok);
        auto late = h.feed(UpgradeRequested{10});
        REQUIRE(answer_for(late, 10) != nullptr);
        CHECK_EQ(answer_for(late, 10)->gen, 0u);
    }
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

// --- --workers N ---------------------------------------------------------------------

namespace {
void serve_n(Harness& h, int n) {
    h.feed(Boot{});
    for (int s = 0; s < n; s++) h.ready(1, s);
    REQUIRE(h.m.phase() == Phase::Serving);
}
} // namespace

TEST_CASE("--workers 3: one generation of three slots; READY=1 to systemd once all are ready") {
    Harness h(n_workers(3));
    auto out = h.feed(Boot{});
    REQUIRE_EQ(h.count<Spawn>(out), 3);
    std::set<int> slots;
    for (const auto& a : out)
        if (auto* sp = std::get_if<Spawn>(&a)) {
            slots.insert(sp->slot);
            CHECK_EQ(sp->gen, 1u);
        }
    CHECK_EQ(slots, std::set<int>{0, 1, 2});
    h.ready(1, 0);
    h.ready(1, 1);
    CHECK_EQ(h.count<NotifySystemd>(h.all), 0);
    h.ready(1, 2);
    CHECK_EQ(h.count<NotifySystemd>(h.last), 1);
    CHECK(h.logged("ready gen=1 pid=102 after_ms=0 slot=2", h.last));
}

TEST_CASE("--workers 3, all at once: the old generation drains only when all three new ones are ready") {
    Harness h(n_workers(3));
    serve_n(h, 3);
    auto out = h.feed(UpgradeRequested{});
    CHECK_EQ(h.count<Spawn>(out), 3);
    h.ready(2, 0);
    h.ready(2, 1);
    CHECK_EQ(h.count<Signal>(h.all), 0);  // nothing drains yet
    h.ready(2, 2);
    for (int s = 0; s < 3; s++) CHECK(h.signalled(h.pid_of(1, s), SIGTERM, h.last));
    CHECK_EQ(h.m.serving_gen(), 2u);
    CHECK(h.first<UpgradeVerdict>(h.last)->ok);
    SUBCASE("a crashed worker of the new generation is respawned in its slot") {
        auto o = h.feed(WorkerExited{h.pid_of(2, 1), exited(1)});
        CHECK(started_timer(o, {TimerId::Kind::Respawn, 1}, 100));
        CHECK(h.logged("respawn gen=2 in_ms=100 slot=1", o));
        auto r = h.feed(TimerFired{TimerId{TimerId::Kind::Respawn, 1}});
        REQUIRE_EQ(h.count<Spawn>(r), 1);
        CHECK_EQ(h.first<Spawn>(r)->slot, 1);
        CHECK_EQ(h.first<Spawn>(r)->gen, 2u);
    }
}

TEST_CASE("--workers 3, all at once: one new worker failing rolls the whole generation back") {
    Harness h(n_workers(3));
    serve_n(h, 3);
    h.feed(UpgradeRequested{});
    h.ready(2, 0);
    int ready_new = h.pid_of(2, 0), starting_new = h.pid_of(2, 2);
    auto out = h.feed(WorkerExited{h.pid_of(2, 1), exited(1)});
    CHECK(h.group_killed(ready_new, out));
    CHECK(h.group_killed(starting_new, out));
    CHECK_FALSE(h.signalled(h.pid_of(1, 0), SIGTERM, out));
    CHECK_EQ(h.m.serving_gen(), 1u);
    auto* v = h.first<UpgradeVerdict>(out);
    REQUIRE(v != nullptr);
    CHECK_FALSE(v->ok);
    CHECK(v->reason.find("slot=1") != std::string::npos);
}

TEST_CASE("--workers 3, rolling: each new worker replaces its slot's old one before the next starts") {
    Harness h(n_workers(3, true));
    serve_n(h, 3);
    auto out = h.feed(UpgradeRequested{});
    REQUIRE_EQ(h.count<Spawn>(out), 1);
    CHECK_EQ(h.first<Spawn>(out)->slot, 0);
    h.ready(2, 0);
    CHECK(h.signalled(h.pid_of(1, 0), SIGTERM, h.last));
    CHECK_FALSE(h.signalled(h.pid_of(1, 1), SIGTERM, h.last));
    REQUIRE_EQ(h.count<Spawn>(h.last), 1);
    CHECK_EQ(h.first<Spawn>(h.last)->slot, 1);
    h.ready(2, 1);
    CHECK(h.signalled(h.pid_of(1, 1), SIGTERM, h.last));
    CHECK_EQ(h.first<Spawn>(h.last)->slot, 2);
    SUBCASE("all replaced: the upgrade is done") {
        h.ready(2, 2);
        CHECK(h.first<UpgradeVerdict>(h.last)->ok);
        CHECK_EQ(h.m.serving_gen(), 2u);
    }
    SUBCASE("a failure stops the roll; replaced slots keep the new generation") {
        auto o = h.feed(WorkerExited{h.pid_of(2, 2), exited(1)});
        auto* v = h.first<UpgradeVerdict>(o);
        REQUIRE(v != nullptr);
        CHECK_FALSE(v->ok);
        CHECK(v->reason.find("2 of 3 slots run gen=2") != std::string::npos);
        CHECK_FALSE(h.group_killed(h.pid_of(2, 0), o));
        CHECK_EQ(h.m.serving_gen(), 1u);  // the oldest slot target
        CHECK(pid_alive_in(h, h.pid_of(1, 2)));
    }
}

TEST_CASE("--workers 2: SUPERVISOR_WORKER_INDEX comes from the slot; stop drains all") {
    Harness h(n_workers(2));
    serve_n(h, 2);
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(h.pid_of(1, 0), SIGTERM, out));
    CHECK(h.signalled(h.pid_of(1, 1), SIGTERM, out));
}

TEST_CASE("a drained worker's process group that outlives it is killed at the drain deadline") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    int old_pid = h.pid_of(1);
    h.ready(2);
    auto out = h.feed(WorkerExited{old_pid, exited(0), true});
    CHECK_FALSE(cancelled(out, h.tid(TimerId::Kind::Drain, old_pid)));
    CHECK(h.logged("outlives it", out));
    auto o = h.feed(TimerFired{h.tid(TimerId::Kind::Drain, old_pid)});
    CHECK(h.group_killed(old_pid, o));
    SUBCASE("on stop, the supervisor waits for that deadline before it exits") {
        Harness g;
        g.serve();
        g.feed(StopRequested{});
        auto e = g.feed(WorkerExited{g.pid_of(1), exited(0), true});
        CHECK_EQ(g.count<Exit>(e), 0);
        auto d = g.feed(TimerFired{g.tid(TimerId::Kind::Drain, 100)});
        CHECK(g.group_killed(100, d));
        CHECK_EQ(g.count<Exit>(d), 1);
    }
    SUBCASE("a second stop request kills such a group at once and exits") {
        Harness g;
        g.serve();
        g.feed(StopRequested{});
        g.feed(WorkerExited{g.pid_of(1), exited(0), true});
        auto k = g.feed(StopRequested{});
        CHECK(g.group_killed(100, k));
        CHECK_EQ(g.count<Exit>(k), 1);
    }
    SUBCASE("a crashed worker's leftovers are killed at once") {
        auto c = h.feed(WorkerExited{h.pid_of(2), killed_by(SIGSEGV), true});
        CHECK(h.group_killed(101, c));
    }
}

TEST_CASE("GroupGone: a lingering group that empties ends the drain at once") {
    Harness h;
    h.serve();
    h.feed(UpgradeRequested{});
    int old_pid = h.pid_of(1);
    h.ready(2);
    h.feed(WorkerExited{old_pid, exited(0), true});
    auto out = h.feed(GroupGone{old_pid});
    CHECK(cancelled(out, h.tid(TimerId::Kind::Drain, old_pid)));
    CHECK(h.logged("process group of gen=1 pid=" + std::to_string(old_pid) + " gone", out));
    auto late = h.feed(TimerFired{h.tid(TimerId::Kind::Drain, old_pid)});
    CHECK_FALSE(h.group_killed(old_pid, late));  // the stale timer kills nothing
    CHECK(h.feed(GroupGone{old_pid}).empty());    // ignore: not lingering any more
    SUBCASE("on stop, the supervisor exits as soon as the group is gone") {
        Harness g;
        g.serve();
        g.feed(StopRequested{});
        g.feed(WorkerExited{g.pid_of(1), exited(0), true});
        auto e = g.feed(GroupGone{100});
        CHECK_EQ(g.count<Exit>(e), 1);
    }
    SUBCASE("a group killed at the deadline and then gone changes nothing") {
        Harness g;
        g.serve();
        g.feed(StopRequested{});
        g.feed(WorkerExited{g.pid_of(1), exited(0), true});
        auto d = g.feed(TimerFired{g.tid(TimerId::Kind::Drain, 100)});
        CHECK_EQ(g.count<Exit>(d), 1);
        CHECK(g.feed(GroupGone{100}).empty());
    }
}

// --- --worker-watchdog --------------------------------------------------------------

namespace {
MachineSettings watched(Millis every) {
    MachineSettings s = Harness::notify_settings();
    s.worker_watchdog = every;
    return s;
}
NotifyMessage ping() {
    NotifyMessage m;
    m.watchdog = true;
    return m;
}
} // namespace

TEST_CASE("--worker-watchdog: a worker that pinged once and then went silent is killed and respawned") {
    Harness h(watched(Millis(2000)));
    h.serve();
    int pid = h.pid_of(1);
    SUBCASE("never pinged: never watched") {
        h.advance(Millis(10'000));
        CHECK_EQ(h.count<StartTimer>(h.last), 0);
        CHECK_FALSE(h.group_killed(pid, h.all));
    }
    SUBCASE("pings restart the timer; silence past it is a hang") {
        auto o = h.feed(Notified{pid, ping()});
        CHECK(started_timer(o, h.tid(TimerId::Kind::Watchdog, pid), 2000));
        CHECK(h.logged("watchdog gen=1 pid=" + std::to_string(pid) + " timeout=2s", o));
        h.advance(Millis(1500));
        CHECK(started_timer(h.feed(Notified{pid, ping()}), h.tid(TimerId::Kind::Watchdog, pid), 2000));
        h.advance(Millis(2000));
        auto hung = h.feed(TimerFired{h.tid(TimerId::Kind::Watchdog, pid)});
        CHECK(h.group_killed(pid, hung));
        CHECK(h.logged("hung: no WATCHDOG=1 for 2s gen=1 pid=" + std::to_string(pid), hung));
        CHECK_EQ(h.m.hung_total(), 1u);
        auto reaped = h.feed(WorkerExited{pid, killed_by(SIGKILL)});
        CHECK(h.logged("worker died gen=1", reaped));
        CHECK(started_timer(reaped, TimerId{TimerId::Kind::Respawn, 0}, 100));
    }
    SUBCASE("draining stops the watch") {
        h.feed(Notified{pid, ping()});
        h.feed(UpgradeRequested{});
        h.ready(2);
        CHECK(cancelled(h.last, h.tid(TimerId::Kind::Watchdog, pid)));
    }
    SUBCASE("a new worker that hangs before ready fails the upgrade") {
        h.feed(UpgradeRequested{});
        int w2 = h.pid_of(2);
        h.feed(Notified{w2, ping()});
        h.advance(Millis(2000));
        auto o = h.feed(TimerFired{h.tid(TimerId::Kind::Watchdog, w2)});
        auto* v = h.first<UpgradeVerdict>(o);
        REQUIRE(v != nullptr);
        CHECK_FALSE(v->ok);
        CHECK(v->reason.find("hung: no WATCHDOG=1 for 2s") != std::string::npos);
        CHECK_EQ(h.m.serving_gen(), 1u);
    }
}
