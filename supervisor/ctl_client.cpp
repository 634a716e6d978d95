// `supervisor ctl`: connect, send one request, wait (bounded) for the answer.
#include "supervisor/ctl_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include "supervisor/control_protocol.h"
#include "supervisor/ctl_progress.h"
#include "supervisor/health.h"
#include "supervisor/parse.h"
#include "supervisor/unique_fd.h"

namespace sv {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A health check answers quickly or not at all: a wedged supervisor is not serving.
constexpr Millis kCheckTimeout{10'000};

int fail(int code, const std::string& what) {
    std::fprintf(stderr, "supervisor ctl: %s\n", what.c_str());
    return code;
}

int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class Connection {
public:
    explicit Connection(UniqueFd fd) : fd_(std::move(fd)) {}

    bool send(const std::string& line) {
        size_t off = 0;
        while (off < line.size()) {
            ssize_t n = ::send(fd_.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // One reply line. Returns 1 with *line, 0 on EOF, -1 on timeout, -2 on error.
    int read_line(std::string* line, Clock::time_point deadline) {
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                *line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return 1;
            }
            int rc = wait_readable(deadline);
            if (rc <= 0) return rc == 0 ? -1 : -2;
            char tmp[4096];
            ssize_t n = ::read(fd_.get(), tmp, sizeof tmp);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return -2;
            if (n == 0) return 0;
            buf_.append(tmp, static_cast<size_t>(n));
        }
    }

    // Waits until the peer closes (the supervisor exited). true on EOF, false on timeout.
    bool wait_closed(Clock::time_point deadline) {
        std::string ignored;
        for (;;) {
            int rc = read_line(&ignored, deadline);
            if (rc == 0 || rc == -2) return true;
            if (rc == -1) return false;
        }
    }

private:
    int wait_readable(Clock::time_point deadline) {
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) return 0;
            pollfd p{fd_.get(), POLLIN, 0};
            int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1'000'000)));
            if (rc < 0 && errno == EINTR) continue;
            return rc;
        }
    }

    UniqueFd fd_;
    std::string buf_;
};

// Typed reads of a reply that never throw: json::value() would on a type mismatch.
bool get_bool(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}
long long get_int(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<long long>() : 0;
}
std::string get_str(const json& j, const char* key, const char* fallback = "") {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Connects, or explains in one line why not (and what to check).
int connect_control(const std::string& path, UniqueFd* out) {
    sockaddr_un sa{};
    if (path.size() >= sizeof sa.sun_path) return fail(kCtlUsage, "control socket path too long: " + path);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
        int err = errno;
        std::string hint = err == ENOENT         ? " (is the supervisor running with --control " + path + "?)"
                           : err == ECONNREFUSED ? " (stale socket: no supervisor is running there)"
                           : err == EACCES       ? " (run as the supervisor's user or root)"
                                                 : "";
        // 3 means "nothing listens there" only; EACCES and the rest say nothing about that.
        bool nobody = err == ENOENT || err == ECONNREFUSED;
        return fail(nobody ? kCtlUnreachable : kCtlFailed, "cannot connect to " + path + ": " + std::strerror(err) + hint);
    }
    *out = std::move(fd);
    return kCtlOk;
}

// Sends a request and reads its reply as JSON; `on_event` takes progress events (objects
// with "event") that come before the reply.
int request(Connection& c, const json& req, Clock::time_point deadline, json* reply,
            const std::function<void(const json&)>& on_event = {}) {
    // A refused caller is told why and disconnected at once, so a failed send may still
    // leave that reason to read.
    std::string cmd = get_str(req, "cmd");
    bool sent = c.send(req.dump() + "\n");
    std::string line;
    int rc;
    for (;;) {
        rc = c.read_line(&line, sent ? deadline : std::min(deadline, Clock::now() + std::chrono::seconds(1)));
        if (rc != 1 || !on_event) break;
        json ev = json::parse(line, nullptr, false);
        if (!ev.is_object() || !ev.contains("event")) break;
        on_event(ev);
    }
    // The connect worked, so a supervisor is there (it may be at its fd limit or client
    // cap): from here on every failure is 1, never "no supervisor" (3).
    if (!sent && rc != 1) return fail(kCtlFailed, "the supervisor closed the connection without answering");
    if (rc == -1) return fail(kCtlFailed, "no answer to '" + cmd + "' in time (see the supervisor's log)");
    if (rc <= 0) return fail(kCtlFailed, "the supervisor closed the connection without answering");
    *reply = json::parse(line, nullptr, false);
    if (reply->is_discarded() || !reply->is_object()) return fail(kCtlFailed, "unreadable answer: " + line);
    return kCtlOk;
}

enum class Subcommand { Status, Check, Upgrade, Stop, Reexec };

// What the command line asks for, once parsed and checked.
struct CtlRequest {
    Subcommand sub = Subcommand::Status;
    std::string control;
    Millis timeout{300'000};
    bool as_json = false;
    std::string binary;  // reexec --binary
    bool watch = false;     // status --watch
    Millis interval{1000};  // status --watch --interval
};

// Parses `supervisor ctl` arguments into *out. Returns -1 to go on, else the exit code
// (--help printed, or a usage error said in one line).
int parse_ctl_args(const std::vector<std::string>& args, CtlRequest* out) {
    CLI::App app{"supervisor ctl: control a running supervisor through its control socket", "supervisor ctl"};
    app.footer("Exit codes: 0 done, 1 failed (upgrade rolled back, refused, an error reply, no answer in time,\n"
               "or the connection was closed without an answer), 2 usage, 3 nothing listens at the control\n"
               "socket (missing or stale: ENOENT, ECONNREFUSED).\n"
               "ctl check: 0 serving, 1 not serving (starting, stopping, no ready worker) or no answer, 3 no supervisor.");
    std::string timeout_text, interval_text;
    app.add_option("--control", out->control, "control socket (default: $RUNTIME_DIRECTORY/supervisor.sock)")->type_name("PATH");
    app.require_subcommand(1);
    auto* status = app.add_subcommand("status", "show generations, workers and the last upgrade");
    status->add_flag("--json", out->as_json, "print the status document as JSON");
    auto* check = app.add_subcommand("check", "health check: exit 0 when serving, 1 when not, 3 when no supervisor; one line");
    check->add_option("--timeout", timeout_text, "give up waiting for the answer after (default 10s)")->type_name("DUR");
    auto* upgrade = app.add_subcommand("upgrade", "upgrade and wait: exit 0 when the new generation serves, 1 if rolled back");
    upgrade->add_option("--timeout", timeout_text, "give up waiting after (default 5m)")->type_name("DUR");
    upgrade->add_flag("--json", out->as_json, "print each progress event and then the verdict as one JSON object per line");
    status->add_flag("--watch", out->watch, "query again every --interval and show the status each time, until interrupted");
    status->add_option("--interval", interval_text, "with --watch: how often (default 1s)")->type_name("DUR");
    auto* stop = app.add_subcommand("stop", "graceful stop; waits until the supervisor has exited");
    stop->add_option("--timeout", timeout_text, "give up waiting after (default 5m)")->type_name("DUR");
    auto* reexec = app.add_subcommand("reexec", "replace the supervisor's own binary, keeping its pid, sockets and workers");
    reexec->add_option("--binary", out->binary, "the new binary (default: the path of the one running, read again)")->type_name("PATH");
    reexec->add_option("--timeout", timeout_text, "bound on the new binary's state check (default 10s)")->type_name("DUR");

    std::vector<std::string> rev(args.rbegin(), args.rend());
    try {
        app.parse(rev);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return kCtlOk;
    } catch (const CLI::ParseError& e) {
        return fail(kCtlUsage, std::string(e.what()) + " (see supervisor ctl --help)");
    }
    out->sub = status->parsed()    ? Subcommand::Status
               : check->parsed()   ? Subcommand::Check
               : upgrade->parsed() ? Subcommand::Upgrade
               : reexec->parsed()  ? Subcommand::Reexec
                                   : Subcommand::Stop;
    if (out->sub == Subcommand::Check) out->timeout = kCheckTimeout;
    if (!out->binary.empty() && out->binary[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) == nullptr) return fail(kCtlUsage, "--binary " + out->binary + ": cannot resolve a relative path");
        out->binary = std::string(cwd) + "/" + out->binary;
    }
    const char* rt = std::getenv("RUNTIME_DIRECTORY");
    if (out->control.empty() && rt != nullptr && *rt != '\0') out->control = std::string(rt) + "/supervisor.sock";
    if (out->control.empty()) return fail(kCtlUsage, "no control socket: give --control PATH (or set RUNTIME_DIRECTORY)");
    if (!interval_text.empty()) {
        auto d = parse_duration(interval_text);
        if (!d || d->count() == 0) return fail(kCtlUsage, "invalid --interval '" + interval_text + "': expected a duration like 2s");
        out->interval = *d;
    }
    if (!timeout_text.empty()) {
        auto d = parse_duration(timeout_text);
        if (!d || d->count() == 0) return fail(kCtlUsage, "invalid --timeout '" + timeout_text + "': expected a duration like 30s");
        out->timeout = *d;
    } else if (out->sub == Subcommand::Reexec) {
        out->timeout = Millis{10'000};
    }
    return -1;
}

// `ctl status [--json]`: the status document as a table, or as JSON.
int ctl_status(Connection& conn, Clock::time_point deadline, bool as_json) {
    json reply;
    if (int rc = request(conn, json{{"cmd", "status"}}, deadline, &reply); rc != kCtlOk) return rc;
    if (!get_bool(reply, "ok")) return fail(kCtlFailed, get_str(reply, "error", "refused"));
    json st = reply.contains("status") ? reply["status"] : json::object();
    if (as_json) std::printf("%s\n", st.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    else std::fputs(format_status_table(st, unix_ms()).c_str(), stdout);
    return kCtlOk;
}

// `ctl check`: one line on stdout, 0 when serving, 1 when not (health.h decides).
int ctl_check(Connection& conn, Clock::time_point deadline) {
    json reply;
    if (int rc = request(conn, json{{"cmd", "status"}}, deadline, &reply); rc != kCtlOk) return rc;
    if (!get_bool(reply, "ok")) return fail(kCtlFailed, get_str(reply, "error", "refused"));
    Health h = health_of(reply.contains("status") ? reply["status"] : json::object());
    std::printf("%s%s\n", h.serving ? "" : "not serving: ", h.reason.c_str());
    return h.serving ? kCtlOk : kCtlFailed;
}

// `ctl status --watch`: the status again every interval (the table redrawn in place on a
// terminal), until interrupted or the supervisor goes away (then the exit code says why).
int ctl_watch(Connection& conn, const CtlRequest& req) {
    bool tty = ::isatty(STDOUT_FILENO) != 0;
    for (;;) {
        auto deadline = Clock::now() + std::chrono::seconds(10);
        if (tty) std::fputs("\033[H\033[2J", stdout);
        else std::printf("--- %s\n", clock_time(unix_ms()).c_str());
        if (int rc = ctl_status(conn, deadline, req.as_json); rc != kCtlOk) return rc;
        std::fflush(stdout);
        std::this_thread::sleep_for(req.interval);
    }
}

// `ctl upgrade`: waits for the verdict, showing its progress (ctl_progress.cpp); 0 when the
// new generation serves, 1 with the reason.
int ctl_upgrade(Connection& conn, Clock::time_point deadline, bool as_json) {
    json reply;
    ProgressView view(as_json ? ProgressView::Mode::Json
                              : ::isatty(STDOUT_FILENO) ? ProgressView::Mode::Live : ProgressView::Mode::Lines);
    int rc = request(conn, json{{"cmd", "upgrade"}, {"progress", true}}, deadline, &reply,
                     [&](const json& ev) { view.event(ev); });
    view.end();
    if (rc != kCtlOk) return rc;
    if (as_json) std::printf("%s\n", reply.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    auto gen = get_int(reply, "gen");
    if (get_bool(reply, "ok")) {
        if (!as_json) std::printf("upgrade to gen %lld succeeded: it is serving\n", gen);
        return kCtlOk;
    }
    if (gen > 0)
        return fail(kCtlFailed, "upgrade to gen " + std::to_string(gen) + " failed: " + get_str(reply, "error") + "; gen " +
                                    std::to_string(get_int(reply, "serving_gen")) + " is still serving");
    return fail(kCtlFailed, "upgrade refused: " + get_str(reply, "error"));
}

// `ctl stop`: asks for a graceful stop and waits until the supervisor has exited (EOF).
int ctl_stop(Connection& conn, Clock::time_point deadline, Millis timeout) {
    json reply;
    if (int rc = request(conn, json{{"cmd", "stop"}}, deadline, &reply); rc != kCtlOk) return rc;
    if (!get_bool(reply, "ok")) return fail(kCtlFailed, get_str(reply, "error", "refused"));
    if (!conn.wait_closed(deadline))
        return fail(kCtlFailed, "the supervisor is still stopping after " + format_duration(timeout) + " (workers draining?)");
    std::printf("supervisor pid %lld stopped\n", get_int(reply, "pid"));
    return kCtlOk;
}

// `ctl reexec`: 0 once the new image answers on this same connection (same pid), 1 with
// the reason when refused or when the execve failed (the old image keeps running).
int ctl_reexec(Connection& conn, const CtlRequest& req) {
    json body = {{"cmd", "reexec"}};
    if (!req.binary.empty()) body["binary"] = req.binary;
    body["timeout_ms"] = req.timeout.count();
    // The check is bounded by --timeout; the swap itself takes milliseconds: allow 30 s more.
    json reply;
    if (int rc = request(conn, body, Clock::now() + req.timeout + std::chrono::seconds(30), &reply); rc != kCtlOk) return rc;
    if (!get_bool(reply, "ok")) return fail(kCtlFailed, get_str(reply, "error", "refused"));
    std::printf("supervisor pid %lld re-executed %s\n", get_int(reply, "pid"), get_str(reply, "exe").c_str());
    return kCtlOk;
}

} // namespace

int run_ctl(const std::vector<std::string>& args) {
    CtlRequest req;
    if (int rc = parse_ctl_args(args, &req); rc >= 0) return rc;
    auto deadline = Clock::now() + req.timeout;
    UniqueFd fd;
    if (int rc = connect_control(req.control, &fd); rc != kCtlOk) return rc;
    Connection conn(std::move(fd));
    switch (req.sub) {
    case Subcommand::Status: return req.watch ? ctl_watch(conn, req) : ctl_status(conn, deadline, req.as_json);
    case Subcommand::Check: return ctl_check(conn, deadline);
    case Subcommand::Upgrade: return ctl_upgrade(conn, deadline, req.as_json);
    case Subcommand::Stop: return ctl_stop(conn, deadline, req.timeout);
    case Subcommand::Reexec: return ctl_reexec(conn, req);
    }
    return kCtlUsage;  // unreachable: every Subcommand is handled above
}

} // namespace sv
