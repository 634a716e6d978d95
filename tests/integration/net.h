// Loopback networking for tests: HTTP GETs, sd_notify datagrams, a stand-in for systemd's
// notify socket, and raw sockets for feeding the control socket or holding a port.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace svtest {

struct Response {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-cased names
};

// GET over a fresh connection to 127.0.0.1:port (HTTP/1.0, Connection: close), reading to
// EOF with SO_RCVTIMEO; nullopt on any failure (refused, reset, timeout, bad response).
std::optional<Response> http_get(int port, const std::string& path = "/", double timeout = 2.0);
// The same over a unix stream socket.
std::optional<Response> http_get_unix(const std::string& socket_path, const std::string& path = "/",
                                      double timeout = 2.0);
// One GET to 127.0.0.1:port answered 200 by a worker ("pid=… gen=…"); otherwise false,
// and *why (when still empty) says how the first failure looked.
bool get_ok(int port, std::string* why);
// True when a TCP connect to 127.0.0.1:port succeeds.
bool can_connect(int port);
// After an upgrade the old generation may still accept a connection or two until it
// handles the drain signal: requests (each a fresh connection, via `get`) until one is
// answered by `pid`, for up to `seconds`. That response, or nullopt.
std::optional<Response> wait_served_by(const std::function<std::optional<Response>()>& get, long pid, double seconds = 3.0);
std::optional<Response> wait_served_by(int port, long pid, double seconds = 3.0);
// "pid=123 gen=4" → {123, 4}; {-1, -1} when malformed.
std::pair<long, long> parse_pid_gen(const std::string& body);
// Sends one datagram to an sd_notify socket ("@abstract" or a path) from this process.
bool send_notify(const std::string& socket, const std::string& text);

// An abstract unix datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifyListener {
public:
    NotifyListener();
    ~NotifyListener();
    NotifyListener(const NotifyListener&) = delete;
    NotifyListener& operator=(const NotifyListener&) = delete;
    const std::string& name() const { return name_; }  // "@…"; empty when setup failed
    // The next datagram, waiting up to `seconds`.
    std::optional<std::string> receive(double seconds);
    // Datagrams until one contains `needle` (bounded); that one, or nullopt.
    std::optional<std::string> receive_until(const std::string& needle, double seconds);

private:
    int fd_ = -1;
    std::string name_;
};

// Raw sockets. In a namespace of their own (call them as net::connect_unix(…)) so that
// test files which still define helpers of these names keep compiling.
namespace net {

// An fd closed by the destructor (-1: none).
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd();
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release();
    void reset();

private:
    int fd_;
};

// A unix stream socket connected to `path`, with receive and send timeouts; invalid on failure.
Fd connect_unix(const std::string& path, double timeout = 3.0);
// Sends what it can of `data` (stops at an error or the send timeout); the bytes sent.
size_t send_some(int fd, const std::string& data);
// Reads lines until `max_lines`, EOF, an error or the socket's timeout; *eof tells
// whether the peer closed (EOF or reset).
std::vector<std::string> read_lines(int fd, size_t max_lines, bool* eof = nullptr);
// One connection to a unix socket: sends `data`, reads up to `replies` lines (bounded).
std::vector<std::string> exchange_lines(const std::string& path, const std::string& data, size_t replies);

// A TCP socket bound to 127.0.0.1:0 and listening (a port somebody else holds); *port is
// its port. Invalid on failure.
Fd listen_loopback(int* port);
// A unix stream socket bound to `path`, listening when `listen` (else left unlistened, as a
// crashed server leaves its file). Invalid on failure.
Fd bind_unix(const std::string& path, bool listen);
// A free 127.0.0.1 port: bound to 0, read back, closed (another process could take it
// before it is used again: only for tools that need a number). 0 on failure.
int free_port();
// Binds 127.0.0.1:port with SO_REUSEADDR and, optionally, SO_REUSEPORT: 0 if that
// worked, else the errno.
int try_bind(int port, bool reuseport);

} // namespace net

} // namespace svtest
