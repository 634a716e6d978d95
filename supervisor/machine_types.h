// The vocabulary of the upgrade state machine: its phases, the events it is fed and the
// actions it asks the shell to carry out (pure data, no behaviour).
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "supervisor/config.h"
#include "supervisor/notify_message.h"

namespace sv {

// The machine's stored phase; every event handler is a switch over it.
//  Starting  — the first generation is not up yet (or never came up: crash loop)
//  Serving   — every slot has been served; no upgrade in flight
//  Upgrading — an upgrade is in flight (pre-check, or its workers are starting/rolling)
//  Stopping  — a stop was asked for: during the stop delay (--stop-delay) the ready workers
//              keep serving while the service reports not ready; then workers drain, and the
//              machine exits once all are reaped
//  Stopped   — the machine has asked the shell to exit; it only cleans up stragglers
enum class Phase { Starting, Serving, Upgrading, Stopping, Stopped };
enum class WorkerState { Starting, Ready, Draining, Failed };
enum class LogLevel { Debug, Info, Warn, Error };

const char* to_string(WorkerState s);
const char* to_string(Phase p);

struct TimerId {
    enum class Kind { Ready, Drain, Respawn, Watchdog, StopDelay, Probation };
    Kind kind;
    // The worker's id (Ready, Drain, Watchdog; never a pid, which the kernel may hand out again once
    // reaped), the slot (Respawn), the generation on probation (Probation), 0 (StopDelay).
    uint64_t key = 0;
    bool operator==(const TimerId&) const = default;
};

// Who asked for a stop: a second signal escalates to a kill, a second `ctl stop` does not.
// During the stop delay a second SIGTERM only cuts the delay short (drain now); SIGINT
// (Interrupt, a terminal's ^C) escalates at once as ever.
enum class StopSource { Signal, Control, Interrupt };

// --- events ------------------------------------------------------------------------------
struct Boot {};
// client: the control connection waiting for the verdict (0: nobody waits, e.g. SIGHUP).
struct UpgradeRequested { uint64_t client = 0; };
struct ClientGone { uint64_t client; };
struct StopRequested { StopSource source = StopSource::Signal; };
struct WorkerSpawned { uint64_t gen; int slot; int pid; };
struct SpawnFailed { uint64_t gen; int slot; int err; std::string reason; };  // err: errno of exec, 0 otherwise
struct Notified { int pid; NotifyMessage msg; };
// The readiness probe saw a process of worker `pid` wait for connections on an inherited
// listener; `how`: accept, epoll, poll, select.
struct WorkerAccepting { int pid; std::string how; };
// wait_status as from waitpid(2); group_alive: processes the worker started are still alive
// (they may hold the listening socket).
struct WorkerExited { int pid; int wait_status; bool group_alive = false; };
// Every process a reaped worker left behind is gone now.
struct GroupGone { int pid; };
struct TimerFired { TimerId id; };
struct ForwardSignal { int sig; };
struct PreCheckDone { uint64_t gen; bool ok; std::string reason; };
using Event = std::variant<Boot, UpgradeRequested, ClientGone, StopRequested, WorkerSpawned, SpawnFailed, Notified,
                           WorkerAccepting, WorkerExited, GroupGone, TimerFired, ForwardSignal, PreCheckDone>;

// --- actions -----------------------------------------------------------------------------
struct Spawn { uint64_t gen; int slot; };  // answered by WorkerSpawned or SpawnFailed
struct RunPreCheck { uint64_t gen; };      // answered by PreCheckDone
struct Signal { int pid; int sig; };
struct KillGroup { int pid; };  // SIGKILL to the worker and every process it started
struct StartTimer { TimerId id; Millis after; };
struct CancelTimer { TimerId id; };
// What our own service manager is told (sd_notify): the shell formats it.
enum class SdState { Ready, Reloading, Stopping, Status };
struct NotifySystemd { SdState state; std::string status; };
struct Log { LogLevel level; std::string text; };
// The verdict of upgrade `gen`, for the record (status, last upgrade).
struct UpgradeVerdict { uint64_t gen; bool ok; std::string reason; };
// The answer to one waiting `ctl upgrade` client. gen 0: refused before any upgrade started.
struct AnswerUpgrade { uint64_t client; uint64_t gen; bool ok; std::string reason; uint64_t serving_gen; };
struct Exit { int code; };
// No worker will accept on the listeners again (a stop, once the drain signals are out): the
// shell closes its own copies, unless the service manager owns them.
struct CloseListeners {};
using Action = std::variant<Spawn, RunPreCheck, Signal, KillGroup, StartTimer, CancelTimer, NotifySystemd, Log,
                            UpgradeVerdict, AnswerUpgrade, Exit, CloseListeners>;

struct MachineSettings {
    ReadyMode ready_mode = ReadyMode::Delay;
    bool can_probe = true;  // the readiness probe works here (Accepting/Auto); else Auto falls back
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
    Millis worker_watchdog{0};  // --worker-watchdog: 0 off
    Millis stop_delay{0};       // --stop-delay: serve this long, reported not ready, before draining at a stop
    Millis probation{0};        // --probation: a ready new generation serves beside the old one this long first
};

struct Worker {
    uint64_t id = 0;  // the machine's own serial number, unique for its life
    uint64_t gen = 0;
    int slot = 0;
    int pid = 0;
    WorkerState state = WorkerState::Starting;
    Millis spawned_at{0};
    Millis ready_at{0};
    Millis drain_at{0};
    bool killed = false;
    bool spoke = false;     // sent any sd_notify message: it speaks the protocol
    bool notified = false;  // sent READY=1
    bool watched = false;   // sent WATCHDOG=1 at least once (--worker-watchdog)
    std::string seen;       // how the probe saw it accept ("" until it did)
    std::string status;     // last STATUS= text
};

// "exit=1", "signal=SIGKILL" for a waitpid(2) status.
std::string describe_wait_status(int wait_status);

} // namespace sv
