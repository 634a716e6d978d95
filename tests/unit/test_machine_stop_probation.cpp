// The upgrade machine's stop delay (lame duck), probation, and the listeners it closes at a stop.
#include <doctest/doctest.h>

#include <csignal>

#include "supervisor/upgrade_machine.h"
#include "tests/unit/machine_harness.h"

using namespace machine_test;

namespace {

MachineSettings with_stop_delay(Millis d, int workers = 1) {
    MachineSettings s = n_workers(workers);
    s.stop_delay = d;
    return s;
}

MachineSettings with_probation(Millis d, int workers = 1, bool rolling = false) {
    MachineSettings s = n_workers(workers, rolling);
    s.probation = d;
    return s;
}

const TimerId kStopDelay{TimerId::Kind::StopDelay, 0};

} // namespace

TEST_CASE("stop without a delay: drain signals first, then the listeners are closed") {
    Harness h;
    h.serve();
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(h.pid_of(1), SIGTERM, out));
    CHECK_EQ(h.count<CloseListeners>(out), 1);
    size_t sig = 0, close = 0;
    for (size_t i = 0; i < out.size(); i++) {
        if (std::holds_alternative<Signal>(out[i])) sig = i;
        if (std::holds_alternative<CloseListeners>(out[i])) close = i;
    }
    CHECK_LT(sig, close);
}

TEST_CASE("--stop-delay: not ready at once, workers keep serving, drain when the delay is over") {
    Harness h(with_stop_delay(Millis(4200)));
    h.serve();
    int p1 = h.pid_of(1);
    auto out = h.feed(StopRequested{});
    CHECK_EQ(h.m.phase(), Phase::Stopping);
    CHECK_FALSE(h.signalled(p1, SIGTERM, out));
    CHECK_EQ(h.count<CloseListeners>(out), 0);
    CHECK(started_timer(out, kStopDelay, 4200));
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, SdState::Stopping);
    CHECK_EQ(n->status, "stopping in 4.2s (stop delay)");
    CHECK(pid_alive_in(h, p1));
    REQUIRE(h.m.stop_delay_ends().has_value());
    CHECK_EQ(h.m.stop_delay_ends()->count(), h.now.count() + 4200);
    h.feed(UpgradeRequested{7});  // refused: stopping
    auto* a = h.first<AnswerUpgrade>(h.last);
    REQUIRE(a != nullptr);
    CHECK_FALSE(a->ok);
    h.advance(Millis(4200));
    out = h.feed(TimerFired{kStopDelay});
    CHECK(h.signalled(p1, SIGTERM, out));
    CHECK_EQ(h.count<CloseListeners>(out), 1);
    CHECK(h.logged("stop delay over after_ms=4200", out));
    CHECK_FALSE(h.m.stop_delay_ends().has_value());
    out = h.feed(WorkerExited{p1, exited(0)});
    CHECK_EQ(h.count<Exit>(out), 1);
}

TEST_CASE("--stop-delay: a second SIGTERM skips the rest of the delay, a third kills") {
    Harness h(with_stop_delay(Millis(10'000)));
    h.serve();
    int p1 = h.pid_of(1);
    h.feed(StopRequested{StopSource::Signal});
    h.advance(Millis(1000));
    auto out = h.feed(StopRequested{StopSource::Signal});
    CHECK(h.signalled(p1, SIGTERM, out));
    CHECK(cancelled(out, kStopDelay));
    CHECK(h.logged("second SIGTERM during the stop delay: skipping the rest of it after_ms=1000", out));
    CHECK_FALSE(h.group_killed(p1, out));
    out = h.feed(StopRequested{StopSource::Signal});
    CHECK(h.group_killed(p1, out));
}

TEST_CASE("--stop-delay: SIGINT during the delay kills at once; ctl stop again changes nothing") {
    Harness h(with_stop_delay(Millis(10'000)));
    h.serve();
    int p1 = h.pid_of(1);
    h.feed(StopRequested{StopSource::Control});
    auto out = h.feed(StopRequested{StopSource::Control});
    CHECK_FALSE(h.signalled(p1, SIGTERM, out));
    CHECK(h.m.stop_delay_ends().has_value());
    out = h.feed(StopRequested{StopSource::Interrupt});
    CHECK(h.group_killed(p1, out));
    CHECK_EQ(h.count<CloseListeners>(out), 1);
    CHECK_FALSE(h.m.stop_delay_ends().has_value());
    out = h.feed(WorkerExited{p1, killed_by(SIGKILL)});
    CHECK_EQ(h.count<Exit>(out), 1);
}

TEST_CASE("--stop-delay: an upgrade in flight is refused and its workers drain at once; the old ones serve on") {
    Harness h(with_stop_delay(Millis(2000)));
    h.serve();
    h.feed(UpgradeRequested{5});
    int p1 = h.pid_of(1), p2 = h.pid_of(2);
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(p2, SIGTERM, out));
    CHECK_FALSE(h.signalled(p1, SIGTERM, out));
    auto* a = h.first<AnswerUpgrade>(out);
    REQUIRE(a != nullptr);
    CHECK_FALSE(a->ok);
    CHECK(pid_alive_in(h, p1));
}

TEST_CASE("--stop-delay: the serving worker dying during the delay is not restarted; the machine exits") {
    Harness h(with_stop_delay(Millis(2000)));
    h.serve();
    h.feed(StopRequested{});
    auto out = h.feed(WorkerExited{h.pid_of(1), exited(1)});
    CHECK_EQ(h.count<Spawn>(out), 0);
    CHECK_EQ(h.count<Exit>(out), 1);
}

TEST_CASE("--stop-delay with nothing ready (still starting): drain at once") {
    Harness h(with_stop_delay(Millis(2000)));
    h.feed(Boot{});
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(h.pid_of(1), SIGTERM, out));
    CHECK_FALSE(h.m.stop_delay_ends().has_value());
}

TEST_CASE("--probation: the old generation serves beside the new one until the window ends") {
    Harness h(with_probation(Millis(1000)));
    h.serve();
    h.feed(UpgradeRequested{9});
    int p1 = h.pid_of(1), p2 = h.pid_of(2);
    h.advance(Millis(100));
    auto out = h.feed(Notified{p2, NotifyMessage{true, false, false, {}}});
    CHECK(started_timer(out, TimerId{TimerId::Kind::Probation, 2}, 1000));
    CHECK_FALSE(h.signalled(p1, SIGTERM, out));
    CHECK_EQ(h.count<AnswerUpgrade>(out), 0);
    CHECK_EQ(h.count<UpgradeVerdict>(out), 0);
    for (const auto& a : out)
        if (auto* n = std::get_if<NotifySystemd>(&a)) CHECK_NE(n->state, SdState::Ready);
    CHECK_EQ(h.m.phase(), Phase::Upgrading);
    CHECK(pid_alive_in(h, p1));
    CHECK(pid_alive_in(h, p2));
    REQUIRE(h.m.probation_ends().has_value());
    h.advance(Millis(1000));
    out = h.feed(TimerFired{TimerId{TimerId::Kind::Probation, 2}});
    CHECK(h.signalled(p1, SIGTERM, out));
    auto* a = h.first<AnswerUpgrade>(out);
    REQUIRE(a != nullptr);
    CHECK(a->ok);
    CHECK_EQ(a->client, 9u);
    auto* n = h.first<NotifySystemd>(out);
    REQUIRE(n != nullptr);
    CHECK_EQ(n->state, SdState::Ready);
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 2u);
}

TEST_CASE("--probation: a new worker dying in the window fails the upgrade; the old one was never drained") {
    Harness h(with_probation(Millis(5000)));
    h.serve();
    h.feed(UpgradeRequested{9});
    int p1 = h.pid_of(1), p2 = h.pid_of(2);
    h.ready(2);
    h.advance(Millis(2100));
    auto out = h.feed(WorkerExited{p2, exited(1)});
    auto* v = h.first<UpgradeVerdict>(out);
    REQUIRE(v != nullptr);
    CHECK_FALSE(v->ok);
    CHECK_EQ(v->reason, "died 2.1s after ready during probation (exit=1, pid=" + std::to_string(p2) + ")");
    CHECK(cancelled(out, TimerId{TimerId::Kind::Probation, 2}));
    CHECK_FALSE(h.signalled(p1, SIGTERM, h.all));
    CHECK(pid_alive_in(h, p1));
    CHECK_EQ(h.m.phase(), Phase::Serving);
    CHECK_EQ(h.m.serving_gen(), 1u);
    auto* a = h.first<AnswerUpgrade>(out);
    REQUIRE(a != nullptr);
    CHECK_FALSE(a->ok);
}

TEST_CASE("--probation, all at once: one of three new workers dying kills the other two") {
    Harness h(with_probation(Millis(1000), 3));
    h.feed(Boot{});
    for (int s = 0; s < 3; s++) h.ready(1, s);
    h.feed(UpgradeRequested{});
    for (int s = 0; s < 3; s++) h.ready(2, s);
    CHECK(h.m.probation_ends().has_value());
    int n0 = h.pid_of(2, 0), n1 = h.pid_of(2, 1), n2 = h.pid_of(2, 2);
    auto out = h.feed(WorkerExited{n1, killed_by(SIGSEGV)});
    CHECK(h.group_killed(n0, out));
    CHECK(h.group_killed(n2, out));
    for (int s = 0; s < 3; s++) CHECK(pid_alive_in(h, h.pid_of(1, s)));
}

TEST_CASE("--probation, rolling: each slot is on probation before the next one starts") {
    Harness h(with_probation(Millis(500), 2, true));
    h.feed(Boot{});
    h.ready(1, 0);
    h.ready(1, 1);
    h.feed(UpgradeRequested{});
    h.ready(2, 0);
    CHECK_EQ(h.pid_of(2, 1), -1);  // slot 1 waits for slot 0's probation
    CHECK_FALSE(h.signalled(h.pid_of(1, 0), SIGTERM, h.last));
    auto out = h.feed(TimerFired{TimerId{TimerId::Kind::Probation, 2}});
    CHECK(h.signalled(h.pid_of(1, 0), SIGTERM, out));
    CHECK_EQ(h.count<Spawn>(out), 1);
    h.ready(2, 1);
    int old1 = h.pid_of(1, 1);
    out = h.feed(WorkerExited{h.pid_of(2, 1), exited(3)});
    auto* v = h.first<UpgradeVerdict>(out);
    REQUIRE(v != nullptr);
    CHECK_FALSE(v->ok);
    CHECK(v->reason.find("during probation (exit=3") != std::string::npos);
    CHECK(v->reason.find("the roll stopped: 1 of 2 slots run gen=2") != std::string::npos);
    CHECK(pid_alive_in(h, old1));
}

TEST_CASE("--probation: SIGHUP in the window merges into one pending upgrade") {
    Harness h(with_probation(Millis(1000)));
    h.serve();
    h.feed(UpgradeRequested{});
    h.ready(2);
    h.feed(UpgradeRequested{3});
    h.feed(UpgradeRequested{4});
    CHECK(h.m.upgrade_pending());
    auto out = h.feed(TimerFired{TimerId{TimerId::Kind::Probation, 2}});
    CHECK_EQ(h.m.upgrading_gen(), 3u);
    CHECK_EQ(h.count<Spawn>(out), 1);
}

TEST_CASE("--probation: a stop in the window stops both generations, waiters refused") {
    Harness h(with_probation(Millis(1000)));
    h.serve();
    h.feed(UpgradeRequested{6});
    int p1 = h.pid_of(1), p2 = h.pid_of(2);
    h.ready(2);
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(p1, SIGTERM, out));
    CHECK(h.signalled(p2, SIGTERM, out));
    CHECK(cancelled(out, TimerId{TimerId::Kind::Probation, 2}));
    auto* a = h.first<AnswerUpgrade>(out);
    REQUIRE(a != nullptr);
    CHECK_FALSE(a->ok);
    CHECK_EQ(a->reason, "stopped during probation");
}

TEST_CASE("--probation with --stop-delay: a stop in the window drains the new generation, the old one serves the delay") {
    MachineSettings s = with_probation(Millis(1000));
    s.stop_delay = Millis(3000);
    Harness h(s);
    h.serve();
    h.feed(UpgradeRequested{});
    int p1 = h.pid_of(1), p2 = h.pid_of(2);
    h.ready(2);
    auto out = h.feed(StopRequested{});
    CHECK(h.signalled(p2, SIGTERM, out));
    CHECK_FALSE(h.signalled(p1, SIGTERM, out));
    CHECK(pid_alive_in(h, p1));
}
