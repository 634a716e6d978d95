// The two entry points a reexec runs the new binary with (see supervisor_reexec.cpp):
//   supervisor --check-state FD   parse and accept the state (exit 0) or say why not (exit 1)
//   supervisor --resume FD        carry on as the supervisor the state describes
#pragma once

#include <string>
#include <vector>

namespace sv {

int run_check_state(const std::string& fd_text);
int run_resume(const std::string& fd_text);

// What main remembers of its own start for a later reexec: argv, environ, /proc/self/exe.
std::vector<std::string> environment_now();
std::string own_exe_path();

} // namespace sv
