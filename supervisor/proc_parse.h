// /proc texts and a blocked task's syscall arguments, parsed (pure): what the readiness
// probe reads to see a worker wait for connections. No syscalls here; see proc(5).
#pragma once

#include "supervisor/proc_files.h"

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sv {

// /proc/PID/task/TID/syscall. "running" (on a CPU), "-1 SP PC" (blocked, but not in a
// system call: e.g. stopped, or in a page fault), or "NR A0 A1 A2 A3 A4 A5 SP PC" with
// NR in decimal and the rest in hex (0x…), see proc(5).
struct TaskSyscall {
    enum class State { Running, NotInSyscall, Blocked };
    State state = State::Running;
    long nr = -1;
    std::array<uint64_t, 6> args{};
    uint64_t sp = 0;
    uint64_t pc = 0;
};
// nullopt when the text has none of these forms (a trailing newline is fine).
std::optional<TaskSyscall> parse_task_syscall(std::string_view text);

// One `tfd: FD events: HEX data: HEX pos:N ino:HEX sdev:HEX` line of an epoll fd's
// /proc/PID/fdinfo/N: `ino` is the watched file's inode, `sdev` its superblock device in
// the kernel's encoding (see kernel_dev_to_dev).
struct EpollWatch {
    int tfd = -1;
    uint32_t events = 0;
    uint64_t ino = 0;
    uint32_t sdev = 0;
};
// Every tfd line of the text (none for an epoll set that watches nothing, or for the
// fdinfo of another kind of fd). nullopt when a tfd line is malformed: the format is not
// the one we know, and guessing could mistake one file for another.
std::optional<std::vector<EpollWatch>> parse_epoll_fdinfo(std::string_view text);

// The kernel's dev_t (major << 20 | minor, as fdinfo prints it) → the dev_t that stat(2)
// returns, so an epoll watch can be compared with a socket's st_dev.
dev_t kernel_dev_to_dev(uint32_t kernel_dev);

// readlink("/proc/PID/fd/N") of a socket, "socket:[12345]" → 12345; nullopt otherwise.
std::optional<uint64_t> parse_socket_link(std::string_view link);
// True for an epoll instance's link text, "anon_inode:[eventpoll]".
bool is_eventpoll_link(std::string_view link);

// The entries of a struct pollfd array as read from another process's memory (native
// layout: int fd, short events, short revents). A trailing partial entry is ignored.
struct PollEntry {
    int fd = -1;
    short events = 0;
};
std::vector<PollEntry> parse_pollfds(std::span<const std::byte> bytes);
// True when poll(2) would report `e` readable for a pending connection: a non-negative
// fd asked for POLLIN or POLLRDNORM.
bool polls_for_input(const PollEntry& e);

// The fds below `nfds` whose bit is set in an fd_set (select(2) readfds) read from memory:
// an array of unsigned long, bit fd % bits of word fd / bits. Bits past the bytes given
// are not set; a negative nfds gives none.
std::vector<int> parse_fd_set(std::span<const std::byte> bytes, long nfds);
// How many bytes of an fd_set the kernel reads for `nfds` (whole words), 0 if nfds <= 0.
size_t fd_set_bytes(long nfds);

// /proc/PID/stat: ProcStat and parse_proc_stat() live in proc_files.h.

// The value of `key` ("Uid:", "CapEff:") in /proc/PID/status, without the surrounding
// blanks; nullopt when the line is missing.
std::optional<std::string_view> status_field(std::string_view status, std::string_view key);
// The first number of a "Uid:" value ("1000\t1000\t1000\t1000" → 1000).
std::optional<unsigned> parse_status_uid(std::string_view value);
// A capability set as status prints it ("000001ffffffffff").
std::optional<uint64_t> parse_status_caps(std::string_view value);

// The system calls in which a thread waits for a connection, per architecture.
// -1: the architecture has no such call (aarch64 has no poll, select, epoll_wait).
struct WaitSyscalls {
    long accept, accept4, poll, ppoll, select, pselect6, epoll_wait, epoll_pwait, epoll_pwait2;
};
constexpr WaitSyscalls kX86_64Syscalls{43, 288, 7, 271, 23, 270, 232, 281, 441};
constexpr WaitSyscalls kAarch64Syscalls{202, 242, -1, 73, -1, 72, -1, 22, 441};
// The table of the architecture we are built for (x86_64 or aarch64); nullptr elsewhere.
const WaitSyscalls* host_wait_syscalls();

// What a blocked thread waits on, from its syscall's arguments.
struct WaitCall {
    enum class Kind { Accept, Poll, Select, Epoll };
    Kind kind = Kind::Accept;
    int fd = -1;          // Accept: the listening fd; Epoll: the epoll fd
    uint64_t addr = 0;    // Poll: the pollfd array; Select: readfds (0: none)
    long count = 0;       // Poll: nfds; Select: nfds
};
// nullopt for a thread that is not blocked in one of `table`'s calls.
std::optional<WaitCall> classify_wait(const WaitSyscalls& table, const TaskSyscall& call);

} // namespace sv
