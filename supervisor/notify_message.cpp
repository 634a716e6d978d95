// sd_notify datagram parser.
#include "supervisor/notify_message.h"

namespace sv {

namespace {

constexpr size_t kStatusMax = 256;

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, kStatusMax)) {
        auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u == 0x7f) ? '?' : c;
    }
    return out;
}

} // namespace

NotifyMessage parse_notify_message(std::string_view datagram) {
    NotifyMessage msg;
    if (datagram.size() > kNotifyMaxDatagram || datagram.find('\0') != std::string_view::npos) return msg;
    while (!datagram.empty()) {
        auto nl = datagram.find('\n');
        std::string_view line = datagram.substr(0, nl);
        datagram = nl == std::string_view::npos ? std::string_view{} : datagram.substr(nl + 1);
        if (line == "READY=1") msg.ready = true;
        else if (line == "STOPPING=1") msg.stopping = true;
        else if (line == "RELOADING=1") msg.reloading = true;
        else if (line == "WATCHDOG=1") msg.watchdog = true;
        else if (line.substr(0, 7) == "STATUS=") msg.status = printable(line.substr(7));
    }
    return msg;
}

} // namespace sv
