// UpgradeMachine: the supervisor's decisions as a pure state machine — events in,
// actions out. No libuv, no syscalls, no clock: time is passed in.
//
// Invariants (checked by check_invariants(), which the unit tests call after every step):
//  - At most one worker is Starting, and it belongs to the one generation being started.
//  - The serving generation is the newest Ready worker, and it is the only Ready one:
//    a worker that becomes ready makes every older one drain.
//  - Every Draining worker has a kill timer running, or has already been killed.
//  - Serving: one Ready worker, none starting. Upgrading: one Ready, one Starting.
//    Starting: none Ready; one Starting or a respawn timer running. Stopping: none
//    Starting or Ready; the machine exits once the last worker is reaped.
//  - Upgrade requests that arrive while a worker is starting merge into one pending
//    upgrade, started as soon as the running one is decided.
// Nothing a worker does (exit early, never get ready, ignore the drain signal, crash)
// makes the machine exit: only a stop request does, or an exec failure of the very
// first worker, which is a startup error.
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
    uint64_t gen = 0;  // 0 for Respawn
    bool operator==(const TimerId&) const = default;
};

// Events
struct Boot {};
struct UpgradeRequested {};
struct StopRequested {};
struct WorkerSpawned { uint64_t gen; int pid; };
struct SpawnFailed { uint64_t gen; int err; std::string reason; };  // err: errno of fork or exec
struct Notified { int pid; NotifyMessage msg; };
struct WorkerExited { int pid; int wait_status; };                   // as from waitpid(2)
struct TimerFired { TimerId id; };
struct ForwardSignal { int sig; };
struct PreCheckDone { uint64_t gen; bool ok; std::string reason; };
using Event = std::variant<Boot, UpgradeRequested, StopRequested, WorkerSpawned, SpawnFailed, Notified,
                           WorkerExited, TimerFired, ForwardSignal, PreCheckDone>;

// Actions
struct Spawn { uint64_t gen; };
struct RunPreCheck { uint64_t gen; };  // answered by PreCheckDone
struct Signal { int pid; int sig; };
struct KillGroup { int pid; };  // SIGKILL to the worker's process group (pgid == pid)
struct StartTimer { TimerId id; Millis after; };
struct CancelTimer { TimerId id; };
struct NotifySystemd { std::string state; };  // sd_notify text for our own parent
struct Log { LogLevel level; std::string text; };
// An upgrade's new generation is about to be spawned: every upgrade request not yet
// covered by an earlier one is answered by this generation's verdict.
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
};

struct Worker {
    uint64_t gen = 0;
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

    Phase phase() const { return phase_; }
    const std::vector<Worker>& workers() const { return workers_; }
    uint64_t serving_gen() const { return current_gen_; }
    uint64_t starting_gen() const { return starting_gen_; }
    bool upgrade_pending() const { return pending_upgrade_; }
    const Worker* find_pid(int pid) const;

    // Asserts the invariants stated above; returns an empty string or what is broken.
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

    void spawn_next();
    void start_upgrade();
    void spawn_upgrade();
    void become_ready(Worker& w);
    void drain(Worker& w);
    void start_failed(uint64_t gen, const std::string& reason);
    void serving_died(const Worker& w, const std::string& how);
    void schedule_respawn();
    void finish_stop_if_done();
    void verdict(uint64_t gen, bool ok, const std::string& reason);
    void log(LogLevel level, std::string text);
    Worker* find(int pid);
    Worker* find_gen(uint64_t gen);
    Millis since(Millis t) const { return now_ - t; }

    MachineSettings s_;
    Backoff backoff_;
    Phase phase_ = Phase::Starting;
    std::vector<Worker> workers_;
    uint64_t next_gen_ = 1;
    uint64_t current_gen_ = 0;
    uint64_t starting_gen_ = 0;
    uint64_t upgrade_gen_ = 0;  // the generation whose verdict an upgrade request awaits
    Millis upgrade_at_{0};
    uint64_t upgrade_from_gen_ = 0;  // the generation an upgrade replaces, for the log
    Millis stop_at_{0};
    bool pending_upgrade_ = false;
    bool pre_checking_ = false;  // starting_gen_ is reserved while its pre-check runs
    bool respawn_pending_ = false;
    bool ever_ready_ = false;
    Millis now_{0};
    std::vector<Action> out_;
};

// "exit=1", "signal=SIGKILL" for a waitpid(2) status.
std::string describe_wait_status(int wait_status);

} // namespace sv
