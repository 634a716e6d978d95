// Parsing of small command-line values: durations and signal names (pure).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sv {

using Millis = std::chrono::milliseconds;

// "250ms", "2s", "1m", "1h", "1.5s"; a bare number means seconds. Empty,
// negative, unknown units and values over a day are rejected.
std::optional<Millis> parse_duration(std::string_view text);

// "TERM", "SIGTERM", "sigterm", "15" → 15. Only catchable, real signals
// (not KILL or STOP, not 0, not beyond the real-time range).
std::optional<int> parse_signal(std::string_view text);

// 15 → "SIGTERM"; unknown numbers → "SIG<n>".
std::string signal_name(int sig);

// "250ms", "2s", "1m30s"-free compact rendering for logs and help: "250ms", "2s", "90s".
std::string format_duration(Millis d);

// An octal file mode like "0660" or "660" (at most 07777).
std::optional<int> parse_mode(std::string_view text);

// Parses a non-negative decimal integer that fits in int, no sign, no spaces.
std::optional<int> parse_uint(std::string_view text);

} // namespace sv
