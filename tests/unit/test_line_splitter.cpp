// Worker output lines and their rate limit.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "supervisor/line_splitter.h"

using namespace sv;

namespace {

std::vector<std::string> split(LineSplitter& s, std::string_view data) {
    std::vector<std::string> out;
    s.feed(data, out);
    return out;
}

using Lines = std::vector<std::string>;

} // namespace

TEST_CASE("line splitter: complete and partial lines") {
    LineSplitter s(64);
    SUBCASE("one feed, several lines") {
        CHECK_EQ(split(s, "a\nbc\n"), Lines{"a", "bc"});
        CHECK_EQ(s.flush(), std::nullopt);
    }
    SUBCASE("a line across feeds") {
        CHECK_EQ(split(s, "hel"), Lines{});
        CHECK_EQ(split(s, "lo\nwor"), Lines{"hello"});
        CHECK_EQ(split(s, "ld\n"), Lines{"world"});
    }
    SUBCASE("feed appends to the caller's vector") {
        Lines out{"before"};
        s.feed("x\n", out);
        CHECK_EQ(out, Lines{"before", "x"});
    }
    SUBCASE("empty lines are kept") {
        CHECK_EQ(split(s, "\n\na\n\n"), Lines{"", "", "a", ""});
    }
    SUBCASE("empty feed") {
        CHECK_EQ(split(s, ""), Lines{});
        CHECK_EQ(s.flush(), std::nullopt);
    }
}

TEST_CASE("line splitter: CRLF") {
    LineSplitter s(64);
    SUBCASE("one '\\r' before '\\n' is dropped") { CHECK_EQ(split(s, "a\r\n\r\nb\r\n"), Lines{"a", "", "b"}); }
    SUBCASE("CR and LF in different feeds") {
        CHECK_EQ(split(s, "a\r"), Lines{});
        CHECK_EQ(split(s, "\n"), Lines{"a"});
    }
    SUBCASE("a lone '\\r' is a control byte") { CHECK_EQ(split(s, "a\rb\n"), Lines{"a?b"}); }
    SUBCASE("only the last of several '\\r' is dropped") { CHECK_EQ(split(s, "a\r\r\n"), Lines{"a?"}); }
}

TEST_CASE("line splitter: long lines are split into max_line chunks") {
    SUBCASE("exactly max_line is one line") {
        LineSplitter s(4);
        CHECK_EQ(split(s, "abcd\n"), Lines{"abcd"});
    }
    SUBCASE("exactly max_line with CRLF is one line") {
        LineSplitter s(4);
        CHECK_EQ(split(s, "abcd\r\n"), Lines{"abcd"});
    }
    SUBCASE("max_line + 1") {
        LineSplitter s(4);
        CHECK_EQ(split(s, "abcde\n"), Lines{"abcd", "e"});
    }
    SUBCASE("a chunk is emitted only when the next byte arrives") {
        LineSplitter s(4);
        CHECK_EQ(split(s, "abcd"), Lines{});
        CHECK_EQ(split(s, "e"), Lines{"abcd"});
        CHECK_EQ(s.flush(), std::optional<std::string>("e"));
    }
    SUBCASE("a 10 KB line") {
        LineSplitter s(4096);
        std::string big(10 * 1024, 'x');
        Lines out = split(s, big + "\n");
        REQUIRE_EQ(out.size(), 3);
        CHECK_EQ(out[0].size(), 4096);
        CHECK_EQ(out[1].size(), 4096);
        CHECK_EQ(out[2].size(), 10 * 1024 - 2 * 4096);
        CHECK_EQ(out[0] + out[1] + out[2], big);
    }
    SUBCASE("a 10 KB line fed byte by byte") {
        LineSplitter s(4096);
        Lines out;
        for (int i = 0; i < 10 * 1024; i++) s.feed("y", out);
        CHECK_EQ(out.size(), 2);
        CHECK_EQ(s.flush()->size(), 10 * 1024 - 2 * 4096);
    }
}

TEST_CASE("line splitter: binary garbage becomes one printable line per entry") {
    LineSplitter s(64);
    SUBCASE("control bytes become '?', tab is kept") {
        std::string data("a\0b\tc\x1b[0m\x7f\n", 11);
        CHECK_EQ(split(s, data), Lines{"a?b\tc?[0m?"});
    }
    SUBCASE("bytes >= 0x80 (UTF-8) are kept") { CHECK_EQ(split(s, "caf\xc3\xa9 \xff\n"), Lines{"caf\xc3\xa9 \xff"}); }
    SUBCASE("all 256 byte values") {
        LineSplitter wide(1024);
        std::string data;
        for (int i = 0; i < 256; i++) data.push_back(static_cast<char>(i));
        Lines out = split(wide, data);
        REQUIRE_EQ(out.size(), 1);  // the '\n' (10) ends the first line
        CHECK_EQ(out[0], std::string("?????????\t"));
        auto rest = wide.flush();
        REQUIRE(rest.has_value());
        CHECK_EQ(rest->size(), 256 - 11);
        for (char c : *rest) {
            auto u = static_cast<unsigned char>(c);
            CHECK((u >= 0x20 && u != 0x7f));
        }
    }
}

TEST_CASE("line splitter: flush at EOF") {
    LineSplitter s(64);
    SUBCASE("nothing pending") {
        split(s, "a\n");
        CHECK_EQ(s.flush(), std::nullopt);
    }
    SUBCASE("a partial line") {
        split(s, "a\nbc");
        CHECK_EQ(s.flush(), std::optional<std::string>("bc"));
        CHECK_EQ(s.flush(), std::nullopt);
    }
    SUBCASE("a trailing '\\r' is dropped") {
        split(s, "bc\r");
        CHECK_EQ(s.flush(), std::optional<std::string>("bc"));
    }
    SUBCASE("a lone '\\r' is an empty line") {
        split(s, "\r");
        CHECK_EQ(s.flush(), std::optional<std::string>(""));
    }
    SUBCASE("usable after flush") {
        split(s, "bc");
        (void)s.flush();
        CHECK_EQ(split(s, "d\n"), Lines{"d"});
    }
}

TEST_CASE("rate limiter: burst, refill, drop count") {
    RateLimiter r(1000, 3);  // 1 line per ms, 3 at once
    SUBCASE("starts full: a burst passes, then drops are counted") {
        CHECK(r.allow(0));
        CHECK(r.allow(0));
        CHECK(r.allow(0));
        CHECK_FALSE(r.allow(0));
        CHECK_FALSE(r.allow(0));
        CHECK_EQ(r.take_dropped(), 2);
        CHECK_EQ(r.take_dropped(), 0);
    }
    SUBCASE("refills with time, capped at burst") {
        for (int i = 0; i < 3; i++) CHECK(r.allow(0));
        CHECK_FALSE(r.allow(0));
        CHECK(r.allow(1));
        CHECK_FALSE(r.allow(1));
        for (int i = 0; i < 3; i++) CHECK(r.allow(1000));
        CHECK_FALSE(r.allow(1000));
        CHECK_EQ(r.take_dropped(), 3);
    }
    SUBCASE("a clock going backwards refills nothing") {
        for (int i = 0; i < 3; i++) CHECK(r.allow(100));
        CHECK_FALSE(r.allow(50));
        CHECK_FALSE(r.allow(100));
        CHECK(r.allow(101));
    }
}

TEST_CASE("rate limiter: fractional rates") {
    RateLimiter r(2, 1);  // one line per 500 ms
    CHECK(r.allow(10'000));
    CHECK_FALSE(r.allow(10'499));
    CHECK(r.allow(10'500));
    CHECK_FALSE(r.allow(10'500));
    CHECK_EQ(r.take_dropped(), 2);
}
