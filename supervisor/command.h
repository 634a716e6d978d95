// Command resolution: argv[0] → the file execve(2) will run, with its format checked.
#pragma once

#include <string>

#include "supervisor/result.h"

namespace sv {

// Resolves argv[0] like execvp(3) would: a path with '/' as is (relative to `base_dir` when
// given and the path is relative: the worker's --chdir), else the first executable
// regular file in PATH. Errors: ENOENT (not found, or a #! interpreter that is missing),
// EACCES (not executable), ENOEXEC (neither ELF nor #!), each as one readable line.
Result<std::string> resolve_command(const std::string& name, const std::string& path_env,
                                    const std::string& base_dir = "");

} // namespace sv
