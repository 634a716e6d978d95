// --pre-check: runs `sh -c CMD` before an upgrade's spawn (like `nginx -t`) with what the
// new worker will get (listeners on 3.., LISTEN_*, SUPERVISOR_GENERATION…), without
// blocking the loop, bounded by a timeout; reports exit status and captured output.
// It is spawned like a worker (own process group, our fork/exec) and reaped by the
// supervisor's one reaper, which hands the exit status over with child_exited().
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/parse.h"
#include "supervisor/spawn.h"

namespace sv {

class PreCheck {
public:
    // ok, and the reason when not ok ("pre-check failed (exit=1): <output>", or
    // "pre-check failed (exit=1, no output)" when it printed nothing).
    using DoneFn = std::function<void(bool ok, std::string reason)>;

    // Starts the command; `done` is called exactly once, from the loop, unless the PreCheck
    // is destroyed first (which kills the command's process group).
    // `base` is what the new worker would get (env, listeners on 3.., LISTEN_PID slot, chdir,
    // user); argv, stdio and the death signal are the pre-check's own.
    static std::unique_ptr<PreCheck> start(uv_loop_t* loop, const std::string& command, SpawnRequest base, Millis timeout,
                                           DoneFn done);
    ~PreCheck();
    PreCheck(const PreCheck&) = delete;
    PreCheck& operator=(const PreCheck&) = delete;

    int pid() const { return pid_; }
    // The reaper saw our process exit with this waitpid(2) status.
    void child_exited(int wait_status);

private:
    PreCheck() = default;
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_timer(uv_timer_t* t) noexcept;
    void finish_if_done();

    int pid_ = -1;
    uv_pipe_t* out_ = nullptr;
    uv_timer_t* timer_ = nullptr;
    std::string output_;
    bool exited_ = false, eof_ = false, timed_out_ = false, reported_ = false;
    int wait_status_ = 0;
    Millis timeout_{0};
    DoneFn done_;
};

} // namespace sv
