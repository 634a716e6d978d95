// The supervisor towards its own service manager: the watchdog ping (WatchdogSec=) and a
// STATUS= line kept current between the machine's READY/RELOADING/STOPPING messages.
#include <spdlog/spdlog.h>

#include <cstring>

#include "supervisor/supervisor.h"

namespace sv {

// The ping runs on the loop itself, so a loop that hangs (a stuck syscall, SIGSTOP, a
// livelock) stops pinging and systemd kills and restarts us: half the period, as
// sd_watchdog_enabled(3) advises, leaves room for one late wake-up.
Result<Ok> Supervisor::start_watchdog() {
    auto period = systemd_.watchdog_period();
    if (!period) return Ok{};
    auto every = std::max<int64_t>(1, period->count() / 2);
    auto* t = new uv_timer_t{};
    uv_timer_init(&loop_, t);
    t->data = this;
    watchdog_ = UvHandle<uv_timer_t>(t);
    if (int rc = uv_timer_start(t, on_watchdog, 0, static_cast<uint64_t>(every)); rc < 0)
        return Error{-rc, std::string("cannot start the watchdog timer: ") + uv_strerror(rc)};
    // It must not keep the loop running once everything else is closed at exit.
    uv_unref(reinterpret_cast<uv_handle_t*>(t));
    spdlog::info("watchdog every {}ms (WatchdogSec={}ms)", every, period->count());
    return Ok{};
}

void Supervisor::on_watchdog(uv_timer_t* h) noexcept {
    auto* self = static_cast<Supervisor*>(h->data);
    if (int rc = self->systemd_.send("WATCHDOG=1"); rc < 0)
        spdlog::warn("cannot ping the service manager's watchdog: {}", std::strerror(-rc));
}

// After every batch of events, when it changed: one line with the serving gen and pids,
// the upgrade in flight and the last verdict. It follows the machine's own READY=1,
// RELOADING=1 and STOPPING=1 messages (whose STATUS= tells the moment) and covers what they
// do not: a respawned worker now serving, a failed worker reaped, a drain that ends.
void Supervisor::send_status_if_changed() {
    if (!systemd_.enabled() || exit_code_ >= 0) return;
    std::string line = format_status_line(snapshot());
    if (line == status_sent_) return;
    status_sent_ = line;
    if (int rc = systemd_.send("STATUS=" + line); rc < 0)
        spdlog::warn("cannot notify the service manager: {}", std::strerror(-rc));
}

// The machine's typed NotifySystemd, in sd_notify(3)'s words.
void Supervisor::notify_systemd(const NotifySystemd& n) {
    std::string text;
    switch (n.state) {
    case SdState::Ready: text = "READY=1\n"; break;
    case SdState::Reloading: text = "RELOADING=1\n"; break;  // systemd.cpp adds MONOTONIC_USEC
    case SdState::Stopping:
        // Drains are bounded by --drain-timeout, after the --stop-delay: ask systemd for that long plus a margin.
        text = "STOPPING=1\nEXTEND_TIMEOUT_USEC=" +
               std::to_string((cfg_.stop_delay.count() + cfg_.drain_timeout.count() + 5000) * 1000) + "\n";
        break;
    case SdState::Status: break;
    }
    text += "STATUS=" + n.status;
    if (int rc = systemd_.send(text); rc < 0) spdlog::warn("cannot notify the service manager: {}", std::strerror(-rc));
}

} // namespace sv
