// Attribution of processes to a worker without a cgroup: groups, setsid() descendants,
// and pid reuse (a recycled number is never taken for a member).
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "supervisor/process_tree.h"

using namespace sv;

namespace {

ProcStat proc(int pid, int ppid, int pgrp, uint64_t start, char state = 'S') {
    ProcStat p;
    p.pid = pid;
    p.ppid = ppid;
    p.pgrp = pgrp;
    p.session = 1;
    p.start_time = start;
    p.state = state;
    return p;
}

std::vector<int> pids(const std::vector<ProcStat>& ps) {
    std::vector<int> out;
    for (const auto& p : ps) out.push_back(p.pid);
    std::sort(out.begin(), out.end());
    return out;
}

constexpr int kUs = 10;  // the supervisor

} // namespace

TEST_CASE("process tree: the worker, its group, and its descendants whatever their group") {
    std::vector<ProcStat> table = {
        proc(kUs, 1, kUs, 5),
        proc(100, kUs, 100, 50),        // the worker
        proc(101, 100, 100, 51),        // a helper in its group
        proc(102, 100, 102, 52),        // a child that called setsid()
        proc(103, 102, 103, 53),        // and its child, in yet another session
        proc(200, kUs, 200, 60),        // another worker
        proc(201, 200, 200, 61),
        proc(300, 1, 300, 2),           // a stranger
    };
    CHECK_EQ(pids(members_of(table, {100, 50, false, {}})), std::vector<int>{100, 101, 102, 103});
    CHECK_EQ(pids(members_of(table, {200, 60, false, {}})), std::vector<int>{200, 201});
}

TEST_CASE("process tree: after the worker is reaped, what was seen stays attributed") {
    // 102 called setsid() and was reparented to us when 100 exited.
    std::vector<ProcStat> table = {proc(101, kUs, 100, 51), proc(102, kUs, 102, 52), proc(104, 102, 102, 54)};
    SUBCASE("the group is still the worker's while a known member is in it") {
        CHECK_EQ(pids(members_of(table, {100, 50, true, {{101, 51}, {102, 52}}})), std::vector<int>{101, 102, 104});
    }
    SUBCASE("a setsid() descendant never seen before the reap is not found by group") {
        CHECK_EQ(pids(members_of(table, {100, 50, true, {{101, 51}}})), std::vector<int>{101});
    }
    SUBCASE("zombies are not members") {
        table[0].state = 'Z';
        CHECK_EQ(pids(members_of(table, {100, 50, true, {{101, 51}, {102, 52}}})), std::vector<int>{102, 104});
    }
}

TEST_CASE("process tree: pid reuse never makes a stranger a member") {
    SUBCASE("the reaped worker's number is now another worker, leading its own group") {
        std::vector<ProcStat> table = {proc(100, kUs, 100, 900), proc(105, 100, 100, 901)};
        CHECK(members_of(table, {100, 50, true, {}}).empty());
    }
    SUBCASE("the worker's number before it is reaped, but another start time: not it") {
        std::vector<ProcStat> table = {proc(100, kUs, 100, 900)};
        // Cannot happen while the worker is unreaped; the start time still rules it out.
        CHECK_EQ(pids(members_of(table, {100, 50, false, {}})), std::vector<int>{100});
        CHECK(members_of(table, {100, 50, true, {}}).empty());
    }
    SUBCASE("a known member's number reused: the start time differs") {
        std::vector<ProcStat> table = {proc(101, 1, 101, 700)};
        CHECK(members_of(table, {100, 50, true, {{101, 51}}}).empty());
    }
    SUBCASE("a reused number in the old group id, known members all gone") {
        std::vector<ProcStat> table = {proc(100, 300, 100, 900), proc(107, 100, 100, 950)};
        CHECK(members_of(table, {100, 50, true, {{101, 51}}}).empty());
    }
}
