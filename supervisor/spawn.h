// Spawning a worker: our own fork/exec, because LISTEN_PID must be the child's own pid
// and the listeners must land on fds 3.. with nothing else leaked (uv_spawn can do neither).
#pragma once

#include <string>
#include <vector>

#include "supervisor/credentials.h"
#include "supervisor/result.h"

namespace sv {

constexpr size_t kNoListenPid = static_cast<size_t>(-1);

struct SpawnRequest {
    std::vector<std::string> argv;   // argv[0] is looked up in PATH unless it contains '/'
    std::vector<std::string> env;    // KEY=VALUE
    size_t listen_pid_index = kNoListenPid;  // env[listen_pid_index] == "LISTEN_PID=": the child appends its pid
    std::vector<int> listen_fds;     // moved onto 3, 4, … in this order
    int pdeath_signal = 15;          // PR_SET_PDEATHSIG: what the worker gets if we die
    std::string chdir;               // --chdir, resolved in the child at every spawn ("" = ours)
    Credentials creds;               // --user/--group: dropped in the child before exec
    int stdout_fd = -1;              // dup'ed onto 1 / 2 when >= 0 (--log-workers); else inherited
    int stderr_fd = -1;
    int cgroup_procs_fd = -1;        // containment: the worker's cgroup.procs; the child writes "0" first thing
};

// Forks and execs. Returns the child's pid once exec succeeded; exec failure is reported
// synchronously through a close-on-exec pipe (the child writes errno and _exit(127)s) as
// Error{errno, "cannot execute '<cmd>': <strerror>"}; fork failure as Error{errno, …}.
// The child runs in its own process group with an empty signal mask and default
// dispositions, and is a child subreaper's child: reap it with waitpid().
Result<int> spawn_worker(const SpawnRequest& req);

// Marks every fd above 2 close-on-exec except `keep`: fds inherited from whoever started
// the supervisor must not reach workers.
void cloexec_inherited_fds(const std::vector<int>& keep);

} // namespace sv
