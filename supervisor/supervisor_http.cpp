// The supervisor's observability side: the --http endpoint's answers (health, readiness,
// metrics, status) and the --metrics-file, all from the machine's state and the counters.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "supervisor/connections.h"
#include "supervisor/health.h"
#include "supervisor/supervisor.h"
#include "supervisor_version.h"

namespace sv {

namespace {

constexpr uint64_t kConnectionsMaxAge = 1000;  // ms: counts younger than this are reused

} // namespace

Result<Ok> Supervisor::setup_http() {
    if (cfg_.http.empty()) return Ok{};
    auto where = parse_listen_spec(cfg_.http);
    if (!where) return Error{EINVAL, "invalid --http '" + cfg_.http + "': " + where.error().what};
    auto handler = [this](HttpRoute r) { return on_http(r); };
    Result<std::unique_ptr<HttpServer>> s = Error{EBADF, "no carried --http listener"};
    if (resume_ && resume_->http_fd >= 0) {
        // `ctl reexec`: the same listening socket, so no probe is refused during the swap.
        s = HttpServer::adopt(&loop_, resume_->http_fd, *where, resume_->http_address,
                              static_cast<ino_t>(resume_->http_inode), handler);
        if (!s) {
            spdlog::warn("{}; binding --http {} again", s.error().what, cfg_.http);
            ::close(resume_->http_fd);
        }
    }
    bool taken_over = static_cast<bool>(s);
    if (!s) s = HttpServer::create(&loop_, *where, handler);
    if (!s) return s.error();
    http_ = std::move(s.value());
    if (taken_over) {
        spdlog::info("http taken over addr={} fd={}", http_->address(), http_->listener_fd());
        return Ok{};
    }
    spdlog::info("http listening addr={} endpoints=/healthz,/readyz,/metrics,/status", http_->address());
    return Ok{};
}

// /healthz: the loop answered, so the supervisor is alive. /readyz: 200 only when serving
// (health.h), the reason in the body either way, for a load balancer's health check.
HttpResponse Supervisor::on_http(HttpRoute route) const {
    switch (route) {
    case HttpRoute::Healthz: return {200, "text/plain; charset=utf-8", "ok\n"};
    case HttpRoute::Readyz: {
        Health h = health_of(status_json(snapshot()));
        return {h.serving ? 200 : 503, "text/plain; charset=utf-8", (h.serving ? "" : "not serving: ") + h.reason + "\n"};
    }
    case HttpRoute::Metrics: {
        StatusSnapshot s = snapshot();
        add_connections(s);
        return {200, kMetricsContentType, render_metrics({&s, &counters_, std::string(kVersion)})};
    }
    case HttpRoute::Status: {
        StatusSnapshot s = snapshot();
        add_connections(s);
        return {200, "application/json", status_json(s).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
    }
    case HttpRoute::NotFound:
    case HttpRoute::MethodNotAllowed: break;  // answered by the server itself
    }
    return {500, "text/plain; charset=utf-8", "unexpected route\n"};
}

std::string Supervisor::metrics_text() const {
    StatusSnapshot s = snapshot();
    return render_metrics({&s, &counters_, std::string(kVersion)});
}

// A failure is logged once (and again only when the reason changes); the counts stay unknown.
void Supervisor::add_connections(StatusSnapshot& s) const {
    std::vector<int> pids;
    for (const auto& w : s.workers)
        if (w.state != "failed" && w.pid > 0) pids.push_back(w.pid);
    if (pids.empty()) return;
    uint64_t now_ms = uv_now(const_cast<uv_loop_t*>(&loop_));
    bool fresh = connections_counted_at_ > 0 && now_ms - connections_counted_at_ < kConnectionsMaxAge &&
                 std::all_of(pids.begin(), pids.end(), [&](int pid) { return connections_cache_.count(pid) != 0; });
    if (!fresh) {
        auto counts = count_connections(pids, listeners_);
        if (!counts) {
            if (counts.error().what != connections_error_) spdlog::warn("{}; connections show as unknown", counts.error().what);
            connections_error_ = counts.error().what;
            return;
        }
        connections_error_.clear();
        connections_cache_ = std::move(counts.value());
        connections_counted_at_ = now_ms;
    }
    for (auto& w : s.workers)
        if (auto it = connections_cache_.find(w.pid); it != connections_cache_.end()) w.connections = it->second;
}

std::map<int, int64_t> Supervisor::connections_at_drain(const std::vector<Action>& actions) const {
    std::vector<int> pids;
    for (const auto& a : actions) {
        const auto* sig = std::get_if<Signal>(&a);
        if (sig == nullptr || sig->sig != cfg_.drain_signal) continue;
        for (const auto& w : machine_.workers())
            if (w.pid == sig->pid && w.state == WorkerState::Draining) pids.push_back(w.pid);
    }
    if (pids.empty()) return {};
    auto counts = count_connections(pids, listeners_);
    if (!counts) {
        if (counts.error().what != connections_error_) spdlog::warn("{}; connections show as unknown", counts.error().what);
        connections_error_ = counts.error().what;
        return {};
    }
    return std::move(counts.value());
}

// The machine writes `draining gen=2 pid=812 signal=…`; the shell, which can count, adds
// ` connections=14` to that same line.
void Supervisor::annotate_drain(Log& log, const std::map<int, int64_t>& counts) {
    if (log.text.rfind("draining gen=", 0) != 0) return;
    auto at = log.text.find(" pid=");
    if (at == std::string::npos) return;
    int pid = std::atoi(log.text.c_str() + at + 5);
    if (auto it = counts.find(pid); it != counts.end()) log.text += " connections=" + std::to_string(it->second);
}

// Like --status-file: rewritten only when it changed, atomically (temp file + rename), so
// node_exporter's textfile collector never reads half a file.
void Supervisor::write_metrics_file() {
    if (cfg_.metrics_file.empty()) return;
    std::string text = metrics_text();
    if (text == metrics_written_) return;
    std::string tmp = cfg_.metrics_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "we");
    bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (f != nullptr) ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), cfg_.metrics_file.c_str()) < 0) {
        spdlog::error("cannot write the metrics file {}: {}", cfg_.metrics_file, std::strerror(errno));
        return;
    }
    metrics_written_ = std::move(text);
}

} // namespace sv
