// Integration harness: temp dirs, child processes with captured output, bounded waits,
// guards that stop what a test started (TERM, then KILL), the supervisor under test and
// the common shape of a test (Serving, run_to_exit). Sockets are in net.h, /proc in
// proc.h; this header includes both. After h2o's t/Util.pm: poll for readiness, check
// the child is alive on every pass.
#pragma once

#include <sys/types.h>

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net.h"
#include "proc.h"

namespace svtest {

// --- environment ----------------------------------------------------------------------

// The value of an environment variable, or "" when unset.
std::string env(const char* name);
// True when `path` names an executable file, or a bare name found in PATH.
bool have_program(const std::string& name);
// The pid of this test process (the "stranger" in notify tests).
pid_t self_pid();

// --- files ----------------------------------------------------------------------------

// A fresh directory under $TMPDIR (mkdtemp), removed recursively by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// The whole file, or "" when it cannot be read.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
// Writes atomically (temp file + rename) with `mode`: a running shell that has the old
// script open keeps reading the old text.
bool write_file(const std::string& path, const std::string& text, unsigned mode = 0644);
// A "#!/bin/sh" script whose body is `body`, executable (or not, with mode 0644).
bool write_script(const std::string& path, const std::string& body, unsigned mode = 0755);
// Shell single-quoting.
std::string sh_quote(const std::string& s);

// --- processes ------------------------------------------------------------------------

// A child process with stdin from /dev/null and stdout+stderr appended to a log file.
// Not copyable; exit status is cached once reaped.
class Process {
public:
    // env == nullptr: inherit ours. Returns a Process with pid() == -1 if fork failed.
    Process(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>* env = nullptr);
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& log_path() const { return log_path_; }
    std::string log() const { return read_file(log_path_); }
    // Reaps if it has exited (WNOHANG). False once reaped.
    bool alive() const;
    // The wait status once reaped.
    std::optional<int> status() const { return status_; }
    // Waits up to `seconds` for the exit; returns the wait status.
    std::optional<int> wait_exit(double seconds) const;
    // kill(pid, sig) while not reaped; false otherwise.
    bool signal(int sig) const;

private:
    pid_t pid_ = -1;
    std::string log_path_;
    mutable std::optional<int> status_;
};

// Stops a process when the scope ends, also when an assertion failed: SIGTERM, wait up to
// `term_seconds`, then SIGKILL and reap. Then SIGKILLs every extra pid still alive (workers
// and grandchildren the process left behind). Only pids this test caused to exist.
class ProcessGuard {
public:
    explicit ProcessGuard(const Process& p, double term_seconds = 5.0) : p_(p), term_seconds_(term_seconds) {}
    ~ProcessGuard();
    ProcessGuard(const ProcessGuard&) = delete;
    ProcessGuard& operator=(const ProcessGuard&) = delete;
    void also_kill(pid_t pid) { extra_.push_back(pid); }
    void also_kill(const std::function<std::vector<pid_t>()>& pids) { extra_fn_ = pids; }

private:
    const Process& p_;
    double term_seconds_;
    std::vector<pid_t> extra_;
    std::function<std::vector<pid_t>()> extra_fn_;
};

// Seconds since construction, on the monotonic clock: for the bounds of loops that do their
// own waiting (a request loop, a flood) and for the figures tests print.
class Stopwatch {
public:
    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Polls `pred` every ~10 ms for up to `seconds`. Returns false on timeout, or as soon as
// `must_stay_alive` (when given) has exited while pred is still false.
bool wait_until(const std::function<bool()>& pred, double seconds, const Process* must_stay_alive = nullptr);
// waitpid(pid) polled for up to `seconds`: the wait status, or nullopt. Only for our children.
std::optional<int> wait_exit(pid_t pid, double seconds);
// "exit=0", "signal=SIGKILL": for messages.
std::string describe_status(std::optional<int> wait_status);

// --- logs -----------------------------------------------------------------------------

// The capture groups (group 0 = the whole line) of the first line matching `regex`.
std::optional<std::vector<std::string>> find_log_line(const std::string& text, const std::string& regex);
// Every line matching `regex`, as capture groups.
std::vector<std::vector<std::string>> find_log_lines(const std::string& text, const std::string& regex);
size_t count_log_lines(const std::string& text, const std::string& regex);
// Waits (bounded) for a line of p's log matching `regex`, while p stays alive
// (unless `allow_exit`).
std::optional<std::vector<std::string>> wait_log(const Process& p, const std::string& regex, double seconds,
                                                 bool allow_exit = false);
// The port from the first `listening name=<name> addr=127.0.0.1:<port>` line (any name when empty).
std::optional<int> port_from_log(const std::string& text, const std::string& name = "");

// key=value lines (the fake worker's report).
std::map<std::string, std::string> parse_report(const std::string& text);
// Waits for the fake worker's report `<prefix>.<pid>` and parses it.
std::map<std::string, std::string> wait_report(const std::string& prefix, pid_t pid, double seconds);

// The environment of this process plus `extra` (KEY=VALUE, replacing ours).
std::vector<std::string> environment_with(const std::vector<std::string>& extra);

// --- the supervisor under test ----------------------------------------------------------

struct Bins {
    std::string supervisor, demo_worker, fake_worker, py_worker, node_worker;
};
// From SUPERVISOR_BIN, DEMO_WORKER_BIN, FAKE_WORKER_BIN, PY_WORKER, NODE_WORKER.
const Bins& bins();

// A running supervisor in `dir`, logging to dir/supervisor.log, guarded: the destructor
// stops it (TERM, up to 5 s, KILL) and then kills every worker pid its log mentions
// and every grandchild the fake worker reported, if still alive and still in a worker's
// process group (so a recycled pid is never hit).
class Supervised {
public:
    // `env` as for Process; `prefix` runs before the supervisor (e.g. a shell that opens fds
    // and then execs it, keeping the pid).
    Supervised(const TempDir& dir, const std::vector<std::string>& options, const std::vector<std::string>& command,
               const std::vector<std::string>* env = nullptr, const std::vector<std::string>& prefix = {});
    ~Supervised();
    Supervised(const Supervised&) = delete;
    Supervised& operator=(const Supervised&) = delete;

    Process& proc() { return proc_; }
    pid_t pid() const { return proc_.pid(); }
    std::string log() const { return proc_.log(); }
    // Waits for the `listening` line; returns the TCP port (0 on failure).
    int wait_port(double seconds = 5.0);
    // Waits for `ready gen=<gen>`; returns that worker's pid (0 on failure).
    pid_t wait_ready(unsigned gen, double seconds = 5.0);
    // Waits for `upgrade done gen=<gen>`; returns the new pid (0 on failure).
    pid_t wait_upgrade_done(unsigned gen, double seconds = 5.0);
    std::optional<std::vector<std::string>> wait_log(const std::string& regex, double seconds = 5.0) const;
    size_t count(const std::string& regex) const { return count_log_lines(log(), regex); }
    // The pid of `spawned gen=<gen>`, 0 when not (yet) logged.
    pid_t spawned_pid(unsigned gen) const;
    // The pid of the n-th `ready gen=` line of any generation (1-based, respawns count),
    // waiting for it; 0 on timeout.
    pid_t wait_nth_ready(size_t n, double seconds = 5.0) const;
    // The supervisor's own notify socket, from its `started` line ("" when not logged).
    std::string notify_socket() const;
    bool hup() const { return proc_.signal(SIGHUP); }
    bool term() const { return proc_.signal(SIGTERM); }

private:
    std::vector<pid_t> leftovers() const;

    // Destroyed after guard_ (members go in reverse order): once the supervisor is gone,
    // removes the cgroups it made (supervisor.<pid>), which a SIGKILLed one leaves behind.
    struct CgroupSweep {
        const Process& p;
        ~CgroupSweep();
    };
    std::string dir_;
    Process proc_;
    CgroupSweep sweep_{proc_};
    ProcessGuard guard_;
};

// The shell line that runs the fake worker with its report under dir ("report.<pid>"):
// `exec '<fake_worker>' --report '<dir>/report' <args>`. For worker scripts that a test
// rewrites between generations.
std::string fake_exec(const TempDir& dir, const std::string& args = "");
// dir/report: the prefix of the fake worker's report files.
std::string report_prefix(const TempDir& dir);

// The log of a Supervised or Process, for INFO() on failure.
std::string tail(const std::string& text, size_t max_lines = 60);

// A worker script whose behaviour depends on its generation: `args` maps a generation to
// the fake worker's arguments (`{{2, "--crash-on-drain"}}`), the others run it plain.
// Nothing to rewrite between generations, so no race with the supervisor's next spawn.
std::string by_generation(const TempDir& dir, const std::map<int, std::string>& args);
// A worker script: plain fake workers, except that the first spawn after
// arm_worker_script(dir) gets `args` (mkdir is atomic: exactly one spawn takes it).
// Independent of generation numbers, and no race with the test.
std::string once_armed(const TempDir& dir, const std::string& args);
bool arm_worker_script(const TempDir& dir);

// --- the common shape of a test ---------------------------------------------------------

// The exit code in a wait status; -1 when there is none (still running, or a signal).
int exit_code_of(std::optional<int> wait_status);

// Sends `sig` (a stop request), REQUIREs that the supervisor exits within `seconds` and
// CHECKs that it exits 0.
void expect_clean_stop(Supervised& sv, double seconds = 5.0, int sig = SIGTERM);

// A short-lived command run to its exit.
struct RunOutcome {
    std::optional<int> status;  // the wait status; nullopt: it did not exit in time (then killed)
    int code = -1;              // exit code; -1 when it did not exit in time or died of a signal
    std::string output;         // stdout and stderr
};

// A supervisor serving in a fresh temp dir: the preamble of most integration tests.
//
//     Serving f;                                   // f.dir, f.script = f.dir/worker.sh
//     REQUIRE(write_script(f.script, …));          // optional: default fake_exec(f.dir)
//     Supervised& sv = f.start({.options = {"--drain-timeout", "500ms"}});
//     … f.port, f.w1 (gen=1's pid) …
//
// start() runs `supervisor -l 127.0.0.1:0 --ready notify <options> -- <f.script>` and
// REQUIREs that gen=1 gets ready (and, with the default listener, that it has a TCP port).
// While the Serving lives, every failed assertion shows the end of the supervisor's log.
// Keep it a local of the test case (it registers a doctest INFO context).
class Serving {
public:
    enum class Await { Nothing, Port, Ready };
    struct Start {
        std::vector<std::string> options;             // after the listener and readiness options
        std::vector<std::string> command;             // default: {script} (fake_exec(dir) unless written)
        std::vector<std::string> listen{"-l", "127.0.0.1:0"};
        std::vector<std::string> ready{"--ready", "notify"};
        const std::vector<std::string>* env = nullptr;  // as for Supervised
        std::vector<std::string> prefix;                // as for Supervised
        Await await = Await::Ready;                     // Port: REQUIRE the port only; Nothing: no wait
        double seconds = 5.0;                           // for each wait
    };

    Serving();
    ~Serving();
    Serving(const Serving&) = delete;
    Serving& operator=(const Serving&) = delete;

    // f.start({.options = {"--drain-timeout", "500ms"}, .command = f.fake_worker()}).
    Supervised& start(const Start& how);
    Supervised& start();  // all defaults
    // Rewrites the script to run the fake worker with `args`, sends SIGHUP, and returns the
    // pid of the next spawn (gen=`gen`) once its report shows it runs (its signal handlers
    // are installed). REQUIREs each step.
    pid_t upgrade_to(const std::string& args, unsigned gen = 2);
    // The started supervisor (REQUIREs start() was called).
    Supervised& sv();
    // {fake_worker, --report, <dir>/report, args…}: the fake worker as a command.
    std::vector<std::string> fake_worker(const std::vector<std::string>& args = {}) const;
    std::string report() const { return report_prefix(dir); }
    // dir/c.sock: where tests put the control socket (--control).
    std::string control_socket() const { return dir.file("c.sock"); }
    // `supervisor ctl --control <control_socket()> ARGS…` run to its exit.
    RunOutcome ctl(const std::vector<std::string>& args, double seconds = 10.0) const;

    TempDir dir;
    const std::string script;
    int port = 0;    // the TCP port of the first listener (0: none, or not awaited)
    pid_t w1 = 0;    // gen=1's pid once ready (0: not awaited)

private:
    // Prints the supervisor's log into a failure report.
    struct LogContext {
        const Serving* self;
        void operator()(std::ostream* out) const;
    };

    std::optional<Supervised> sv_;
    doctest::detail::ContextScope<LogContext> log_context_;
};

// Runs `argv` (output in dir/run<N>.log) and waits up to `seconds` for it to exit; a
// guard kills it otherwise.
RunOutcome run_to_exit(const TempDir& dir, const std::vector<std::string>& argv, double seconds = 5.0,
                       const std::vector<std::string>* env = nullptr);
// `supervisor ARGS…` run to its exit.
RunOutcome run_supervisor(const TempDir& dir, const std::vector<std::string>& args, double seconds = 5.0);
// `[prefix…] supervisor ctl ARGS…` run to its exit.
RunOutcome supervisor_ctl(const TempDir& dir, const std::vector<std::string>& args, double seconds = 10.0,
                          const std::vector<std::string>& prefix = {}, const std::vector<std::string>* env = nullptr);
// CHECKs exit code `code` and exactly one line of output, "supervisor: …\n", containing
// every one of `needles`.
void expect_one_line_error(const RunOutcome& o, int code, const std::vector<std::string>& needles);

// setpriv arguments that run the rest of a command as nobody (65534), and whether this
// test process can use them (root with setpriv installed).
extern const std::vector<std::string> kAsNobody;
bool can_be_nobody();

} // namespace svtest
