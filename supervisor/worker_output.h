// Worker output (--log-workers): one worker stream (stdout or stderr) read from a pipe and
// logged line by line as `worker gen=<gen> pid=<pid> <stream>: <line>`.
//
// Never blocks the loop or the worker: we always read, memory is bounded (at most max_line
// bytes pending, plus one 64 KiB read buffer and the lines split from it), and a flood is
// rate-limited by dropping lines, not by pausing the read (a worker blocked on a full pipe
// stops serving). Drops are counted and reported as one warn line at most once per second,
// checked on each read and at EOF.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/line_splitter.h"
#include "supervisor/result.h"
#include "supervisor/uv_handle.h"

namespace sv {

struct WorkerOutputLimits {
    size_t max_line = 4096;      // longer lines are logged in chunks of this size
    double lines_per_sec = 1000; // sustained rate per stream
    double burst = 2000;         // lines allowed at once
};

class WorkerOutput {
public:
    // Starts reading `read_fd`, the read end of a pipe whose write end is the worker's
    // stdout or stderr. Takes ownership of read_fd, also on failure (it is then closed);
    // libuv makes it non-blocking. `stream` names the stream in the log ("stdout"/"stderr")
    // and must outlive the object (a string literal). Fails (code = positive errno) when
    // libuv cannot open the fd as a pipe or start reading it (e.g. EBADF).
    static Result<std::unique_ptr<WorkerOutput>> create(uv_loop_t* loop, int read_fd, uint64_t gen, int pid,
                                                        const char* stream, const WorkerOutputLimits& limits);
    // Logs what is still pending (partial line, drop count) unless EOF was reached, and
    // closes the handle (its memory is freed in the close callback, see uv_handle.h).
    ~WorkerOutput();
    WorkerOutput(const WorkerOutput&) = delete;
    WorkerOutput& operator=(const WorkerOutput&) = delete;

    // True once the pipe reached EOF (every writer closed it, i.e. the worker and any child
    // that inherited the stream) or failed; everything read has then been logged.
    bool eof() const { return eof_; }

private:
    WorkerOutput(uv_loop_t* loop, uint64_t gen, int pid, const char* stream, const WorkerOutputLimits& limits);
    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
    void consume(const char* data, size_t n);
    void log_line(const std::string& line, int64_t now_ms);
    void report_drops(int64_t now_ms, bool force);
    void finish();

    static constexpr size_t kReadBuffer = 64 * 1024;  // one pipe's default capacity on Linux
    static constexpr int64_t kDropReportIntervalMs = 1000;

    UvHandle<uv_pipe_t> pipe_;
    uv_loop_t* loop_;
    uint64_t gen_;
    int pid_;
    const char* stream_;
    double lines_per_sec_;
    LineSplitter splitter_;
    RateLimiter limiter_;
    std::unique_ptr<char[]> buf_;
    std::vector<std::string> lines_;  // scratch for one read, reused
    int64_t last_drop_report_ms_ = std::numeric_limits<int64_t>::min() / 2;  // the first drops are reported at once
    bool eof_ = false;
};

} // namespace sv
