// Config: everything the command line decides, with its defaults in one place.
#pragma once

#include <sys/socket.h>

#include <csignal>
#include <cstddef>
#include <string>
#include <vector>

#include "supervisor/address.h"
#include "supervisor/adopt_env.h"
#include "supervisor/parse.h"

namespace sv {

// How a new worker is judged ready (README "Readiness"):
//  Delay     — alive after --ready-delay
//  Notify    — it sent READY=1
//  Accepting — one of its processes waits for connections on an inherited listener (/proc)
//  Auto      — accepting; a worker that speaks sd_notify must also have sent READY=1.
//              Where /proc cannot show it: READY=1, or alive after --ready-delay.
enum class ReadyMode { Delay, Notify, Accepting, Auto };

// NOTIFY_SOCKET: a path in a private directory (default; every client library can send
// to it) or an abstract `@…` name (--notify-socket abstract).
enum class NotifySocketKind { Path, Abstract };

// --cgroup: a cgroup per worker when one is delegated to us (Auto), or never (Off).
enum class ContainmentMode { Auto, Off };

// Which launcher conventions workers get besides systemd's LISTEN_* (always set).
struct Compat {
    bool server_starter = true;  // SERVER_STARTER_PORT, SERVER_STARTER_GENERATION
    bool einhorn = true;         // EINHORN_FDS, EINHORN_FD_COUNT, EINHORN_FD_<i>
    bool nginx = false;          // NGINX="3;4;" (only when asked: an nginx master takes the sockets)
    bool operator==(const Compat&) const = default;
};

constexpr Millis kDefaultReadyDelay{1000};
constexpr Millis kDefaultReadyTimeout{60'000};
constexpr Millis kDefaultDrainTimeout{30'000};
constexpr Millis kBackoffInitial{100};
constexpr Millis kBackoffMax{30'000};
constexpr Millis kBackoffResetAfter{10'000};
constexpr size_t kDefaultControlMaxClients = 64;
constexpr Millis kDefaultControlIdleTimeout{30'000};

struct Config {
    std::vector<ListenSpec> listeners;
    int backlog = SOMAXCONN;
    bool nonblocking = false;  // --nonblocking: listeners created with O_NONBLOCK (never changed after)
    ReadyMode ready_mode = ReadyMode::Auto;  // --ready (README "Readiness")
    Millis ready_delay = kDefaultReadyDelay;
    Millis ready_timeout = kDefaultReadyTimeout;
    int drain_signal = SIGTERM;
    Millis drain_timeout = kDefaultDrainTimeout;
    std::string pid_file;
    std::string control_path;  // --control; main defaults it to $RUNTIME_DIRECTORY/supervisor.sock
    std::string status_file;
    Compat compat;
    int socket_mode = -1;          // --socket-mode for unix listeners; -1: as the umask gives
    std::string socket_owner;      // --socket-owner USER[:GROUP] for unix listeners
    std::string log_level = "info";
    std::vector<std::string> command;  // argv of the worker, command[0] resolved through PATH
    std::string user, group;           // --user/--group: workers run unprivileged
    std::string chdir;                 // --chdir: resolved at every spawn
    std::vector<std::string> env;      // --env KEY=VALUE, validated
    std::string env_file;              // --env-file: re-read at every spawn
    std::string pre_check;             // --pre-check: shell command run before each upgrade
    bool log_workers = false;          // --log-workers: workers' output through our logger
    int workers = 1;                   // --workers N: processes per generation
    Millis worker_watchdog{0};         // --worker-watchdog: a worker silent this long after a WATCHDOG=1 is hung
    bool rolling = false;              // --upgrade rolling: one slot at a time
    Millis pre_check_timeout{60'000};
    std::vector<int> forward_signals;  // --forward-signal SIG: forwarded to the current workers
    NotifySocketKind notify_socket = NotifySocketKind::Path;
    size_t control_max_clients = kDefaultControlMaxClients;  // --control-max-clients
    Millis control_idle_timeout = kDefaultControlIdleTimeout; // --control-idle-timeout
    ContainmentMode containment = ContainmentMode::Auto;  // --cgroup auto|off
    Millis stop_delay{0};  // --stop-delay: at a stop, serve this long reported not ready, then drain
    Millis probation{0};   // --probation: a ready new generation serves beside the old one this long first
    std::string http;                  // --http ADDR: health and metrics endpoint ("": off)
    std::string metrics_file;          // --metrics-file: Prometheus text, rewritten atomically on change
    AdoptBind adopt_bind = AdoptBind::Off;  // --adopt-bind[=all|worker-only] (docs/ADOPT.md)
    std::string adopt_library;              // with --adopt-bind: the preload, found by main
};

// Signals a terminal or a stray kill sends that would end us by default (USR1, USR2) or that
// servers read as a command (WINCH: "stop your workers" for nginx, unicorn, Apache): caught
// always, forwarded only when --forward-signal names them, otherwise logged and ignored.
constexpr int kCaughtByDefault[] = {SIGUSR1, SIGUSR2, SIGWINCH};

// Exit codes, documented in --help and README.
constexpr int kExitOk = 0;
constexpr int kExitSystem = 1;      // a system call failed at startup (bind, permissions, …)
constexpr int kExitUsage = 2;       // bad command line
constexpr int kExitNotExecutable = 126;
constexpr int kExitNotFound = 127;

} // namespace sv
