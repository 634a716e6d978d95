// /proc parsers for containment. Everything here reads text the kernel wrote, but a
// process chooses its own comm, so nothing about that field is trusted.
#include "supervisor/proc_files.h"

#include <cctype>
#include <charconv>
#include <vector>

namespace sv {

namespace {

template <typename T>
bool to_number(std::string_view s, T* out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc{} && end == s.data() + s.size();
}

// Space-separated fields, as the kernel writes them (one space each).
std::vector<std::string_view> split_fields(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (;;) {
        size_t at = s.find(sep, start);
        out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) return out;
        start = at + 1;
    }
}

std::string unescape_octal(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && s.size() - i >= 4) {
            auto d = [&](size_t k) { return s[i + k] >= '0' && s[i + k] <= '7'; };
            if (d(1) && d(2) && d(3)) {
                out += static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

} // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
    size_t open = text.find('(');
    size_t close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
    ProcStat st;
    std::string_view pid = text.substr(0, open);
    if (!pid.empty() && pid.back() == ' ') pid.remove_suffix(1);
    if (!to_number(pid, &st.pid) || st.pid <= 0) return std::nullopt;
    st.comm = std::string(text.substr(open + 1, close - open - 1));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ' ') return std::nullopt;
    rest.remove_prefix(1);
    while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
    auto f = split_fields(rest, ' ');
    // f[0] is field 3 (state), so field N is f[N - 3]; start_time is field 22.
    if (f.size() < 20 || f[0].size() != 1 || !std::isalpha(static_cast<unsigned char>(f[0][0]))) return std::nullopt;
    st.state = f[0][0];
    if (!to_number(f[1], &st.ppid) || !to_number(f[2], &st.pgrp) || !to_number(f[3], &st.session) ||
        !to_number(f[19], &st.start_time))
        return std::nullopt;
    if (st.ppid < 0 || st.pgrp < 0 || st.session < 0) return std::nullopt;
    if (f.size() > 25 && !to_number(f[25], &st.start_stack)) return std::nullopt;
    return st;
}

std::optional<std::string> parse_cgroup2_path(std::string_view text) {
    for (auto line : split_fields(text, '\n')) {
        if (line.substr(0, 3) != "0::") continue;
        std::string_view path = line.substr(3);
        // A cgroup whose directory was removed reads "/a/b (deleted)": not usable.
        if (path.empty() || path.front() != '/' || path.find(" (deleted)") != std::string_view::npos) return std::nullopt;
        return std::string(path);
    }
    return std::nullopt;
}

std::optional<Cgroup2Mount> find_cgroup2_mount(std::string_view mountinfo) {
    for (auto line : split_fields(mountinfo, '\n')) {
        // id parent major:minor root mount_point options [optional…] - fstype source super_options
        size_t dash = line.find(" - ");
        if (dash == std::string_view::npos) continue;
        auto after = split_fields(line.substr(dash + 3), ' ');
        if (after.empty() || after[0] != "cgroup2") continue;
        auto before = split_fields(line.substr(0, dash), ' ');
        if (before.size() < 6 || before[3].empty() || before[4].empty()) continue;
        return Cgroup2Mount{unescape_octal(before[3]), unescape_octal(before[4])};
    }
    return std::nullopt;
}

std::optional<std::string> cgroup_dir(const Cgroup2Mount& mount, const std::string& path) {
    std::string root = mount.root == "/" ? "" : mount.root;
    if (path.compare(0, root.size(), root) != 0) return std::nullopt;
    std::string rel = path.substr(root.size());
    if (!rel.empty() && rel.front() != '/') return std::nullopt;  // "/ab" is not below "/a"
    if (rel == "/") rel.clear();
    return mount.mount_point + rel;
}

} // namespace sv
