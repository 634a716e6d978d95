// Worker output: a libuv pipe reader feeding LineSplitter and RateLimiter into the logger.
#include "supervisor/worker_output.h"

#include <spdlog/spdlog.h>

#include <string>

#include "supervisor/log.h"
#include "supervisor/log_format.h"
#include "supervisor/unique_fd.h"

namespace sv {

WorkerOutput::WorkerOutput(uv_loop_t* loop, uint64_t gen, int pid, const char* stream, const WorkerOutputLimits& limits)
    : loop_(loop),
      gen_(gen),
      pid_(pid),
      stream_(stream),
      lines_per_sec_(limits.lines_per_sec),
      splitter_(limits.max_line),
      limiter_(limits.lines_per_sec, limits.burst),
      buf_(new char[kReadBuffer]) {}

Result<std::unique_ptr<WorkerOutput>> WorkerOutput::create(uv_loop_t* loop, int read_fd, uint64_t gen, int pid,
                                                           const char* stream, const WorkerOutputLimits& limits) {
    UniqueFd fd(read_fd);
    std::unique_ptr<WorkerOutput> out(new WorkerOutput(loop, gen, pid, stream, limits));
    auto fail = [&](int rc) {
        return Error{-rc, fmt::format("cannot read worker {} gen={} pid={}: {}", stream, gen, pid, uv_strerror(rc))};
    };
    auto* p = new uv_pipe_t{};
    if (int rc = uv_pipe_init(loop, p, 0); rc < 0) {
        delete p;  // never initialised, so not closable
        return fail(rc);
    }
    p->data = out.get();
    out->pipe_ = UvHandle<uv_pipe_t>(p);
    if (int rc = uv_pipe_open(p, fd.get()); rc < 0) return fail(rc);
    (void)fd.release();  // the handle owns the fd now: uv_close closes it
    if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(p), on_alloc, on_read); rc < 0) return fail(rc);
    return out;
}

WorkerOutput::~WorkerOutput() { finish(); }

void WorkerOutput::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<WorkerOutput*>(h->data);
    *buf = uv_buf_init(self->buf_.get(), kReadBuffer);
}

void WorkerOutput::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<WorkerOutput*>(s->data);
    if (nread > 0) {
        self->consume(buf->base, static_cast<size_t>(nread));
        return;
    }
    if (nread == 0) return;  // EAGAIN: libuv asks again when the pipe is readable
    if (nread != UV_EOF)
        spdlog::warn("worker output read failed gen={} pid={} stream={} error=\"{}\"", self->gen_, self->pid_,
                     self->stream_, uv_strerror(static_cast<int>(nread)));
    // The worker may have exited long ago: EOF comes only once every writer closed the pipe
    // and everything written before was read.
    self->finish();
}

void WorkerOutput::consume(const char* data, size_t n) {
    splitter_.feed(std::string_view(data, n), lines_);
    int64_t now = static_cast<int64_t>(uv_now(loop_));
    for (const auto& line : lines_) log_line(line, now);
    lines_.clear();
    report_drops(now, false);
}

void WorkerOutput::log_line(const std::string& line, int64_t now_ms) {
    // A dropped line is not buffered for later: dropping, rather than pausing the read, is
    // what keeps a chatty worker from blocking on a full pipe.
    if (!limiter_.allow(now_ms)) return;
    // A line without its own "<N>" is info on stdout and stderr alike, as journald takes
    // both streams by default (SyslogLevel=info): many servers write routine logs (access
    // logs, Python's logging) to stderr, and `journalctl -p warning` must not drown in them.
    auto [priority, text] = split_sd_priority(line, kSdInfo);
    log_worker_line(priority, fmt::format("worker gen={} pid={} {}: {}", gen_, pid_, stream_, text));
}

void WorkerOutput::report_drops(int64_t now_ms, bool force) {
    if (!force && now_ms - last_drop_report_ms_ < kDropReportIntervalMs) return;
    uint64_t dropped = limiter_.take_dropped();
    if (dropped == 0) return;
    last_drop_report_ms_ = now_ms;
    spdlog::warn("worker gen={} pid={} {}: dropped {} lines (rate limit {}/s)", gen_, pid_, stream_, dropped,
                 lines_per_sec_);
}

void WorkerOutput::finish() {
    if (eof_) return;
    eof_ = true;
    int64_t now = static_cast<int64_t>(uv_now(loop_));
    if (auto rest = splitter_.flush()) log_line(*rest, now);
    report_drops(now, true);  // the last count is never held back by the once-per-second limit
    pipe_.close();
}

} // namespace sv
