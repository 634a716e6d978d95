// --adopt-bind's worker environment: LD_PRELOAD appended to, SUPERVISOR_ADOPT written.
#include <doctest/doctest.h>

#include "supervisor/adopt/adopt_match.h"
#include "supervisor/adopt_env.h"

using namespace sv;

namespace {
const AdoptEnvInput kInput{"/opt/sv/lib/libsupervisor-adopt.so", {1234, 5678}, false, AdoptBind::All};
}

TEST_CASE("adopt_variable: what the preload reads back") {
    CHECK_EQ(adopt_variable(kInput), "fds=3:1234,4:5678 view=blocking scope=all");
    AdoptEnvInput in = kInput;
    in.view_nonblocking = true;
    in.scope = AdoptBind::WorkerOnly;
    std::string text = adopt_variable(in);
    CHECK_EQ(text, "fds=3:1234,4:5678 view=nonblocking scope=worker");
    adopt_env e;
    REQUIRE_EQ(adopt_parse_env(text.c_str(), &e), 0);
    CHECK_EQ(e.count, 2);
    CHECK_EQ(e.fds[1], 4);
    CHECK_EQ(e.inodes[1], 5678u);
    CHECK_EQ(e.view_nonblocking, 1);
    CHECK_EQ(e.scope_worker, 1);
}

TEST_CASE("add_adopt_env: LD_PRELOAD") {
    SUBCASE("absent: set") {
        std::vector<std::string> vars{"PATH=/bin"};
        add_adopt_env(vars, kInput);
        CHECK_EQ(vars, std::vector<std::string>{"PATH=/bin", "LD_PRELOAD=/opt/sv/lib/libsupervisor-adopt.so",
                                                "SUPERVISOR_ADOPT=fds=3:1234,4:5678 view=blocking scope=all"});
    }
    SUBCASE("the user's entries are kept, ours goes last") {
        std::vector<std::string> vars{"LD_PRELOAD=/usr/lib/libjemalloc.so.2 /x.so"};
        add_adopt_env(vars, kInput);
        CHECK_EQ(vars[0], "LD_PRELOAD=/usr/lib/libjemalloc.so.2 /x.so:/opt/sv/lib/libsupervisor-adopt.so");
    }
    SUBCASE("empty value") {
        std::vector<std::string> vars{"LD_PRELOAD="};
        add_adopt_env(vars, kInput);
        CHECK_EQ(vars[0], "LD_PRELOAD=/opt/sv/lib/libsupervisor-adopt.so");
    }
    SUBCASE("already there (a supervisor under a supervisor): not twice") {
        std::vector<std::string> vars{"LD_PRELOAD=/opt/sv/lib/libsupervisor-adopt.so:/a.so"};
        add_adopt_env(vars, kInput);
        CHECK_EQ(vars[0], "LD_PRELOAD=/opt/sv/lib/libsupervisor-adopt.so:/a.so");
        CHECK_EQ(vars.size(), 2u);
    }
}
