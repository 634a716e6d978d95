// The HTTP endpoint (--http): a small HTTP/1.1 server on the supervisor's loop for health
// probes and metrics scrapes. One request per connection, answered and closed. Bounded: a
// cap on clients (past it: 503 and closed at once), a head size limit (431), and a deadline
// per connection from accept to the answer (slow clients are closed, 408 if they sent nothing
// complete). Never one of the workers' listeners, and close-on-exec: workers never inherit it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "supervisor/address.h"
#include "supervisor/http_request.h"
#include "supervisor/parse.h"
#include "supervisor/result.h"

namespace sv {

constexpr size_t kDefaultHttpMaxClients = 128;
constexpr Millis kDefaultHttpRequestTimeout{5'000};

struct HttpLimits {
    size_t max_clients = kDefaultHttpMaxClients;
    Millis request_timeout = kDefaultHttpRequestTimeout;  // accept → answer written, or closed
    size_t max_head = kHttpMaxHead;
};

class HttpServer {
public:
    // Answers a routed request (not NotFound/MethodNotAllowed: the server answers those).
    using Handler = std::function<HttpResponse(HttpRoute)>;

    // Binds `where` (TCP host:port with a literal address, or unix:PATH with mode 0600 as the
    // control socket). Errors name the address.
    static Result<std::unique_ptr<HttpServer>> create(uv_loop_t* loop, const ListenSpec& where, Handler handler,
                                                      HttpLimits limits = {});
    // Takes over a listening socket a previous image bound (`ctl reexec`): refused unless it
    // is a listening stream socket bound to `where` (`carried`: the address it was shown as,
    // which fixes the port when `where` asked for port 0).
    static Result<std::unique_ptr<HttpServer>> adopt(uv_loop_t* loop, int fd, const ListenSpec& where,
                                                     const std::string& carried, ino_t inode, Handler handler,
                                                     HttpLimits limits = {});
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // "127.0.0.1:9180" (the bound port when 0 was asked), "[::1]:9180", "unix:/run/x.sock".
    const std::string& address() const { return address_; }
    // The listening socket's fd (-1: closed) and, for unix:PATH, the socket file's inode.
    int listener_fd() const;
    ino_t inode() const { return inode_; }
    // Closes the listener and every client; removes the socket file.
    void close();

    struct Client;  // defined in the .cpp

private:
    HttpServer() = default;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_sweep(uv_timer_t* t) noexcept;
    static std::unique_ptr<HttpServer> make(uv_loop_t* loop, Handler handler, HttpLimits limits);
    Result<Ok> open_fd(int fd, const ListenSpec& where, const std::string& carried);
    Result<Ok> bind_tcp(const ListenSpec& where);
    Result<Ok> bind_unix(const ListenSpec& where);
    void accept_one();
    void consume(Client* c, const char* data, size_t n);
    void answer(Client* c, const HttpResponse& r, bool head_only);
    void drop(Client* c);
    void sweep();
    void arm_sweep();

    uv_stream_t* server_ = nullptr;
    bool is_unix_ = false;
    std::string address_, unix_path_;
    ino_t inode_ = 0;
    Handler handler_;
    HttpLimits limits_;
    uv_timer_t* sweep_ = nullptr;  // set for the oldest client's deadline; stopped when none
    bool at_cap_ = false;
    uint64_t refused_in_burst_ = 0;
    std::map<uint64_t, Client*> clients_;  // by id: accept order, so the first has the earliest deadline
    uint64_t next_id_ = 1;
};

} // namespace sv
