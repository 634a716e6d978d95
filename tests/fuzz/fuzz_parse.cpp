// Fuzz target: durations, signals, modes and numbers (supervisor/parse.cpp). Never
// crashes; accepted values are in range; durations survive format → parse.
#include <csignal>

#include "supervisor/parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);

    if (auto d = sv::parse_duration(text)) {
        fuzz::check(d->count() >= 0 && d->count() <= 86'400'000, "a duration is 0 to 24h");
        auto again = sv::parse_duration(sv::format_duration(*d));
        fuzz::check(again && *again == *d, "format_duration output parses back to the same duration");
    }
    if (auto sig = sv::parse_signal(text)) {
        fuzz::check(*sig > 0 && *sig <= SIGRTMAX, "a signal is 1..SIGRTMAX");
        fuzz::check(*sig != SIGKILL && *sig != SIGSTOP, "KILL and STOP are refused");
        fuzz::check(!sv::signal_name(*sig).empty(), "every accepted signal has a name");
    }
    if (auto m = sv::parse_mode(text)) fuzz::check(*m >= 0 && *m <= 07777, "a mode is 0-07777");
    if (auto n = sv::parse_uint(text)) {
        fuzz::check(*n >= 0, "parse_uint is never negative");
        fuzz::check(std::to_string(*n).size() <= text.size(), "parse_uint consumed the whole text");
    }
    return 0;
}
