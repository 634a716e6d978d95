// Supervisor: the libuv shell around UpgradeMachine. It turns signals, child exits,
// timers and notify datagrams into events, and the machine's actions into syscalls.
// One process, one thread, one loop; no timer runs while nothing is pending.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "supervisor/config.h"
#include "supervisor/containment.h"
#include "supervisor/control_socket.h"
#include "supervisor/fd_reserve.h"
#include "supervisor/http_server.h"
#include "supervisor/listener_drift.h"
#include "supervisor/listeners.h"
#include "supervisor/metrics.h"
#include "supervisor/notify_socket.h"
#include "supervisor/pre_check.h"
#include "supervisor/readiness_probe.h"
#include "supervisor/resume_state.h"
#include "supervisor/worker_output.h"
#include "supervisor/spawn.h"
#include "supervisor/worker_env.h"
#include "supervisor/systemd.h"
#include "supervisor/upgrade_machine.h"
#include "supervisor/upgrade_progress.h"
#include "supervisor/uv_handle.h"

namespace sv {

class Supervisor {
public:
    Supervisor(Config cfg, Credentials creds, std::vector<Listener>& listeners, NotifySocket notify,
               SystemdNotifier systemd);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // What `ctl reexec` needs that only main knows (supervisor_reexec.cpp).
    struct Launch {
        std::string exe;                // the binary we run, by path (re-resolved at each reexec)
        std::vector<std::string> argv;  // as started
        std::vector<std::string> env;   // as started
        int pid_file_fd = -1;
        std::string pid_file_path;
    };
    void set_launch(Launch l) { launch_ = std::move(l); }
    // Carry on from a previous image's state instead of booting (supervisor_resume.cpp).
    void resume_from(ResumeState st) { resume_ = std::move(st); }

    // Runs until the machine exits; returns the exit code. Errors setting up the loop are
    // returned as Error (exit code 1 for the caller).
    Result<int> run();

private:
    // A timer and what it is for; the uv handle comes first so the two convert.
    struct TimerHandle {
        uv_timer_t timer;
        Supervisor* self;
        TimerId id;
    };

    static void on_signal(uv_signal_t* h, int signum) noexcept;
    static void on_notify_readable(uv_poll_t* h, int status, int events) noexcept;
    static void on_timer(uv_timer_t* h) noexcept;

    Result<Ok> setup();
    Result<Ok> open_control();
    // `ctl reexec` (supervisor_reexec.cpp) and its other half in the new image (supervisor_resume.cpp).
    void reexec(uint64_t client, const ControlRequest& req);
    std::string reexec_refusal() const;
    Result<ResumeState> export_state(uint64_t client);
    Result<Ok> exec_into(const std::string& binary, const ResumeState& st, int memfd);
    Result<Ok> resume();
    void resume_timers(const ResumeState& st);
    void handle_signal(int signum);
    std::vector<int> signals_to_catch() const;
    void forward_or_ignore(int signum);
    void reap_children();
    WorkerExited worker_exited(int pid, int wait_status);
    void check_leftovers();
    void read_notify();
    // Queues an event; feeds the queue to the machine one event at a time unless a step
    // is already running (then the running loop feeds it): the machine is never re-entered.
    void dispatch(Event e);
    void step(const Event& e);
    void report_drift() const;
    void execute(const Action& a);
    void notify_systemd(const NotifySystemd& n);
    void kill_worker(int pid);
    void close_listeners();
    void report_broken_invariant(const std::string& what, const Event& e);
    void take_in_pending_events();
    void spawn(uint64_t gen, int slot);
    Result<int> spawn_with_reserve(const SpawnRequest& req);
    void run_pre_check(uint64_t gen);
    SpawnRequest pre_check_request(WorkerEnv env) const;
    Result<WorkerEnv> worker_env(uint64_t gen, int slot) const;
    void start_timer(const TimerId& id, Millis after);
    void cancel_timer(const TimerId& id);
    void shutdown(int code);
    // The readiness probe (supervisor_probe.cpp): runs while a worker waits to be seen accepting.
    Result<Ok> setup_probe();
    void update_probe();
    static void on_probe_tick(uv_timer_t* t) noexcept;
    void probe_tick();
    Millis now() const;
    int64_t unix_ms_at(Millis t) const;

    void on_control(uint64_t client, const ControlRequest& req);
    void on_control_closed(uint64_t client);
    void on_upgrade_verdict(const UpgradeVerdict& v);
    void answer_upgrade(const AnswerUpgrade& a);
    void send_progress(const Event& e);
    StatusSnapshot snapshot() const;
    void write_status_file();

    // --http and --metrics-file (supervisor_http.cpp).
    Result<Ok> setup_http();
    HttpResponse on_http(HttpRoute route) const;
    std::string metrics_text() const;
    // Fills in each worker's connections (connections.h): on demand, never on a timer.
    void add_connections(StatusSnapshot& s) const;
    // pid → connections of the workers these actions send the drain signal to (counted once,
    // before it is sent), and the machine's `draining gen=… pid=…` line with its count.
    std::map<int, int64_t> connections_at_drain(const std::vector<Action>& actions) const;
    static void annotate_drain(Log& log, const std::map<int, int64_t>& counts);
    void write_metrics_file();

    // systemd (supervisor_systemd.cpp): watchdog pings and STATUS= between the machine's own.
    Result<Ok> start_watchdog();
    static void on_watchdog(uv_timer_t* h) noexcept;
    void send_status_if_changed();

    Config cfg_;
    Credentials creds_;
    std::vector<Listener>& listeners_;
    NotifySocket notify_;
    SystemdNotifier systemd_;
    UpgradeMachine machine_;
    uv_loop_t loop_{};
    std::vector<UvHandle<uv_signal_t>> signals_;
    UvHandle<uv_poll_t> notify_poll_;
    bool probe_enabled_ = false;  // --ready accepting/auto and /proc can show it
    std::set<ino_t> listener_inodes_;
    UvHandle<uv_timer_t> probe_timer_;
    struct Watched {
        AcceptProbe probe;
        std::vector<int> pids;  // the worker and its group/descendants, relisted now and then
        unsigned ticks = 0;
    };
    std::map<int, Watched> watched_;  // starting workers not yet seen accepting, by pid
    std::map<std::pair<int, uint64_t>, UvHandle<TimerHandle>> timers_;
    std::chrono::steady_clock::time_point started_;
    int64_t started_unix_ms_ = 0;
    int exit_code_ = -1;
    std::deque<Event> queue_;  // events waiting for the machine
    bool stepping_ = false;    // a queue run is on the stack
    uint64_t broken_invariants_ = 0;

    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<HttpServer> http_;
    MetricsCounters counters_;
    std::string metrics_written_;  // --metrics-file text as of its last write
    mutable std::string connections_error_;  // the last failure to count connections, logged once
    // The last counts and when (uv_now): a flood of /status or /metrics requests costs one
    // count (a sock_diag dump and a /proc scan, ~30 ms on a busy host) per second at most.
    mutable std::map<int, int64_t> connections_cache_;
    mutable uint64_t connections_counted_at_ = 0;
    std::unique_ptr<PreCheck> pre_check_;
    std::vector<std::unique_ptr<WorkerOutput>> outputs_;  // --log-workers, kept until EOF
    ProgressTracker progress_;
    std::set<uint64_t> progress_clients_;  // `ctl upgrade` callers that asked for progress events
    bool has_last_upgrade_ = false;
    UpgradeResult last_upgrade_;
    std::string status_written_;
    FdReserve fd_reserve_;
    mutable DriftState drift_;  // also refreshed by snapshot(), which status requests call

    Launch launch_;
    std::optional<ResumeState> resume_;

    Containment containment_;
    std::set<int> leftovers_;  // reaped workers whose containment still has members

    UvHandle<uv_timer_t> watchdog_;  // unreferenced: it never keeps the loop alive
    std::string status_sent_;        // format_status_line() as of the last STATUS= sent
};

} // namespace sv
