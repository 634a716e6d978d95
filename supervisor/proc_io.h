// Reading /proc and another process's memory for the readiness probe: small helpers
// over openat/readlinkat/readdir/process_vm_readv, relative to a /proc/PID directory fd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/unique_fd.h"

namespace sv {

// /proc/PID as an O_PATH directory fd. Everything read through it is that process's:
// once it is gone, reads fail, even if its pid has been handed out again.
UniqueFd open_proc_dir(int pid);

// The whole of a small /proc file (at most 64 KiB) at `path` relative to `dir`
// (AT_FDCWD for an absolute path); nullopt with errno set on failure.
std::optional<std::string> read_text(int dir, const char* path);

// The target of the symbolic link at `path` relative to `dir` (/proc/PID/fd/N).
std::optional<std::string> read_link(int dir, const char* path);

// The numeric entries (pids, tids, fds) of the directory at `path` relative to `dir`;
// empty when it cannot be read.
std::vector<int> list_numbers(int dir, const char* path);

// Up to `size` bytes of process `pid`'s memory at `addr` (process_vm_readv): what could
// be read, possibly fewer bytes or none.
std::vector<std::byte> read_memory(int pid, uint64_t addr, size_t size);

} // namespace sv
