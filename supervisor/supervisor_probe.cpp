// The shell's side of readiness without cooperation: while a worker is starting under
// --ready accepting/auto, look at /proc every few ms for one of its processes waiting on
// an inherited listener, and tell the machine (WorkerAccepting). The machine decides.
#include <spdlog/spdlog.h>

#include "supervisor/supervisor.h"

namespace sv {

namespace {

// A tick every 10 ms: the old generation hears of the new one's readiness within about
// that; each tick re-reads only processes that ran since the last (AcceptProbe's cache).
constexpr uint64_t kProbePeriodMs = 10;
// Listing a generation's processes scans all of /proc (about 0.7 ms here, most of the
// probe's cost): the worker alone is looked at first, which is where most servers accept;
// its group and descendants are listed from the 5th tick (50 ms) on, every 10th tick, so an
// acceptor forked by a master is found within 150 ms.
constexpr unsigned kRelistEvery = 10;
constexpr unsigned kFirstRelist = 5;

bool needs_probe(ReadyMode m) { return m == ReadyMode::Accepting || m == ReadyMode::Auto; }

} // namespace

// Decides at start whether the probe can work here. `--ready accepting` without it is a
// startup error; auto falls back to READY=1 or the delay, and says so.
Result<Ok> Supervisor::setup_probe() {
    if (!needs_probe(cfg_.ready_mode)) return Ok{};
    std::string why;
    if (auto self = can_inspect(::getpid()); !self) why = self.error().what;
    std::vector<int> fds;
    for (const auto& l : listeners_) fds.push_back(l.fd.get());
    auto inodes = socket_inodes(fds);
    if (why.empty() && !inodes) why = inodes.error().what;
    if (!why.empty()) {
        if (cfg_.ready_mode == ReadyMode::Accepting)
            return Error{0, "--ready accepting cannot see workers accept here: " + why + " (use --ready notify or delay)"};
        spdlog::warn("readiness: cannot look into workers ({}); --ready auto uses READY=1 or --ready-delay", why);
        return Ok{};
    }
    listener_inodes_ = std::move(inodes.value());
    probe_enabled_ = true;
    auto* t = new uv_timer_t{};
    uv_timer_init(&loop_, t);
    t->data = this;
    probe_timer_ = UvHandle<uv_timer_t>(t);
    return Ok{};
}

// After every queue run: watch the workers that wait to be seen accepting, and only
// while there are any (no timer runs otherwise).
void Supervisor::update_probe() {
    if (!probe_enabled_ || exit_code_ >= 0) return;
    std::set<int> want;
    for (const auto& w : machine_.workers())
        if (w.state == WorkerState::Starting && w.seen.empty()) want.insert(w.pid);
    std::erase_if(watched_, [&](const auto& kv) { return want.count(kv.first) == 0; });
    for (int pid : want) watched_.try_emplace(pid);
    bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(probe_timer_.get())) != 0;
    if (watched_.empty() && active) uv_timer_stop(probe_timer_.get());
    if (!watched_.empty() && !active) uv_timer_start(probe_timer_.get(), on_probe_tick, 1, kProbePeriodMs);
}

void Supervisor::on_probe_tick(uv_timer_t* t) noexcept { static_cast<Supervisor*>(t->data)->probe_tick(); }

void Supervisor::probe_tick() {
    std::vector<std::pair<int, std::string>> seen;
    for (auto& [pid, w] : watched_) {
        if (w.ticks == 0) w.pids = {pid};
        if (w.ticks++ % kRelistEvery == kFirstRelist) w.pids = list_generation_pids(pid);
        if (w.pids.empty()) continue;  // gone: its exit is on its way
        if (auto r = w.probe.probe(w.pids, listener_inodes_))
            seen.emplace_back(pid, std::string(accept_via_name(r->how)));
    }
    for (auto& [pid, how] : seen) dispatch(WorkerAccepting{pid, how});
}

} // namespace sv
