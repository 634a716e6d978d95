// Journal log lines (pure): the sd-daemon priority prefixes ("<3>" … "<7>", see
// sd-daemon(3)) that journald reads at the start of each stdout/stderr line.
#pragma once

#include <string_view>

#include "supervisor/machine_types.h"

namespace sv {

// syslog priorities as sd-daemon(3) spells them.
constexpr int kSdErr = 3;
constexpr int kSdWarning = 4;
constexpr int kSdInfo = 6;
constexpr int kSdDebug = 7;

// The priority of our own lines at `level`: Error 3, Warn 4, Info 6, Debug 7.
int sd_priority(LogLevel level);

// The level a worker line of sd-daemon priority `priority` (0–7) is logged at when not
// writing to the journal: 0–3 Error, 4 Warn, 5–6 Info, 7 Debug.
LogLevel level_of_sd_priority(int priority);

// A line split into the priority its "<N>" prefix gives and the text after it.
struct PrefixedLine {
    int priority;
    std::string_view text;
};

// Reads a leading "<N>" as journald does (syslog_parse_priority): 1 to 3 digits whose
// value is at most 191 (facility * 8 + priority); the priority is the value's low 3 bits.
// Without a valid prefix the whole line is the text and `default_priority` its priority.
PrefixedLine split_sd_priority(std::string_view line, int default_priority);

} // namespace sv
