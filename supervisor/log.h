// The one logger: spdlog to stderr, key=value events, level carries meaning
// (info = lifecycle, warn = a worker misbehaved, error = the supervisor could not act).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace sv {

// Sets up the default logger. level: debug, info, warn, error. Under systemd
// (JOURNAL_STREAM set) the timestamp is left to the journal.
void init_logging(const std::string& level);

// One line on stderr for fatal startup errors: "supervisor: <what>".
void die_line(const std::string& what);

} // namespace sv
