// sd_notify(3) datagram → NotifyMessage (pure).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sv {

constexpr size_t kNotifyMaxDatagram = 4096;  // as systemd's NOTIFY_BUFFER_MAX (PIPE_BUF)

struct NotifyMessage {
    bool ready = false;
    bool stopping = false;
    bool reloading = false;
    std::optional<std::string> status;
    bool watchdog = false;  // WATCHDOG=1: the worker's keep-alive (--worker-watchdog)

    bool empty() const { return !ready && !stopping && !reloading && !watchdog && !status; }
};

// Newline-separated VAR=VALUE lines; a final newline is optional. Unknown variables and
// malformed lines are skipped; a datagram containing a NUL byte is garbage and yields
// an empty message (systemd rejects those too). STATUS text is truncated to 256 bytes
// and control characters are replaced, so it can be logged safely.
NotifyMessage parse_notify_message(std::string_view datagram);

} // namespace sv
