// What /proc says about a process: liveness, process group, open fds, children, CPU and
// memory. For checks that nothing leaks (fds, zombies) and nothing spins (CPU).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace svtest {

// A live process: kill(pid, 0) succeeds and /proc/<pid>/stat is not a zombie.
bool pid_alive(pid_t pid);
// The process group of a live process (from /proc/<pid>/stat), or -1.
pid_t pgid_of(pid_t pid);

// In a namespace of their own so that test files which still define helpers of the same
// names (with `using namespace svtest`) keep compiling: call them as proc::open_fds(…).
namespace proc {

// The fd numbers open in `pid` (empty when it is gone).
std::vector<int> open_fds(pid_t pid);
// Fields after the command name in /proc/<pid>/stat: [0] state, [1] ppid, [2] pgrp, …
// [11] utime, [12] stime. Empty when it is gone.
std::vector<std::string> stat_fields(pid_t pid);

struct Child {
    pid_t pid;
    bool zombie;
};
// Every process whose parent is `pid`.
std::vector<Child> children_of(pid_t pid);
size_t zombies(const std::vector<Child>& children);

// User + system CPU time in ms, or -1.
long cpu_ms(pid_t pid);
// Resident memory in KiB (VmRSS), or -1.
long rss_kb(pid_t pid);

// The file status flags of `pid`'s `fd` (the octal `flags:` of fdinfo), or -1.
long fd_flags(pid_t pid, int fd);
// The lowest fd >= 3 of `pid` that is a socket, or -1.
int first_socket_fd(pid_t pid);

} // namespace proc

} // namespace svtest
