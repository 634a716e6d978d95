// Binding listeners.
#include "supervisor/listeners.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

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
Result<UniqueFd> bind_inet(const sockaddr* sa, socklen_t len, int v6only, int backlog, const std::string& label) {
    UniqueFd fd(::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
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

Result<Listener> bind_tcp(const ListenSpec& spec, int backlog) {
    Listener l{spec, {}, {}, 0};
    if (spec.host.empty()) {
        sockaddr_in6 any6{};
        any6.sin6_family = AF_INET6;
        any6.sin6_addr = in6addr_any;
        any6.sin6_port = htons(static_cast<uint16_t>(spec.port));
        auto fd = bind_inet(reinterpret_cast<sockaddr*>(&any6), sizeof any6, 0, backlog, "[::]:" + std::to_string(spec.port));
        if (!fd && fd.error().code == EAFNOSUPPORT) {
            sockaddr_in any4{};
            any4.sin_family = AF_INET;
            any4.sin_addr.s_addr = htonl(INADDR_ANY);
            any4.sin_port = htons(static_cast<uint16_t>(spec.port));
            fd = bind_inet(reinterpret_cast<sockaddr*>(&any4), sizeof any4, 0, backlog, "0.0.0.0:" + std::to_string(spec.port));
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
        auto fd = bind_inet(res->ai_addr, res->ai_addrlen, 1, backlog, spec.text);
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

// A socket file that exists is stale when connecting to it is refused.
Result<Ok> clear_stale_socket(const ListenSpec& spec) {
    struct stat st{};
    if (::lstat(spec.path.c_str(), &st) < 0) {
        if (errno == ENOENT) return Ok{};
        return sys_error(errno, "cannot bind unix:" + spec.path);
    }
    if (!S_ISSOCK(st.st_mode)) return Error{EEXIST, "cannot bind unix:" + spec.path + ": the file exists and is not a socket"};
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, spec.path.c_str(), spec.path.size());
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
        return Error{EADDRINUSE, "cannot bind unix:" + spec.path + ": another process is listening on it"};
    if (errno != ECONNREFUSED) return sys_error(errno, "cannot bind unix:" + spec.path + " (probing the existing socket)");
    if (::unlink(spec.path.c_str()) < 0 && errno != ENOENT)
        return sys_error(errno, "cannot remove the stale socket unix:" + spec.path);
    return Ok{};
}

Result<Listener> bind_unix(const ListenSpec& spec, int backlog) {
    if (auto r = clear_stale_socket(spec); !r) return r.error();
    Listener l{spec, UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)), spec.path, 0};
    if (!l.fd.valid()) return sys_error(errno, "cannot create a socket for unix:" + spec.path);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, spec.path.c_str(), spec.path.size());
    if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
        return sys_error(errno, "cannot bind unix:" + spec.path);
    if (::listen(l.fd.get(), backlog) < 0) return sys_error(errno, "cannot listen on unix:" + spec.path);
    struct stat st{};
    if (::stat(spec.path.c_str(), &st) == 0) l.unix_inode = st.st_ino;
    return l;
}

} // namespace

Result<std::vector<Listener>> bind_listeners(const std::vector<ListenSpec>& specs, int backlog) {
    std::vector<Listener> out;
    for (const auto& spec : specs) {
        auto l = spec.kind == ListenSpec::Kind::Unix ? bind_unix(spec, backlog) : bind_tcp(spec, backlog);
        if (!l) {
            remove_unix_socket_files(out);
            return l.error();
        }
        out.push_back(std::move(l.value()));
    }
    return out;
}

void remove_unix_socket_files(const std::vector<Listener>& listeners) {
    for (const auto& l : listeners) {
        if (l.spec.kind != ListenSpec::Kind::Unix || l.unix_inode == 0) continue;
        struct stat st{};
        if (::stat(l.spec.path.c_str(), &st) == 0 && st.st_ino == l.unix_inode) ::unlink(l.spec.path.c_str());
    }
}

} // namespace sv
