// Integration harness (see harness.h).
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
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

timeval to_timeval(double seconds) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(seconds);
    tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1000;
    return tv;
}

std::optional<Response> parse_response(const std::string& raw) {
    size_t head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos) return std::nullopt;
    auto lines = split_lines(raw.substr(0, head_end));
    if (lines.empty()) return std::nullopt;
    Response r;
    std::smatch m;
    std::string status_line = lines[0];
    if (!status_line.empty() && status_line.back() == '\r') status_line.pop_back();
    if (!std::regex_match(status_line, m, std::regex(R"(HTTP/1\.[01] (\d{3})( .*)?)"))) return std::nullopt;
    r.status = std::stoi(m[1]);
    for (size_t i = 1; i < lines.size(); i++) {
        std::string l = lines[i];
        if (!l.empty() && l.back() == '\r') l.pop_back();
        size_t colon = l.find(':');
        if (colon == std::string::npos) continue;
        std::string name = l.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        size_t v = l.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : l.substr(v);
    }
    r.body = raw.substr(head_end + 4);
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
        size_t len = std::strtoul(it->second.c_str(), nullptr, 10);
        if (r.body.size() < len) return std::nullopt;  // cut short: a failed request
        r.body.resize(len);
    }
    return r;
}

// Sends the request on a connected socket and reads the response to EOF.
std::optional<Response> exchange(int fd, const std::string& path) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    size_t off = 0;
    while (off < req.size()) {
        ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        off += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;  // timeout or reset
        if (n == 0) break;
        raw.append(buf, static_cast<size_t>(n));
    }
    return parse_response(raw);
}

int connected_socket(int family, const sockaddr* sa, socklen_t len, double timeout) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv = to_timeval(timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect(2) too
    int rc;
    do {
        rc = ::connect(fd, sa, len);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

int connect_tcp(int port, double timeout) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connected_socket(AF_INET, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout);
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

bool pid_alive(pid_t pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) < 0 && errno != EPERM) return false;
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) return false;  // gone meanwhile
    char state = stat[paren + 2];
    return state != 'Z' && state != 'X' && state != 'x';
}

pid_t pgid_of(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream in(stat.substr(paren + 1));
    std::string state;
    long ppid = 0, pgrp = -1;
    in >> state >> ppid >> pgrp;
    return in ? static_cast<pid_t>(pgrp) : -1;
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

// --- network --------------------------------------------------------------------------

std::optional<Response> http_get(int port, const std::string& path, double timeout) {
    int fd = connect_tcp(port, timeout);
    if (fd < 0) return std::nullopt;
    auto r = exchange(fd, path);
    ::close(fd);
    return r;
}

std::optional<Response> http_get_unix(const std::string& socket_path, const std::string& path, double timeout) {
    sockaddr_un sa{};
    if (socket_path.size() >= sizeof sa.sun_path) return std::nullopt;
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size());
    int fd = connected_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout);
    if (fd < 0) return std::nullopt;
    auto r = exchange(fd, path);
    ::close(fd);
    return r;
}

bool can_connect(int port) {
    int fd = connect_tcp(port, 1.0);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

std::optional<Response> wait_served_by(const std::function<std::optional<Response>()>& get, long pid, double seconds) {
    std::optional<Response> last;
    bool ok = wait_until(
        [&] {
            last = get();
            return last && last->status == 200 && parse_pid_gen(last->body).first == pid;
        },
        seconds);
    return ok ? last : std::nullopt;
}

std::optional<Response> wait_served_by(int port, long pid, double seconds) {
    return wait_served_by([port] { return http_get(port); }, pid, seconds);
}

std::pair<long, long> parse_pid_gen(const std::string& body) {
    std::smatch m;
    if (!std::regex_search(body, m, std::regex(R"(pid=(\d+) gen=(\d+))"))) return {-1, -1};
    return {std::stol(m[1]), std::stol(m[2])};
}

bool send_notify(const std::string& socket, const std::string& text) {
    sockaddr_un sa{};
    if (socket.empty() || socket.size() >= sizeof sa.sun_path) return false;
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, socket.c_str(), socket.size());
    bool abstract = socket[0] == '@';
    if (abstract) sa.sun_path[0] = '\0';
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() + (abstract ? 0 : 1));
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ssize_t n = ::sendto(fd, text.data(), text.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
    ::close(fd);
    return n == static_cast<ssize_t>(text.size());
}

NotifyListener::NotifyListener() {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)) < 0) return;  // autobind: unix(7)
    socklen_t len = sizeof sa;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return;
    size_t n = len - offsetof(sockaddr_un, sun_path);
    if (n >= 2 && sa.sun_path[0] == '\0') name_ = "@" + std::string(sa.sun_path + 1, n - 1);
}

NotifyListener::~NotifyListener() {
    if (fd_ >= 0) ::close(fd_);
}

std::optional<std::string> NotifyListener::receive(double seconds) {
    if (fd_ < 0) return std::nullopt;
    timeval tv = to_timeval(seconds);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n;
    do {
        n = ::recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> NotifyListener::receive_until(const std::string& needle, double seconds) {
    auto deadline = deadline_after(seconds);
    for (;;) {
        double left = std::chrono::duration<double>(deadline - Clock::now()).count();
        if (left <= 0) return std::nullopt;
        auto d = receive(left);
        if (!d) return std::nullopt;
        if (d->find(needle) != std::string::npos) return d;
    }
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

// --- the supervisor under test ----------------------------------------------------------

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

std::string report_prefix(const TempDir& dir) { return dir.file("report"); }

std::string fake_exec(const TempDir& dir, const std::string& args) {
    return "exec " + sh_quote(bins().fake_worker) + " --report " + sh_quote(report_prefix(dir)) +
           (args.empty() ? "" : " " + args);
}

std::string tail(const std::string& text, size_t max_lines) {
    auto lines = split_lines(text);
    size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
    std::string out;
    for (size_t i = from; i < lines.size(); i++) out += lines[i] + "\n";
    return out;
}

} // namespace svtest
