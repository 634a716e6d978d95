// The health verdict (pure): is this supervisor serving? One answer for `ctl check`, the
// HTTP /readyz endpoint and the metrics, computed from the status document.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace sv {

struct Health {
    bool serving = false;
    // One line: "serving gen=2 ready=2" or why not ("stopping", "starting gen=1: no worker ready yet").
    std::string reason;
};

// Serving = the phase is `serving` or `upgrading` and at least one worker is `ready`.
// Anything else (starting, stopping, stopped, no ready worker, a malformed document) is not.
// A failed or reverted upgrade leaves the old generation serving: still serving.
Health health_of(const nlohmann::json& status);

} // namespace sv
