// The libuv shell: events in from the kernel, actions out as syscalls, nothing more.
#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <csignal>
#include <cstring>

#include <fstream>
#include <sstream>

#include "supervisor/env_file.h"
#include "supervisor/log.h"
#include "supervisor/spawn.h"
#include "supervisor/worker_env.h"

extern char** environ;

namespace sv {

namespace {

constexpr int kHandledSignals[] = {SIGHUP, SIGTERM, SIGINT, SIGCHLD, SIGUSR1, SIGUSR2, SIGWINCH};
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
    return s;
}

spdlog::level::level_enum level_of(LogLevel l) {
    switch (l) {
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

std::pair<int, uint64_t> key_of(const TimerId& id) { return {static_cast<int>(id.kind), id.key}; }

} // namespace

Supervisor::Supervisor(Config cfg, Credentials creds, std::vector<Listener>& listeners, NotifySocket notify,
                       SystemdNotifier systemd)
    : cfg_(std::move(cfg)), creds_(std::move(creds)), listeners_(listeners), notify_(std::move(notify)),
      systemd_(std::move(systemd)),
      machine_(settings_from(cfg_)), started_(std::chrono::steady_clock::now()),
      started_unix_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count()) {}

Supervisor::~Supervisor() {
    pre_check_.reset();
    outputs_.clear();
    control_.reset();
    signals_.clear();
    notify_poll_.close();
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
    for (int sig : kHandledSignals) {
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
    if (!cfg_.control_path.empty()) {
        auto c = ControlServer::create(
            &loop_, cfg_.control_path, [this](uint64_t id, const ControlRequest& r) { on_control(id, r); },
            [this](uint64_t id) { on_control_closed(id); });
        if (!c) return c.error();
        control_ = std::move(c.value());
    }
    return start_watchdog();
}

Result<int> Supervisor::run() {
    if (auto r = setup(); !r) return r.error();
    for (size_t i = 0; i < listeners_.size(); i++)
        spdlog::info("listening name={} addr={} fd={}", listeners_[i].spec.name, listeners_[i].address, 3 + i);
    spdlog::info("started pid={} notify_socket={} ready={} drain_signal={} drain_timeout={} control={}", ::getpid(),
                 notify_.name(), cfg_.ready_mode == ReadyMode::Notify ? "notify" : "delay",
                 signal_name(cfg_.drain_signal), format_duration(cfg_.drain_timeout),
                 control_ ? control_->path() : "off");
    dispatch(Boot{});
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
        dispatch(StopRequested{});
        return;
    default: dispatch(ForwardSignal{signum}); return;
    }
}

// Loops to 0/ECHILD: one SIGCHLD may stand for many exits (tini's reap_zombies).
void Supervisor::reap_children() {
    for (;;) {
        int st = 0;
        pid_t pid = ::waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) break;  // 0: none left to reap; ECHILD: no children at all
        if (pre_check_ && pid == pre_check_->pid()) {
            pre_check_->child_exited(st);
            continue;
        }
        // The leader is reaped: if its group still answers, something it started lives on.
        dispatch(WorkerExited{pid, st, ::kill(-pid, 0) == 0});
    }
    // As subreaper we are woken by the exit of the last process a drained worker left
    // behind: a stop or upgrade then need not wait for the drain deadline.
    for (const auto& w : machine_.lingering())
        if (::kill(-w.pid, 0) < 0 && errno == ESRCH) dispatch(GroupGone{w.pid});
    std::erase_if(outputs_, [](const auto& o) { return o->eof(); });
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
        dispatch(Notified{d.pid, std::move(msg)});
    }
}

void Supervisor::on_timer(uv_timer_t* h) noexcept {
    auto* t = reinterpret_cast<TimerHandle*>(h);
    Supervisor* self = t->self;
    TimerId id = t->id;
    self->timers_.erase(key_of(id));  // closes t; id was copied out first
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
    write_status_file();
    send_status_if_changed();
}

// One event through the machine, then its actions. Events the actions cause (a spawn's
// result) are queued by dispatch() and fed after this step: never re-entrantly.
void Supervisor::step(const Event& e) {
    auto actions = machine_.handle(e, now());
    if (auto broken = machine_.check_invariants(); !broken.empty()) report_broken_invariant(broken, e);
    for (const auto& a : actions) execute(a);
}

// A broken invariant is a bug of ours, not a reason to close the listeners on every client:
// the socket holder says what broke, with the machine's state, and carries on.
void Supervisor::report_broken_invariant(const std::string& what, const Event& e) {
    broken_invariants_++;
    spdlog::error("invariant broken: {} (after event #{}; {}); still serving: the listeners stay open. "
                  "Please report this line with the log around it",
                  what, e.index(), machine_.describe());
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
                if (::kill(a.pid, a.sig) < 0 && errno != ESRCH)
                    spdlog::error("cannot send {} to pid={}: {}", signal_name(a.sig), a.pid, std::strerror(errno));
            } else if constexpr (std::is_same_v<A, KillGroup>) {
                kill_worker(a.pid);
            } else if constexpr (std::is_same_v<A, StartTimer>) {
                start_timer(a.id, a.after);
            } else if constexpr (std::is_same_v<A, CancelTimer>) {
                cancel_timer(a.id);
            } else if constexpr (std::is_same_v<A, NotifySystemd>) {
                notify_systemd(a);
            } else if constexpr (std::is_same_v<A, Log>) {
                spdlog::log(level_of(a.level), "{}", a.text);
            } else if constexpr (std::is_same_v<A, UpgradeVerdict>) {
                on_upgrade_verdict(a);
            } else if constexpr (std::is_same_v<A, AnswerUpgrade>) {
                answer_upgrade(a);
            } else if constexpr (std::is_same_v<A, Exit>) {
                shutdown(a.code);
            } else {
                static_assert(sizeof(A) == 0, "every action needs a syscall");
            }
        },
        action);
}

void Supervisor::kill_worker(int pid) {
    // The group first (the worker's helpers too); the pid alone if the worker left its group.
    if (::kill(-pid, SIGKILL) < 0) ::kill(pid, SIGKILL);
}

void Supervisor::notify_systemd(const NotifySystemd& n) {
    std::string text;
    switch (n.state) {
    case SdState::Ready: text = "READY=1\n"; break;
    case SdState::Reloading: text = "RELOADING=1\n"; break;  // systemd.cpp adds MONOTONIC_USEC
    case SdState::Stopping:
        // Drains are bounded by --drain-timeout: ask systemd for that long plus a margin.
        text = "STOPPING=1\nEXTEND_TIMEOUT_USEC=" + std::to_string((cfg_.drain_timeout.count() + 5000) * 1000) + "\n";
        break;
    case SdState::Status: break;
    }
    text += "STATUS=" + n.status;
    if (int rc = systemd_.send(text); rc < 0) spdlog::warn("cannot notify the service manager: {}", std::strerror(-rc));
}

// The worker's environment: ours, then --env-file (re-read now, so configuration rolls
// out with the upgrade), then --env, then the user's identity, then the contract's variables.
Result<WorkerEnv> Supervisor::worker_env(uint64_t gen, int slot) const {
    WorkerEnvInput in;
    for (char** e = environ; e != nullptr && *e != nullptr; e++) in.base.emplace_back(*e);
    if (!cfg_.env_file.empty()) {
        std::ifstream f(cfg_.env_file);
        if (!f) return Error{0, "cannot read --env-file " + cfg_.env_file + ": " + std::strerror(errno)};
        std::stringstream text;
        text << f.rdbuf();
        auto parsed = parse_env_file(text.str(), cfg_.env_file);
        if (!parsed) return parsed.error();
        apply_env(in.base, *parsed);
    }
    EnvAssignments cli;
    for (const auto& kv : cfg_.env) cli.push_back(parse_env_assignment(kv).value());  // validated by the cli
    if (creds_.uid >= 0) cli.insert(cli.end(), {{"USER", creds_.user}, {"LOGNAME", creds_.user}, {"HOME", creds_.home}});
    apply_env(in.base, cli);
    for (const auto& l : listeners_) in.listeners.push_back({l.spec.name, l.address});
    in.notify_socket = notify_.name();
    in.generation = gen;
    in.worker_index = slot;
    in.compat = cfg_.compat;
    return build_worker_env(in);
}

// The pre-check sees what the new worker would (env file, --env, --chdir, --user), minus
// the socket-passing variables: it gets no sockets.
void Supervisor::run_pre_check(uint64_t gen) {
    auto env = worker_env(gen, 0);
    if (!env) {
        dispatch(PreCheckDone{gen, false, env.error().what});
        return;
    }
    std::erase_if(env->vars, [](const std::string& kv) { return is_managed_variable(kv); });
    spdlog::info("pre-check gen={} running: {}", gen, cfg_.pre_check);
    pre_check_ = PreCheck::start(&loop_, cfg_.pre_check, env->vars, cfg_.chdir, creds_, cfg_.pre_check_timeout,
                                 [this, gen](bool ok, std::string reason) {
                                     auto finished = std::move(pre_check_);  // freed once this returns
                                     dispatch(PreCheckDone{gen, ok, std::move(reason)});
                                 });
}

void Supervisor::spawn(uint64_t gen, int slot) {
    auto env_result = worker_env(gen, slot);
    if (!env_result) {
        dispatch(SpawnFailed{gen, slot, 0, env_result.error().what});
        return;
    }
    WorkerEnv env = std::move(env_result.value());
    SpawnRequest req;
    req.argv = cfg_.command;
    req.env = std::move(env.vars);
    req.listen_pid_index = env.listen_pid_index;
    for (const auto& l : listeners_) req.listen_fds.push_back(l.fd.get());
    req.pdeath_signal = cfg_.drain_signal;
    req.chdir = cfg_.chdir;
    req.creds = creds_;
    UniqueFd out_rd, out_wr, err_rd, err_wr;
    if (cfg_.log_workers) {
        int o[2], e[2];
        if (::pipe2(o, O_CLOEXEC) == 0) out_rd.reset(o[0]), out_wr.reset(o[1]);
        if (::pipe2(e, O_CLOEXEC) == 0) err_rd.reset(e[0]), err_wr.reset(e[1]);
        if (!out_wr.valid() || !err_wr.valid())
            spdlog::error("cannot create pipes for gen={}'s output: {}; it inherits ours", gen, std::strerror(errno));
        req.stdout_fd = out_wr.get();
        req.stderr_fd = err_wr.get();
    }
    auto pid = spawn_worker(req);
    out_wr.reset();  // the worker holds the write ends now: EOF comes when it (and its children) are done
    err_wr.reset();
    if (pid && out_rd.valid() && err_rd.valid()) {
        for (auto [fd, name] : {std::pair{out_rd.release(), "stdout"}, std::pair{err_rd.release(), "stderr"}}) {
            auto o = WorkerOutput::create(&loop_, fd, gen, *pid, name, WorkerOutputLimits{});
            if (o) outputs_.push_back(std::move(o.value()));
            else spdlog::error("cannot read gen={}'s {}: {}", gen, name, o.error().what);
        }
    }
    if (pid) dispatch(WorkerSpawned{gen, slot, *pid});
    else dispatch(SpawnFailed{gen, slot, pid.error().code, pid.error().what});
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
    signals_.clear();
    notify_poll_.close();
    timers_.clear();
}

} // namespace sv
