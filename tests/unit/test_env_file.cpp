// --env and --env-file parsing.
#include <doctest/doctest.h>

#include "supervisor/env_file.h"

using namespace sv;

TEST_CASE("--env assignments") {
    auto a = parse_env_assignment("DB_URL=postgres://x?a=b");
    REQUIRE(a.ok());
    CHECK_EQ(a->first, "DB_URL");
    CHECK_EQ(a->second, "postgres://x?a=b");
    CHECK(parse_env_assignment("EMPTY=").ok());
    CHECK_FALSE(parse_env_assignment("NOEQUALS").ok());
    CHECK_FALSE(parse_env_assignment("=x").ok());
    CHECK_FALSE(parse_env_assignment("1ABC=x").ok());
    CHECK_FALSE(parse_env_assignment("A-B=x").ok());
    auto managed = parse_env_assignment("LISTEN_FDS=3");
    REQUIRE_FALSE(managed.ok());
    CHECK(managed.error().what.find("set by the supervisor") != std::string::npos);
}

TEST_CASE("env files: comments, blanks, export, quotes, CRLF") {
    auto r = parse_env_file("# config\n\nA=1\nexport B=x\nC=\"two words\"\r\nD='it''s'\nE=\"unbalanced\n  F=  spaced  \n", "app.env");
    INFO((r.ok() ? "" : r.error().what));
    REQUIRE(r.ok());
    REQUIRE_EQ(r->size(), 6u);
    CHECK_EQ((*r)[0], std::pair<std::string, std::string>{"A", "1"});
    CHECK_EQ((*r)[2], std::pair<std::string, std::string>{"C", "two words"});
    CHECK_EQ((*r)[3].second, "it''s");
    CHECK_EQ((*r)[4].second, "\"unbalanced");
    CHECK_EQ((*r)[5].second, "  spaced");
}

TEST_CASE("env file errors name the file and the line") {
    auto r = parse_env_file("A=1\n# ok\nthis is not an assignment\n", "/etc/app.env");
    REQUIRE_FALSE(r.ok());
    CHECK_EQ(r.error().what, "/etc/app.env line 3: expected KEY=VALUE");
    auto m = parse_env_file("NOTIFY_SOCKET=/x\n", "f");
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().what.find("f line 1: NOTIFY_SOCKET is set by the supervisor") != std::string::npos);
}

TEST_CASE("apply_env: later assignments replace earlier values") {
    std::vector<std::string> env{"PATH=/bin", "A=old"};
    apply_env(env, {{"A", "new"}, {"B", "b"}, {"A", "newer"}});
    CHECK_EQ(env, std::vector<std::string>{"PATH=/bin", "B=b", "A=newer"});
}
