// The control protocol (pure): newline-delimited JSON requests and replies, and the
// status document shared by `ctl status`, --status-file and the human table.
// See protocol/CONTROL.md.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/result.h"

namespace sv {

constexpr size_t kControlMaxLine = 64 * 1024;

struct ControlRequest {
    enum class Cmd { Status, Upgrade, Stop, Reexec };
    Cmd cmd = Cmd::Status;
    std::string binary;      // reexec: the new binary ("": the one we were started from)
    int64_t timeout_ms = 0;  // reexec: bound on the new binary's state check (0: default)
    bool progress = false;   // upgrade: send progress events before the verdict
};

// {"cmd":"status"} | {"cmd":"upgrade"[,"progress":true]} | {"cmd":"stop"} |
// {"cmd":"reexec"[,"binary":PATH][,"timeout_ms":N]}. Errors say what is wrong.
Result<ControlRequest> parse_control_request(std::string_view line);

// One reply line each (with the trailing newline).
std::string control_error(std::string_view what);
std::string control_reply(nlohmann::json body);  // adds "ok": true

struct WorkerStatus {
    uint64_t gen = 0;
    int slot = 0;
    int pid = 0;
    std::string state;
    int64_t started_unix_ms = 0;
    int64_t ready_after_ms = -1;  // -1: not ready (yet)
    std::string status;           // last STATUS=
    int64_t connections = -1;     // established connections it holds on the listeners; -1: unknown
};

struct UpgradeResult {
    uint64_t gen = 0;
    bool ok = false;
    std::string reason;
    int64_t at_unix_ms = 0;
};

struct StatusSnapshot {
    int pid = 0;
    std::string phase;
    uint64_t serving_gen = 0;
    bool upgrade_pending = false;
    int64_t started_unix_ms = 0;
    std::vector<WorkerStatus> workers;
    struct ListenerStatus {
        std::string name, address;
        int fd;
        std::vector<std::string> drift;  // what a worker changed that breaks the contract
    };
    std::vector<ListenerStatus> listeners;
    bool has_last_upgrade = false;
    UpgradeResult last_upgrade;
    int64_t stop_delay_remaining_ms = -1;  // -1: no stop delay running
    int64_t probation_remaining_ms = -1;   // -1: no generation on probation
};

nlohmann::json status_json(const StatusSnapshot& s);

// The human table of `supervisor ctl status`, from the JSON (so it also reads a status file).
std::string format_status_table(const nlohmann::json& status, int64_t now_unix_ms);

// The one line systemd shows as the service's status (STATUS=, `systemctl status`): what
// is served, by which pids, what is in flight, and the last upgrade's verdict, e.g.
// "serving gen=2 pid=812; last upgrade gen=3 failed: exited before ready (exit=1) after 5ms".
std::string format_status_line(const StatusSnapshot& s);

// "3h12m", "4m05s", "12.3s", "250ms".
std::string format_age(int64_t ms);

} // namespace sv
