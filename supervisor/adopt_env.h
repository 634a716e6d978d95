// --adopt-bind's part of the worker environment: LD_PRELOAD and SUPERVISOR_ADOPT (pure).
#pragma once

#include <string>
#include <vector>

namespace sv {

// --adopt-bind: off, on for the worker and every program it runs (All), or for the worker's
// own process only (WorkerOnly: the preload removes itself from what the worker execs).
enum class AdoptBind { Off, All, WorkerOnly };

struct AdoptEnvInput {
    std::string library;                   // absolute path of libsupervisor-adopt.so
    std::vector<unsigned long long> inodes; // socket inode of the listener on fd 3 + i
    bool view_nonblocking = false;         // --nonblocking: workers see O_NONBLOCK set
    AdoptBind scope = AdoptBind::All;
};

// "fds=3:<ino>,4:<ino> view=blocking|nonblocking scope=all|worker" (the preload's
// adopt_parse_env reads it; docs/ADOPT.md).
std::string adopt_variable(const AdoptEnvInput& in);

// Appends the library to LD_PRELOAD in vars (KEY=VALUE; added when absent, never
// clobbering the user's entries, not twice) and sets SUPERVISOR_ADOPT.
void add_adopt_env(std::vector<std::string>& vars, const AdoptEnvInput& in);

} // namespace sv
