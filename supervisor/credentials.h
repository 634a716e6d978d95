// Credentials: who a worker runs as (--user, --group).
#pragma once

#include <string>
#include <vector>

#include "supervisor/result.h"

namespace sv {

// Who the worker runs as. uid/gid -1: unchanged. groups: the supplementary groups
// to set when gid changes (empty: cleared).
struct Credentials {
    int uid = -1;
    int gid = -1;
    std::vector<unsigned> groups;
    std::string user, home;  // for USER, LOGNAME, HOME when uid changes
};

// --user USER and --group GROUP (names or numbers) → Credentials, with the user's
// supplementary groups. Errors name the unknown user or group.
Result<Credentials> resolve_credentials(const std::string& user, const std::string& group);

} // namespace sv
