// Worker output, pure part: bytes → bounded, printable log lines, and a token bucket
// that rate-limits them (no uv, no clock: time is passed in).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sv {

// Splits a byte stream into lines. A line ends at '\n'; one '\r' right before it is
// dropped (CRLF). Empty lines are kept (emitted as ""), so output is not reshaped.
// A line longer than max_line is emitted as consecutive chunks of max_line bytes; a chunk
// boundary may fall inside a UTF-8 sequence. Control bytes other than tab (including a
// lone '\r' and DEL) become '?', so each emitted line is one log entry; bytes >= 0x80 are
// kept as they are. At most max_line bytes are ever pending.
class LineSplitter {
public:
    explicit LineSplitter(size_t max_line);  // max_line >= 1

    // Appends every line completed by `data` to out_lines (out_lines is not cleared).
    void feed(std::string_view data, std::vector<std::string>& out_lines);
    // At EOF: the partial line after the last '\n' (trailing '\r' dropped), or nullopt when
    // nothing is pending. Resets the splitter.
    std::optional<std::string> flush();

private:
    void append(char c, std::vector<std::string>& out_lines);

    size_t max_line_;
    std::string pending_;
    bool pending_cr_ = false;  // a '\r' seen, not yet known to be part of "\r\n"
};

// Token bucket: `burst` lines at once, refilled at `lines_per_sec`. Starts full.
class RateLimiter {
public:
    RateLimiter(double lines_per_sec, double burst);

    // True when a line may pass at time now_ms (any monotonic ms clock); false counts a drop.
    // A clock that goes backwards refills nothing.
    bool allow(int64_t now_ms);
    // The number of drops since the previous call, and resets it.
    uint64_t take_dropped();

private:
    double rate_per_ms_;
    double burst_;
    double tokens_;
    std::optional<int64_t> last_ms_;
    uint64_t dropped_ = 0;
};

} // namespace sv
