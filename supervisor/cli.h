// Command line → Config (pure: no I/O besides building help text).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "supervisor/config.h"
#include "supervisor/result.h"

namespace sv {

// What the command line asks for: run with a Config, or print text and exit with a code
// (--help, --version, and usage errors, which come as one line naming the input).
struct CliExit {
    int code;
    std::string text;  // printed to stdout when code == 0, else to stderr
};
using CliOutcome = std::variant<Config, CliExit>;

CliOutcome parse_command_line(const std::vector<std::string>& args);

// --forward-signal: a catchable signal that is not one the supervisor uses itself (HUP, TERM,
// INT, CHLD) nor a fault signal (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT) or PIPE. The error names the input.
Result<int> parse_forward_signal(const std::string& text);

// "all", "none", or "server-starter,einhorn,nginx" (any subset).
std::optional<Compat> parse_compat(std::string_view text);

} // namespace sv
