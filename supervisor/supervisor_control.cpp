// The supervisor's control side: answers to `supervisor ctl` (status, upgrade with its
// verdict, stop) and the --status-file, all from the machine's state.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "supervisor/supervisor.h"

namespace sv {

void Supervisor::on_control(uint64_t client, const ControlRequest& req) {
    switch (req.cmd) {
    case ControlRequest::Cmd::Status: {
        StatusSnapshot s = snapshot();
        add_connections(s);
        control_->reply(client, control_reply({{"status", status_json(s)}}));
        return;
    }
    case ControlRequest::Cmd::Upgrade:
        spdlog::info("ctl: upgrade requested");
        if (req.progress) progress_clients_.insert(client);
        dispatch(UpgradeRequested{client});
        return;
    case ControlRequest::Cmd::Stop:
        control_->reply(client, control_reply({{"stopping", true}, {"pid", ::getpid()}}));
        spdlog::info("ctl: stop requested");
        dispatch(StopRequested{StopSource::Control});
        return;
    case ControlRequest::Cmd::Reexec:
        spdlog::info("ctl: reexec requested binary={}", req.binary.empty() ? "(as started)" : req.binary);
        reexec(client, req);
        return;
    }
}

void Supervisor::on_control_closed(uint64_t client) {
    progress_clients_.erase(client);
    dispatch(ClientGone{client});
}

// Progress events for `ctl upgrade` callers that asked for them, while they wait.
void Supervisor::send_progress(const Event& e) {
    auto events = progress_.update(machine_, e, now());
    if (events.empty() || progress_clients_.empty() || !control_) return;
    // Every one of them still waits, or waited until this very step (its verdict follows).
    for (uint64_t c : progress_clients_) {
        for (const auto& ev : events) control_->reply(c, ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
}

void Supervisor::on_upgrade_verdict(const UpgradeVerdict& v) {
    has_last_upgrade_ = true;
    last_upgrade_ = UpgradeResult{v.gen, v.ok, v.reason, unix_ms_at(now())};
}

void Supervisor::answer_upgrade(const AnswerUpgrade& a) {
    progress_clients_.erase(a.client);
    if (!control_) return;
    if (a.gen == 0) {
        control_->reply(a.client, control_error(a.reason));
        return;
    }
    nlohmann::json reply{{"ok", a.ok}, {"gen", a.gen}, {"serving_gen", a.serving_gen}};
    if (!a.ok) reply["error"] = a.reason;
    control_->reply(a.client, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

StatusSnapshot Supervisor::snapshot() const {
    StatusSnapshot s;
    s.pid = ::getpid();
    s.phase = to_string(machine_.phase());
    s.serving_gen = machine_.serving_gen();
    s.upgrade_pending = machine_.upgrade_pending();
    s.started_unix_ms = started_unix_ms_;
    for (const auto& w : machine_.workers()) {
        WorkerStatus ws;
        ws.gen = w.gen;
        ws.slot = w.slot;
        ws.pid = w.pid;
        ws.state = to_string(w.state);
        ws.started_unix_ms = unix_ms_at(w.spawned_at);
        ws.ready_after_ms = (w.state == WorkerState::Ready || w.state == WorkerState::Draining) && w.ready_at.count() > 0
                                ? (w.ready_at - w.spawned_at).count()
                                : -1;
        ws.status = w.status;
        s.workers.push_back(std::move(ws));
    }
    report_drift();
    for (size_t i = 0; i < listeners_.size(); i++)
        s.listeners.push_back({listeners_[i].spec.name, listeners_[i].address, static_cast<int>(3 + i),
                               current_drift(listeners_, drift_, i)});
    s.has_last_upgrade = has_last_upgrade_;
    s.last_upgrade = last_upgrade_;
    if (auto end = machine_.stop_delay_ends()) s.stop_delay_remaining_ms = std::max<int64_t>(0, (*end - now()).count());
    if (auto end = machine_.probation_ends()) s.probation_remaining_ms = std::max<int64_t>(0, (*end - now()).count());
    return s;
}

// Rewritten only when it changed, atomically (temp file + rename), for scripts that poll.
void Supervisor::write_status_file() {
    if (cfg_.status_file.empty()) return;
    std::string text = status_json(snapshot()).dump(2) + "\n";
    if (text == status_written_) return;
    std::string tmp = cfg_.status_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "we");
    bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (f != nullptr) ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), cfg_.status_file.c_str()) < 0) {
        spdlog::error("cannot write the status file {}: {}", cfg_.status_file, std::strerror(errno));
        return;
    }
    status_written_ = std::move(text);
}

} // namespace sv
