// How `supervisor ctl upgrade` shows the progress events it receives (protocol/CONTROL.md):
// a live line rewritten in place on a terminal, timestamped lines otherwise, or the JSON
// objects as they came (--json).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace sv {

// "14:02:07.412" (local time) for a unix time in ms.
std::string clock_time(int64_t unix_ms);

// One progress event in words: "gen 4 pid 812 ready after 1.2s (accepting, epoll)".
std::string describe_progress(const nlohmann::json& ev);

class ProgressView {
public:
    enum class Mode { Live, Lines, Json };
    explicit ProgressView(Mode mode) : mode_(mode) {}
    void event(const nlohmann::json& ev);
    // Ends the live line before the verdict is printed.
    void end();

private:
    Mode mode_;
    std::string live_;  // what the live line shows
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

} // namespace sv
