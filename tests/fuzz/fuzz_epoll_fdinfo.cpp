// Fuzz target: an epoll fd's /proc/PID/fdinfo/N (supervisor/proc_parse.cpp). Never
// crashes; when it parses there is one watch per "tfd:" line, and each watch printed
// back in the kernel's format parses to itself.
#include <cinttypes>
#include <cstdio>

#include "supervisor/proc_parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto text = fuzz::as_text(data, size);
    auto watches = sv::parse_epoll_fdinfo(text);
    if (!watches) return 0;
    size_t tfd_lines = 0;
    for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        if (text.substr(at, 4) == "tfd:") tfd_lines++;
        at = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    fuzz::check(watches->size() == tfd_lines, "one watch per tfd line");
    for (const auto& w : *watches) {
        fuzz::check(w.tfd >= 0, "tfd is a file descriptor");
        char line[160];
        std::snprintf(line, sizeof line, "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%" PRIx64 " sdev:%x\n",
                      w.tfd, w.events, 0ULL, 0LL, w.ino, w.sdev);
        auto again = sv::parse_epoll_fdinfo(line);
        fuzz::check(again && again->size() == 1 && (*again)[0].tfd == w.tfd && (*again)[0].events == w.events &&
                        (*again)[0].ino == w.ino && (*again)[0].sdev == w.sdev,
                    "a watch printed back parses to itself");
    }
    return 0;
}
