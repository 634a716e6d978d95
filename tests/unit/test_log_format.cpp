// sd-daemon priority prefixes of journal lines.
#include <doctest/doctest.h>

#include "supervisor/log_format.h"

using namespace sv;

TEST_CASE("our levels map to sd-daemon priorities") {
    CHECK_EQ(sd_priority(LogLevel::Error), 3);
    CHECK_EQ(sd_priority(LogLevel::Warn), 4);
    CHECK_EQ(sd_priority(LogLevel::Info), 6);
    CHECK_EQ(sd_priority(LogLevel::Debug), 7);
}

TEST_CASE("worker priorities map back to our levels") {
    for (int p : {0, 1, 2, 3}) CHECK_EQ(level_of_sd_priority(p), LogLevel::Error);
    CHECK_EQ(level_of_sd_priority(4), LogLevel::Warn);
    CHECK_EQ(level_of_sd_priority(5), LogLevel::Info);
    CHECK_EQ(level_of_sd_priority(6), LogLevel::Info);
    CHECK_EQ(level_of_sd_priority(7), LogLevel::Debug);
}

TEST_CASE("a worker's own <N> prefix is read as journald reads it") {
    auto split = [](std::string_view line) { return split_sd_priority(line, kSdInfo); };
    SUBCASE("plain priorities") {
        CHECK_EQ(split("<3>disk full").priority, 3);
        CHECK_EQ(split("<3>disk full").text, "disk full");
        CHECK_EQ(split("<4>slow").priority, 4);
        CHECK_EQ(split("<7>").priority, 7);
        CHECK_EQ(split("<7>").text, "");
        CHECK_EQ(split("<0>x").priority, 0);
    }
    SUBCASE("facility * 8 + priority keeps the low bits") {
        CHECK_EQ(split("<11>x").priority, 3);   // user.err
        CHECK_EQ(split("<191>x").priority, 7);  // local7.debug, the largest
        CHECK_EQ(split("<191>x").text, "x");
    }
    SUBCASE("no prefix: the default priority and the whole line") {
        CHECK_EQ(split("GET / 200").priority, kSdInfo);
        CHECK_EQ(split("GET / 200").text, "GET / 200");
        CHECK_EQ(split_sd_priority("plain", kSdWarning).priority, kSdWarning);
        CHECK_EQ(split("").text, "");
    }
    SUBCASE("malformed prefixes are text") {
        for (std::string_view bad : {"<>x", "<3", "<a>x", "<192>x", "<1000>x", "<-1>x", " <3>x", "<3 >x", "<", "<<3>x"}) {
            INFO(bad);
            CHECK_EQ(split(bad).priority, kSdInfo);
            CHECK_EQ(split(bad).text, bad);
        }
    }
}
