// The supervisor's CLI11 options: their registration and help text (cli_options.cpp), and
// the raw strings they fill in, which cli.cpp validates into a Config.
#pragma once

#include <string>
#include <vector>

#include "supervisor/config.h"

namespace CLI {
class App;
}

namespace sv {

// Options CLI11 stores as text, validated after parsing so each error is one line naming
// the input. Options CLI11 can check itself (ranges, choices) go straight into Config.
struct RawOptions {
    std::vector<std::string> listen, positional;
    std::string ready = "auto", ready_delay, ready_timeout, drain_signal, drain_timeout, worker_watchdog;
    std::string compat, socket_mode;
    std::string pre_check_timeout;
    std::string control_idle;
    std::string notify_kind = "path";
    std::vector<std::string> forward_signals;
    std::string upgrade_mode = "all";
    std::string cgroup = "auto";
    std::string stop_delay, probation;
    std::string adopt_bind;  // "" (off), "all" or "worker-only"
};

// Declares every option on app, in --help order, bound to raw and cfg (which must outlive
// app.parse), with the footer and --version.
void register_options(CLI::App& app, RawOptions& raw, Config& cfg);

} // namespace sv
