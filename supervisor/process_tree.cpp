// Attribution of processes to a worker from a /proc snapshot (see process_tree.h).
#include "supervisor/process_tree.h"

#include <algorithm>
#include <set>

namespace sv {

namespace {

bool is_dead(const ProcStat& p) { return p.state == 'Z' || p.state == 'X' || p.state == 'x'; }

bool is_known(const TreeQuery& q, const ProcStat& p) {
    return std::any_of(q.known.begin(), q.known.end(),
                       [&](const KnownProcess& k) { return k.pid == p.pid && k.start_time == p.start_time; });
}

// The leader's group id still names the group the worker started, not a later one.
bool group_is_original(const std::vector<ProcStat>& table, const TreeQuery& q) {
    if (!q.leader_reaped) return true;  // an unreaped zombie still pins its pid
    return std::any_of(table.begin(), table.end(),
                       [&](const ProcStat& p) { return p.pgrp == q.leader && !is_dead(p) && is_known(q, p); });
}

} // namespace

std::vector<ProcStat> members_of(const std::vector<ProcStat>& table, const TreeQuery& q) {
    const bool by_group = group_is_original(table, q);
    std::set<int> member_pids;
    std::vector<bool> taken(table.size(), false);
    for (size_t i = 0; i < table.size(); i++) {
        const ProcStat& p = table[i];
        bool leader = !q.leader_reaped && p.pid == q.leader && p.start_time == q.leader_start;
        if (leader || is_known(q, p) || (by_group && p.pgrp == q.leader)) {
            taken[i] = true;
            member_pids.insert(p.pid);
        }
    }
    // Descendants: repeat until no process joins (each pass takes at least one level).
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < table.size(); i++) {
            if (taken[i] || member_pids.count(table[i].ppid) == 0) continue;
            taken[i] = true;
            member_pids.insert(table[i].pid);
            grew = true;
        }
    }
    std::vector<ProcStat> out;
    for (size_t i = 0; i < table.size(); i++)
        if (taken[i] && !is_dead(table[i])) out.push_back(table[i]);
    return out;
}

} // namespace sv
