// Env assignments and env files.
#include "supervisor/env_file.h"

#include <algorithm>
#include <cctype>

#include "supervisor/worker_env.h"

namespace sv {

namespace {

bool valid_key(std::string_view k) {
    if (k.empty() || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
    return std::all_of(k.begin(), k.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

} // namespace

Result<std::pair<std::string, std::string>> parse_env_assignment(std::string_view text) {
    auto eq = text.find('=');
    if (eq == std::string_view::npos) return Error{0, "expected KEY=VALUE"};
    std::string key(text.substr(0, eq));
    if (!valid_key(key)) return Error{0, "'" + key + "' is not a valid variable name"};
    if (is_managed_variable(key + "=")) return Error{0, key + " is set by the supervisor and cannot be overridden"};
    std::string value(text.substr(eq + 1));
    if (value.find('\0') != std::string::npos) return Error{0, "NUL in the value of " + key};
    return std::pair{key, value};
}

Result<EnvAssignments> parse_env_file(std::string_view text, const std::string& name) {
    EnvAssignments out;
    int line_no = 0;
    while (!text.empty()) {
        line_no++;
        auto nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.empty() || line.front() == '#') continue;
        if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
        auto kv = parse_env_assignment(line);
        if (!kv) return Error{0, name + " line " + std::to_string(line_no) + ": " + kv.error().what};
        auto& value = kv->second;
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        out.push_back(std::move(kv.value()));
    }
    return out;
}

void apply_env(std::vector<std::string>& env, const EnvAssignments& assignments) {
    for (const auto& [key, value] : assignments) {
        std::string prefix = key + "=";
        std::erase_if(env, [&](const std::string& kv) { return kv.rfind(prefix, 0) == 0; });
        env.push_back(prefix + value);
    }
}

} // namespace sv
