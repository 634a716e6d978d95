// Which processes of a /proc snapshot belong to a worker, when no cgroup says so: the
// fallback containment's attribution rules, pure so that pid reuse can be unit-tested.
#pragma once

#include <cstdint>
#include <vector>

#include "supervisor/proc_files.h"

namespace sv {

// A process seen before and held by a pidfd: pid and start time name it for good.
struct KnownProcess {
    int pid = 0;
    uint64_t start_time = 0;
};

struct TreeQuery {
    int leader = 0;              // the worker: its pid is its process group id
    uint64_t leader_start = 0;   // its start time, from its first look
    bool leader_reaped = false;  // once reaped, its pid (and so its group id) may be reused
    std::vector<KnownProcess> known;  // members found by earlier looks
};

// The live (not zombie) members of the worker in `table`:
//  - the leader, while it is not reaped (same pid and start time);
//  - every known process still present with the same pid and start time;
//  - every process in the leader's process group, but only while that group id cannot
//    have been reused: the leader is not reaped yet, or a known member is still in it
//    (the kernel never hands out a pid that is still some process's group id);
//  - every descendant (by ppid) of a member, whatever its group or session: setsid()
//    leaves the group, not the tree.
// A process reusing the number of a reaped leader, or of a member that is gone, is not
// a member unless it descends from one.
std::vector<ProcStat> members_of(const std::vector<ProcStat>& table, const TreeQuery& q);

} // namespace sv
