// Fuzz target: sd_notify datagrams (supervisor/notify_message.cpp) — the bytes any local
// process can send to the notify socket. Never crashes; garbage (NUL, oversized) is
// empty; READY=1 counts only as a whole line; STATUS is short and printable.
#include "supervisor/notify_message.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool has_line(std::string_view text, std::string_view wanted) {
    while (!text.empty()) {
        auto nl = text.find('\n');
        if (text.substr(0, nl) == wanted) return true;
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    sv::NotifyMessage msg = sv::parse_notify_message(text);
    bool garbage = text.size() > sv::kNotifyMaxDatagram || text.find('\0') != std::string_view::npos;
    if (garbage) {
        fuzz::check(msg.empty(), "an oversized or NUL-containing datagram yields nothing");
        return 0;
    }
    fuzz::check(msg.ready == has_line(text, "READY=1"), "ready exactly when a line is READY=1");
    fuzz::check(msg.stopping == has_line(text, "STOPPING=1"), "stopping exactly when a line is STOPPING=1");
    if (msg.status) {
        fuzz::check(msg.status->size() <= 256, "STATUS is at most 256 bytes");
        for (char c : *msg.status) {
            auto u = static_cast<unsigned char>(c);
            fuzz::check(u >= 0x20 && u != 0x7f, "STATUS has no control characters");
        }
    }
    return 0;
}
