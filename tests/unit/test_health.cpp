// The health verdict of `ctl check` and /readyz, from status documents.
#include <doctest/doctest.h>

#include "supervisor/health.h"

using namespace sv;
using json = nlohmann::json;

namespace {

json status(const std::string& phase, std::vector<std::string> states, uint64_t gen = 1) {
    json workers = json::array();
    for (const auto& s : states) workers.push_back({{"gen", gen}, {"state", s}});
    return {{"phase", phase}, {"serving_gen", gen}, {"workers", workers}};
}

} // namespace

TEST_CASE("serving: phase serving or upgrading with a ready worker") {
    CHECK(health_of(status("serving", {"ready"})).serving);
    CHECK_EQ(health_of(status("serving", {"ready", "ready"}, 3)).reason, "serving gen=3 ready=2");
    CHECK(health_of(status("upgrading", {"ready", "starting"})).serving);
    SUBCASE("a failed upgrade leaves the old generation serving") {
        json s = status("serving", {"ready", "failed"}, 2);
        s["last_upgrade"] = {{"gen", 3}, {"ok", false}, {"reason", "exited before ready"}};
        CHECK(health_of(s).serving);
    }
}

TEST_CASE("not serving: starting, stopping, stopped, no ready worker") {
    auto h = health_of(status("starting", {"starting"}));
    CHECK_FALSE(h.serving);
    CHECK_EQ(h.reason, "starting gen=1: no worker ready yet");
    // A stop that keeps workers ready for a while (lame duck) is not serving.
    CHECK_FALSE(health_of(status("stopping", {"ready"})).serving);
    CHECK_EQ(health_of(status("stopping", {"ready"})).reason, "stopping");
    CHECK_FALSE(health_of(status("stopped", {})).serving);
    h = health_of(status("serving", {"draining", "starting"}));
    CHECK_FALSE(h.serving);
    CHECK_EQ(h.reason, "serving gen=1: no worker ready");
    CHECK_FALSE(health_of(status("upgrading", {})).serving);
}

TEST_CASE("malformed status documents are not serving, never an exception") {
    CHECK_FALSE(health_of(json()).serving);
    CHECK_FALSE(health_of(json::array()).serving);
    CHECK_EQ(health_of(json::object()).reason, "no phase in the status");
    CHECK_FALSE(health_of(json{{"phase", 7}, {"workers", "x"}}).serving);
    CHECK_FALSE(health_of(json{{"phase", "serving"}, {"workers", {1, "ready", nullptr}}}).serving);
    CHECK(health_of(json{{"phase", "serving"}, {"serving_gen", -1}, {"workers", {{{"state", "ready"}}}}}).serving);
}
