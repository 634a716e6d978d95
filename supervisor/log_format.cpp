// sd-daemon priority prefixes.
#include "supervisor/log_format.h"

namespace sv {

int sd_priority(LogLevel level) {
    switch (level) {
    case LogLevel::Debug: return kSdDebug;
    case LogLevel::Info: return kSdInfo;
    case LogLevel::Warn: return kSdWarning;
    case LogLevel::Error: return kSdErr;
    }
    return kSdInfo;
}

LogLevel level_of_sd_priority(int priority) {
    if (priority <= kSdErr) return LogLevel::Error;
    if (priority == kSdWarning) return LogLevel::Warn;
    if (priority == kSdDebug) return LogLevel::Debug;
    return LogLevel::Info;  // 5 notice, 6 info
}

PrefixedLine split_sd_priority(std::string_view line, int default_priority) {
    if (line.size() < 3 || line[0] != '<') return {default_priority, line};
    int value = 0;
    size_t i = 1;
    for (; i < line.size() && i <= 3 && line[i] >= '0' && line[i] <= '9'; i++) value = value * 10 + (line[i] - '0');
    if (i == 1 || i >= line.size() || line[i] != '>' || value > 191) return {default_priority, line};
    return {value & 7, line.substr(i + 1)};
}

} // namespace sv
