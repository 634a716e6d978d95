// /proc helpers (see proc.h).
#include "proc.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <sstream>

#include "harness.h"

namespace svtest {

namespace {
std::string proc_path(pid_t pid, const std::string& what) { return "/proc/" + std::to_string(pid) + "/" + what; }
} // namespace

bool pid_alive(pid_t pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) < 0 && errno != EPERM) return false;
    auto f = proc::stat_fields(pid);
    return !f.empty() && f[0] != "Z" && f[0] != "X" && f[0] != "x";  // empty: gone meanwhile
}

pid_t pgid_of(pid_t pid) {
    auto f = proc::stat_fields(pid);
    return f.size() > 2 ? static_cast<pid_t>(std::atol(f[2].c_str())) : -1;
}

namespace proc {

std::vector<int> open_fds(pid_t pid) {
    std::vector<int> fds;
    if (DIR* d = ::opendir(proc_path(pid, "fd").c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') fds.push_back(std::atoi(e->d_name));
        ::closedir(d);
    }
    std::sort(fds.begin(), fds.end());
    return fds;
}

std::vector<std::string> stat_fields(pid_t pid) {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    std::string stat = read_file(proc_path(pid, "stat"));
    size_t paren = stat.rfind(')');
    std::vector<std::string> out;
    if (paren == std::string::npos || paren + 2 >= stat.size()) return out;
    std::istringstream in(stat.substr(paren + 2));
    for (std::string f; in >> f;) out.push_back(f);
    return out;
}

std::vector<Child> children_of(pid_t pid) {
    std::vector<Child> out;
    if (DIR* d = ::opendir("/proc")) {
        while (dirent* e = ::readdir(d)) {
            pid_t p = std::atoi(e->d_name);
            if (p <= 0) continue;
            auto f = stat_fields(p);
            if (f.size() > 1 && std::atol(f[1].c_str()) == pid) out.push_back({p, f[0] == "Z"});
        }
        ::closedir(d);
    }
    return out;
}

size_t zombies(const std::vector<Child>& children) {
    return static_cast<size_t>(std::count_if(children.begin(), children.end(), [](const Child& c) { return c.zombie; }));
}

long cpu_ms(pid_t pid) {
    auto f = stat_fields(pid);
    if (f.size() < 13) return -1;
    return (std::atol(f[11].c_str()) + std::atol(f[12].c_str())) * 1000 / ::sysconf(_SC_CLK_TCK);
}

long rss_kb(pid_t pid) {
    auto m = find_log_line(read_file(proc_path(pid, "status")), R"(^VmRSS:\s+(\d+) kB)");
    return m ? std::atol((*m)[1].c_str()) : -1;
}

long fd_flags(pid_t pid, int fd) {
    auto m = find_log_line(read_file(proc_path(pid, "fdinfo/" + std::to_string(fd))), R"(^flags:\s+([0-7]+))");
    return m ? std::strtol((*m)[1].c_str(), nullptr, 8) : -1;
}

int first_socket_fd(pid_t pid) {
    for (int fd : open_fds(pid)) {
        if (fd < 3) continue;
        char target[256] = {};
        ssize_t n = ::readlink(proc_path(pid, "fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
        if (n > 0 && std::string(target).rfind("socket:", 0) == 0) return fd;
    }
    return -1;
}

} // namespace proc

} // namespace svtest
