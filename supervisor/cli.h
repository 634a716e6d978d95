// Command line → Config (pure: no I/O besides building help text).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "supervisor/config.h"

namespace sv {

// What the command line asks for: run with a Config, or print text and exit with a code
// (--help, --version, and usage errors, which come as one line naming the input).
struct CliExit {
    int code;
    std::string text;  // printed to stdout when code == 0, else to stderr
};
using CliOutcome = std::variant<Config, CliExit>;

CliOutcome parse_command_line(const std::vector<std::string>& args);

// "all", "none", or "server-starter,einhorn,nginx" (any subset).
std::optional<Compat> parse_compat(std::string_view text);

} // namespace sv
