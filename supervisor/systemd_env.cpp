// Parsing systemd's environment variables.
#include "supervisor/systemd_env.h"

#include <cerrno>
#include <charconv>
#include <string>

namespace sv {

namespace {

std::optional<uint64_t> parse_u64(std::string_view s) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

} // namespace

bool journal_stream_matches(std::string_view journal_stream, uint64_t dev, uint64_t ino) {
    size_t colon = journal_stream.find(':');
    if (colon == std::string_view::npos) return false;
    auto d = parse_u64(journal_stream.substr(0, colon));
    auto i = parse_u64(journal_stream.substr(colon + 1));
    return d && i && *d == dev && *i == ino;
}

Result<std::optional<Millis>> watchdog_period(const char* usec, const char* pid, pid_t self) {
    if (usec == nullptr) return std::optional<Millis>{};
    auto us = parse_u64(usec);
    if (!us || *us == 0) return Error{EINVAL, std::string("invalid WATCHDOG_USEC='") + usec + "' from the service manager"};
    if (pid != nullptr) {
        auto p = parse_u64(pid);
        if (!p || *p == 0) return Error{EINVAL, std::string("invalid WATCHDOG_PID='") + pid + "' from the service manager"};
        if (*p != static_cast<uint64_t>(self)) return std::optional<Millis>{};  // meant for another process
    }
    // Rounded up: a period under 1 ms still asks for a ping, not for none.
    return std::optional<Millis>{Millis((*us + 999) / 1000)};
}

} // namespace sv
