// --adopt-bind at startup: find the preload library, and refuse commands it cannot enter.
#pragma once

#include <string>
#include <vector>

#include "supervisor/result.h"

namespace sv {

struct Listener;

// The preload next to our own binary (/proc/self/exe): <dir>/libsupervisor-adopt.so in
// the build directory, <dir>/<bindir→libdir>/supervisor/libsupervisor-adopt.so installed.
// Error: one line naming where it looked.
Result<std::string> locate_adopt_library();

// A command the preload can enter: dynamically linked (an ELF with PT_INTERP; a #! script's
// interpreter, one level), neither setuid nor setgid (ld.so ignores LD_PRELOAD for them).
// Error: one line saying why and what to do instead (LISTEN_FDS).
Result<Ok> check_adoptable(const std::string& path);

// Sets O_NONBLOCK on listeners passed by the service manager (ours are created so): the
// preload emulates each worker's own view on top of non-blocking listeners. Before any spawn.
void make_listeners_nonblocking(const std::vector<Listener>& listeners);

// The socket inode of each listener (fstat), in fd order.
std::vector<unsigned long long> listener_inodes(const std::vector<Listener>& listeners);

} // namespace sv
