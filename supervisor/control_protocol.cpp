// Control protocol: request parsing, replies, status document and table.
#include "supervisor/control_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace sv {

using json = nlohmann::json;

namespace {

Result<ControlRequest> parse_reexec_request(const json& j) {
    ControlRequest r{ControlRequest::Cmd::Reexec};
    if (auto it = j.find("binary"); it != j.end()) {
        if (!it->is_string() || it->get_ref<const std::string&>().empty() || it->get_ref<const std::string&>()[0] != '/')
            return Error{0, "reexec: \"binary\" must be an absolute path"};
        r.binary = it->get<std::string>();
    }
    if (auto it = j.find("timeout_ms"); it != j.end()) {
        if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > 3'600'000)
            return Error{0, "reexec: \"timeout_ms\" must be an integer from 1 to 3600000"};
        r.timeout_ms = it->get<int64_t>();
    }
    return r;
}

} // namespace

Result<ControlRequest> parse_control_request(std::string_view line) {
    if (line.size() > kControlMaxLine) return Error{0, "request too long"};
    json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Error{0, "request is not valid JSON"};
    if (!j.is_object()) return Error{0, "request must be a JSON object"};
    auto it = j.find("cmd");
    if (it == j.end() || !it->is_string()) return Error{0, "request needs a \"cmd\" string"};
    const auto& cmd = it->get_ref<const std::string&>();
    if (cmd == "status") return ControlRequest{ControlRequest::Cmd::Status};
    if (cmd == "upgrade") {
        auto p = j.find("progress");
        ControlRequest r{ControlRequest::Cmd::Upgrade};
        r.progress = p != j.end() && p->is_boolean() && p->get<bool>();
        return r;
    }
    if (cmd == "stop") return ControlRequest{ControlRequest::Cmd::Stop};
    if (cmd == "reexec") return parse_reexec_request(j);
    return Error{0, "unknown cmd \"" + cmd.substr(0, 64) + "\" (status, upgrade, stop, reexec)"};
}

std::string control_error(std::string_view what) {
    json j{{"ok", false}, {"error", std::string(what)}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string control_reply(json body) {
    body["ok"] = true;
    return body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json status_json(const StatusSnapshot& s) {
    json workers = json::array();
    for (const auto& w : s.workers) {
        json jw{{"gen", w.gen}, {"slot", w.slot}, {"pid", w.pid}, {"state", w.state}, {"started_unix_ms", w.started_unix_ms},
                {"status", w.status}};
        jw["ready_after_ms"] = w.ready_after_ms >= 0 ? json(w.ready_after_ms) : json(nullptr);
        jw["connections"] = w.connections >= 0 ? json(w.connections) : json(nullptr);
        workers.push_back(std::move(jw));
    }
    json listeners = json::array();
    for (const auto& l : s.listeners)
        listeners.push_back({{"name", l.name}, {"address", l.address}, {"fd", l.fd}, {"drift", l.drift}});
    json j{{"pid", s.pid},
           {"phase", s.phase},
           {"serving_gen", s.serving_gen},
           {"upgrade_pending", s.upgrade_pending},
           {"started_unix_ms", s.started_unix_ms},
           {"workers", std::move(workers)},
           {"listeners", std::move(listeners)}};
    j["stop_delay_remaining_ms"] = s.stop_delay_remaining_ms >= 0 ? json(s.stop_delay_remaining_ms) : json(nullptr);
    j["probation_remaining_ms"] = s.probation_remaining_ms >= 0 ? json(s.probation_remaining_ms) : json(nullptr);
    if (s.has_last_upgrade)
        j["last_upgrade"] = {{"gen", s.last_upgrade.gen}, {"ok", s.last_upgrade.ok},
                             {"reason", s.last_upgrade.reason}, {"at_unix_ms", s.last_upgrade.at_unix_ms}};
    else
        j["last_upgrade"] = nullptr;
    return j;
}

std::string format_status_line(const StatusSnapshot& s) {
    std::string pids;
    uint64_t newest = 0, newest_ready = 0;
    size_t alive = 0;
    for (const auto& w : s.workers) {
        if (w.gen == s.serving_gen && w.state == "ready") pids += (pids.empty() ? "" : ",") + std::to_string(w.pid);
        if (w.state == "starting") newest = std::max(newest, w.gen);
        if (w.state == "ready") newest_ready = std::max(newest_ready, w.gen);
        if (w.state != "failed") alive++;
    }
    std::string out;
    if (s.phase == "stopping" && s.stop_delay_remaining_ms >= 0)
        out = fmt::format("stopping in {} (stop delay): serving gen={} pid={}", format_age(s.stop_delay_remaining_ms),
                          s.serving_gen, pids.empty() ? "none" : pids);
    else if (s.phase == "stopping" || s.phase == "stopped")
        out = fmt::format("stopping: {} worker(s) left", alive);
    else if (s.phase == "starting")
        out = fmt::format("starting gen={}: no worker ready yet", s.serving_gen);
    else
        out = fmt::format("serving gen={} pid={}", s.serving_gen, pids.empty() ? "none (restarting)" : pids);
    if (s.phase == "upgrading" && s.probation_remaining_ms >= 0)
        out += fmt::format("; gen={} on probation, {} left", newest_ready, format_age(s.probation_remaining_ms));
    else if (s.phase == "upgrading") out += newest > s.serving_gen ? fmt::format("; upgrading to gen={}", newest) : "; upgrading";
    if (s.has_last_upgrade)
        out += s.last_upgrade.ok ? fmt::format("; last upgrade gen={} ok", s.last_upgrade.gen)
                                 : fmt::format("; last upgrade gen={} failed: {}", s.last_upgrade.gen, s.last_upgrade.reason);
    return out;
}

std::string format_age(int64_t ms) {
    if (ms < 0) ms = 0;
    if (ms < 1000) return fmt::format("{}ms", ms);
    if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000);
    int64_t s = ms / 1000;
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
    return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string format_status_table(const json& st, int64_t now) {
    // Integers only, clamped: a double such as 1e300 does not fit an int64_t (UB to convert).
    auto num = [](const json& j, const char* key) -> int64_t {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_integer()) return 0;
        if (it->is_number_unsigned()) return static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX));
        return it->get<int64_t>();
    };
    // now - t without signed overflow, whatever a foreign document says t is.
    auto age = [now](int64_t t) -> int64_t {
        int64_t r;
        return __builtin_sub_overflow(now, t, &r) ? (t < 0 ? INT64_MAX : 0) : r;
    };
    auto str = [](const json& j, const char* key) -> std::string {
        auto it = j.find(key);
        return it != j.end() && it->is_string() ? it->get<std::string>() : "";
    };
    // json::value() throws on a type mismatch: a foreign document must not crash `ctl`.
    auto flag = [](const json& j, const char* key) {
        auto it = j.find(key);
        return it != j.end() && it->is_boolean() && it->get<bool>();
    };
    // "stopping in 4.2s (stop delay)", "upgrading (probation: 800ms left)".
    auto left = [&](const char* key, bool delay) -> std::string {
        auto it = st.find(key);
        if (it == st.end() || !it->is_number_integer()) return "";
        return delay ? fmt::format(" in {} (stop delay)", format_age(num(st, key)))
                     : fmt::format(" (probation: {} left)", format_age(num(st, key)));
    };
    std::string out = fmt::format("supervisor pid {}: {}{}{}, serving gen {}{}, up {}\n", num(st, "pid"), str(st, "phase"),
                                  left("stop_delay_remaining_ms", true), left("probation_remaining_ms", false),
                                  num(st, "serving_gen"),
                                  flag(st, "upgrade_pending") ? " (an upgrade is queued)" : "",
                                  format_age(age(num(st, "started_unix_ms"))));
    if (auto it = st.find("listeners"); it != st.end() && it->is_array())
        for (const auto& l : *it) {
            out += fmt::format("listening {} {} (fd {})\n", str(l, "name"), str(l, "address"), num(l, "fd"));
            if (auto d = l.find("drift"); d != l.end() && d->is_array())
                for (const auto& text : *d)
                    if (text.is_string()) out += fmt::format("  DRIFT: {}\n", text.get<std::string>());
        }
    if (auto it = st.find("last_upgrade"); it != st.end() && it->is_object()) {
        const auto& u = *it;
        out += fmt::format("last upgrade: gen {} {} {} ago{}\n", num(u, "gen"),
                           flag(u, "ok") ? "succeeded" : "FAILED", format_age(age(num(u, "at_unix_ms"))),
                           flag(u, "ok") ? "" : ": " + str(u, "reason"));
    }
    out += fmt::format("{:<5} {:<5} {:<8} {:<9} {:<8} {:<7} {:<6} {}\n", "GEN", "SLOT", "PID", "STATE", "AGE", "READY", "CONNS",
                       "STATUS");
    if (auto it = st.find("workers"); it != st.end() && it->is_array()) {
        for (const auto& w : *it) {
            auto ready = w.find("ready_after_ms");
            std::string ready_s = ready != w.end() && ready->is_number_integer() ? format_age(num(w, "ready_after_ms")) : "-";
            auto conns = w.find("connections");
            std::string conns_s = conns != w.end() && conns->is_number_integer() ? std::to_string(num(w, "connections")) : "-";
            out += fmt::format("{:<5} {:<5} {:<8} {:<9} {:<8} {:<7} {:<6} {}\n", num(w, "gen"), num(w, "slot"), num(w, "pid"),
                               str(w, "state"), format_age(age(num(w, "started_unix_ms"))), ready_s, conns_s, str(w, "status"));
        }
    }
    return out;
}

} // namespace sv
