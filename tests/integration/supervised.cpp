// The supervisor under test (see harness.h): the binaries, a guarded running supervisor,
// and the worker scripts tests give it.
#include "harness.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstring>

namespace svtest {

const Bins& bins() {
    static const Bins b{env("SUPERVISOR_BIN"), env("DEMO_WORKER_BIN"), env("FAKE_WORKER_BIN"), env("PY_WORKER"),
                        env("NODE_WORKER")};
    return b;
}

namespace {
std::vector<std::string> supervisor_argv(const std::vector<std::string>& prefix, const std::vector<std::string>& options,
                                         const std::vector<std::string>& command) {
    std::vector<std::string> argv = prefix;
    argv.push_back(bins().supervisor);
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
}
} // namespace

Supervised::Supervised(const TempDir& dir, const std::vector<std::string>& options, const std::vector<std::string>& command,
                       const std::vector<std::string>* env_vars, const std::vector<std::string>& prefix)
    : dir_(dir.path()), proc_(supervisor_argv(prefix, options, command), dir.file("supervisor.log"), env_vars), guard_(proc_) {
    guard_.also_kill([this] { return leftovers(); });
}

Supervised::~Supervised() = default;

// Where containment.cpp puts them: <our cgroup>/supervisor.<pid>, under the cgroup2 mount
// (/sys/fs/cgroup/unified on hybrid systems). Empty by now: rmdir, deepest first.
Supervised::CgroupSweep::~CgroupSweep() {
    if (p.pid() <= 0) return;
    std::string ours = read_file("/proc/self/cgroup");
    size_t at = ours.find("0::");
    if (at == std::string::npos) return;
    std::string path = ours.substr(at + 3, ours.find('\n', at) - at - 3);
    if (path == "/") path.clear();
    for (std::string base : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
        std::string top = base + path + "/supervisor." + std::to_string(p.pid());
        std::error_code ec;
        if (!std::filesystem::is_directory(top, ec)) continue;
        std::vector<std::string> dirs{top};
        for (auto it = std::filesystem::recursive_directory_iterator(top, ec); !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            if (it->is_directory(ec)) dirs.push_back(it->path().string());
        std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
        for (const auto& d : dirs) ::rmdir(d.c_str());
    }
}

std::vector<pid_t> Supervised::leftovers() const {
    std::vector<pid_t> workers, pids;
    for (const auto& m : find_log_lines(log(), R"(spawned gen=\d+ pid=(\d+))")) workers.push_back(std::stoi(m[1]));
    pids = workers;
    if (DIR* d = ::opendir(dir_.c_str())) {
        while (dirent* e = ::readdir(d)) {
            if (std::strncmp(e->d_name, "report", 6) != 0) continue;
            auto r = parse_report(read_file(dir_ + "/" + e->d_name));
            if (auto it = r.find("grandchild"); it != r.end()) pids.push_back(std::stoi(it->second));
        }
        ::closedir(d);
    }
    // Workers lead their own group, and grandchildren stay in it.
    std::erase_if(pids, [&](pid_t p) { return std::find(workers.begin(), workers.end(), pgid_of(p)) == workers.end(); });
    return pids;
}

int Supervised::wait_port(double seconds) {
    auto m = wait_log(R"(listening name=\S+ addr=127\.0\.0\.1:(\d+) )", seconds);
    return m ? std::stoi((*m)[1]) : 0;
}

pid_t Supervised::wait_ready(unsigned gen, double seconds) {
    auto m = wait_log("ready gen=" + std::to_string(gen) + " pid=(\\d+)", seconds);
    return m ? std::stoi((*m)[1]) : 0;
}

pid_t Supervised::wait_upgrade_done(unsigned gen, double seconds) {
    auto m = wait_log("upgrade done gen=" + std::to_string(gen) + " pid=(\\d+)", seconds);
    return m ? std::stoi((*m)[1]) : 0;
}

std::optional<std::vector<std::string>> Supervised::wait_log(const std::string& regex, double seconds) const {
    return svtest::wait_log(proc_, regex, seconds);
}

pid_t Supervised::spawned_pid(unsigned gen) const {
    auto m = find_log_line(log(), "spawned gen=" + std::to_string(gen) + " pid=(\\d+)");
    return m ? std::stoi((*m)[1]) : 0;
}

pid_t Supervised::wait_nth_ready(size_t n, double seconds) const {
    std::vector<std::vector<std::string>> lines;
    wait_until([&] { return (lines = find_log_lines(log(), R"(ready gen=\d+ pid=(\d+))")).size() >= n; }, seconds);
    return n > 0 && lines.size() >= n ? std::stoi(lines[n - 1][1]) : 0;
}

std::string Supervised::notify_socket() const {
    auto m = find_log_line(log(), R"(started pid=\d+ notify_socket=(\S+))");
    return m ? (*m)[1] : "";
}

std::string report_prefix(const TempDir& dir) { return dir.file("report"); }

std::string fake_exec(const TempDir& dir, const std::string& args) {
    return "exec " + sh_quote(bins().fake_worker) + " --report " + sh_quote(report_prefix(dir)) +
           (args.empty() ? "" : " " + args);
}

std::string by_generation(const TempDir& dir, const std::map<int, std::string>& args) {
    std::string body = "case \"$SUPERVISOR_GENERATION\" in\n";
    for (const auto& [gen, a] : args) body += std::to_string(gen) + ") " + fake_exec(dir, a) + " ;;\n";
    return body + "*) " + fake_exec(dir) + " ;;\nesac";
}

std::string once_armed(const TempDir& dir, const std::string& args) {
    return "if [ -e " + sh_quote(dir.file("armed")) + " ] && mkdir " + sh_quote(dir.file("fired")) + " 2>/dev/null; then " +
           fake_exec(dir, args) + "; fi\n" + fake_exec(dir);
}

bool arm_worker_script(const TempDir& dir) { return write_file(dir.file("armed"), ""); }

} // namespace svtest
