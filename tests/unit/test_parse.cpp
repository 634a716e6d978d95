// Durations and signal names.
#include <doctest/doctest.h>

#include <csignal>

#include "supervisor/parse.h"

using namespace sv;

TEST_CASE("durations") {
    CHECK_EQ(parse_duration("250ms")->count(), 250);
    CHECK_EQ(parse_duration("2s")->count(), 2000);
    CHECK_EQ(parse_duration("1m")->count(), 60'000);
    CHECK_EQ(parse_duration("1h")->count(), 3'600'000);
    CHECK_EQ(parse_duration("1.5s")->count(), 1500);
    CHECK_EQ(parse_duration("3")->count(), 3000);  // bare number: seconds
    CHECK_EQ(parse_duration("0ms")->count(), 0);
    for (const char* bad : {"", "s", "ms", "-1s", "2 s", "2sec", "5parsecs", "1.s", ".5s", "1..2s", "25h", "1e3s", "ms5"}) {
        INFO(bad);
        CHECK_FALSE(parse_duration(bad).has_value());
    }
}

TEST_CASE("format_duration") {
    CHECK_EQ(format_duration(Millis(250)), "250ms");
    CHECK_EQ(format_duration(Millis(2000)), "2s");
    CHECK_EQ(format_duration(Millis(120'000)), "2m");
    CHECK_EQ(format_duration(Millis(0)), "0ms");
}

TEST_CASE("signal names") {
    CHECK_EQ(parse_signal("TERM"), SIGTERM);
    CHECK_EQ(parse_signal("SIGTERM"), SIGTERM);
    CHECK_EQ(parse_signal("sigquit"), SIGQUIT);
    CHECK_EQ(parse_signal("Usr2"), SIGUSR2);
    CHECK_EQ(parse_signal("15"), SIGTERM);
    CHECK_EQ(parse_signal("WINCH"), SIGWINCH);
    for (const char* bad : {"", "KILL", "SIGKILL", "9", "19", "0", "STOP", "SIGFOO", "TERM2", "-15", "999"}) {
        INFO(bad);
        CHECK_FALSE(parse_signal(bad).has_value());
    }
    CHECK_EQ(signal_name(SIGTERM), "SIGTERM");
    CHECK_EQ(signal_name(SIGKILL), "SIGKILL");
    CHECK_EQ(signal_name(SIGRTMIN + 1).substr(0, 3), "SIG");
}

TEST_CASE("parse_uint") {
    CHECK_EQ(parse_uint("0"), 0);
    CHECK_EQ(parse_uint("65535"), 65535);
    CHECK_FALSE(parse_uint("").has_value());
    CHECK_FALSE(parse_uint("+1").has_value());
    CHECK_FALSE(parse_uint("1 ").has_value());
    CHECK_FALSE(parse_uint("99999999999").has_value());
}

TEST_CASE("octal modes") {
    CHECK_EQ(parse_mode("660"), 0660);
    CHECK_EQ(parse_mode("0600"), 0600);
    CHECK_EQ(parse_mode("7777"), 07777);
    for (std::string bad : {"", "8", "rw", "-1", "17777", "0x1ff", "660 "}) {
        INFO(bad);
        CHECK_FALSE(parse_mode(bad).has_value());
    }
}
