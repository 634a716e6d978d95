// The health verdict from the status document.
#include "supervisor/health.h"

#include <fmt/format.h>

namespace sv {

namespace {

using json = nlohmann::json;

std::string str_at(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

} // namespace

Health health_of(const json& status) {
    if (!status.is_object()) return {false, "no status"};
    std::string phase = str_at(status, "phase");
    uint64_t gen = 0;
    if (auto it = status.find("serving_gen"); it != status.end() && it->is_number_unsigned()) gen = it->get<uint64_t>();
    size_t ready = 0;
    if (auto it = status.find("workers"); it != status.end() && it->is_array())
        for (const auto& w : *it)
            if (w.is_object() && str_at(w, "state") == "ready") ready++;
    if (phase != "serving" && phase != "upgrading") {
        if (phase.empty()) return {false, "no phase in the status"};
        if (phase == "starting") return {false, fmt::format("starting gen={}: no worker ready yet", gen)};
        return {false, phase};
    }
    if (ready == 0) return {false, fmt::format("{} gen={}: no worker ready", phase, gen)};
    return {true, fmt::format("{} gen={} ready={}", phase, gen, ready)};
}

} // namespace sv
