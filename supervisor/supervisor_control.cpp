// The supervisor's control side: answers to `supervisor ctl` (status, upgrade with its
// verdict, stop) and the --status-file, all from the machine's state.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "supervisor/supervisor.h"

namespace sv {

void Supervisor::on_control(uint64_t client, const ControlRequest& req) {
    switch (req.cmd) {
    case ControlRequest::Cmd::Status:
        control_->reply(client, control_reply({{"status", status_json(snapshot())}}));
        return;
    case ControlRequest::Cmd::Upgrade:
        spdlog::info("ctl: upgrade requested");
        waiters_.push_back({client, 0});
        dispatch(UpgradeRequested{});
        return;
    case ControlRequest::Cmd::Stop:
        control_->reply(client, control_reply({{"stopping", true}, {"pid", ::getpid()}}));
        // A second stop through ctl must not escalate to a kill the way a second SIGTERM does.
        if (machine_.phase() == Phase::Stopping || machine_.phase() == Phase::Stopped) return;
        spdlog::info("ctl: stop requested");
        dispatch(StopRequested{});
        return;
    }
}

void Supervisor::on_control_closed(uint64_t client) {
    std::erase_if(waiters_, [client](const Waiter& w) { return w.client == client; });
}

void Supervisor::on_upgrade_started(uint64_t gen) {
    for (auto& w : waiters_)
        if (w.gen == 0) w.gen = gen;
}

void Supervisor::on_upgrade_verdict(const UpgradeVerdict& v) {
    has_last_upgrade_ = true;
    last_upgrade_ = UpgradeResult{v.gen, v.ok, v.reason, unix_ms_at(now())};
    nlohmann::json reply{{"ok", v.ok}, {"gen", v.gen}, {"serving_gen", machine_.serving_gen()}};
    if (!v.ok) reply["error"] = v.reason;
    std::string line = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->gen == v.gen) {
            if (control_) control_->reply(it->client, line);
            it = waiters_.erase(it);
        } else {
            ++it;
        }
    }
}

void Supervisor::fail_unassigned_waiters(const std::string& why) {
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->gen == 0) {
            if (control_) control_->reply(it->client, control_error(why));
            it = waiters_.erase(it);
        } else {
            ++it;
        }
    }
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
