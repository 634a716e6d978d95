// `supervisor ctl`: the client side of the control socket.
#pragma once

#include <string>
#include <vector>

namespace sv {

// Exit codes of `supervisor ctl`.
constexpr int kCtlOk = 0;
constexpr int kCtlFailed = 1;       // the upgrade was rolled back, a request was refused, or no answer in time
constexpr int kCtlUsage = 2;
constexpr int kCtlUnreachable = 3;  // no supervisor at the control socket

// args: everything after "ctl" (e.g. {"--control", "/run/app/supervisor.sock", "upgrade"}).
int run_ctl(const std::vector<std::string>& args);

} // namespace sv
