// `supervisor ctl`: the client side of the control socket.
#pragma once

#include <string>
#include <vector>

namespace sv {

// Exit codes of `supervisor ctl`.
constexpr int kCtlOk = 0;
constexpr int kCtlFailed = 1;       // rolled back, refused, an error reply, no answer in time, or closed without one
constexpr int kCtlUsage = 2;
constexpr int kCtlUnreachable = 3;  // connect() failed: nothing listens there (ENOENT, ECONNREFUSED)

// args: everything after "ctl" (e.g. {"--control", "/run/app/supervisor.sock", "upgrade"}).
int run_ctl(const std::vector<std::string>& args);

} // namespace sv
