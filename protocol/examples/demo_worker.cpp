// demo_worker — a small HTTP/1.1 server on libuv that follows the worker
// contract of protocol/PROTOCOL.md: serve on the inherited listeners, send
// READY=1, and on SIGTERM, SIGQUIT or SIGINT drain and exit 0.
//
//   GET / → 200 "pid=<pid> gen=<generation>\n"; other paths 404, other methods 405.
//
// Listeners come from LISTEN_FDS (supervisor, systemd), else SERVER_STARTER_PORT
// (Server::Starter), else `--listen HOST:PORT` for manual runs.
#include <supervisor/worker.h>

#include <uv.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

constexpr size_t kMaxHeader = 16 * 1024;       // larger request heads get 431
constexpr size_t kMaxWriteQueue = 256 * 1024;  // stop reading from a client that does not read
constexpr uint64_t kLingerMs = 1000;           // longest wait for the client's FIN after ours
constexpr uint64_t kSweepMs = 25;              // granularity of the idle-grace and linger checks
constexpr int kMaxListeners = 64;
constexpr size_t kNpos = std::string_view::npos;

union Stream {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
};

struct Listener {
    Stream h;
    bool is_pipe = false;
    std::string name, source;
};

struct Conn {
    Stream h;
    std::string in;              // received bytes not parsed yet
    uint64_t skip = 0;           // request-body bytes still to discard
    uint64_t last_activity = 0;  // uv_now() of the last read or completed write
    uint64_t linger_since = 0;
    int writes = 0;              // uv_write requests in flight
    bool close_after_write = false, lingering = false, peer_eof = false, paused = false, closing = false;
};

struct WriteReq {
    uv_write_t req;
    std::string data;
};

struct Request {
    std::string_view method, target;
    bool http10 = false, close_token = false, keep_alive_token = false, has_length = false;
    uint64_t content_length = 0;
};

struct App {
    uv_loop_t* loop = nullptr;
    int pid = 0;
    long gen = 0;
    const char* release = nullptr;  // DEMO_RELEASE: a release name shown in every answer (fleet demo)
    uint64_t startup_delay_ms = 0, idle_grace_ms = 200;
    std::vector<const char*> listen_specs;
    std::vector<Listener*> listeners;
    int open_listeners = 0;
    std::unordered_set<Conn*> conns;
    uv_signal_t signals[3];
    uv_timer_t start_timer, sweep_timer;
    bool draining = false, finished = false;
    uint64_t drain_start = 0, accepted = 0, requests = 0;
    int exit_code = 0;
    char read_buf[64 * 1024];  // shared: libuv calls on_read right after on_alloc
};

App g;

// One write(2) per line, so that the lines of two generations never interleave.
void log_line(const char* fmt, ...) {
    char buf[600];
    int n = snprintf(buf, sizeof buf, "demo_worker pid=%d gen=%ld ", g.pid, g.gen);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - size_t(n) - 1, fmt, ap);
    va_end(ap);
    size_t len = std::min(sizeof buf - 2, size_t(n) + size_t(std::max(m, 0)));
    buf[len] = '\n';
    ssize_t r = write(STDERR_FILENO, buf, len + 1);
    (void)r;
}

// "250ms", "2s", "1m", or a bare number of milliseconds.
bool parse_duration(const char* s, uint64_t* ms) {
    char* end = nullptr;
    double v = strtod(s, &end);
    std::string_view unit(end);
    double scale = unit.empty() || unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : -1;
    if (end == s || !std::isfinite(v) || v < 0 || scale < 0) return false;
    *ms = uint64_t(v * scale + 0.5);
    return true;
}

Listener* add_listener(bool is_pipe, std::string name, const char* source) {
    auto* l = new Listener();
    l->is_pipe = is_pipe;
    l->name = std::move(name);
    l->source = source;
    if (is_pipe) uv_pipe_init(g.loop, &l->h.pipe, 0);
    else uv_tcp_init(g.loop, &l->h.tcp);
    l->h.handle.data = l;
    g.listeners.push_back(l);
    g.open_listeners++;
    return l;
}

// AF_UNIX listeners need a uv_pipe_t, every other family a uv_tcp_t.
bool adopt_fd(int fd, std::string name, const char* source) {
    int domain = 0, type = 0;
    socklen_t dlen = sizeof domain, tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) {
        fprintf(stderr, "demo_worker: cannot adopt fd %d from %s: not a stream socket\n", fd, source);
        return false;
    }
    Listener* l = add_listener(domain == AF_UNIX, std::move(name), source);
    int rc = l->is_pipe ? uv_pipe_open(&l->h.pipe, fd) : uv_tcp_open(&l->h.tcp, fd);
    if (rc != 0) fprintf(stderr, "demo_worker: cannot adopt fd %d from %s: %s\n", fd, source, uv_strerror(rc));
    return rc == 0;
}

// Server::Starter: "host:port=fd;port=fd;/path/to.sock=fd"; only the fds matter.
bool adopt_server_starter(std::string_view rest) {
    while (!rest.empty()) {
        size_t semi = rest.find(';'), eq = rest.substr(0, semi).rfind('=');
        std::string entry(rest.substr(0, semi));
        rest = semi == kNpos ? std::string_view() : rest.substr(semi + 1);
        char* end = nullptr;
        long fd = eq == kNpos ? -1 : strtol(entry.c_str() + eq + 1, &end, 10);
        if (entry.empty()) continue;
        if (fd < 0 || fd > 65535 || end == entry.c_str() + eq + 1 || *end != '\0') {
            fprintf(stderr, "demo_worker: cannot parse SERVER_STARTER_PORT entry '%s'\n", entry.c_str());
            return false;
        }
        int flags = fcntl(int(fd), F_GETFD);
        if (flags >= 0) fcntl(int(fd), F_SETFD, flags | FD_CLOEXEC);  // not for our children
        if (!adopt_fd(int(fd), entry.substr(0, eq), "SERVER_STARTER_PORT")) return false;
    }
    return true;
}

// --listen HOST:PORT, [V6]:PORT or PORT, for runs without a supervisor.
bool bind_listen_spec(const char* spec) {
    std::string s(spec);
    size_t colon = s.rfind(':');
    const char* port_s = colon == kNpos ? spec : spec + colon + 1;
    char* end = nullptr;
    long port = strtol(port_s, &end, 10);
    if (end == port_s || *end != '\0' || port < 0 || port > 65535) return false;
    std::string host = colon == kNpos ? "" : s.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    sockaddr_storage ss{};
    if (uv_ip4_addr(host.c_str(), int(port), reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
        uv_ip6_addr(host.c_str(), int(port), reinterpret_cast<sockaddr_in6*>(&ss)) != 0)
        return false;
    Listener* l = add_listener(false, spec, "--listen");
    return uv_tcp_bind(&l->h.tcp, reinterpret_cast<sockaddr*>(&ss), 0) == 0;
}

// ---- HTTP parsing: just enough of RFC 9112, strict where laxness is unsafe ----

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](unsigned char x, unsigned char y) { return tolower(x) == tolower(y); });
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char ch) {
        return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != nullptr);
    });
}

bool has_ctl(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char ch) { return (ch < 0x20 && ch != '\t') || ch == 0x7f; });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool parse_request_line(std::string_view line, Request* r) {
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == kNpos || sp1 == sp2) return false;
    r->method = line.substr(0, sp1);
    r->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    r->http10 = version == "HTTP/1.0";
    return is_token(r->method) && !r->target.empty() && !has_ctl(r->target) &&
           r->target.find_first_of(" \t") == kNpos && (r->http10 || version == "HTTP/1.1");
}

int parse_content_length(std::string_view v, Request* r) {
    uint64_t n = 0;
    if (v.empty() || v.size() > 15) return 400;
    for (char ch : v) {
        if (ch < '0' || ch > '9') return 400;
        n = n * 10 + uint64_t(ch - '0');
    }
    if (r->has_length && r->content_length != n) return 400;  // conflicting lengths invite smuggling
    r->has_length = true;
    r->content_length = n;
    return 0;
}

// Returns 0, or the status to answer with before closing.
int parse_header(std::string_view line, Request* r) {
    size_t colon = line.find(':');
    if (colon == kNpos) return 400;
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (!is_token(name) || has_ctl(value)) return 400;  // also rejects "Name :" and obs-fold
    if (iequals(name, "Content-Length")) return parse_content_length(value, r);
    if (iequals(name, "Transfer-Encoding")) return 501;  // no chunked request bodies here
    while (iequals(name, "Connection") && !value.empty()) {
        size_t comma = value.find(',');
        std::string_view token = trim(value.substr(0, comma));
        r->close_token |= iequals(token, "close");
        r->keep_alive_token |= iequals(token, "keep-alive");
        value = comma == kNpos ? std::string_view() : value.substr(comma + 1);
    }
    return 0;
}

int parse_request(std::string_view head, Request* r) {
    size_t eol = head.find("\r\n");
    if (!parse_request_line(head.substr(0, eol), r)) return 400;
    while (eol != kNpos) {
        size_t start = eol + 2;
        eol = head.find("\r\n", start);
        int status = parse_header(head.substr(start, eol == kNpos ? kNpos : eol - start), r);
        if (status != 0) return status;
    }
    return 0;
}

// ---- responses ----

const char* reason(int status) {
    return status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 404 ? "Not Found"
         : status == 405 ? "Method Not Allowed" : status == 431 ? "Request Header Fields Too Large"
         : "Not Implemented";
}

void append_response(std::string& out, int status, bool keep, bool http10) {
    char body[160], head[320];
    int blen = status != 200 ? snprintf(body, sizeof body, "%s\n", reason(status))
             : g.release     ? snprintf(body, sizeof body, "pid=%d gen=%ld release=%.64s\n", g.pid, g.gen, g.release)
                             : snprintf(body, sizeof body, "pid=%d gen=%ld\n", g.pid, g.gen);
    // An HTTP/1.0 client assumes close unless told otherwise.
    const char* conn = !keep ? "Connection: close\r\n" : http10 ? "Connection: keep-alive\r\n" : "";
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                        "X-Worker-Pid: %d\r\nX-Worker-Generation: %ld\r\n%s%s\r\n",
                        status, reason(status), blen, g.pid, g.gen, status == 405 ? "Allow: GET\r\n" : "", conn);
    out.append(head, size_t(hlen)).append(body, size_t(blen));
    g.requests++;
}

void handle_request(Conn* c, std::string_view head, std::string& out) {
    Request r;
    int status = parse_request(head, &r);
    // Once draining, every response says close, so the client reconnects to the next generation.
    bool keep = status == 0 && !g.draining && (r.http10 ? r.keep_alive_token : !r.close_token);
    if (status == 0) {
        std::string_view path = r.target.substr(0, r.target.find('?'));
        status = r.method != "GET" ? 405 : path == "/" ? 200 : 404;
        c->skip = r.content_length;
    }
    append_response(out, status, keep, r.http10);
    c->close_after_write = !keep;
}

// ---- connections ----

void close_conn(Conn* c);
void resume_reading(Conn* c);
void on_sweep(uv_timer_t*) noexcept;

void arm_sweep() {
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&g.sweep_timer)))
        uv_timer_start(&g.sweep_timer, on_sweep, kSweepMs, kSweepMs);
}

void on_shutdown(uv_shutdown_t* req, int status) noexcept {
    auto* c = static_cast<Conn*>(req->handle->data);
    delete req;
    if (status < 0 || c->peer_eof) close_conn(c);
}

// Half-close, then read until the client closes too: close(2) with unread
// bytes in the receive queue sends RST, which can destroy the response the
// client has not read yet.
void begin_linger(Conn* c) {
    auto* req = new uv_shutdown_t();
    if (uv_shutdown(req, &c->h.stream, on_shutdown) != 0) {
        delete req;
        close_conn(c);
        return;
    }
    c->lingering = true;
    c->linger_since = uv_now(g.loop);
    resume_reading(c);
    arm_sweep();
}

void on_write(uv_write_t* req, int status) noexcept {
    auto* c = static_cast<Conn*>(req->handle->data);
    delete static_cast<WriteReq*>(req->data);
    c->writes--;
    if (status < 0) return close_conn(c);  // EPIPE/ECONNRESET: client left; ECANCELED: we are closing
    c->last_activity = uv_now(g.loop);
    if (c->writes > 0 && uv_stream_get_write_queue_size(&c->h.stream) >= kMaxWriteQueue / 2) return;
    if (c->writes == 0 && c->peer_eof) close_conn(c);
    else if (c->writes == 0 && c->close_after_write) begin_linger(c);
    else resume_reading(c);
}

void send_out(Conn* c, std::string&& data) {
    auto* w = new WriteReq();
    w->data = std::move(data);
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data.data(), unsigned(w->data.size()));
    if (uv_write(&w->req, &c->h.stream, &buf, 1, on_write) != 0) {
        delete w;
        return close_conn(c);
    }
    c->writes++;
    if (!c->paused && uv_stream_get_write_queue_size(&c->h.stream) > kMaxWriteQueue) {
        uv_read_stop(&c->h.stream);
        c->paused = true;
    }
}

// Answers every complete request buffered in c->in, in order, with one write.
void process_input(Conn* c) {
    std::string out;
    size_t pos = 0;
    while (!c->close_after_write) {
        size_t body = size_t(std::min<uint64_t>(c->skip, c->in.size() - pos));
        c->skip -= body;
        pos += body;
        if (c->skip > 0) break;
        while (c->in.compare(pos, 2, "\r\n") == 0) pos += 2;  // RFC 9112 §2.2: ignore leading CRLFs
        size_t end = c->in.find("\r\n\r\n", pos);
        if ((end == kNpos ? c->in.size() : end) - pos > kMaxHeader) {
            append_response(out, 431, false, false);
            c->close_after_write = true;
        } else if (end != kNpos) {
            handle_request(c, std::string_view(c->in).substr(pos, end - pos), out);
            pos = end + 4;
        } else {
            break;
        }
    }
    c->in.erase(0, c->close_after_write ? kNpos : pos);
    if (c->close_after_write) c->skip = 0;
    if (!out.empty()) send_out(c, std::move(out));
}

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    *buf = uv_buf_init(g.read_buf, sizeof g.read_buf);
}

void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Conn*>(s->data);
    if (nread == 0) return;  // EAGAIN
    if (nread == UV_EOF) {
        c->peer_eof = true;
        // A half-closed client may still read: finish what is being written first.
        if (c->writes == 0 || c->lingering) close_conn(c);
        return;
    }
    if (nread < 0) return close_conn(c);  // ECONNRESET and friends
    c->last_activity = uv_now(g.loop);
    if (c->lingering || c->close_after_write) return;  // input after the last response is discarded
    c->in.append(buf->base, size_t(nread));
    process_input(c);
}

void resume_reading(Conn* c) {
    if (!c->paused || c->closing) return;
    c->paused = false;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0) close_conn(c);
}

void maybe_finish_drain() {
    if (!g.draining || g.finished || g.open_listeners > 0 || !g.conns.empty()) return;
    g.finished = true;
    log_line("drained connections=%llu requests=%llu drain_ms=%llu", (unsigned long long)g.accepted,
             (unsigned long long)g.requests, (unsigned long long)(uv_now(g.loop) - g.drain_start));
    uv_walk(g.loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
}

void on_conn_closed(uv_handle_t* h) noexcept {
    auto* c = static_cast<Conn*>(h->data);
    g.conns.erase(c);
    delete c;
    maybe_finish_drain();
}

void close_conn(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    uv_close(&c->h.handle, on_conn_closed);
}

void on_connection(uv_stream_t* server, int status) noexcept {
    if (status < 0) {  // EMFILE and the like; libuv keeps the listener armed
        log_line("warning=\"accept failed: %s\"", uv_strerror(status));
        return;
    }
    auto* l = static_cast<Listener*>(server->data);
    auto* c = new Conn();
    if (l->is_pipe) uv_pipe_init(g.loop, &c->h.pipe, 0);
    else uv_tcp_init(g.loop, &c->h.tcp);
    c->h.handle.data = c;
    c->last_activity = uv_now(g.loop);
    c->paused = true;
    g.conns.insert(c);
    if (uv_accept(server, &c->h.stream) != 0) return close_conn(c);
    g.accepted++;
    if (!l->is_pipe) uv_tcp_nodelay(&c->h.tcp, 1);  // pipelined responses must not wait for ACKs
    resume_reading(c);
}

// ---- lifecycle ----

bool is_idle(const Conn* c) {
    return !c->closing && !c->lingering && c->writes == 0 && c->skip == 0 && c->in.empty();
}

// Ends overlong lingers and, while draining, closes connections idle for the
// grace period: a client may have sent a request just before we looked, and
// closing at once would lose it.
void on_sweep(uv_timer_t*) noexcept {
    uint64_t now = uv_now(g.loop);
    bool lingering = false;
    for (Conn* c : g.conns) {
        if (c->lingering && !c->closing && now - c->linger_since < kLingerMs) lingering = true;
        else if (c->lingering) close_conn(c);
        else if (g.draining && is_idle(c) && now - std::max(g.drain_start, c->last_activity) >= g.idle_grace_ms)
            close_conn(c);
    }
    if (!lingering && !g.draining) uv_timer_stop(&g.sweep_timer);
}

void on_listener_closed(uv_handle_t* h) noexcept {
    delete static_cast<Listener*>(h->data);
    g.open_listeners--;
    maybe_finish_drain();
}

void begin_drain(const char* why) {
    g.draining = true;
    g.drain_start = uv_now(g.loop);
    log_line("drain start reason=%s open_connections=%zu", why, g.conns.size());
    sv_notify("STOPPING=1");
    uv_timer_stop(&g.start_timer);
    // Closes only our copy of each fd: queued connections wait for the next generation.
    for (Listener* l : g.listeners) uv_close(&l->h.handle, on_listener_closed);
    g.listeners.clear();
    arm_sweep();
}

void on_signal(uv_signal_t*, int signum) noexcept {
    const char* name = signum == SIGTERM ? "SIGTERM" : signum == SIGQUIT ? "SIGQUIT" : "SIGINT";
    if (g.draining) log_line("drain continues signal=%s open_connections=%zu", name, g.conns.size());
    else begin_drain(name);
}

void start_serving() {
    for (Listener* l : g.listeners) {
        uv_os_fd_t fd = -1;
        uv_fileno(&l->h.handle, &fd);
        // The socket may already listen; listen(2) again only updates its backlog.
        int rc = uv_listen(&l->h.stream, SOMAXCONN, on_connection);
        log_line("listening fd=%d name=%s source=%s%s%s", fd, l->name.c_str(), l->source.c_str(),
                 rc == 0 ? "" : " error=", rc == 0 ? "" : uv_strerror(rc));
        if (rc != 0) {
            g.exit_code = 1;
            return begin_drain("listen-failed");
        }
    }
    char state[160];
    snprintf(state, sizeof state, "READY=1\nSTATUS=serving pid=%d gen=%ld listeners=%zu", g.pid, g.gen,
             g.listeners.size());
    int rc = sv_notify(state);
    log_line("ready listeners=%zu notify=%s", g.listeners.size(), rc == 1 ? "sent" : rc == 0 ? "none" : strerror(-rc));
}

bool parse_args(int argc, char** argv) {
    for (int i = 1; i < argc; i += 2) {
        std::string_view a(argv[i]);
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        bool ok = v != nullptr;
        if (ok && a == "--listen") g.listen_specs.push_back(v);
        else if (ok && a == "--startup-delay") ok = parse_duration(v, &g.startup_delay_ms);
        else if (ok && a == "--idle-grace") ok = parse_duration(v, &g.idle_grace_ms);
        else ok = false;
        if (!ok) {
            fprintf(stderr, "usage: demo_worker [--listen [HOST:]PORT]... [--startup-delay DUR] [--idle-grace DUR]\n");
            return false;
        }
    }
    return true;
}

// Returns false, after one line on stderr, when there is nothing to serve on.
bool collect_listeners() {
    static sv_listener ls[kMaxListeners];
    int n = sv_listen_fds(ls, kMaxListeners);
    if (n < 0 || n > kMaxListeners) {
        fprintf(stderr, "demo_worker: cannot use LISTEN_FDS: %s\n", n < 0 ? strerror(-n) : "too many fds");
        return false;
    }
    for (int i = 0; i < n; i++)
        if (!adopt_fd(ls[i].fd, ls[i].name, "LISTEN_FDS")) return false;
    const char* starter = getenv("SERVER_STARTER_PORT");
    if (n == 0 && starter != nullptr && !adopt_server_starter(starter)) return false;
    for (size_t i = 0; n == 0 && starter == nullptr && i < g.listen_specs.size(); i++) {
        if (!bind_listen_spec(g.listen_specs[i])) {
            fprintf(stderr, "demo_worker: cannot bind %s: bad address or in use\n", g.listen_specs[i]);
            return false;
        }
    }
    if (g.listeners.empty())
        fprintf(stderr, "demo_worker: no listening sockets: run under the supervisor (LISTEN_FDS), "
                        "Server::Starter (SERVER_STARTER_PORT), or pass --listen HOST:PORT\n");
    return !g.listeners.empty();
}

}  // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);  // a client leaving mid-response must give EPIPE, not kill us
    g.pid = int(getpid());
    g.gen = sv_generation();
    g.release = getenv("DEMO_RELEASE");
    g.loop = uv_default_loop();
    if (!parse_args(argc, argv) || !collect_listeners()) return 2;
    log_line("start listeners=%zu startup_delay_ms=%llu idle_grace_ms=%llu", g.listeners.size(),
             (unsigned long long)g.startup_delay_ms, (unsigned long long)g.idle_grace_ms);
    const int sigs[3] = {SIGTERM, SIGQUIT, SIGINT};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(g.loop, &g.signals[i]);
        uv_signal_start(&g.signals[i], on_signal, sigs[i]);
    }
    uv_timer_init(g.loop, &g.start_timer);
    uv_timer_init(g.loop, &g.sweep_timer);
    // READY=1 follows uv_listen, so a delayed start is visibly "not ready yet".
    if (g.startup_delay_ms > 0)
        uv_timer_start(&g.start_timer, [](uv_timer_t*) { start_serving(); }, g.startup_delay_ms, 0);
    else
        start_serving();
    uv_run(g.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(g.loop);
    log_line("exit code=%d loop_close=%s", g.exit_code, rc == 0 ? "ok" : uv_strerror(rc));
    return g.exit_code;
}
