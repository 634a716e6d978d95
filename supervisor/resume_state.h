// The state a supervisor hands to its next image on `ctl reexec` (pure: JSON in, JSON out).
// Versioned, with named fields: a field this binary does not know, a missing one, a value
// of the wrong type or out of range, or another version is refused with one line that
// names it. Parsing trusts nothing: the shell still checks every fd and pid it names
// (supervisor_resume.cpp) before using them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/machine_state.h"
#include "supervisor/metrics.h"
#include "supervisor/result.h"

namespace sv {

// The format this binary writes. Bump it for any change of meaning; adding a field is a
// change too (an older binary refuses what it does not know). Version 2 added "http" and
// "metrics"; a version 1 state (from an older binary) is still read, with neither: no
// --http listener to take over, counters from zero.
constexpr int kResumeStateVersion = 2;
constexpr int kResumeStateOldestVersion = 1;
constexpr size_t kResumeStateMaxBytes = 16 * 1024 * 1024;

struct ResumeListener {
    std::string name;
    std::string address;
    int fd = -1;
    uint64_t unix_inode = 0;  // the socket file we created (0: none)
    bool adopted = false;     // from the service manager (socket unit or fd store)
};

// A worker's containment: its cgroup (empty: process group + pidfds), and its start time
// (/proc/PID/stat field 22) so the new image re-opens a pidfd to the same process only.
struct ResumeContained {
    int pid = 0;
    std::string cgroup;
    uint64_t start_time = 0;
    bool reaped = false;  // the worker is reaped, what it started is not all gone
    struct Member {
        int pid = 0;
        uint64_t start_time = 0;
    };
    std::vector<Member> members;  // fallback: the processes it started, held so far
};

struct ResumeTimer {
    TimerId id;
    Millis remaining{0};
};

struct ResumeState {
    int version = kResumeStateVersion;
    std::string exe;                // the binary this image runs (the next reexec's default)
    std::vector<std::string> argv;  // the command line, parsed again by the new image
    std::vector<std::string> env;   // the environment the supervisor was started with
    int64_t started_mono_ns = 0;    // CLOCK_MONOTONIC at start: the machine's clock origin
    int64_t started_unix_ms = 0;
    int64_t written_mono_ns = 0;    // CLOCK_MONOTONIC when written: timers' remaining time is as of then
    std::vector<ResumeListener> listeners;
    int notify_fd = -1;
    std::string notify_name, notify_dir;  // dir: ours to remove at exit ("" for abstract)
    int control_fd = -1;                  // -1: no control socket
    std::string control_path;
    uint64_t control_inode = 0;
    int client_fd = -1;  // the `ctl reexec` connection waiting for the verdict (-1: none)
    int pid_file_fd = -1;
    std::string pid_file_path;
    std::string containment_base;  // cgroup mode: our supervisor.<pid> directory; "": fallback
    std::string containment_description;
    std::vector<ResumeContained> contained;
    std::vector<int> leftovers;  // reaped workers whose processes live on
    uint64_t broken_invariants = 0;
    bool has_last_upgrade = false;
    uint64_t last_upgrade_gen = 0;
    bool last_upgrade_ok = false;
    std::string last_upgrade_reason;
    int64_t last_upgrade_at_unix_ms = 0;
    int http_fd = -1;  // the --http listener (-1: none, or not carried)
    std::string http_address;  // as it was bound: "127.0.0.1:9180", "[::1]:9180", "unix:/run/x.sock"
    uint64_t http_inode = 0;   // unix: the socket file we created
    CounterState counters;     // the metrics' counters (metrics.h)
    MachineState machine;  // machine.timers: the ids of `timers`
    std::vector<ResumeTimer> timers;
};

std::string serialize_resume_state(const ResumeState& st);
// Errors read "resume state: <what>", e.g. "resume state: version 2 is newer than this
// binary reads (1): reexec into a newer binary".
Result<ResumeState> parse_resume_state(std::string_view text);

} // namespace sv
