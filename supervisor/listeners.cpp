// Binding listeners.
#include "supervisor/listeners.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "supervisor/parse.h"

namespace sv {

namespace {

Error sys_error(int err, const std::string& what) { return Error{err, what + ": " + std::strerror(err)}; }

std::string format_address(const sockaddr* sa) {
    char host[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
}

// socket + SO_REUSEADDR + bind + listen for one resolved address.
Result<UniqueFd> bind_inet(const sockaddr* sa, socklen_t len, int v6only, int backlog, const std::string& label,
                           SocketFlags flags) {
    UniqueFd fd(::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | (flags.nonblocking ? SOCK_NONBLOCK : 0), 0));
    if (!fd.valid()) return sys_error(errno, "cannot create a socket for " + label);
    int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return sys_error(errno, "cannot set SO_REUSEADDR on " + label);
    if (sa->sa_family == AF_INET6 && ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
        return sys_error(errno, "cannot set IPV6_V6ONLY on " + label);
    if (::bind(fd.get(), sa, len) < 0) return sys_error(errno, "cannot bind " + label);
    if (::listen(fd.get(), backlog) < 0) return sys_error(errno, "cannot listen on " + label);
    return fd;
}

Result<Listener> bind_tcp(const ListenSpec& spec, int backlog, SocketFlags flags) {
    Listener l{spec, {}, {}, 0, false};
    if (spec.host.empty()) {
        sockaddr_in6 any6{};
        any6.sin6_family = AF_INET6;
        any6.sin6_addr = in6addr_any;
        any6.sin6_port = htons(static_cast<uint16_t>(spec.port));
        auto fd = bind_inet(reinterpret_cast<sockaddr*>(&any6), sizeof any6, 0, backlog, "[::]:" + std::to_string(spec.port), flags);
        if (!fd && fd.error().code == EAFNOSUPPORT) {
            sockaddr_in any4{};
            any4.sin_family = AF_INET;
            any4.sin_addr.s_addr = htonl(INADDR_ANY);
            any4.sin_port = htons(static_cast<uint16_t>(spec.port));
            fd = bind_inet(reinterpret_cast<sockaddr*>(&any4), sizeof any4, 0, backlog, "0.0.0.0:" + std::to_string(spec.port), flags);
        }
        if (!fd) return fd.error();
        l.fd = std::move(fd.value());
    } else {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* res = nullptr;
        std::string port = std::to_string(spec.port);
        if (int rc = ::getaddrinfo(spec.host.c_str(), port.c_str(), &hints, &res); rc != 0)
            return Error{EINVAL, "cannot resolve '" + spec.host + "' in --listen " + spec.text + ": " + gai_strerror(rc)};
        auto fd = bind_inet(res->ai_addr, res->ai_addrlen, 1, backlog, spec.text, flags);
        ::freeaddrinfo(res);
        if (!fd) return fd.error();
        l.fd = std::move(fd.value());
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0)
        return sys_error(errno, "cannot read the address of " + spec.text);
    l.address = format_address(reinterpret_cast<sockaddr*>(&ss));
    if (spec.host.empty()) l.address = l.address.substr(l.address.rfind(':') + 1);  // "8080": all interfaces
    return l;
}

} // namespace

Result<Ok> clear_stale_unix_socket(const std::string& path, const std::string& display) {
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        return Error{ENAMETOOLONG, "cannot bind " + display + ": " + std::strerror(ENAMETOOLONG)};
    struct stat st{};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return Ok{};
        return sys_error(errno, "cannot bind " + display);
    }
    if (!S_ISSOCK(st.st_mode)) return Error{EEXIST, "cannot bind " + display + ": the file exists and is not a socket"};
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
        return Error{EADDRINUSE, "cannot bind " + display + ": another process is listening on it"};
    if (errno != ECONNREFUSED) return sys_error(errno, "cannot bind " + display + " (probing the existing socket)");
    if (::unlink(path.c_str()) < 0 && errno != ENOENT)
        return sys_error(errno, "cannot remove the stale socket " + path);
    return Ok{};
}

namespace {

Result<Listener> bind_unix(const ListenSpec& spec, int backlog, const UnixSocketOptions& opts, SocketFlags flags) {
    if (auto r = clear_stale_unix_socket(spec.path, "unix:" + spec.path); !r) return r.error();
    Listener l{spec, UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (flags.nonblocking ? SOCK_NONBLOCK : 0), 0)),
               spec.path, 0, false};
    if (!l.fd.valid()) return sys_error(errno, "cannot create a socket for unix:" + spec.path);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, spec.path.c_str(), spec.path.size());
    // With --socket-mode the file starts private and is then opened up: never wider than asked.
    mode_t old_umask = opts.mode >= 0 ? ::umask(0177) : 0;
    int rc = ::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    int bind_errno = errno;
    if (opts.mode >= 0) ::umask(old_umask);
    if (rc < 0) return sys_error(bind_errno, "cannot bind unix:" + spec.path);
    if ((opts.uid >= 0 || opts.gid >= 0) && ::chown(spec.path.c_str(), opts.uid, opts.gid) < 0)
        return sys_error(errno, "cannot set the owner of unix:" + spec.path);
    if (opts.mode >= 0 && ::chmod(spec.path.c_str(), static_cast<mode_t>(opts.mode)) < 0)
        return sys_error(errno, "cannot set the mode of unix:" + spec.path);
    if (::listen(l.fd.get(), backlog) < 0) return sys_error(errno, "cannot listen on unix:" + spec.path);
    struct stat st{};
    if (::stat(spec.path.c_str(), &st) == 0) l.unix_inode = st.st_ino;
    return l;
}

} // namespace

Result<UnixSocketOptions> resolve_socket_owner(const std::string& owner, int mode) {
    UnixSocketOptions o;
    o.mode = mode;
    if (owner.empty()) return o;
    std::string user = owner.substr(0, owner.find(':'));
    std::string grp = owner.find(':') == std::string::npos ? "" : owner.substr(owner.find(':') + 1);
    if (!user.empty()) {
        if (auto n = parse_uint(user)) o.uid = *n;
        else if (passwd* pw = ::getpwnam(user.c_str())) o.uid = static_cast<int>(pw->pw_uid), o.gid = static_cast<int>(pw->pw_gid);
        else return Error{0, "invalid --socket-owner '" + owner + "': no user '" + user + "'"};
    }
    if (!grp.empty()) {
        if (auto n = parse_uint(grp)) o.gid = *n;
        else if (struct group* gr = ::getgrnam(grp.c_str())) o.gid = static_cast<int>(gr->gr_gid);
        else return Error{0, "invalid --socket-owner '" + owner + "': no group '" + grp + "'"};
    }
    return o;
}

Result<std::vector<Listener>> bind_listeners(const std::vector<ListenSpec>& specs, int backlog,
                                             const UnixSocketOptions& unix_opts, SocketFlags flags) {
    std::vector<Listener> out;
    for (const auto& spec : specs) {
        auto l = spec.kind == ListenSpec::Kind::Unix ? bind_unix(spec, backlog, unix_opts, flags)
                                                     : bind_tcp(spec, backlog, flags);
        if (!l) {
            remove_unix_socket_files(out);
            return l.error();
        }
        out.push_back(std::move(l.value()));
    }
    return out;
}

Result<std::vector<Listener>> adopt_systemd_listeners() {
    std::vector<Listener> out;
    const char* pid_s = std::getenv("LISTEN_PID");
    const char* fds_s = std::getenv("LISTEN_FDS");
    std::string names = std::getenv("LISTEN_FDNAMES") ? std::getenv("LISTEN_FDNAMES") : "";
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (pid_s == nullptr || fds_s == nullptr) return out;
    auto pid = parse_uint(pid_s);
    auto n = parse_uint(fds_s);
    if (!pid || !n || *n > 64) return Error{EINVAL, std::string("invalid LISTEN_FDS='") + fds_s + "' / LISTEN_PID='" + pid_s + "' from the service manager"};
    if (*pid != ::getpid()) return out;  // meant for another process
    for (int i = 0; i < *n; i++) {
        int fd = 3 + i;
        Listener l;
        size_t colon = names.find(':');
        l.spec.name = names.substr(0, colon);
        names = colon == std::string::npos ? "" : names.substr(colon + 1);
        if (!valid_fd_name(l.spec.name)) l.spec.name = "unknown";
        int accepting = 0;
        socklen_t len = sizeof accepting;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0 || !accepting)
            return Error{EINVAL, "socket activation: fd " + std::to_string(fd) + " (" + l.spec.name +
                                     ") is not a listening stream socket"};
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        l.fd.reset(fd);
        sockaddr_storage ss{};
        len = sizeof ss;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
        if (ss.ss_family == AF_UNIX) {
            l.spec.kind = ListenSpec::Kind::Unix;
            l.spec.path = reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
            l.address = l.spec.path;
        } else {
            l.address = format_address(reinterpret_cast<sockaddr*>(&ss));
        }
        l.spec.text = "systemd:" + l.spec.name;
        l.adopted = true;
        out.push_back(std::move(l));
    }
    return out;
}

Result<std::vector<Listener>> merge_listeners(std::vector<Listener> adopted, const std::vector<ListenSpec>& specs,
                                              int backlog, const UnixSocketOptions& unix_opts, SocketFlags flags,
                                              std::vector<std::string>* unused) {
    if (specs.empty()) return adopted;
    std::vector<Listener> out;
    for (const auto& spec : specs) {
        auto it = std::find_if(adopted.begin(), adopted.end(),
                               [&](const Listener& l) { return l.fd.valid() && l.spec.name == spec.name; });
        if (it != adopted.end()) {
            out.push_back(std::move(*it));
        } else {
            out.push_back(Listener{spec, {}, {}, 0, false});
        }
    }
    for (auto& l : out) {
        if (l.fd.valid()) continue;
        auto bound = bind_listeners({l.spec}, backlog, unix_opts, flags);
        if (!bound) {
            remove_unix_socket_files(out);
            return bound.error();
        }
        l = std::move(bound->front());
    }
    for (auto& l : adopted)
        if (l.fd.valid() && unused != nullptr) unused->push_back(l.spec.name);
    return out;
}

void remove_unix_socket_files(const std::vector<Listener>& listeners) {
    for (const auto& l : listeners) {
        if (l.spec.kind != ListenSpec::Kind::Unix || l.unix_inode == 0) continue;
        struct stat st{};
        if (::stat(l.spec.path.c_str(), &st) == 0 && st.st_ino == l.unix_inode) ::unlink(l.spec.path.c_str());
    }
}

size_t close_own_listeners(std::vector<Listener>& listeners, bool fd_store_may_hold) {
    if (fd_store_may_hold) return 0;
    size_t closed = 0;
    for (auto& l : listeners) {
        if (l.adopted || l.fd.get() < 0) continue;
        l.fd.reset();
        closed++;
    }
    return closed;
}

} // namespace sv
