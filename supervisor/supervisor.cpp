// The libuv shell: events in from the kernel, actions out as syscalls, nothing more.
#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>


#include "supervisor/listener_drift.h"
#include "supervisor/log.h"
#include "supervisor/spawn.h"
#include "supervisor/worker_env.h"

namespace sv {

namespace {

constexpr int kOwnSignals[] = {SIGHUP, SIGTERM, SIGINT, SIGCHLD};
// Datagrams read per wake-up: a flood from a worker cannot starve signals and timers.
constexpr int kNotifyBatch = 64;

MachineSettings settings_from(const Config& c) {
    MachineSettings s;
    s.ready_mode = c.ready_mode;
    s.ready_delay = c.ready_delay;
    s.ready_timeout = c.ready_timeout;
    s.drain_signal = c.drain_signal;
    s.drain_timeout = c.drain_timeout;
    s.pre_check = !c.pre_check.empty();
    s.workers = c.workers;
    s.rolling = c.rolling;
    s.worker_watchdog = c.worker_watchdog;
    s.stop_delay = c.stop_delay;
    s.probation = c.probation;
    return s;
}

const char* ready_mode_name(ReadyMode m, bool probe) {
    switch (m) {
    case ReadyMode::Delay: return "delay";
    case ReadyMode::Notify: return "notify";
    case ReadyMode::Accepting: return "accepting";
    case ReadyMode::Auto: return probe ? "auto" : "auto(notify-or-delay)";
    }
    return "?";
}

std::pair<int, uint64_t> key_of(const TimerId& id) { return {static_cast<int>(id.kind), id.key}; }


} // namespace

Supervisor::Supervisor(Config cfg, Credentials creds, std::vector<Listener>& listeners, NotifySocket notify,
                       SystemdNotifier systemd)
    : cfg_(std::move(cfg)), creds_(std::move(creds)), listeners_(listeners), notify_(std::move(notify)),
      systemd_(std::move(systemd)),
      machine_(settings_from(cfg_)), started_(std::chrono::steady_clock::now()),
      started_unix_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count()) {
    drift_.created_nonblocking = cfg_.nonblocking || cfg_.adopt_bind != AdoptBind::Off;
}

Supervisor::~Supervisor() {
    pre_check_.reset();
    outputs_.clear();
    control_.reset();
    http_.reset();
    signals_.clear();
    notify_poll_.close();
    probe_timer_.close();
    timers_.clear();
    watchdog_.close();
    // Run the loop until every close callback has freed its handle, then close it.
    while (uv_loop_close(&loop_) == UV_EBUSY) uv_run(&loop_, UV_RUN_DEFAULT);
}

int64_t Supervisor::unix_ms_at(Millis t) const { return started_unix_ms_ + t.count(); }

Millis Supervisor::now() const {
    return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started_);
}

Result<Ok> Supervisor::setup() {
    if (int rc = uv_loop_init(&loop_); rc < 0) return Error{-rc, std::string("cannot create the event loop: ") + uv_strerror(rc)};
    // Grandchildren that a worker leaves behind are reparented to us and reaped.
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        spdlog::warn("cannot become a child subreaper: {}; orphans of workers go to init", std::strerror(errno));
    ::signal(SIGPIPE, SIG_IGN);
    for (int sig : signals_to_catch()) {
        auto* h = new uv_signal_t{};
        uv_signal_init(&loop_, h);
        h->data = this;
        signals_.emplace_back(h);
        if (int rc = uv_signal_start(h, on_signal, sig); rc < 0)
            return Error{-rc, "cannot handle " + signal_name(sig) + ": " + uv_strerror(rc)};
    }
    auto* p = new uv_poll_t{};
    if (int rc = uv_poll_init(&loop_, p, notify_.fd()); rc < 0) {
        delete p;
        return Error{-rc, std::string("cannot watch the notify socket: ") + uv_strerror(rc)};
    }
    p->data = this;
    notify_poll_ = UvHandle<uv_poll_t>(p);
    if (int rc = uv_poll_start(p, UV_READABLE, on_notify_readable); rc < 0)
        return Error{-rc, std::string("cannot watch the notify socket: ") + uv_strerror(rc)};
    if (auto r = open_control(); !r) return r;
    if (auto r = setup_http(); !r) return r.error();
    return start_watchdog();
}

// Bound here, or taken over from the previous image (`ctl reexec`).
Result<Ok> Supervisor::open_control() {
    if (cfg_.control_path.empty()) return Ok{};
    auto on_request = [this](uint64_t id, const ControlRequest& r) { on_control(id, r); };
    auto on_closed = [this](uint64_t id) { on_control_closed(id); };
    auto busy = [this](uint64_t id) { return machine_.waiting(id); };
    ControlLimits limits{cfg_.control_max_clients, cfg_.control_idle_timeout};
    auto c = resume_ && resume_->control_fd >= 0
                 ? ControlServer::adopt(&loop_, resume_->control_fd, cfg_.control_path,
                                        static_cast<ino_t>(resume_->control_inode), on_request, on_closed, busy, limits)
                 : ControlServer::create(&loop_, cfg_.control_path, on_request, on_closed, busy, limits);
    if (!c) return c.error();
    control_ = std::move(c.value());
    return Ok{};
}

Result<int> Supervisor::run() {
    if (auto r = setup(); !r) return r.error();
    if (auto r = setup_probe(); !r) return r.error();
    if (!probe_enabled_ && cfg_.ready_mode == ReadyMode::Auto) {
        auto s = settings_from(cfg_);
        s.can_probe = false;
        machine_ = UpgradeMachine(s);
    }
    for (size_t i = 0; i < listeners_.size(); i++)
        spdlog::info("listening name={} addr={} fd={}", listeners_[i].spec.name, listeners_[i].address, 3 + i);
    spdlog::info("started pid={} notify_socket={} ready={} drain_signal={} drain_timeout={} control={}", ::getpid(),
                 notify_.name(), ready_mode_name(cfg_.ready_mode, probe_enabled_),
                 signal_name(cfg_.drain_signal), format_duration(cfg_.drain_timeout),
                 control_ ? control_->path() : "off");
    if (resume_) {
        if (auto r = resume(); !r) return r.error();
    } else {
        containment_ = Containment::create(cfg_.containment);
        spdlog::info("containment: {}", containment_.describe());
        dispatch(Boot{});
    }
    if (exit_code_ < 0) uv_run(&loop_, UV_RUN_DEFAULT);
    return exit_code_ < 0 ? kExitSystem : exit_code_;
}

// --- events in ---------------------------------------------------------------------

void Supervisor::on_signal(uv_signal_t* h, int signum) noexcept {
    static_cast<Supervisor*>(h->data)->handle_signal(signum);
}

void Supervisor::handle_signal(int signum) {
    switch (signum) {
    case SIGCHLD: reap_children(); return;
    case SIGHUP:
        spdlog::info("SIGHUP: upgrade requested");
        dispatch(UpgradeRequested{});
        return;
    case SIGTERM:
    case SIGINT:
        spdlog::info("{}: stop requested", signal_name(signum));
        dispatch(StopRequested{signum == SIGINT ? StopSource::Interrupt : StopSource::Signal});
        return;
    default: forward_or_ignore(signum); return;
    }
}

// Ours, the ones that would kill us or that servers read as commands, and --forward-signal.
std::vector<int> Supervisor::signals_to_catch() const {
    std::vector<int> sigs(std::begin(kOwnSignals), std::end(kOwnSignals));
    for (int sig : kCaughtByDefault) sigs.push_back(sig);
    for (int sig : cfg_.forward_signals)
        if (std::find(sigs.begin(), sigs.end(), sig) == sigs.end()) sigs.push_back(sig);
    return sigs;
}

void Supervisor::forward_or_ignore(int signum) {
    if (std::find(cfg_.forward_signals.begin(), cfg_.forward_signals.end(), signum) != cfg_.forward_signals.end()) {
        dispatch(ForwardSignal{signum});
        return;
    }
    spdlog::info("{} ignored (not forwarded; use --forward-signal)", signal_name(signum));
}

// Loops to 0/ECHILD: one SIGCHLD may stand for many exits (tini's reap_zombies).
void Supervisor::reap_children() {
    containment_.refresh();  // before reaping: an exiting worker's children are still found through it
    for (;;) {
        int st = 0;
        pid_t pid = ::waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) break;  // 0: none left to reap; ECHILD: no children at all
        if (pre_check_ && pid == pre_check_->pid()) {
            pre_check_->child_exited(st);
            continue;
        }
        dispatch(worker_exited(pid, st));
    }
    check_leftovers();
    std::erase_if(outputs_, [](const auto& o) { return o->eof(); });
}

// The worker is reaped: if its containment still has members, something it started lives
// on, and every SIGCHLD looks again (check_leftovers).
WorkerExited Supervisor::worker_exited(int pid, int wait_status) {
    containment_.leader_reaped(pid);
    bool alive = containment_.alive(pid);
    if (alive) leftovers_.insert(pid);
    else containment_.forget(pid);
    return WorkerExited{pid, wait_status, alive};
}

// As a child subreaper we get the last member of any tree as our child, so its exit is a
// SIGCHLD: leftovers that are all gone are reported at once, not at the drain deadline.
void Supervisor::check_leftovers() {
    for (auto it = leftovers_.begin(); it != leftovers_.end() && exit_code_ < 0;) {
        int pid = *it;
        if (containment_.alive(pid)) {
            ++it;
            continue;
        }
        it = leftovers_.erase(it);
        containment_.forget(pid);
        dispatch(GroupGone{pid});
    }
}

void Supervisor::on_notify_readable(uv_poll_t* h, int status, int) noexcept {
    auto* self = static_cast<Supervisor*>(h->data);
    if (status < 0) {
        spdlog::error("notify socket poll error: {}", uv_strerror(status));
        return;
    }
    self->read_notify();
}

void Supervisor::read_notify() {
    for (int i = 0; i < kNotifyBatch; i++) {
        NotifyDatagram d;
        int rc = notify_.receive(&d);
        if (rc == 0) return;
        if (rc == 2) {
            spdlog::debug("ignored a notify datagram: oversized or without credentials");
            continue;
        }
        if (rc < 0) {
            spdlog::error("cannot read the notify socket: {}", std::strerror(-rc));
            return;
        }
        auto msg = parse_notify_message(d.data);
        if (msg.empty()) {
            spdlog::debug("ignored a notify datagram from pid={}: nothing we understand", d.pid);
            continue;
        }
        if (msg.ready) containment_.refresh();  // what it started while warming up is remembered
        dispatch(Notified{d.pid, std::move(msg)});
    }
}

void Supervisor::on_timer(uv_timer_t* h) noexcept {
    auto* t = reinterpret_cast<TimerHandle*>(h);
    Supervisor* self = t->self;
    TimerId id = t->id;
    self->timers_.erase(key_of(id));  // closes t; id was copied out first
    if (id.kind == TimerId::Kind::Ready) self->containment_.refresh();  // --ready delay: as at READY=1
    self->take_in_pending_events();
    self->dispatch(TimerFired{id});
}

// libuv runs due timers before it polls for I/O: after a stall (SIGSTOP, a frozen VM) a
// ready timeout would be judged before the READY=1 or the exit already waiting for us.
// So the kernel's news comes first: exits already reaped, datagrams already queued.
void Supervisor::take_in_pending_events() {
    reap_children();
    read_notify();
}

// --- actions out -------------------------------------------------------------------

void Supervisor::dispatch(Event e) {
    queue_.push_back(std::move(e));
    if (stepping_) return;  // the loop below, further up the stack, feeds it
    stepping_ = true;
    while (!queue_.empty()) {
        Event next = std::move(queue_.front());
        queue_.pop_front();
        step(next);
    }
    stepping_ = false;
    update_probe();
    report_drift();
    write_status_file();
    write_metrics_file();
    send_status_if_changed();
}

// One event through the machine, then its actions. Events the actions cause (a spawn's
// result) are queued by dispatch() and fed after this step: never re-entrantly.
void Supervisor::step(const Event& e) {
    auto actions = machine_.handle(e, now());
    if (auto broken = machine_.check_invariants(); !broken.empty()) report_broken_invariant(broken, e);
    send_progress(e);  // before the actions: a verdict among them is the last line its client reads
    counters_.observe(e);
    auto drains = connections_at_drain(actions);
    for (auto& a : actions) {
        counters_.observe(a, now());
        if (auto* log = std::get_if<Log>(&a); log != nullptr && !drains.empty()) annotate_drain(*log, drains);
        execute(a);
    }
}

// A broken invariant is a bug of ours, not a reason to close the listeners on every client:
// the socket holder says what broke, with the machine's state, and carries on.
void Supervisor::report_broken_invariant(const std::string& what, const Event& e) {
    broken_invariants_++;
    counters_.invariant_broken();
    spdlog::error("invariant broken: {} (after event #{}; {}); still serving: the listeners stay open. "
                  "Please report this line with the log around it",
                  what, e.index(), machine_.describe());
}

// A syscall or two per listener; each change is logged once (see listener_drift.h).
void Supervisor::report_drift() const {
    for (const auto& c : check_drift(listeners_, drift_)) {
        if (c.recovered) spdlog::info("{}", c.text);
        else spdlog::warn("{}", c.text);
    }
}

void Supervisor::execute(const Action& action) {
    // Once exiting, nothing more is spawned, signalled or timed; kills and logs still run,
    // so a worker that was spawned meanwhile does not outlive us.
    if (exit_code_ >= 0 && !std::holds_alternative<KillGroup>(action) && !std::holds_alternative<Log>(action)) return;
    std::visit(
        [this](const auto& a) {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, Spawn>) {
                spawn(a.gen, a.slot);
            } else if constexpr (std::is_same_v<A, RunPreCheck>) {
                run_pre_check(a.gen);
            } else if constexpr (std::is_same_v<A, Signal>) {
                // containment: through the worker's pidfd, never by number
                if (int rc = containment_.signal(a.pid, a.sig); rc < 0 && rc != -ESRCH)
                    spdlog::error("cannot send {} to pid={}: {}", signal_name(a.sig), a.pid, std::strerror(-rc));
            } else if constexpr (std::is_same_v<A, KillGroup>) {
                kill_worker(a.pid);
            } else if constexpr (std::is_same_v<A, StartTimer>) {
                start_timer(a.id, a.after);
            } else if constexpr (std::is_same_v<A, CancelTimer>) {
                cancel_timer(a.id);
            } else if constexpr (std::is_same_v<A, NotifySystemd>) {
                notify_systemd(a);
            } else if constexpr (std::is_same_v<A, Log>) {
                spdlog::log(spdlog_level(a.level), "{}", a.text);
            } else if constexpr (std::is_same_v<A, UpgradeVerdict>) {
                on_upgrade_verdict(a);
            } else if constexpr (std::is_same_v<A, AnswerUpgrade>) {
                answer_upgrade(a);
            } else if constexpr (std::is_same_v<A, Exit>) {
                shutdown(a.code);
            } else if constexpr (std::is_same_v<A, CloseListeners>) {
                close_listeners();
            } else {
                static_assert(sizeof(A) == 0, "every action needs a syscall");
            }
        },
        action);
}

// cgroup.kill, or every member of the worker's tree through its pidfd: never a bare number.
void Supervisor::kill_worker(int pid) {
    if (int rc = containment_.kill(pid); rc < 0 && rc != -ESRCH)
        spdlog::error("cannot kill pid={} and what it started: {}", pid, std::strerror(-rc));
}

// Nobody accepts again: a late client is refused at once instead of waiting in a backlog
// that our exit resets. Under systemd the fd store may hold them too: kept, as adopted ones.
void Supervisor::close_listeners() {
    if (size_t n = close_own_listeners(listeners_, systemd_.enabled()); n > 0)
        spdlog::info("closed our copies of {} listener(s): no worker accepts on them again", n);
    else spdlog::info("listeners kept open at stop: the service manager holds them");
}

void Supervisor::start_timer(const TimerId& id, Millis after) {
    auto* t = new TimerHandle{};
    uv_timer_init(&loop_, &t->timer);
    t->self = this;
    t->id = id;
    uv_timer_start(&t->timer, on_timer, static_cast<uint64_t>(after.count()), 0);
    timers_[key_of(id)] = UvHandle<TimerHandle>(t);
}

void Supervisor::cancel_timer(const TimerId& id) { timers_.erase(key_of(id)); }

void Supervisor::shutdown(int code) {
    exit_code_ = code;
    pre_check_.reset();
    outputs_.clear();  // logs what is pending
    // Closed, not destroyed: this may run inside the control server's own request handler
    // (`ctl stop` with nothing left to drain); the destructor frees it.
    if (control_) control_->close();  // `ctl stop` callers see the connection close as we exit
    if (http_) http_->close();
    signals_.clear();
    notify_poll_.close();
    probe_timer_.close();  // a repeating timer would keep the loop (and us) alive
    watched_.clear();
    timers_.clear();
    containment_.kill_all();  // nothing we started outlives us, nor holds the port after we exit
}

} // namespace sv
