// The HTTP endpoint on libuv streams (TCP or unix), modelled on the control socket's limits.
#include "supervisor/http_server.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include <spdlog/spdlog.h>

#include "supervisor/listeners.h"

namespace sv {

struct HttpServer::Client {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;  // first: the handle converts to the Client
    HttpServer* server = nullptr;
    uint64_t id = 0;
    uint64_t deadline_ms = 0;  // uv_now at which it is closed, answered or not
    std::string buf;           // at most max_head + one read
    bool closing = false;
    bool answered = false;     // the answer is being written: no more reading
};

namespace {

struct WriteReq {
    uv_write_t req;
    std::string data;
};

uv_handle_t* handle_of(HttpServer::Client* c) { return reinterpret_cast<uv_handle_t*>(&c->h); }
uv_stream_t* stream_of(HttpServer::Client* c) { return reinterpret_cast<uv_stream_t*>(&c->h); }
void free_client(uv_handle_t* h) { delete reinterpret_cast<HttpServer::Client*>(h); }

std::string uv_error(const std::string& what, int rc) { return what + ": " + uv_strerror(rc); }

// "" when fd is an open listening stream socket, else what it is not.
std::string listening_stream_problem(int fd) {
    struct stat sb{};
    if (::fstat(fd, &sb) < 0) return "is not open";
    if (!S_ISSOCK(sb.st_mode)) return "is not a socket";
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM) return "is not a stream socket";
    len = sizeof v;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || v != 1) return "is not a listening socket";
    return "";
}

// The address a socket is bound to, written as address() shows it ("" if none of ours).
std::string bound_address(int fd) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return "";
    char host[INET6_ADDRSTRLEN] = "";
    if (sa.ss_family == AF_INET) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&sa);
        ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        return fmt::format("{}:{}", host, ntohs(v4->sin_port));
    }
    if (sa.ss_family == AF_INET6) {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa);
        ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        return fmt::format("[{}]:{}", host, ntohs(v6->sin6_port));
    }
    if (sa.ss_family == AF_UNIX && len > offsetof(sockaddr_un, sun_path)) {
        auto* un = reinterpret_cast<sockaddr_un*>(&sa);
        return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, len - offsetof(sockaddr_un, sun_path)));
    }
    return "";
}

// The address --http asks for, in bound_address()'s words; port 0 takes the carried port.
std::string expected_address(const ListenSpec& where, const std::string& carried) {
    if (where.kind == ListenSpec::Kind::Unix) return "unix:" + where.path;
    unsigned char raw[sizeof(in6_addr)];
    char host[INET6_ADDRSTRLEN] = "";
    bool v4 = ::inet_pton(AF_INET, where.host.c_str(), raw) == 1;
    if (!v4 && ::inet_pton(AF_INET6, where.host.c_str(), raw) != 1) return "(not a literal address)";
    ::inet_ntop(v4 ? AF_INET : AF_INET6, raw, host, sizeof host);
    std::string prefix = v4 ? fmt::format("{}:", host) : fmt::format("[{}]:", host);
    if (where.port != 0) return prefix + std::to_string(where.port);
    return carried.rfind(prefix, 0) == 0 ? carried : prefix + "(the carried port)";
}

} // namespace

std::unique_ptr<HttpServer> HttpServer::make(uv_loop_t* loop, Handler handler, HttpLimits limits) {
    std::unique_ptr<HttpServer> s(new HttpServer());
    s->handler_ = std::move(handler);
    s->limits_ = limits;
    s->sweep_ = new uv_timer_t{};
    uv_timer_init(loop, s->sweep_);
    s->sweep_->data = s.get();
    return s;
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(uv_loop_t* loop, const ListenSpec& where, Handler handler,
                                                       HttpLimits limits) {
    auto s = make(loop, std::move(handler), limits);
    auto bound = where.kind == ListenSpec::Kind::Unix ? s->bind_unix(where) : s->bind_tcp(where);
    if (!bound) return bound.error();
    s->server_->data = s.get();
    if (int rc = uv_listen(s->server_, 128, on_connection); rc < 0)
        return Error{-rc, uv_error("cannot listen on --http " + where.text, rc)};
    return s;
}

Result<std::unique_ptr<HttpServer>> HttpServer::adopt(uv_loop_t* loop, int fd, const ListenSpec& where,
                                                      const std::string& carried, ino_t inode, Handler handler,
                                                      HttpLimits limits) {
    auto s = make(loop, std::move(handler), limits);
    if (auto r = s->open_fd(fd, where, carried); !r) return r.error();
    s->inode_ = inode;
    s->server_->data = s.get();
    if (int rc = uv_listen(s->server_, 128, on_connection); rc < 0)
        return Error{-rc, uv_error("cannot listen on the carried --http " + where.text, rc)};
    return s;
}

int HttpServer::listener_fd() const {
    uv_os_fd_t fd = -1;
    if (server_ == nullptr || uv_fileno(reinterpret_cast<const uv_handle_t*>(server_), &fd) < 0) return -1;
    return fd;
}

Result<Ok> HttpServer::open_fd(int fd, const ListenSpec& where, const std::string& carried) {
    std::string what = "the carried --http fd " + std::to_string(fd);
    if (auto p = listening_stream_problem(fd); !p.empty()) return Error{EINVAL, what + " " + p};
    std::string bound = bound_address(fd);
    std::string want = expected_address(where, carried);
    if (bound != want) return Error{EINVAL, what + " is bound to '" + bound + "', not to --http " + where.text};
    address_ = bound;
    if (where.kind == ListenSpec::Kind::Unix) {
        auto* pipe = new uv_pipe_t{};
        uv_pipe_init(sweep_->loop, pipe, 0);
        server_ = reinterpret_cast<uv_stream_t*>(pipe);
        is_unix_ = true;
        unix_path_ = where.path;
        if (int rc = uv_pipe_open(pipe, fd); rc < 0) return Error{-rc, uv_error("cannot take over " + what, rc)};
        return Ok{};
    }
    auto* tcp = new uv_tcp_t{};
    uv_tcp_init(sweep_->loop, tcp);
    server_ = reinterpret_cast<uv_stream_t*>(tcp);
    if (int rc = uv_tcp_open(tcp, fd); rc < 0) return Error{-rc, uv_error("cannot take over " + what, rc)};
    return Ok{};
}

Result<Ok> HttpServer::bind_tcp(const ListenSpec& where) {
    sockaddr_storage sa{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&sa);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa);
    bool is_v6 = uv_ip4_addr(where.host.c_str(), where.port, v4) != 0;
    if (where.host.empty() || (is_v6 && uv_ip6_addr(where.host.c_str(), where.port, v6) != 0))
        return Error{EINVAL, "invalid --http '" + where.text + "': expected a literal address and port "
                             "(127.0.0.1:9180, [::1]:9180, 0.0.0.0:9180) or unix:PATH"};
    auto* tcp = new uv_tcp_t{};
    uv_tcp_init_ex(sweep_->loop, tcp, is_v6 ? AF_INET6 : AF_INET);
    server_ = reinterpret_cast<uv_stream_t*>(tcp);
    if (int rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&sa), is_v6 ? UV_TCP_IPV6ONLY : 0); rc < 0)
        return Error{-rc, uv_error("cannot bind --http " + where.text, rc)};
    sockaddr_storage got{};
    int len = sizeof got;
    char host[INET6_ADDRSTRLEN] = "";
    int port = where.port;
    if (uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&got), &len) == 0) {
        if (is_v6) uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&got), host, sizeof host);
        else uv_ip4_name(reinterpret_cast<sockaddr_in*>(&got), host, sizeof host);
        port = ntohs(is_v6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
    }
    address_ = is_v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
    return Ok{};
}

Result<Ok> HttpServer::bind_unix(const ListenSpec& where) {
    if (auto r = clear_stale_unix_socket(where.path, "--http " + where.text); !r) return r.error();
    auto* pipe = new uv_pipe_t{};
    uv_pipe_init(sweep_->loop, pipe, 0);
    server_ = reinterpret_cast<uv_stream_t*>(pipe);
    mode_t old = ::umask(0177);  // 0600 from the start, as the control socket
    int rc = uv_pipe_bind(pipe, where.path.c_str());
    ::umask(old);
    if (rc < 0) return Error{-rc, uv_error("cannot bind --http " + where.text, rc)};
    struct stat st{};
    if (::stat(where.path.c_str(), &st) == 0) inode_ = st.st_ino;
    is_unix_ = true;
    unix_path_ = where.path;
    address_ = "unix:" + where.path;
    return Ok{};
}

HttpServer::~HttpServer() { close(); }

void HttpServer::close() {
    for (auto& [id, c] : clients_) {
        c->closing = true;
        uv_close(handle_of(c), free_client);
    }
    clients_.clear();
    if (sweep_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(sweep_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        sweep_ = nullptr;
    }
    if (server_ != nullptr) {
        bool is_unix = is_unix_;
        uv_close(reinterpret_cast<uv_handle_t*>(server_), [](uv_handle_t* h) {
            if (h->type == UV_NAMED_PIPE) delete reinterpret_cast<uv_pipe_t*>(h);
            else delete reinterpret_cast<uv_tcp_t*>(h);
        });
        server_ = nullptr;
        struct stat st{};
        if (is_unix && ::stat(unix_path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(unix_path_.c_str());
    }
}

void HttpServer::on_connection(uv_stream_t* server, int status) noexcept {
    auto* self = static_cast<HttpServer*>(server->data);
    if (status < 0) {
        spdlog::warn("http: accept error: {}", uv_strerror(status));
        return;
    }
    self->accept_one();
}

void HttpServer::accept_one() {
    auto* c = new Client{};
    if (is_unix_) uv_pipe_init(server_->loop, &c->h.pipe, 0);
    else uv_tcp_init(server_->loop, &c->h.tcp);
    c->server = this;
    c->id = next_id_++;
    handle_of(c)->data = c;
    if (uv_accept(server_, stream_of(c)) < 0) {
        uv_close(handle_of(c), free_client);
        return;
    }
    if (clients_.size() >= limits_.max_clients) {
        // Refused without waiting: a try_write of a short answer (or nothing), then closed.
        if (!at_cap_) {
            spdlog::warn("http: clients at the cap ({}): answering 503 to new connections until some close",
                         limits_.max_clients);
            refused_in_burst_ = 0;
        }
        at_cap_ = true;
        refused_in_burst_++;
        std::string text = format_http_response({503, "text/plain; charset=utf-8", "too many clients\n"});
        uv_buf_t b = uv_buf_init(text.data(), static_cast<unsigned>(text.size()));
        (void)uv_try_write(stream_of(c), &b, 1);
        uv_close(handle_of(c), free_client);
        return;
    }
    if (at_cap_) spdlog::info("http: clients below the cap ({}) again: {} connection(s) were refused", limits_.max_clients,
                              refused_in_burst_);
    at_cap_ = false;
    c->deadline_ms = uv_now(server_->loop) + static_cast<uint64_t>(limits_.request_timeout.count());
    clients_[c->id] = c;
    uv_read_start(stream_of(c), on_alloc, on_read);
    arm_sweep();
}

void HttpServer::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    static char slab[16 * 1024];  // one loop thread: each read is consumed before the next alloc
    *buf = uv_buf_init(slab, sizeof slab);
}

void HttpServer::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Client*>(s->data);
    if (nread < 0) {
        c->server->drop(c);  // EOF before a complete head, or an error: nobody to answer
        return;
    }
    c->server->consume(c, buf->base, static_cast<size_t>(nread));
}

void HttpServer::consume(Client* c, const char* data, size_t n) {
    c->buf.append(data, std::min(n, limits_.max_head + 1 - std::min(c->buf.size(), limits_.max_head + 1)));
    HttpParse p = parse_http_request(c->buf, limits_.max_head);
    switch (p.state) {
    case HttpParse::State::Incomplete: return;
    case HttpParse::State::Bad:
        spdlog::debug("http: {} {}", p.status, p.why);
        answer(c, {p.status, "text/plain; charset=utf-8", p.why + "\n"}, false);
        return;
    case HttpParse::State::Done: break;
    }
    bool head = p.request.method == "HEAD";
    HttpRoute route = route_http_request(p.request);
    switch (route) {
    case HttpRoute::NotFound:
        answer(c, {404, "text/plain; charset=utf-8", "not found: try /healthz, /readyz, /metrics or /status\n"}, head);
        return;
    case HttpRoute::MethodNotAllowed:
        answer(c, {405, "text/plain; charset=utf-8", "only GET and HEAD\n"}, head);
        return;
    case HttpRoute::Healthz:
    case HttpRoute::Readyz:
    case HttpRoute::Metrics:
    case HttpRoute::Status: answer(c, handler_(route), head); return;
    }
}

// Written once, then closed (Connection: close): the write's callback closes the stream.
void HttpServer::answer(Client* c, const HttpResponse& r, bool head_only) {
    c->answered = true;
    uv_read_stop(stream_of(c));
    auto* w = new WriteReq{};
    w->data = format_http_response(r, head_only);
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, stream_of(c), &b, 1, [](uv_write_t* req, int) {
        auto* cl = static_cast<Client*>(req->data);
        delete reinterpret_cast<WriteReq*>(req);
        if (!cl->closing) cl->server->drop(cl);  // closed already: the write was cancelled
    });
    if (rc < 0) {
        delete w;
        drop(c);
    }
}

void HttpServer::drop(Client* c) {
    if (c->closing) return;
    c->closing = true;
    clients_.erase(c->id);
    // A pending write completes (ECANCELED) before the close callback frees the client.
    uv_close(handle_of(c), free_client);
    if (clients_.empty() && sweep_ != nullptr) uv_timer_stop(sweep_);
}

void HttpServer::on_sweep(uv_timer_t* t) noexcept { static_cast<HttpServer*>(t->data)->sweep(); }

// Closes every client past its deadline: a slow sender (slowloris) or a reader that never
// reads its answer. Told 408 when it had not sent a complete head (best effort, no waiting).
void HttpServer::sweep() {
    uint64_t now = uv_now(server_->loop);
    std::vector<Client*> late;
    for (auto& [id, c] : clients_) {
        if (c->deadline_ms > now) break;  // accept order: the rest are later
        late.push_back(c);
    }
    if (!late.empty()) spdlog::debug("http: closing {} client(s) past the request timeout", late.size());
    for (Client* c : late) {
        if (!c->answered) {
            std::string text = format_http_response({408, "text/plain; charset=utf-8", "request timeout\n"});
            uv_buf_t b = uv_buf_init(text.data(), static_cast<unsigned>(text.size()));
            (void)uv_try_write(stream_of(c), &b, 1);
        }
        drop(c);
    }
    arm_sweep();
}

void HttpServer::arm_sweep() {
    if (sweep_ == nullptr || clients_.empty()) return;
    uint64_t due = clients_.begin()->second->deadline_ms;
    uint64_t now = uv_now(server_->loop);
    uv_timer_start(sweep_, on_sweep, due > now ? due - now : 0, 0);
}

} // namespace sv
