// Parsers for the /proc files containment reads: /proc/PID/stat, /proc/self/cgroup,
// /proc/self/mountinfo. Pure (text in, values out), unit-tested and fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sv {

// The fields of /proc/PID/stat that containment needs (proc(5)).
struct ProcStat {
    int pid = 0;
    std::string comm;        // field 2, between the first '(' and the last ')'
    char state = '?';        // R, S, D, Z, X, …
    int ppid = 0;
    int pgrp = 0;
    int session = 0;
    uint64_t start_time = 0;  // field 22, clock ticks after boot: with pid, names one process
    uint64_t start_stack = 0; // field 28 (0 when the line stops before it)
    bool operator==(const ProcStat&) const = default;
};

// One /proc/PID/stat line. comm (field 2) may hold spaces, parentheses and newlines, so
// the fields after it are found from the *last* ')' (as procps does). nullopt when the
// line is truncated or a number is malformed.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// The cgroup v2 path ("0::/a/b") from /proc/self/cgroup; nullopt when there is no v2 line
// (a pure v1 system) or the path is not absolute.
std::optional<std::string> parse_cgroup2_path(std::string_view text);

// The cgroup2 mount from /proc/self/mountinfo: its mount point and the cgroup path mounted
// there (field 4, "root"). Octal escapes (\040 for a space) are decoded.
struct Cgroup2Mount {
    std::string root;
    std::string mount_point;
    bool operator==(const Cgroup2Mount&) const = default;
};
std::optional<Cgroup2Mount> find_cgroup2_mount(std::string_view mountinfo);

// The directory of cgroup `path` under `mount`: nullopt when the path is not below the
// mounted root (then it is not reachable through this mount).
std::optional<std::string> cgroup_dir(const Cgroup2Mount& mount, const std::string& path);

} // namespace sv
