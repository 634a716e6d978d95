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
// Invariants (check_invariants(), called by the unit tests after every step):
//  - Every Starting or Ready worker belongs to its slot's target generation or to the
//    upgrade in flight; per slot at most one Ready worker of each.
//  - Every Draining worker has a kill timer running, or has already been killed; so has
//    every process group a drained worker left behind (killed at the same deadline).
//  - A slot waiting for a respawn has no live worker of its target generation.
//  - Stopping: nothing Starting or Ready, no respawn waiting; the machine exits once the
//    last worker is reaped.
//  - Upgrade requests that arrive while an upgrade runs (or before the first generation
//    is up) merge into one pending upgrade, started as soon as the running one is decided.
// Nothing a worker does makes the machine exit: only a stop request does, or an exec
// failure of the very first spawn, which is a startup error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "supervisor/backoff.h"
#include "supervisor/config.h"
#include "supervisor/notify_message.h"

namespace sv {

enum class WorkerState { Starting, Ready, Draining, Failed };
enum class Phase { Starting, Serving, Upgrading, Stopping, Stopped };
enum class LogLevel { Debug, Info, Warn, Error };

const char* to_string(WorkerState s);
const char* to_string(Phase p);

struct TimerId {
    enum class Kind { Ready, Drain, Respawn };
    Kind kind;
    int key = 0;  // the worker's pid (Ready, Drain) or the slot (Respawn)
    bool operator==(const TimerId&) const = default;
};

// Events
struct Boot {};
struct UpgradeRequested {};
struct StopRequested {};
struct WorkerSpawned { uint64_t gen; int slot; int pid; };
struct SpawnFailed { uint64_t gen; int slot; int err; std::string reason; };  // err: errno of exec, 0 otherwise
struct Notified { int pid; NotifyMessage msg; };
// wait_status as from waitpid(2); group_alive: the worker's containment (cgroup, or process
// group and descendants) still has members: children it left behind, which may hold the
// listening socket.
struct WorkerExited { int pid; int wait_status; bool group_alive = false; };
// The last process a reaped worker left behind is gone (containment: every SIGCHLD looks).
struct GroupGone { int pid; };
struct TimerFired { TimerId id; };
struct ForwardSignal { int sig; };
struct PreCheckDone { uint64_t gen; bool ok; std::string reason; };
using Event = std::variant<Boot, UpgradeRequested, StopRequested, WorkerSpawned, SpawnFailed, Notified,
                           WorkerExited, TimerFired, ForwardSignal, PreCheckDone, GroupGone>;

// Actions
struct Spawn { uint64_t gen; int slot; };  // answered by WorkerSpawned or SpawnFailed
struct RunPreCheck { uint64_t gen; };      // answered by PreCheckDone
struct Signal { int pid; int sig; };
struct KillGroup { int pid; };  // SIGKILL to the worker's containment: all it started, itself included
struct StartTimer { TimerId id; Millis after; };
struct CancelTimer { TimerId id; };
struct NotifySystemd { std::string state; };  // sd_notify text for our own parent
struct Log { LogLevel level; std::string text; };
// An upgrade's new generation is about to start: every upgrade request not yet covered
// by an earlier one is answered by this generation's verdict.
struct UpgradeStarted { uint64_t gen; };
struct UpgradeVerdict { uint64_t gen; bool ok; std::string reason; };
struct Exit { int code; };
using Action = std::variant<Spawn, RunPreCheck, Signal, KillGroup, StartTimer, CancelTimer, NotifySystemd, Log,
                            UpgradeStarted, UpgradeVerdict, Exit>;

struct MachineSettings {
    ReadyMode ready_mode = ReadyMode::Delay;
    Millis ready_delay = kDefaultReadyDelay;
    Millis ready_timeout = kDefaultReadyTimeout;
    int drain_signal = 15;
    Millis drain_timeout = kDefaultDrainTimeout;
    Millis backoff_initial = kBackoffInitial;
    Millis backoff_max = kBackoffMax;
    Millis backoff_reset_after = kBackoffResetAfter;
    bool pre_check = false;  // run --pre-check before each upgrade's spawn
    int workers = 1;         // --workers N: slots per generation
    bool rolling = false;    // --upgrade rolling
};

struct Worker {
    uint64_t gen = 0;
    int slot = 0;
    int pid = 0;
    WorkerState state = WorkerState::Starting;
    Millis spawned_at{0};
    Millis ready_at{0};
    Millis drain_at{0};
    bool killed = false;
    std::string status;  // last STATUS= text
};

class UpgradeMachine {
public:
    explicit UpgradeMachine(MachineSettings settings);

    std::vector<Action> handle(const Event& event, Millis now);

    Phase phase() const;
    const std::vector<Worker>& workers() const { return workers_; }
    // The generation every slot runs once nothing is in flight: the oldest slot target.
    uint64_t serving_gen() const;
    uint64_t upgrading_gen() const { return upgrade_gen_; }
    bool upgrade_pending() const { return pending_upgrade_; }
    const Worker* find_pid(int pid) const;

    // Checks the invariants stated above; returns an empty string or what is broken.
    std::string check_invariants() const;

private:
    void on(const Boot&);
    void on(const UpgradeRequested&);
    void on(const StopRequested&);
    void on(const WorkerSpawned&);
    void on(const SpawnFailed&);
    void on(const Notified&);
    void on(const WorkerExited&);
    void on(const TimerFired&);
    void on(const ForwardSignal&);
    void on(const PreCheckDone&);
    void on(const GroupGone&);

    void spawn(uint64_t gen, int slot);
    void start_upgrade();
    void spawn_upgrade_workers();
    void become_ready(Worker& w);
    void replace_slot(int slot, uint64_t gen);
    void drain(Worker& w);
    void upgrade_failed(const std::string& reason);
    void finish_upgrade();
    void slot_failed(int slot, uint64_t gen, const std::string& what);
    void ensure_slots();
    void schedule_respawn(int slot);
    void check_booted();
    void finish_stop_if_done();
    void verdict(uint64_t gen, bool ok, const std::string& reason);
    void log(LogLevel level, std::string text);
    std::string slot_tag(int slot) const;
    bool stopping() const { return stopping_ || stopped_; }
    bool slot_staffed(int slot) const;
    Worker* find(int pid);
    Millis since(Millis t) const { return now_ - t; }

    MachineSettings s_;
    std::vector<Backoff> backoff_;      // per slot
    std::vector<uint64_t> slot_gen_;    // per slot: the target generation
    std::vector<bool> respawn_pending_; // per slot
    std::vector<Worker> workers_;
    std::vector<Worker> lingering_;  // drained workers gone, their process group not yet: killed at the deadline
    uint64_t next_gen_ = 1;
    uint64_t upgrade_gen_ = 0;  // the upgrade in flight (pre-check, starting, rolling)
    int roll_slot_ = 0;         // rolling: the slot being replaced
    Millis upgrade_at_{0};
    uint64_t upgrade_from_gen_ = 0;  // what the upgrade replaces, for the log
    Millis stop_at_{0};
    bool pending_upgrade_ = false;
    bool pre_checking_ = false;
    bool booted_ = false;       // every slot has been served by a ready worker
    bool spawned_any_ = false;  // a spawn has succeeded: exec failures are no longer startup errors
    bool stopping_ = false, stopped_ = false;
    Millis now_{0};
    std::vector<Action> out_;
};

// "exit=1", "signal=SIGKILL" for a waitpid(2) status.
std::string describe_wait_status(int wait_status);

} // namespace sv
