// What the service manager tells us through the environment (pure parsing):
// JOURNAL_STREAM (is our stderr the journal?) and WATCHDOG_USEC/WATCHDOG_PID.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "supervisor/config.h"
#include "supervisor/result.h"

namespace sv {

// True when JOURNAL_STREAM ("<dev>:<inode>", decimal) names the stream whose fstat(2)
// gave `dev` and `ino`: systemd sets it for the service's stdout/stderr, but a child whose
// stderr was redirected elsewhere inherits the variable too (see systemd.exec(5)).
bool journal_stream_matches(std::string_view journal_stream, uint64_t dev, uint64_t ino);

// The watchdog period that WATCHDOG_USEC asks of us (see sd_watchdog_enabled(3)): none when
// `usec` is absent or WATCHDOG_PID is set and names another process. Errors: a malformed
// or zero WATCHDOG_USEC, a malformed WATCHDOG_PID.
Result<std::optional<Millis>> watchdog_period(const char* usec, const char* pid, pid_t self);

} // namespace sv
