// Integration harness (see harness.h).
#include "harness.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace svtest {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(10);

Clock::time_point deadline_after(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
    std::vector<char*> out;
    for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

int remove_entry(const char* path, const struct stat*, int, FTW*) { return ::remove(path); }

} // namespace

// --- environment ----------------------------------------------------------------------

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

bool have_program(const std::string& name) {
    if (name.empty()) return false;
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
    std::string path = env("PATH");
    size_t start = 0;
    for (;;) {
        size_t colon = path.find(':', start);
        std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        struct stat st{};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
            return true;
        if (colon == std::string::npos) return false;
        start = colon + 1;
    }
}

pid_t self_pid() { return ::getpid(); }

// --- files ----------------------------------------------------------------------------

TempDir::TempDir() {
    std::string base = env("TMPDIR");
    if (base.empty()) base = "/tmp";
    std::string templ = base + "/svtest.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
    else std::fprintf(stderr, "svtest: mkdtemp(%s): %s\n", templ.c_str(), std::strerror(errno));
}

TempDir::~TempDir() {
    if (!path_.empty() && env("SVTEST_KEEP_TMP").empty()) ::nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

std::string read_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

bool file_exists(const std::string& path) {
    struct stat st{};
    return ::lstat(path.c_str(), &st) == 0;
}

bool write_file(const std::string& path, const std::string& text, unsigned mode) {
    std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0 && ok;
    ok = ::close(fd) == 0 && ok;
    if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) return true;
    ::unlink(tmp.c_str());
    return false;
}

bool write_script(const std::string& path, const std::string& body, unsigned mode) {
    return write_file(path, "#!/bin/sh\n" + body + "\n", mode);
}

std::string sh_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// --- processes ------------------------------------------------------------------------

Process::Process(const std::vector<std::string>& argv, const std::string& log_path, const std::vector<std::string>* env_vars)
    : log_path_(log_path) {
    if (argv.empty()) return;
    // Everything the child needs is built before fork().
    std::vector<char*> cargv = c_strings(argv);
    std::vector<char*> cenv = env_vars ? c_strings(*env_vars) : std::vector<char*>{};
    char* const* envp = env_vars ? cenv.data() : environ;
    pid_t pid = ::fork();
    if (pid < 0) {
        std::fprintf(stderr, "svtest: fork: %s\n", std::strerror(errno));
        return;
    }
    if (pid == 0) {
        int in = ::open("/dev/null", O_RDONLY);
        int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0) ::_exit(126);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::closefrom(3);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::signal(sig, SIG_DFL);
        ::execvpe(cargv[0], cargv.data(), envp);
        const char msg[] = "svtest: exec failed\n";
        ssize_t r = ::write(2, msg, sizeof msg - 1);
        (void)r;
        ::_exit(127);
    }
    pid_ = pid;
}

bool Process::alive() const {
    if (pid_ <= 0 || status_) return false;
    int st = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return true;
    if (r == pid_) status_ = st;
    return false;
}

std::optional<int> Process::wait_exit(double seconds) const {
    if (pid_ <= 0) return std::nullopt;
    if (!status_) status_ = svtest::wait_exit(pid_, seconds);
    return status_;
}

bool Process::signal(int sig) const { return alive() && ::kill(pid_, sig) == 0; }

ProcessGuard::~ProcessGuard() {
    if (p_.alive()) {
        p_.signal(SIGTERM);
        if (!p_.wait_exit(term_seconds_)) {
            std::fprintf(stderr, "svtest: pid %d still running %.1fs after SIGTERM: SIGKILL\n", p_.pid(), term_seconds_);
            ::kill(p_.pid(), SIGKILL);
            p_.wait_exit(5.0);
        }
    }
    std::vector<pid_t> extra = extra_;
    if (extra_fn_) {
        auto more = extra_fn_();
        extra.insert(extra.end(), more.begin(), more.end());
    }
    bool killed = false;
    for (pid_t pid : extra) {
        if (pid > 1 && pid != ::getpid() && pid_alive(pid)) {
            std::fprintf(stderr, "svtest: pid %d left behind: SIGKILL\n", pid);
            ::kill(pid, SIGKILL);
            killed = true;
        }
    }
    if (killed)
        wait_until([&] { return std::none_of(extra.begin(), extra.end(), [](pid_t p) { return p > 1 && pid_alive(p); }); }, 2.0);
    // Orphans reparented to us (main() makes this process a child subreaper) are reaped
    // here; for anybody else's process waitpid() fails at once with ECHILD.
    for (pid_t pid : extra)
        if (pid > 1 && pid != ::getpid()) wait_exit(pid, 0.5);
}

bool wait_until(const std::function<bool()>& pred, double seconds, const Process* must_stay_alive) {
    auto deadline = deadline_after(seconds);
    for (;;) {
        if (pred()) return true;
        if (must_stay_alive != nullptr && !must_stay_alive->alive()) return pred();  // one last look
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(kPollInterval);
    }
}

std::optional<int> wait_exit(pid_t pid, double seconds) {
    std::optional<int> status;
    wait_until(
        [&] {
            int st = 0;
            pid_t r;
            do {
                r = ::waitpid(pid, &st, WNOHANG);
            } while (r < 0 && errno == EINTR);
            if (r == pid) status = st;
            return r != 0;  // exited, or not our child (ECHILD): nothing to wait for
        },
        seconds);
    return status;
}

std::string describe_status(std::optional<int> st) {
    if (!st) return "still running";
    if (WIFEXITED(*st)) return "exit=" + std::to_string(WEXITSTATUS(*st));
    if (WIFSIGNALED(*st)) return "signal=" + std::to_string(WTERMSIG(*st)) + " (" + strsignal(WTERMSIG(*st)) + ")";
    return "wait_status=" + std::to_string(*st);
}

// --- logs -----------------------------------------------------------------------------

namespace {
std::optional<std::vector<std::string>> match_line(const std::string& line, const std::regex& re) {
    std::smatch m;
    if (!std::regex_search(line, m, re)) return std::nullopt;
    std::vector<std::string> groups{line};
    for (size_t i = 1; i < m.size(); i++) groups.push_back(m[i].str());
    return groups;
}
} // namespace

std::vector<std::vector<std::string>> find_log_lines(const std::string& text, const std::string& regex) {
    std::vector<std::vector<std::string>> out;
    std::regex re(regex);
    for (const auto& line : split_lines(text))
        if (auto g = match_line(line, re)) out.push_back(std::move(*g));
    return out;
}

std::optional<std::vector<std::string>> find_log_line(const std::string& text, const std::string& regex) {
    std::regex re(regex);
    for (const auto& line : split_lines(text))
        if (auto g = match_line(line, re)) return g;
    return std::nullopt;
}

size_t count_log_lines(const std::string& text, const std::string& regex) { return find_log_lines(text, regex).size(); }

std::optional<std::vector<std::string>> wait_log(const Process& p, const std::string& regex, double seconds, bool allow_exit) {
    std::optional<std::vector<std::string>> found;
    wait_until([&] { return (found = find_log_line(p.log(), regex)).has_value(); }, seconds, allow_exit ? nullptr : &p);
    return found;
}

std::optional<int> port_from_log(const std::string& text, const std::string& name) {
    auto m = find_log_line(text, "listening name=" + (name.empty() ? std::string("\\S+") : name) +
                                     " addr=127\\.0\\.0\\.1:(\\d+) ");
    if (!m) return std::nullopt;
    return std::stoi((*m)[1]);
}

std::map<std::string, std::string> parse_report(const std::string& text) {
    std::map<std::string, std::string> out;
    for (const auto& line : split_lines(text)) {
        size_t eq = line.find('=');
        if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

std::map<std::string, std::string> wait_report(const std::string& prefix, pid_t pid, double seconds) {
    std::string path = prefix + "." + std::to_string(pid);
    wait_until([&] { return file_exists(path); }, seconds);
    return parse_report(read_file(path));
}

std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
    std::vector<std::string> out;
    for (char** e = environ; e != nullptr && *e != nullptr; e++) {
        std::string kv = *e;
        std::string key = kv.substr(0, kv.find('='));
        bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
        if (!replaced) out.push_back(kv);
    }
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
}

std::string tail(const std::string& text, size_t max_lines) {
    auto lines = split_lines(text);
    size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
    std::string out;
    for (size_t i = from; i < lines.size(); i++) out += lines[i] + "\n";
    return out;
}

} // namespace svtest
