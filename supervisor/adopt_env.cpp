// --adopt-bind's worker environment.
#include "supervisor/adopt_env.h"

#include <string_view>

namespace sv {

std::string adopt_variable(const AdoptEnvInput& in) {
    std::string fds;
    for (size_t i = 0; i < in.inodes.size(); i++) {
        if (i > 0) fds += ',';
        fds += std::to_string(3 + i) + ":" + std::to_string(in.inodes[i]);
    }
    return "fds=" + fds + (in.view_nonblocking ? " view=nonblocking" : " view=blocking") +
           (in.scope == AdoptBind::WorkerOnly ? " scope=worker" : " scope=all");
}

namespace {

// ld.so separates LD_PRELOAD entries by ':' or ' '.
bool has_entry(std::string_view list, std::string_view entry) {
    while (!list.empty()) {
        size_t n = list.find_first_of(": ");
        if (list.substr(0, n) == entry) return true;
        if (n == std::string_view::npos) break;
        list.remove_prefix(n + 1);
    }
    return false;
}

} // namespace

void add_adopt_env(std::vector<std::string>& vars, const AdoptEnvInput& in) {
    constexpr std::string_view kPreload = "LD_PRELOAD=";
    bool found = false;
    for (auto& kv : vars) {
        if (kv.compare(0, kPreload.size(), kPreload) != 0) continue;
        found = true;
        std::string_view value = std::string_view(kv).substr(kPreload.size());
        if (has_entry(value, in.library)) continue;
        kv += value.empty() ? in.library : ":" + in.library;
    }
    if (!found) vars.push_back(std::string(kPreload) + in.library);
    vars.push_back("SUPERVISOR_ADOPT=" + adopt_variable(in));
}

} // namespace sv
