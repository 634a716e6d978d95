// UpgradeMachine: the supervisor's decisions as a pure state machine — events in,
// actions out. No libuv, no syscalls, no clock: time is passed in.
//
// A generation is one version of the worker: --workers N processes (slots 0..N-1) spawned
// from the same command at the same upgrade. Each slot has a target generation; the
// machine keeps every slot staffed by a worker of its target generation, respawning a
// crashed one with exponential backoff (per slot). An upgrade brings up generation G:
//  - all at once (default): N new workers; when all N are ready, every older worker drains
//    and every slot's target becomes G. If any of them fails first, all of G is killed and
//    the old generation keeps serving (rollback).
//  - rolling: slot by slot; each new worker, once ready, replaces the old worker of its
//    slot (which drains), then the next slot starts. A failure stops the roll: the slots
//    already replaced keep G, the others keep their generation, and the verdict says so.
//
// The phase is stored (machine_types.h says what each means) and every handler is a
// `switch (phase_)` with every case written, "ignore" spelled out, as s6-supervise's
// actions[state][event] table. The shell feeds one event at a time: events that arise
// while it carries out actions (a synchronous spawn failure) are queued and fed after, so
// a handler may see a result for a spawn that a later decision made moot: such a worker
// is killed and reaped, never kept.
//
// Invariants (check_invariants(): asserted by the unit tests and the fuzzer after every
// step; the running supervisor logs a broken one and keeps its listeners):
//  - Upgrading if and only if an upgrade is in flight; Serving only once booted; Starting
//    only before; Stopping/Stopped: nothing Starting, no respawn, nobody waiting; nothing
//    Ready either, except the slots' own workers while the stop delay runs (Stopping only).
//  - Probation (--probation): once the new generation (rolling: the new worker of the slot
//    being rolled) is ready it serves beside the old one; the upgrade stays in flight, its
//    verdict and the old workers' drain wait for the probation timer. A new worker that dies
//    meanwhile fails the upgrade as a failed start would.
//  - Every Starting or Ready worker belongs to its slot's target generation or to the
//    upgrade in flight; per slot at most one Ready worker of each.
//  - Every timer the machine counts on is running: a Ready timer per Starting worker, a
//    Drain timer per Draining worker not yet killed and per lingering group, a Respawn
//    timer per slot waiting for a respawn, a StopDelay timer while the stop delay runs, a
//    Probation timer per generation on probation (and no other timers).
//  - A slot waiting for a respawn has no live worker of its target generation.
//  - Upgrade requests that arrive while an upgrade runs (or before the first generation
//    is up) merge into one pending upgrade, started as soon as the running one is decided;
//    every waiting client gets exactly one answer.
// Nothing a worker does makes the machine exit: only a stop request does, or an exec
// failure of the very first spawn, which is a startup error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "supervisor/backoff.h"
#include "supervisor/machine_state.h"
#include "supervisor/machine_types.h"
#include "supervisor/result.h"

namespace sv {

class UpgradeMachine {
public:
    explicit UpgradeMachine(MachineSettings settings);

    std::vector<Action> handle(const Event& event, Millis now);

    Phase phase() const { return phase_; }
    const MachineSettings& settings() const { return s_; }
    const std::vector<Worker>& workers() const { return workers_; }
    // The generation every slot runs once nothing is in flight: the oldest slot target.
    uint64_t serving_gen() const;
    uint64_t upgrading_gen() const { return upgrade_ ? upgrade_->gen : 0; }
    bool upgrade_pending() const { return pending_upgrade_; }
    // Workers killed by --worker-watchdog since start.
    uint64_t hung_total() const { return hung_total_; }
    const Worker* find_pid(int pid) const;
    // When the stop delay ends (machine time), while it runs.
    std::optional<Millis> stop_delay_ends() const {
        return lame_duck_ ? std::optional<Millis>(stop_at_ + s_.stop_delay) : std::nullopt;
    }
    // When the generation on probation is kept (machine time), while it is on probation.
    std::optional<Millis> probation_ends() const {
        return upgrade_ && upgrade_->on_probation ? std::optional<Millis>(upgrade_->probation_at + s_.probation) : std::nullopt;
    }
    // The client waits for an upgrade's verdict (queued or in flight).
    bool waiting(uint64_t client) const;

    // Checks the invariants stated above; returns an empty string or what is broken.
    std::string check_invariants() const;
    // One line with the phase, slots, workers and timers, for a broken-invariant report.
    std::string describe() const;

    // Carrying the machine into a new supervisor image (upgrade_state.cpp): "" when its
    // state can be exported now, else why not (an upgrade or a stop in flight).
    std::string not_exportable() const;
    MachineState export_state() const;
    // The machine `st` describes, checked: a state that breaks an invariant is refused.
    static Result<UpgradeMachine> restore(MachineSettings settings, const MachineState& st);

private:
    struct Slot {
        uint64_t gen = 0;  // the target generation
        Backoff backoff;
        bool respawn_pending = false;
    };
    struct Upgrade {
        uint64_t gen = 0;
        uint64_t from_gen = 0;  // what it replaces, for the log
        Millis at{0};
        bool pre_checking = false;
        int roll_slot = 0;               // rolling: the slot being replaced
        bool on_probation = false;       // ready, serving beside the old generation (--probation)
        Millis probation_at{0};
        std::vector<uint64_t> waiters;  // clients answered by this upgrade's verdict
    };

    // Event handlers: each a switch over phase_ (upgrade_machine.cpp).
    void on(const Boot&);
    void on(const UpgradeRequested&);
    void on(const ClientGone&);
    void on(const StopRequested&);
    void on(const WorkerSpawned&);
    void on(const SpawnFailed&);
    void on(const Notified&);
    void on(const WorkerAccepting&);
    void on(const WorkerExited&);
    void on(const GroupGone&);
    void on(const TimerFired&);
    void on(const ForwardSignal&);
    void on(const PreCheckDone&);

    // Transitions (upgrade_transitions.cpp).
    void boot();
    void queue_upgrade(uint64_t client);
    void start_upgrade();
    void spawn_upgrade_workers();
    Worker new_worker(const WorkerSpawned& e, WorkerState state);
    void accept_spawn(const WorkerSpawned& e);
    bool ready_by_delay() const;
    bool ready_by_rule(const Worker& w) const;
    const char* ready_mode_name() const;
    std::string not_ready_reason(const Worker& w) const;
    void consider_ready(Worker& w);
    void readiness_news(Worker& w);
    void reject_spawn(const WorkerSpawned& e, const char* why);
    void spawn_failed(const SpawnFailed& e);
    void startup_failed(const SpawnFailed& e);
    void worker_exited(const Worker& w, const WorkerExited& e);
    void ready_timer(uint64_t id);
    void drain_timer(uint64_t id);
    void respawn_timer(int slot);
    void watchdog_ping(Worker& w);
    void watchdog_timer(uint64_t id);
    void become_ready(Worker& w);
    void slot_ready(Worker& w);
    void generation_ready();
    void start_probation();
    void probation_timer(uint64_t gen);
    std::string probation_failure(const Worker& w, const std::string& how) const;
    void replace_slot(int slot, uint64_t gen);
    void drain(Worker& w);
    void upgrade_failed(const std::string& reason);
    void finish_upgrade();
    void after_upgrade();
    void slot_failed(int slot, uint64_t gen, const std::string& what);
    void ensure_slots();
    void schedule_respawn(int slot);
    void check_booted();
    void begin_stop();
    void drain_for_stop();
    void end_stop_delay(const char* why);
    void kill_everything();
    void finish_stop_if_done();
    void verdict(uint64_t gen, bool ok, const std::string& reason, std::vector<uint64_t> waiters);
    void refuse_waiters(std::vector<uint64_t>& waiters, const std::string& why);

    // Helpers (upgrade_machine.cpp).
    void log(LogLevel level, std::string text);
    void start_timer(TimerId id, Millis after);
    void cancel_timer(TimerId id);
    bool timer_running(TimerId id) const;
    std::string slot_tag(int slot) const;
    bool slot_staffed(int slot) const;
    bool spawn_wanted(uint64_t gen, int slot) const;
    bool respawn_allowed(int slot) const;
    bool any_starting() const;
    Worker* find(int pid);
    Worker* find_id(uint64_t id);
    Slot& slot(int s) { return slots_[static_cast<size_t>(s)]; }
    const Slot& slot(int s) const { return slots_[static_cast<size_t>(s)]; }
    Millis since(Millis t) const { return now_ - t; }
    std::string invariant_of_phase() const;
    std::string invariant_of_timers() const;

    MachineSettings s_;
    Phase phase_ = Phase::Starting;
    std::vector<Slot> slots_;
    std::vector<Worker> workers_;
    std::vector<Worker> lingering_;  // drained workers gone, their processes not yet: killed at the deadline
    std::optional<Upgrade> upgrade_;
    bool pending_upgrade_ = false;
    std::vector<uint64_t> pending_waiters_;  // answered by the next upgrade to start
    std::vector<TimerId> timers_;            // what the shell runs for us
    uint64_t next_gen_ = 1;
    uint64_t next_worker_id_ = 1;
    uint64_t hung_total_ = 0;
    bool booted_ = false;       // every slot has been served by a ready worker
    bool spawned_any_ = false;  // a spawn has succeeded: exec failures are no longer startup errors
    Millis stop_at_{0};
    bool lame_duck_ = false;  // Stopping, the stop delay runs: ready workers still serve
    Millis now_{0};
    std::vector<Action> out_;
};

} // namespace sv
