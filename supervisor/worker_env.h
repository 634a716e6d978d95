// The worker's environment: LISTEN_*, NOTIFY_SOCKET, SUPERVISOR_GENERATION and the
// Server::Starter / einhorn compatibility variables (pure).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "supervisor/config.h"

namespace sv {

struct ListenerInfo {
    std::string name;     // LISTEN_FDNAMES entry
    std::string address;  // SERVER_STARTER_PORT key: "127.0.0.1:8080", "8080", "/run/app.sock"
};

struct WorkerEnvInput {
    std::vector<std::string> base;  // the supervisor's own environ
    std::vector<ListenerInfo> listeners;
    std::string notify_socket;      // "@…" or a path
    uint64_t generation = 0;
    int worker_index = 0;  // SUPERVISOR_WORKER_INDEX: the slot, 0..N-1
    Compat compat;
};

struct WorkerEnv {
    std::vector<std::string> vars;  // KEY=VALUE
    size_t listen_pid_index = 0;    // vars[listen_pid_index] == "LISTEN_PID=", the child appends its pid
};

// Variables from `base` that we set ourselves are dropped first, so a value inherited from
// systemd (LISTEN_FDS meant for the supervisor, its NOTIFY_SOCKET) never reaches a worker.
WorkerEnv build_worker_env(const WorkerEnvInput& in);

// True for names this module owns (LISTEN_*, NOTIFY_SOCKET, SUPERVISOR_*, SERVER_STARTER_*,
// EINHORN_*, NGINX): dropped from what workers inherit even when --compat turns them off.
bool is_managed_variable(const std::string& key_value);

} // namespace sv
