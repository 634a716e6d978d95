// Connections per worker: the established TCP connections each worker (and its process
// group and descendants) holds on our listeners, found by sock_diag (NETLINK_SOCK_DIAG) and
// matched to processes by socket inode from /proc/PID/fd. No worker cooperation needed.
// Computed on demand (status, metrics, drain start), never on a timer.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "supervisor/listeners.h"
#include "supervisor/result.h"

namespace sv {

// pid → established connections on the listeners (TCP via inet_diag, unix via unix_diag:
// an accepted unix socket carries its listener's name), for each worker pid. An Error
// (sock_diag refused, e.g. by a seccomp filter or a kernel without the diag modules) says
// why in one line.
Result<std::map<int, int64_t>> count_connections(const std::vector<int>& worker_pids,
                                                 const std::vector<Listener>& listeners);

} // namespace sv
