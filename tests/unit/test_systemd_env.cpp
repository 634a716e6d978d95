// JOURNAL_STREAM and WATCHDOG_USEC/WATCHDOG_PID as the service manager sets them.
#include <doctest/doctest.h>

#include "supervisor/systemd_env.h"

using namespace sv;

TEST_CASE("JOURNAL_STREAM counts only when it names our stream") {
    CHECK(journal_stream_matches("8:12345", 8, 12345));
    CHECK(journal_stream_matches("0:1", 0, 1));
    CHECK_FALSE(journal_stream_matches("8:12345", 8, 12346));  // inherited, stderr redirected
    CHECK_FALSE(journal_stream_matches("9:12345", 8, 12345));
    for (std::string_view bad : {"", ":", "8:", ":12345", "8", "8:12345:1", "x:1", "8:1x", "-8:12345", " 8:12345"}) {
        INFO(bad);
        CHECK_FALSE(journal_stream_matches(bad, 8, 12345));
    }
}

TEST_CASE("watchdog period from WATCHDOG_USEC and WATCHDOG_PID") {
    SUBCASE("absent: no watchdog") {
        auto r = watchdog_period(nullptr, nullptr, 42);
        REQUIRE(r.ok());
        CHECK_FALSE(r->has_value());
    }
    SUBCASE("for us, with or without WATCHDOG_PID") {
        auto r = watchdog_period("2000000", nullptr, 42);
        REQUIRE(r.ok());
        CHECK_EQ(r->value(), Millis(2000));
        r = watchdog_period("2000000", "42", 42);
        REQUIRE(r.ok());
        CHECK_EQ(r->value(), Millis(2000));
    }
    SUBCASE("sub-millisecond periods round up") {
        auto r = watchdog_period("1500", nullptr, 42);
        REQUIRE(r.ok());
        CHECK_EQ(r->value(), Millis(2));
    }
    SUBCASE("for another process: no watchdog") {
        auto r = watchdog_period("2000000", "43", 42);
        REQUIRE(r.ok());
        CHECK_FALSE(r->has_value());
    }
    SUBCASE("malformed values are errors that name the variable") {
        for (const char* bad : {"", "0", "x", "-5", "2s", "99999999999999999999999"}) {
            INFO(bad);
            auto r = watchdog_period(bad, nullptr, 42);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().what.find("WATCHDOG_USEC") != std::string::npos);
        }
        auto r = watchdog_period("2000000", "x", 42);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().what.find("WATCHDOG_PID") != std::string::npos);
    }
}
