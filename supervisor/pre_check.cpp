// The pre-check runner.
#include "supervisor/pre_check.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "supervisor/unique_fd.h"
#include "supervisor/upgrade_machine.h"

namespace sv {

namespace {

constexpr size_t kMaxOutput = 2048;  // what the reason quotes; the rest is dropped

template <typename T>
void close_and_free(T* h) {
    if (h != nullptr)
        uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<T*>(x); });
}

std::string one_line(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    for (auto& c : s)
        if (c == '\n') c = '|';
        else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = '?';
    return s;
}

} // namespace

std::unique_ptr<PreCheck> PreCheck::start(uv_loop_t* loop, const std::string& command, SpawnRequest req, Millis timeout,
                                          DoneFn done) {
    std::unique_ptr<PreCheck> pc(new PreCheck());
    pc->done_ = std::move(done);
    pc->timeout_ = timeout;
    pc->timer_ = new uv_timer_t{};
    uv_timer_init(loop, pc->timer_);
    pc->timer_->data = pc.get();

    int fds[2];
    UniqueFd rd, wr;
    if (::pipe2(fds, O_CLOEXEC) == 0) {
        rd.reset(fds[0]);
        wr.reset(fds[1]);
    }
    req.argv = {"/bin/sh", "-c", command};
    req.pdeath_signal = SIGKILL;
    req.stdout_fd = req.stderr_fd = wr.get();
    auto pid = wr.valid() ? spawn_worker(req) : Result<int>(Error{errno, std::string("cannot create a pipe: ") + std::strerror(errno)});
    wr.reset();  // ours closed: EOF comes once the command (and its children) are done
    if (!pid) {
        // Reported from the loop, never from inside start(): callers expect one path.
        pc->exited_ = pc->eof_ = true;
        pc->output_ = pid.error().what;
        pc->wait_status_ = 127 << 8;
        uv_timer_start(pc->timer_, [](uv_timer_t* t) { static_cast<PreCheck*>(t->data)->finish_if_done(); }, 0, 0);
        return pc;
    }
    pc->pid_ = *pid;
    pc->out_ = new uv_pipe_t{};
    uv_pipe_init(loop, pc->out_, 0);
    pc->out_->data = pc.get();
    if (uv_pipe_open(pc->out_, rd.release()) == 0) {
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(pc->out_),
            [](uv_handle_t*, size_t, uv_buf_t* b) {
                static char slab[4096];
                *b = uv_buf_init(slab, sizeof slab);
            },
            on_read);
    } else {
        pc->eof_ = true;
    }
    uv_timer_start(pc->timer_, on_timer, static_cast<uint64_t>(timeout.count()), 0);
    return pc;
}

PreCheck::~PreCheck() {
    if (pid_ > 0 && !exited_) ::kill(-pid_, SIGKILL);  // reaped later by the supervisor as a stranger
    close_and_free(out_);
    close_and_free(timer_);
}

void PreCheck::child_exited(int wait_status) {
    exited_ = true;
    wait_status_ = wait_status;
    finish_if_done();
}

void PreCheck::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<PreCheck*>(s->data);
    if (n < 0) {
        self->eof_ = true;
        uv_read_stop(s);
        self->finish_if_done();
        return;
    }
    size_t room = kMaxOutput > self->output_.size() ? kMaxOutput - self->output_.size() : 0;
    self->output_.append(buf->base, std::min(room, static_cast<size_t>(n)));
}

void PreCheck::on_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<PreCheck*>(t->data);
    self->timed_out_ = true;
    if (self->pid_ > 0 && !self->exited_) ::kill(-self->pid_, SIGKILL);
    // A grandchild may keep the pipe open: decide once the process is gone, not at EOF.
    self->eof_ = true;
    self->finish_if_done();
}

void PreCheck::finish_if_done() {
    if (reported_ || !exited_ || !eof_) return;
    reported_ = true;
    bool ok = !timed_out_ && WIFEXITED(wait_status_) && WEXITSTATUS(wait_status_) == 0;
    std::string how = timed_out_ ? "timed out after " + format_duration(timeout_) : describe_wait_status(wait_status_);
    std::string out = one_line(output_);
    // The callback may destroy this object: call a copy that lives on the stack.
    DoneFn done = std::move(done_);
    // A check that fails without a word still gets a reason that says so.
    done(ok, ok ? "" : "pre-check failed (" + how + (out.empty() ? ", no output)" : "): " + out));
}

} // namespace sv
