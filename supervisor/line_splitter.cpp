// Worker output lines and their rate limit.
#include "supervisor/line_splitter.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace sv {

namespace {

char printable(char c) {
    auto u = static_cast<unsigned char>(c);
    return ((u < 0x20 && c != '\t') || u == 0x7f) ? '?' : c;
}

} // namespace

LineSplitter::LineSplitter(size_t max_line) : max_line_(max_line) {
    assert(max_line_ >= 1);
    pending_.reserve(max_line_);
}

void LineSplitter::feed(std::string_view data, std::vector<std::string>& out_lines) {
    for (char c : data) {
        if (c == '\n') {
            // The '\r' of a CRLF is held back rather than appended, so a line of exactly
            // max_line bytes followed by "\r\n" is one line and not a chunk plus "".
            pending_cr_ = false;
            out_lines.push_back(std::exchange(pending_, {}));
            pending_.reserve(max_line_);
            continue;
        }
        if (std::exchange(pending_cr_, false)) append('\r', out_lines);
        if (c == '\r') {
            pending_cr_ = true;
            continue;
        }
        append(c, out_lines);
    }
}

void LineSplitter::append(char c, std::vector<std::string>& out_lines) {
    if (pending_.size() == max_line_) {
        out_lines.push_back(std::exchange(pending_, {}));
        pending_.reserve(max_line_);
    }
    pending_.push_back(printable(c));
}

std::optional<std::string> LineSplitter::flush() {
    bool had_cr = std::exchange(pending_cr_, false);
    if (pending_.empty() && !had_cr) return std::nullopt;
    return std::exchange(pending_, {});
}

RateLimiter::RateLimiter(double lines_per_sec, double burst)
    : rate_per_ms_(lines_per_sec / 1000.0), burst_(burst), tokens_(burst) {}

bool RateLimiter::allow(int64_t now_ms) {
    if (last_ms_ && now_ms > *last_ms_)
        tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ms - *last_ms_) * rate_per_ms_);
    if (!last_ms_ || now_ms > *last_ms_) last_ms_ = now_ms;
    if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return true;
    }
    dropped_++;
    return false;
}

uint64_t RateLimiter::take_dropped() { return std::exchange(dropped_, 0); }

} // namespace sv
