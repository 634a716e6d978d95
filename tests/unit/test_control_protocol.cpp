// Control requests, replies and the status document.
#include <doctest/doctest.h>

#include "supervisor/control_protocol.h"

using namespace sv;
using json = nlohmann::json;

TEST_CASE("requests") {
    CHECK_EQ(parse_control_request(R"({"cmd":"status"})")->cmd, ControlRequest::Cmd::Status);
    CHECK_EQ(parse_control_request(R"({"cmd":"upgrade","extra":1})")->cmd, ControlRequest::Cmd::Upgrade);
    CHECK_EQ(parse_control_request(R"( {"cmd" : "stop"} )")->cmd, ControlRequest::Cmd::Stop);
}

TEST_CASE("malformed requests get a reason, never an exception") {
    auto reason = [](std::string_view line) {
        auto r = parse_control_request(line);
        REQUIRE_FALSE(r.ok());
        return r.error().what;
    };
    CHECK(reason("").find("not valid JSON") != std::string::npos);
    CHECK(reason("{").find("not valid JSON") != std::string::npos);
    CHECK(reason("\xff\xfe").find("not valid JSON") != std::string::npos);
    CHECK(reason("[1,2]").find("object") != std::string::npos);
    CHECK(reason("\"status\"").find("object") != std::string::npos);
    CHECK(reason("{}").find("cmd") != std::string::npos);
    CHECK(reason(R"({"cmd":7})").find("cmd") != std::string::npos);
    CHECK(reason(R"({"cmd":"reboot"})").find("unknown cmd \"reboot\"") != std::string::npos);
    CHECK(reason(std::string(kControlMaxLine + 1, ' ')).find("too long") != std::string::npos);
    CHECK(reason(std::string(10000, '[')).find("not valid JSON") != std::string::npos);  // deep nesting
}

TEST_CASE("replies are one JSON line") {
    auto e = control_error("bad \"thing\"\n");
    CHECK_EQ(e.back(), '\n');
    CHECK_EQ(std::count(e.begin(), e.end(), '\n'), 1);
    auto j = json::parse(e);
    CHECK_EQ(j["ok"], false);
    CHECK_EQ(j["error"], "bad \"thing\"\n");
    auto r = json::parse(control_reply({{"gen", 3}}));
    CHECK_EQ(r["ok"], true);
    CHECK_EQ(r["gen"], 3);
    auto invalid_utf8 = control_error("\xff");  // replaced, not thrown
    CHECK(json::parse(invalid_utf8)["ok"] == false);
}

TEST_CASE("status document and table") {
    StatusSnapshot s;
    s.pid = 812;
    s.phase = "upgrading";
    s.serving_gen = 3;
    s.upgrade_pending = true;
    s.started_unix_ms = 1'000'000;
    s.workers = {{3, 0, 4121, "ready", 1'100'000, 212, "42 conns"}, {4, 0, 4200, "starting", 1'190'000, -1, ""}};
    s.listeners = {{"http", "127.0.0.1:8080", 3}};
    s.has_last_upgrade = true;
    s.last_upgrade = {3, false, "exited before ready (exit=1)", 1'150'000};
    auto j = status_json(s);
    CHECK_EQ(j["serving_gen"], 3);
    CHECK_EQ(j["workers"].size(), 2u);
    CHECK(j["workers"][1]["ready_after_ms"].is_null());
    CHECK_EQ(j["workers"][0]["ready_after_ms"], 212);
    CHECK_EQ(j["listeners"][0]["fd"], 3);
    CHECK_EQ(j["last_upgrade"]["ok"], false);
    auto table = format_status_table(j, 1'200'000);
    INFO(table);
    CHECK(table.find("supervisor pid 812: upgrading, serving gen 3 (an upgrade is queued), up 3m20s") != std::string::npos);
    CHECK(table.find("listening http 127.0.0.1:8080 (fd 3)") != std::string::npos);
    CHECK(table.find("last upgrade: gen 3 FAILED 50.0s ago: exited before ready (exit=1)") != std::string::npos);
    CHECK(table.find("4121") != std::string::npos);
    CHECK(table.find("42 conns") != std::string::npos);
    SUBCASE("a table from a partial or foreign document does not throw") {
        CHECK_NOTHROW(format_status_table(json::object(), 0));
        CHECK_NOTHROW(format_status_table(json{{"workers", 3}, {"pid", "x"}}, 0));
    }
}

TEST_CASE("ages") {
    CHECK_EQ(format_age(250), "250ms");
    CHECK_EQ(format_age(12'300), "12.3s");
    CHECK_EQ(format_age(245'000), "4m05s");
    CHECK_EQ(format_age(3 * 3'600'000 + 12 * 60'000), "3h12m");
    CHECK_EQ(format_age(-5), "0ms");
}

TEST_CASE("the STATUS= line: serving gen and pids, what is in flight, the last verdict") {
    StatusSnapshot s;
    s.phase = "starting";
    s.serving_gen = 1;
    s.workers = {WorkerStatus{1, 0, 100, "starting", 0, -1, ""}};
    CHECK_EQ(format_status_line(s), "starting gen=1: no worker ready yet");

    s.phase = "serving";
    s.workers = {WorkerStatus{1, 0, 100, "ready", 0, 5, ""}, WorkerStatus{1, 1, 101, "ready", 0, 5, ""}};
    CHECK_EQ(format_status_line(s), "serving gen=1 pid=100,101");

    s.phase = "upgrading";
    s.workers.push_back(WorkerStatus{2, 0, 200, "starting", 0, -1, ""});
    CHECK_EQ(format_status_line(s), "serving gen=1 pid=100,101; upgrading to gen=2");

    s.phase = "serving";
    s.workers.pop_back();
    s.has_last_upgrade = true;
    s.last_upgrade = UpgradeResult{2, false, "exited before ready (exit=1) after 5ms", 0};
    CHECK_EQ(format_status_line(s), "serving gen=1 pid=100,101; last upgrade gen=2 failed: exited before ready (exit=1) after 5ms");

    s.workers = {};
    CHECK_EQ(format_status_line(s), "serving gen=1 pid=none (restarting); last upgrade gen=2 failed: exited before ready (exit=1) after 5ms");

    s.serving_gen = 3;
    s.workers = {WorkerStatus{3, 0, 300, "ready", 0, 5, ""}, WorkerStatus{1, 0, 100, "draining", 0, 5, ""}};
    s.last_upgrade = UpgradeResult{3, true, "", 0};
    CHECK_EQ(format_status_line(s), "serving gen=3 pid=300; last upgrade gen=3 ok");

    s.phase = "stopping";
    CHECK_EQ(format_status_line(s), "stopping: 2 worker(s) left; last upgrade gen=3 ok");

    s.stop_delay_remaining_ms = 4200;
    CHECK_EQ(format_status_line(s), "stopping in 4.2s (stop delay): serving gen=3 pid=300; last upgrade gen=3 ok");
    auto j = status_json(s);
    CHECK_EQ(j["stop_delay_remaining_ms"], 4200);
    CHECK(j["probation_remaining_ms"].is_null());
    CHECK(format_status_table(j, 0).find("stopping in 4.2s (stop delay), serving gen 3") != std::string::npos);

    s.stop_delay_remaining_ms = -1;
    s.phase = "upgrading";
    s.serving_gen = 1;
    s.probation_remaining_ms = 800;
    s.workers = {WorkerStatus{1, 0, 100, "ready", 0, 5, ""}, WorkerStatus{2, 0, 200, "ready", 0, 5, ""}};
    CHECK_EQ(format_status_line(s), "serving gen=1 pid=100; gen=2 on probation, 800ms left; last upgrade gen=3 ok");
    CHECK(format_status_table(status_json(s), 0).find("upgrading (probation: 800ms left)") != std::string::npos);
}
