// The common shape of a test (see harness.h): a supervisor serving in a temp dir, a
// command run to its exit, and the checks that go with them.
#include "harness.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ostream>

namespace svtest {

int exit_code_of(std::optional<int> wait_status) {
    return wait_status && WIFEXITED(*wait_status) ? WEXITSTATUS(*wait_status) : -1;
}

void expect_clean_stop(Supervised& sv, double seconds, int sig) {
    REQUIRE(sv.proc().signal(sig));
    auto st = sv.proc().wait_exit(seconds);
    REQUIRE_MESSAGE(st, "the supervisor did not exit within ", seconds, "s of ", strsignal(sig));
    CHECK_MESSAGE(exit_code_of(st) == 0, describe_status(st));
}

// --- Serving ------------------------------------------------------------------------------

Serving::Serving() : script(dir.file("worker.sh")), log_context_(LogContext{this}) {}

Serving::~Serving() = default;

void Serving::LogContext::operator()(std::ostream* out) const {
    if (self->sv_) *out << "supervisor log:\n" << tail(self->sv_->log());
    else *out << "(the supervisor was not started)";
}

Supervised& Serving::start() { return start(Start{}); }

Supervised& Serving::start(const Start& how) {
    REQUIRE_MESSAGE(!sv_, "Serving::start called twice");
    std::vector<std::string> command = how.command;
    if (command.empty()) {
        if (!file_exists(script)) REQUIRE(write_script(script, fake_exec(dir)));
        command = {script};
    }
    std::vector<std::string> options = how.listen;
    options.insert(options.end(), how.ready.begin(), how.ready.end());
    options.insert(options.end(), how.options.begin(), how.options.end());
    Supervised& s = sv_.emplace(dir, options, command, how.env, how.prefix);
    REQUIRE(s.pid() > 0);
    switch (how.await) {
    case Await::Nothing: break;
    case Await::Port:
        port = s.wait_port(how.seconds);
        REQUIRE_MESSAGE(port > 0, "no `listening … addr=127.0.0.1:PORT` line");
        break;
    case Await::Ready:
        w1 = s.wait_ready(1, how.seconds);
        REQUIRE_MESSAGE(w1 > 0, "gen=1 did not get ready within ", how.seconds, "s");
        // The listening lines come before the first spawn: nothing left to wait for.
        port = port_from_log(s.log()).value_or(0);
        if (how.listen == Start{}.listen) REQUIRE_MESSAGE(port > 0, "no `listening … addr=127.0.0.1:PORT` line");
        break;
    }
    return s;
}

Supervised& Serving::sv() {
    REQUIRE_MESSAGE(sv_, "Serving::sv() before start()");
    return *sv_;
}

pid_t Serving::upgrade_to(const std::string& args, unsigned gen) {
    REQUIRE(write_script(script, fake_exec(dir, args)));
    REQUIRE(sv().hup());
    auto spawned = sv().wait_log("spawned gen=" + std::to_string(gen) + R"( pid=(\d+))");
    REQUIRE_MESSAGE(spawned, "no `spawned gen=", gen, "` line");
    pid_t pid = std::stoi((*spawned)[1]);
    REQUIRE_EQ(wait_report(report(), pid, 3.0)["pid"], std::to_string(pid));
    return pid;
}

std::vector<std::string> Serving::fake_worker(const std::vector<std::string>& args) const {
    std::vector<std::string> command{bins().fake_worker, "--report", report()};
    command.insert(command.end(), args.begin(), args.end());
    return command;
}

RunOutcome Serving::ctl(const std::vector<std::string>& args, double seconds) const {
    std::vector<std::string> all{"--control", control_socket()};
    all.insert(all.end(), args.begin(), args.end());
    return supervisor_ctl(dir, all, seconds);
}

// --- commands run to their exit -------------------------------------------------------------

RunOutcome run_to_exit(const TempDir& dir, const std::vector<std::string>& argv, double seconds,
                       const std::vector<std::string>* env_vars) {
    static int n = 0;
    Process p(argv, dir.file("run" + std::to_string(n++) + ".log"), env_vars);
    ProcessGuard guard(p, 1.0);
    RunOutcome o;
    o.status = p.wait_exit(seconds);
    o.code = exit_code_of(o.status);
    o.output = p.log();
    return o;
}

RunOutcome run_supervisor(const TempDir& dir, const std::vector<std::string>& args, double seconds) {
    std::vector<std::string> argv{bins().supervisor};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_to_exit(dir, argv, seconds);
}

RunOutcome supervisor_ctl(const TempDir& dir, const std::vector<std::string>& args, double seconds,
                          const std::vector<std::string>& prefix, const std::vector<std::string>* env_vars) {
    std::vector<std::string> argv = prefix;
    argv.push_back(bins().supervisor);
    argv.push_back("ctl");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_to_exit(dir, argv, seconds, env_vars);
}

void expect_one_line_error(const RunOutcome& o, int code, const std::vector<std::string>& needles) {
    INFO("output:\n", o.output);
    REQUIRE_MESSAGE(o.status, "the command did not exit in time");
    CHECK_MESSAGE(WIFEXITED(*o.status), describe_status(o.status));
    CHECK_EQ(o.code, code);
    CHECK_EQ(count_log_lines(o.output, "."), 1u);
    CHECK_EQ(o.output.rfind("supervisor: ", 0), 0u);
    CHECK_EQ(o.output.back(), '\n');
    for (const auto& n : needles) CHECK_MESSAGE(o.output.find(n) != std::string::npos, "missing '", n, "'");
}

const std::vector<std::string> kAsNobody{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};

bool can_be_nobody() { return ::geteuid() == 0 && have_program("setpriv"); }

} // namespace svtest
