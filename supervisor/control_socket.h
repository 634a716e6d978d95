// The control socket: a unix stream server speaking newline-delimited JSON. Callers are
// checked with SO_PEERCRED (our uid or root); anyone else is refused with a logged line.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "supervisor/config.h"
#include "supervisor/control_protocol.h"
#include "supervisor/result.h"

namespace sv {

// Idle clients must not eat the fds that spawns need.
struct ControlLimits {
    size_t max_clients = kDefaultControlMaxClients;  // past it: one error line, then closed
    Millis idle_timeout = kDefaultControlIdleTimeout;  // no request for this long (and none pending): closed
};

class ControlServer {
public:
    using RequestFn = std::function<void(uint64_t client, const ControlRequest&)>;
    using ClosedFn = std::function<void(uint64_t client)>;
    // True while the client waits for something (a `ctl upgrade` verdict): never idle-closed.
    using BusyFn = std::function<bool(uint64_t client)>;

    // Binds `path` with mode 0600 (a stale socket file is replaced, a live one refused).
    static Result<std::unique_ptr<ControlServer>> create(uv_loop_t* loop, const std::string& path, RequestFn on_request,
                                                         ClosedFn on_closed, BusyFn is_busy = {}, ControlLimits limits = {});
    // `ctl reexec` (control_resume.cpp): the bound listener `fd` (and its socket file's
    // inode) taken over from the previous image.
    static Result<std::unique_ptr<ControlServer>> adopt(uv_loop_t* loop, int fd, const std::string& path, ino_t inode,
                                                        RequestFn on_request, ClosedFn on_closed, BusyFn is_busy,
                                                        ControlLimits limits);
    // A connected client taken over; returns its new id, or 0 if the fd cannot be used.
    uint64_t adopt_client(int fd);
    // The fds a reexec keeps: the listener's, and the client's (-1 if gone).
    int listener_fd() const;
    int client_fd(uint64_t client) const;
    ino_t inode() const { return inode_; }
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Sends one reply line to a client, if it is still connected.
    void reply(uint64_t client, const std::string& line);
    // Closes the listener and every client; removes the socket file.
    void close();
    const std::string& path() const { return path_; }

    struct Client;  // defined in the .cpp

private:
    ControlServer() = default;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_sweep(uv_timer_t* t) noexcept;
    void accept_one();
    void start_client(Client* c);
    bool refuse_over_cap(Client* c);
    void touch(Client* c);
    void sweep();
    void arm_sweep();
    void consume(Client* c, const char* data, size_t n);
    void drop(Client* c);

    uv_pipe_t* server_ = nullptr;
    std::string path_;
    ino_t inode_ = 0;
    RequestFn on_request_;
    ClosedFn on_closed_;
    BusyFn is_busy_;
    ControlLimits limits_;
    uv_timer_t* sweep_ = nullptr;  // runs only while clients are connected
    bool at_cap_ = false;          // in a burst of refusals: logged once
    uint64_t refused_in_burst_ = 0;
    std::map<uint64_t, Client*> clients_;
    uint64_t next_id_ = 1;
};

} // namespace sv
