// --env and --env-file: KEY=VALUE assignments for workers (pure parser).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "supervisor/result.h"

namespace sv {

using EnvAssignments = std::vector<std::pair<std::string, std::string>>;

// One "KEY=VALUE" (from --env). KEY: [A-Za-z_][A-Za-z0-9_]*, and not one of the variables
// the supervisor sets itself (LISTEN_*, NOTIFY_SOCKET, SUPERVISOR_*, …).
Result<std::pair<std::string, std::string>> parse_env_assignment(std::string_view text);

// An env file: KEY=VALUE lines; blank lines and lines starting with '#' are skipped; an
// optional "export " prefix is allowed; a value wholly in "double" or 'single' quotes is
// unquoted (no escapes). Errors read "<name> line N: <what>".
Result<EnvAssignments> parse_env_file(std::string_view text, const std::string& name);

// Applies assignments to KEY=VALUE strings, later ones replacing earlier ones.
void apply_env(std::vector<std::string>& env, const EnvAssignments& assignments);

} // namespace sv
