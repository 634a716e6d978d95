// The shell's spawning side: a worker's environment, its fork/exec (with the fd reserve
// and --log-workers pipes, inside its containment), and the --pre-check command.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "supervisor/adopt_setup.h"
#include "supervisor/env_file.h"
#include "supervisor/supervisor.h"

extern char** environ;

namespace sv {

namespace {

// --log-workers: both pipes or neither. A write end whose reader we dropped would kill the
// worker with SIGPIPE on its first line; without pipes it writes to our stdout/stderr.
bool open_output_pipes(uint64_t gen, UniqueFd* out_rd, UniqueFd* out_wr, UniqueFd* err_rd, UniqueFd* err_wr) {
    int o[2], e[2];
    if (::pipe2(o, O_CLOEXEC) == 0) {
        if (::pipe2(e, O_CLOEXEC) == 0) {
            out_rd->reset(o[0]), out_wr->reset(o[1]), err_rd->reset(e[0]), err_wr->reset(e[1]);
            return true;
        }
        int err = errno;
        ::close(o[0]), ::close(o[1]);
        errno = err;
    }
    spdlog::warn("cannot create pipes for gen={}'s output: {}; it inherits ours", gen, std::strerror(errno));
    return false;
}

} // namespace

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
    // --worker-watchdog: sd_watchdog_enabled(3) in the worker reads this (no WATCHDOG_PID:
    // any pid of the worker may ping).
    if (cfg_.worker_watchdog.count() > 0)
        cli.push_back({"WATCHDOG_USEC", std::to_string(cfg_.worker_watchdog.count() * 1000)});
    apply_env(in.base, cli);
    for (const auto& l : listeners_) in.listeners.push_back({l.spec.name, l.address});
    in.notify_socket = notify_.name();
    in.generation = gen;
    in.worker_index = slot;
    in.compat = cfg_.compat;
    WorkerEnv env = build_worker_env(in);
    if (cfg_.adopt_bind != AdoptBind::Off)
        add_adopt_env(env.vars, {cfg_.adopt_library, listener_inodes(listeners_), cfg_.nonblocking, cfg_.adopt_bind});
    return env;
}

// The pre-check gets exactly what the new worker will: its environment (SUPERVISOR_GENERATION
// of the new generation, LISTEN_* with its own pid, compat variables), the listeners on 3..,
// --chdir and --user. Only NOTIFY_SOCKET is left out: it is not a worker, nothing it says counts.
void Supervisor::run_pre_check(uint64_t gen) {
    auto env = worker_env(gen, 0);
    if (!env) {
        dispatch(PreCheckDone{gen, false, env.error().what});
        return;
    }
    spdlog::info("pre-check gen={} running: {}", gen, cfg_.pre_check);
    pre_check_ = PreCheck::start(&loop_, cfg_.pre_check, pre_check_request(std::move(env.value())), cfg_.pre_check_timeout,
                                 [this, gen](bool ok, std::string reason) {
                                     auto finished = std::move(pre_check_);  // freed once this returns
                                     dispatch(PreCheckDone{gen, ok, std::move(reason)});
                                 });
}

SpawnRequest Supervisor::pre_check_request(WorkerEnv env) const {
    SpawnRequest req;
    std::string listen_pid = env.vars[env.listen_pid_index];
    std::erase_if(env.vars, [](const std::string& kv) { return kv.rfind("NOTIFY_SOCKET=", 0) == 0; });
    req.listen_pid_index = static_cast<size_t>(std::find(env.vars.begin(), env.vars.end(), listen_pid) - env.vars.begin());
    req.env = std::move(env.vars);
    for (const auto& l : listeners_) req.listen_fds.push_back(l.fd.get());
    req.chdir = cfg_.chdir;
    req.creds = creds_;
    return req;
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
    if (cfg_.log_workers && open_output_pipes(gen, &out_rd, &out_wr, &err_rd, &err_wr)) {
        req.stdout_fd = out_wr.get();
        req.stderr_fd = err_wr.get();
    }
    auto placement = containment_.prepare(gen, slot);
    if (!placement) {
        spdlog::warn("gen={} slot={} contained by process group and pidfds only: {}", gen, slot, placement.error().what);
        placement = Placement{};
    }
    req.cgroup_procs_fd = placement->procs.get();
    auto pid = spawn_with_reserve(req);
    placement->procs.reset();  // the child has joined (or failed to)
    if (pid) containment_.adopt(*pid, std::move(placement.value()));
    else containment_.abandon(std::move(placement.value()));
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

// At the fd limit, the reserve is what lets a spawn (fork, its exec-error pipe) go through.
Result<int> Supervisor::spawn_with_reserve(const SpawnRequest& req) {
    auto pid = spawn_worker(req);
    if (pid || pid.error().code != EMFILE || fd_reserve_.held() == 0) return pid;
    spdlog::warn("at the fd limit: using the fd reserve to spawn");
    fd_reserve_.release();
    pid = spawn_worker(req);
    fd_reserve_.refill();
    return pid;
}

} // namespace sv
