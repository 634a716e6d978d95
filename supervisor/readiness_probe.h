// Readiness without cooperation: whether a process of a starting generation waits for
// connections on an inherited listener, seen from /proc. It only observes; the machine
// decides what a generation that accepts means.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "supervisor/result.h"

namespace sv {

// How a process waits for connections on a listener.
enum class AcceptVia {
    Accept,  // a thread blocked in accept/accept4 on it
    Epoll,   // an epoll set of the process watches it for input (a thread may or may not wait on it now)
    Poll,    // a thread blocked in poll/ppoll with it in the set, POLLIN asked
    Select,  // a thread blocked in select/pselect6 with it in readfds
};
// "accept", "epoll", "poll", "select".
std::string_view accept_via_name(AcceptVia how);

struct Accepting {
    int pid = 0;
    int tid = 0;  // the waiting thread; 0 for an epoll set that no thread waits on right now
    AcceptVia how = AcceptVia::Accept;
};
using ProbeResult = std::optional<Accepting>;

// The first of `pids` that waits for connections on a socket whose inode is in
// `listener_inodes` (as the worker sees it: whatever fd number it dup'ed the listener
// to), or nullopt. Checked in this order per process: its threads' blocked syscalls
// (accept, poll, select, epoll_wait), then its epoll sets. A process that holds no fd of
// a listener is not accepting. Processes that vanish or cannot be read count as not
// accepting (can_inspect says why up front). Per process: its fd table is read once
// whatever its thread count, fdinfo only for epoll fds, memory only for the sets of
// threads blocked in poll/select.
//
// AcceptProbe also remembers each process between calls: when none of its threads has
// run since the last look (same scheduler counters and blocked calls, none running),
// nothing it could have changed is read again and the last verdict stands. Keep one per
// starting generation and call it as often as wanted.
class AcceptProbe {
public:
    AcceptProbe();
    ~AcceptProbe();
    AcceptProbe(AcceptProbe&&) noexcept;
    AcceptProbe& operator=(AcceptProbe&&) noexcept;

    ProbeResult probe(const std::vector<int>& pids, const std::set<ino_t>& listener_inodes);

    // How many process looks were read in full, and how many reused (for measurements).
    struct Stats {
        unsigned long read = 0;
        unsigned long reused = 0;
    };
    const Stats& stats() const { return stats_; }

private:
    struct Seen;
    ProbeResult probe_process(int pid);

    std::set<ino_t> inodes_;
    std::map<int, std::unique_ptr<Seen>> seen_;
    Stats stats_;
};

// A one-off AcceptProbe: reads everything.
ProbeResult probe_accepting(const std::vector<int>& pids, const std::set<ino_t>& listener_inodes);

// The worker and every live process in its process group or below it (by ppid), read
// from /proc/*/stat: where a server's master keeps its acceptors (nginx, gunicorn). The
// worker first, then ascending pids; empty when the worker is gone. Zombies are left out.
std::vector<int> list_generation_pids(int worker_pid);

// Whether this process may read `pid`'s syscalls and memory as the probe does. The
// error says why not, in one line: no /proc, no syscall table for this architecture, no
// such process, another uid without CAP_SYS_PTRACE, Yama's kernel.yama.ptrace_scope, a
// kernel without process_vm_readv, or a worker that made itself non-dumpable.
Result<Ok> can_inspect(int pid);

// The inodes of the given socket fds (the listeners), for probe_accepting.
Result<std::set<ino_t>> socket_inodes(const std::vector<int>& fds);

} // namespace sv
