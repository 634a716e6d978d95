// sd_notify datagrams, well-formed and not.
#include <doctest/doctest.h>

#include "supervisor/notify_message.h"

using namespace sv;
using namespace std::string_literals;

TEST_CASE("well-formed datagrams") {
    SUBCASE("bare READY=1, no newline") { CHECK(parse_notify_message("READY=1").ready); }
    SUBCASE("trailing newline") { CHECK(parse_notify_message("READY=1\n").ready); }
    SUBCASE("several lines") {
        auto m = parse_notify_message("STATUS=warming up\nREADY=1\nMAINPID=7\n");
        CHECK(m.ready);
        REQUIRE(m.status.has_value());
        CHECK_EQ(*m.status, "warming up");
    }
    SUBCASE("STOPPING=1 and RELOADING=1") {
        auto m = parse_notify_message("STOPPING=1\nRELOADING=1");
        CHECK(m.stopping);
        CHECK(m.reloading);
        CHECK_FALSE(m.ready);
    }
    SUBCASE("empty STATUS") {
        auto m = parse_notify_message("STATUS=");
        REQUIRE(m.status.has_value());
        CHECK_EQ(*m.status, "");
    }
}

TEST_CASE("WATCHDOG=1 is the worker's keep-alive (--worker-watchdog)") {
    auto m = parse_notify_message("WATCHDOG=1");
    CHECK(m.watchdog);
    CHECK_FALSE(m.ready);
    CHECK_FALSE(parse_notify_message("WATCHDOG=0").watchdog);
}

TEST_CASE("garbage is ignored, never half-understood") {
    CHECK(parse_notify_message("").empty());
    CHECK(parse_notify_message("\n\n\n").empty());
    CHECK(parse_notify_message("READY=0").empty());
    CHECK(parse_notify_message("READY=11").empty());
    CHECK(parse_notify_message("ready=1").empty());
    CHECK(parse_notify_message(" READY=1").empty());
    CHECK(parse_notify_message("READY=1\r").empty());
    CHECK(parse_notify_message("FDSTORE=1\nWATCHDOG=trigger").empty());
    CHECK(parse_notify_message("READY=1\0garbage"s).empty());
    CHECK(parse_notify_message("\xff\xfe\x01\x02").empty());
    CHECK(parse_notify_message(std::string(kNotifyMaxDatagram + 1, 'A')).empty());
    std::string big = "READY=1\n" + std::string(kNotifyMaxDatagram - 8, 'x');
    CHECK(parse_notify_message(big).ready);  // exactly at the limit is fine
}

TEST_CASE("STATUS is made safe to log") {
    auto m = parse_notify_message("STATUS=a\x1b[31mred\x7f");
    REQUIRE(m.status.has_value());
    CHECK_EQ(*m.status, "a?[31mred?");
    auto long_status = parse_notify_message("STATUS=" + std::string(1000, 'x'));
    CHECK_EQ(long_status.status->size(), 256u);
}
