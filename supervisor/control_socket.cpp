// Control socket server on libuv pipes.
#include "supervisor/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "supervisor/listeners.h"
#include "supervisor/parse.h"

namespace sv {

struct ControlServer::Client {
    uv_pipe_t pipe;  // first: the handle converts to the Client
    ControlServer* server;
    uint64_t id;
    std::string buf;
    bool closing = false;
    bool paused = false;  // reading stopped: too many replies unread
    uint64_t last_active_ms = 0;  // uv_now of the last request or reply: the idle clock
};

namespace {

// A client that sends requests but never reads the replies would make us queue them
// without bound: past this, we stop reading its requests until it catches up.
constexpr size_t kMaxQueuedReplies = 1 << 20;

struct WriteReq {
    uv_write_t req;
    ControlServer::Client* client;  // valid here: pending writes complete before the close callback
    std::string data;
};

void free_client(uv_handle_t* h) { delete reinterpret_cast<ControlServer::Client*>(h); }

} // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::create(uv_loop_t* loop, const std::string& path,
                                                             RequestFn on_request, ClosedFn on_closed, BusyFn is_busy,
                                                             ControlLimits limits) {
    if (auto r = clear_stale_unix_socket(path, "the control socket " + path); !r) return r.error();
    std::unique_ptr<ControlServer> s(new ControlServer());
    s->path_ = path;
    s->on_request_ = std::move(on_request);
    s->on_closed_ = std::move(on_closed);
    s->is_busy_ = std::move(is_busy);
    s->limits_ = limits;
    s->sweep_ = new uv_timer_t{};
    uv_timer_init(loop, s->sweep_);
    s->sweep_->data = s.get();
    s->server_ = new uv_pipe_t{};
    uv_pipe_init(loop, s->server_, 0);
    s->server_->data = s.get();
    // Created 0600 from the start: no window in which another user could connect.
    mode_t old = ::umask(0177);
    int rc = uv_pipe_bind(s->server_, path.c_str());
    ::umask(old);
    if (rc < 0) return Error{-rc, "cannot bind the control socket " + path + ": " + uv_strerror(rc)};
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) s->inode_ = st.st_ino;
    if ((rc = uv_listen(reinterpret_cast<uv_stream_t*>(s->server_), 16, on_connection)) < 0)
        return Error{-rc, "cannot listen on the control socket " + path + ": " + uv_strerror(rc)};
    return s;
}

ControlServer::~ControlServer() { close(); }

void ControlServer::close() {
    for (auto& [id, c] : clients_) {
        c->closing = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), free_client);
    }
    clients_.clear();
    if (sweep_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(sweep_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        sweep_ = nullptr;
    }
    if (server_ != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(server_), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
        server_ = nullptr;
        struct stat st{};
        if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
    }
}

void ControlServer::on_connection(uv_stream_t* server, int status) noexcept {
    auto* self = static_cast<ControlServer*>(server->data);
    if (status < 0) {
        spdlog::error("control socket accept error: {}", uv_strerror(status));
        return;
    }
    self->accept_one();
}

void ControlServer::accept_one() {
    auto* c = new Client{};
    uv_pipe_init(server_->loop, &c->pipe, 0);
    c->server = this;
    c->id = next_id_++;
    c->pipe.data = c;
    if (uv_accept(reinterpret_cast<uv_stream_t*>(server_), reinterpret_cast<uv_stream_t*>(&c->pipe)) < 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), free_client);
        return;
    }
    clients_[c->id] = c;
    touch(c);
    if (refuse_over_cap(c)) return;
    start_client(c);
}

// Checks the peer (SO_PEERCRED) and starts reading its requests.
void ControlServer::start_client(Client* c) {
    uv_os_fd_t fd;
    ucred cred{};
    socklen_t len = sizeof cred;
    bool allowed = uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd) == 0 &&
                   ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                   (cred.uid == 0 || cred.uid == ::geteuid());
    if (!allowed) {
        spdlog::warn("control connection refused pid={} uid={}: only uid {} and root may control this supervisor",
                     cred.pid, cred.uid, ::geteuid());
        reply(c->id, control_error("permission denied: uid " + std::to_string(cred.uid) + " may not control this supervisor"));
        drop(c);
        return;
    }
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read);
    arm_sweep();
}

// Past the cap a client is told why and closed at once: idle or stuck clients must not use
// up the fds that spawns need. Logged once per burst, not once per client.
bool ControlServer::refuse_over_cap(Client* c) {
    if (clients_.size() <= limits_.max_clients) {
        if (at_cap_)
            spdlog::info("control clients below the cap ({}) again: {} connection(s) were refused", limits_.max_clients,
                         refused_in_burst_);
        at_cap_ = false;
        return false;
    }
    if (!at_cap_)
        spdlog::warn("control clients at the cap ({}): refusing new connections until some close "
                     "(--control-max-clients, --control-idle-timeout)", limits_.max_clients);
    if (!at_cap_) refused_in_burst_ = 0;
    at_cap_ = true;
    refused_in_burst_++;
    reply(c->id, control_error("too many control clients (" + std::to_string(limits_.max_clients) + ")"));
    drop(c);
    return true;
}

void ControlServer::touch(Client* c) { c->last_active_ms = uv_now(server_->loop); }

void ControlServer::on_sweep(uv_timer_t* t) noexcept { static_cast<ControlServer*>(t->data)->sweep(); }

// Closes clients idle for the timeout; one that waits for a verdict is never idle.
void ControlServer::sweep() {
    uint64_t now = uv_now(server_->loop);
    auto idle_ms = static_cast<uint64_t>(limits_.idle_timeout.count());
    std::vector<Client*> idle;
    for (auto& [id, c] : clients_) {
        if (is_busy_ && is_busy_(id)) touch(c);  // its idle clock starts with the verdict
        else if (now - c->last_active_ms >= idle_ms) idle.push_back(c);
    }
    if (!idle.empty()) spdlog::info("control: closing {} client(s) idle for {}", idle.size(), format_duration(limits_.idle_timeout));
    for (Client* c : idle) drop(c);
    arm_sweep();
}

// The timer is set for the earliest idle deadline, and stopped when nobody is connected.
void ControlServer::arm_sweep() {
    if (sweep_ == nullptr) return;
    if (clients_.empty()) {
        uv_timer_stop(sweep_);
        return;
    }
    uint64_t oldest = UINT64_MAX;
    for (auto& [id, c] : clients_) oldest = std::min(oldest, c->last_active_ms);
    uint64_t due = oldest + static_cast<uint64_t>(limits_.idle_timeout.count());
    uint64_t now = uv_now(server_->loop);
    uv_timer_start(sweep_, on_sweep, due > now ? due - now : 0, 0);
}

void ControlServer::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    static char slab[16 * 1024];  // one loop thread: reads are consumed before the next alloc
    *buf = uv_buf_init(slab, sizeof slab);
}

void ControlServer::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Client*>(s->data);
    if (nread < 0) {
        c->server->drop(c);  // EOF or error: the client is gone
        return;
    }
    c->server->consume(c, buf->base, static_cast<size_t>(nread));
}

void ControlServer::consume(Client* c, const char* data, size_t n) {
    c->buf.append(data, n);
    size_t start = 0;
    for (size_t nl; !c->closing && (nl = c->buf.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(c->buf.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        auto req = parse_control_request(line);
        if (!req) {
            spdlog::warn("control request rejected: {}", req.error().what);
            reply(c->id, control_error(req.error().what));
            continue;
        }
        touch(c);
        on_request_(c->id, *req);
        if (clients_.find(c->id) == clients_.end()) return;  // the handler closed us
    }
    c->buf.erase(0, start);
    if (c->buf.size() > kControlMaxLine) {
        spdlog::warn("control request rejected: longer than {} bytes without a newline", kControlMaxLine);
        reply(c->id, control_error("request too long"));
        drop(c);
    }
}

void ControlServer::reply(uint64_t client, const std::string& line) {
    auto it = clients_.find(client);
    if (it == clients_.end() || it->second->closing) return;
    Client* c = it->second;
    touch(c);
    auto* stream = reinterpret_cast<uv_stream_t*>(&c->pipe);
    auto* w = new WriteReq{};
    w->client = c;
    w->data = line;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, stream, &b, 1, [](uv_write_t* r, int) {
        auto* req = reinterpret_cast<WriteReq*>(r);
        Client* cl = req->client;
        auto* st = reinterpret_cast<uv_stream_t*>(&cl->pipe);
        if (cl->paused && !cl->closing && uv_stream_get_write_queue_size(st) < kMaxQueuedReplies / 4) {
            cl->paused = false;
            uv_read_start(st, on_alloc, on_read);
        }
        delete req;
    });
    if (rc < 0) {
        delete w;
        return;
    }
    if (!c->paused && uv_stream_get_write_queue_size(stream) > kMaxQueuedReplies) {
        c->paused = true;
        uv_read_stop(stream);
        spdlog::warn("control client {} does not read its replies: pausing its requests", c->id);
    }
}

void ControlServer::drop(Client* c) {
    if (c->closing) return;
    c->closing = true;
    clients_.erase(c->id);
    uint64_t id = c->id;
    // Pending writes complete (with an error) before the close callback frees the client.
    uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), free_client);
    on_closed_(id);
    if (clients_.empty() && sweep_ != nullptr) uv_timer_stop(sweep_);
}

// --- `ctl reexec`: the listener and the waiting client taken over from the previous image ---

Result<std::unique_ptr<ControlServer>> ControlServer::adopt(uv_loop_t* loop, int fd, const std::string& path, ino_t inode,
                                                            RequestFn on_request, ClosedFn on_closed, BusyFn is_busy,
                                                            ControlLimits limits) {
    std::unique_ptr<ControlServer> s(new ControlServer());
    s->path_ = path;
    s->inode_ = inode;
    s->on_request_ = std::move(on_request);
    s->on_closed_ = std::move(on_closed);
    s->is_busy_ = std::move(is_busy);
    s->limits_ = limits;
    s->sweep_ = new uv_timer_t{};
    uv_timer_init(loop, s->sweep_);
    s->sweep_->data = s.get();
    s->server_ = new uv_pipe_t{};
    uv_pipe_init(loop, s->server_, 0);
    s->server_->data = s.get();
    if (int rc = uv_pipe_open(s->server_, fd); rc < 0)
        return Error{-rc, "cannot take over the control socket " + path + ": " + uv_strerror(rc)};
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(s->server_), 16, on_connection); rc < 0)
        return Error{-rc, "cannot listen on the control socket " + path + ": " + uv_strerror(rc)};
    return s;
}

uint64_t ControlServer::adopt_client(int fd) {
    auto* c = new Client{};
    uv_pipe_init(server_->loop, &c->pipe, 0);
    c->server = this;
    c->id = next_id_++;
    c->pipe.data = c;
    if (uv_pipe_open(&c->pipe, fd) < 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), free_client);
        return 0;
    }
    clients_[c->id] = c;
    touch(c);
    start_client(c);
    return clients_.count(c->id) ? c->id : 0;
}

int ControlServer::listener_fd() const {
    uv_os_fd_t fd = -1;
    if (server_ == nullptr || uv_fileno(reinterpret_cast<const uv_handle_t*>(server_), &fd) < 0) return -1;
    return fd;
}

int ControlServer::client_fd(uint64_t client) const {
    auto it = clients_.find(client);
    uv_os_fd_t fd = -1;
    if (it == clients_.end() || it->second->closing ||
        uv_fileno(reinterpret_cast<const uv_handle_t*>(&it->second->pipe), &fd) < 0)
        return -1;
    return fd;
}

} // namespace sv
