// Integration harness: temp dirs, child processes with captured output, bounded waits,
// guards that stop what a test started (TERM, then KILL), and a small HTTP client.
// After h2o's t/Util.pm: poll for readiness, check the child is alive on every pass.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

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

// Polls `pred` every ~10 ms for up to `seconds`. Returns false on timeout, or as soon as
// `must_stay_alive` (when given) has exited while pred is still false.
bool wait_until(const std::function<bool()>& pred, double seconds, const Process* must_stay_alive = nullptr);
// waitpid(pid) polled for up to `seconds`: the wait status, or nullopt. Only for our children.
std::optional<int> wait_exit(pid_t pid, double seconds);
// A live process: kill(pid, 0) succeeds and /proc/<pid>/stat is not a zombie.
bool pid_alive(pid_t pid);
// The process group of a live process (from /proc/<pid>/stat), or -1.
pid_t pgid_of(pid_t pid);
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

// --- network --------------------------------------------------------------------------

struct Response {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-cased names
};

// GET over a fresh connection to 127.0.0.1:port (HTTP/1.0, Connection: close), reading to
// EOF with SO_RCVTIMEO; nullopt on any failure (refused, reset, timeout, bad response).
std::optional<Response> http_get(int port, const std::string& path = "/", double timeout = 2.0);
// The same over a unix stream socket.
std::optional<Response> http_get_unix(const std::string& socket_path, const std::string& path = "/",
                                      double timeout = 2.0);
// True when a TCP connect to 127.0.0.1:port succeeds.
bool can_connect(int port);
// After an upgrade the old generation may still accept a connection or two until it
// handles the drain signal: requests (each a fresh connection, via `get`) until one is
// answered by `pid`, for up to `seconds`. That response, or nullopt.
std::optional<Response> wait_served_by(const std::function<std::optional<Response>()>& get, long pid, double seconds = 3.0);
std::optional<Response> wait_served_by(int port, long pid, double seconds = 3.0);
// "pid=123 gen=4" → {123, 4}; {-1, -1} when malformed.
std::pair<long, long> parse_pid_gen(const std::string& body);
// Sends one datagram to an sd_notify socket ("@abstract" or a path) from this process.
bool send_notify(const std::string& socket, const std::string& text);

// An abstract unix datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifyListener {
public:
    NotifyListener();
    ~NotifyListener();
    NotifyListener(const NotifyListener&) = delete;
    NotifyListener& operator=(const NotifyListener&) = delete;
    const std::string& name() const { return name_; }  // "@…"; empty when setup failed
    // The next datagram, waiting up to `seconds`.
    std::optional<std::string> receive(double seconds);
    // Datagrams until one contains `needle` (bounded); that one, or nullopt.
    std::optional<std::string> receive_until(const std::string& needle, double seconds);

private:
    int fd_ = -1;
    std::string name_;
};

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
    bool hup() const { return proc_.signal(SIGHUP); }
    bool term() const { return proc_.signal(SIGTERM); }

private:
    std::vector<pid_t> leftovers() const;

    std::string dir_;
    Process proc_;
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

} // namespace svtest
