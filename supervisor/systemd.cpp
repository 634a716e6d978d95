// sd_notify to our parent, through the same code the worker header uses.
#include "supervisor/systemd.h"

#include <supervisor/worker.h>

#include <cstdlib>
#include <ctime>

namespace sv {

SystemdNotifier SystemdNotifier::from_environment() {
    SystemdNotifier n;
    if (const char* s = std::getenv("NOTIFY_SOCKET")) n.socket_ = s;
    ::unsetenv("NOTIFY_SOCKET");
    return n;
}

int SystemdNotifier::send(const std::string& state) const {
    if (socket_.empty()) return 0;
    std::string text = state;
    if (text.find("RELOADING=1") != std::string::npos) {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        text += "\nMONOTONIC_USEC=" + std::to_string(static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000);
    }
    return sv_notify_to(socket_.c_str(), text.c_str());
}

} // namespace sv
