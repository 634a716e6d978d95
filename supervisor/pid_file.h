// --pid-file: written atomically (temp file + rename), removed on exit if still ours.
#pragma once

#include <string>

#include "supervisor/result.h"

namespace sv {

Result<Ok> write_pid_file(const std::string& path);
void remove_pid_file(const std::string& path);

} // namespace sv
