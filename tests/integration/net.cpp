// Loopback networking for tests (see net.h).
#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <sstream>

#include "harness.h"

namespace svtest {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
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

sockaddr_in loopback(int port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

bool unix_address(const std::string& path, sockaddr_un* sa) {
    *sa = sockaddr_un{};
    if (path.size() >= sizeof sa->sun_path) return false;
    sa->sun_family = AF_UNIX;
    std::memcpy(sa->sun_path, path.c_str(), path.size());
    return true;
}

int connect_tcp(int port, double timeout) {
    sockaddr_in sa = loopback(port);
    return connected_socket(AF_INET, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout);
}

} // namespace

std::optional<Response> http_get(int port, const std::string& path, double timeout) {
    int fd = connect_tcp(port, timeout);
    if (fd < 0) return std::nullopt;
    auto r = exchange(fd, path);
    ::close(fd);
    return r;
}

std::optional<Response> http_get_unix(const std::string& socket_path, const std::string& path, double timeout) {
    sockaddr_un sa;
    if (!unix_address(socket_path, &sa)) return std::nullopt;
    int fd = connected_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout);
    if (fd < 0) return std::nullopt;
    auto r = exchange(fd, path);
    ::close(fd);
    return r;
}

bool get_ok(int port, std::string* why) {
    auto r = http_get(port, "/", 5.0);
    if (r && r->status == 200 && parse_pid_gen(r->body).first > 0) return true;
    if (why->empty())
        *why = r ? "status " + std::to_string(r->status) + " body '" + r->body + "'" : "no response (refused, reset or timeout)";
    return false;
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
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (;;) {
        double left = std::chrono::duration<double>(deadline - Clock::now()).count();
        if (left <= 0) return std::nullopt;
        auto d = receive(left);
        if (!d) return std::nullopt;
        if (d->find(needle) != std::string::npos) return d;
    }
}

namespace net {

Fd::~Fd() { reset(); }

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = other.release();
    }
    return *this;
}

int Fd::release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
}

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Fd connect_unix(const std::string& path, double timeout) {
    sockaddr_un sa;
    if (!unix_address(path, &sa)) return Fd();
    return Fd(connected_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout));
}

size_t send_some(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    return off;
}

std::vector<std::string> read_lines(int fd, size_t max_lines, bool* eof) {
    std::vector<std::string> out;
    std::string buf;
    char tmp[4096];
    bool closed = false;
    while (out.size() < max_lines) {
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 || (n < 0 && errno == ECONNRESET)) closed = true;
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
        for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) out.push_back(buf.substr(0, nl));
    }
    if (eof) *eof = closed;
    return out;
}

std::vector<std::string> exchange_lines(const std::string& path, const std::string& data, size_t replies) {
    Fd fd = connect_unix(path);
    if (!fd.valid() || send_some(fd.get(), data) != data.size()) return {};
    return read_lines(fd.get(), replies);
}

Fd listen_loopback(int* port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa = loopback(0);
    socklen_t len = sizeof sa;
    if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(fd.get(), 1) < 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) < 0)
        return Fd();
    *port = ntohs(sa.sin_port);
    return fd;
}

Fd bind_unix(const std::string& path, bool listen) {
    sockaddr_un sa;
    if (!unix_address(path, &sa)) return Fd();
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
        (listen && ::listen(fd.get(), 1) < 0))
        return Fd();
    return fd;
}

int free_port() {
    int port = 0;
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa = loopback(0);
    socklen_t len = sizeof sa;
    if (fd.valid() && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0)
        port = ntohs(sa.sin_port);
    return port;
}

int try_bind(int port, bool reuseport) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return errno;
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in sa = loopback(port);
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 ? 0 : errno;
}

} // namespace net

} // namespace svtest
