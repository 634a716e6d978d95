#include "supervisor/ctl_progress.h"

#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "supervisor/control_protocol.h"

namespace sv {

using json = nlohmann::json;

namespace {

// Typed reads that never throw: the events come from another process.
int64_t num(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

constexpr size_t kLiveWidth = 110;

} // namespace

std::string clock_time(int64_t unix_ms) {
    time_t secs = static_cast<time_t>(unix_ms / 1000);
    tm t{};
    localtime_r(&secs, &t);
    return fmt::format("{:02}:{:02}:{:02}.{:03}", t.tm_hour, t.tm_min, t.tm_sec, unix_ms % 1000);
}

std::string describe_progress(const json& ev) {
    std::string what = str(ev, "event");
    auto gen = num(ev, "gen");
    auto pid = num(ev, "pid");
    if (what == "started") return fmt::format("gen {} starting (gen {} serves)", gen, num(ev, "serving_gen"));
    if (what == "spawned") return fmt::format("gen {} spawned pid {}", gen, pid);
    if (what == "ready")
        return fmt::format("gen {} pid {} ready after {} ({})", gen, pid, format_age(num(ev, "after_ms")), str(ev, "how"));
    if (what == "probation") return fmt::format("gen {} on probation for {}", gen, format_age(num(ev, "ms")));
    if (what == "draining") return fmt::format("draining gen {} pid {}", gen, pid);
    if (what == "failed") return fmt::format("gen {} pid {} failed: killed", gen, pid);
    if (what == "exited") {
        std::string status = str(ev, "status");
        return fmt::format("gen {} pid {} exited{}", gen, pid, status.empty() ? "" : " (" + status + ")");
    }
    return what.empty() ? "?" : what;
}

void ProgressView::event(const json& ev) {
    auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    switch (mode_) {
    case Mode::Json: std::printf("%s\n", ev.dump(-1, ' ', false, json::error_handler_t::replace).c_str()); break;
    case Mode::Lines: std::printf("%s %s\n", clock_time(unix_ms).c_str(), describe_progress(ev).c_str()); break;
    case Mode::Live: {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count();
        live_ += (live_.empty() ? "" : " · ") + describe_progress(ev);
        std::string shown = fmt::format("{} {}…", format_age(ms), live_);
        if (shown.size() > kLiveWidth) {
            size_t cut = shown.size() - kLiveWidth;
            while (cut < shown.size() && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) cut++;  // whole UTF-8 characters
            shown = "…" + shown.substr(cut);
        }
        std::printf("\r\033[K%s", shown.c_str());
        break;
    }
    }
    std::fflush(stdout);
}

void ProgressView::end() {
    if (mode_ == Mode::Live && !live_.empty()) std::printf("\n");
    std::fflush(stdout);
}

} // namespace sv
