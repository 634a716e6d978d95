// The one logger: spdlog to stderr, key=value events, level carries meaning
// (info = lifecycle, warn = a worker misbehaved, error = the supervisor could not act).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "supervisor/machine_types.h"

namespace sv {

// Sets up the default logger. level: debug, info, warn, error. When stderr is the
// journal (JOURNAL_STREAM names it), every line starts with its sd-daemon priority
// ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug) and carries no timestamp: journald
// stores the priority (so `journalctl -p warning` finds our warnings) and its own time.
void init_logging(const std::string& level);

// spdlog's level for one of the machine's.
spdlog::level::level_enum spdlog_level(LogLevel l);

// True once init_logging found that stderr is the journal.
bool logging_to_journal();

// Logs one line of worker output at sd-daemon priority `priority` (0–7). To the journal
// the priority is written as is ("<N>"), so a worker's own prefix survives; elsewhere the
// line is logged at the matching level. Lines below the logger's level are dropped.
void log_worker_line(int priority, const std::string& text);

// One line on stderr for fatal startup errors: "supervisor: <what>" ("<3>" first when
// stderr is the journal).
void die_line(const std::string& what);

} // namespace sv
