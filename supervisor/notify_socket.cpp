// Notify socket: receiving sd_notify datagrams with kernel credentials.
#include "supervisor/notify_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <unistd.h>

#include "supervisor/notify_message.h"

namespace sv {

namespace {

// Where the private directory goes: the service's runtime directory, the user's, or /tmp.
std::string runtime_base() {
    for (const char* var : {"RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"}) {
        const char* v = std::getenv(var);
        // RUNTIME_DIRECTORY may list several directories separated by ':'; the first is ours.
        if (v != nullptr && *v == '/') return std::string(v).substr(0, std::string(v).find(':'));
    }
    return "/tmp";
}

Error sys_error(const std::string& what, int err) { return Error{err, what + ": " + std::strerror(err)}; }

} // namespace

Result<NotifySocket> NotifySocket::create(NotifySocketKind kind, int worker_gid) {
    NotifySocket s;
    s.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.fd_.valid()) return sys_error("cannot create the notify socket", errno);
    int one = 1;
    if (::setsockopt(s.fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        return sys_error("cannot set SO_PASSCRED on the notify socket", errno);
    auto bound = kind == NotifySocketKind::Path ? s.bind_path(worker_gid) : s.bind_abstract();
    if (!bound) return bound.error();
    return s;
}

// Autobind (see unix(7)): binding with only the family picks a unique abstract name,
// so no stranger can squat the name before us and no file is left behind.
Result<Ok> NotifySocket::bind_abstract() {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)) < 0)
        return sys_error("cannot bind the notify socket", errno);
    socklen_t len = sizeof sa;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len) < 0)
        return sys_error("cannot read the notify socket's name", errno);
    size_t n = len - offsetof(sockaddr_un, sun_path);
    if (n < 2 || sa.sun_path[0] != '\0') return Error{EINVAL, "the notify socket did not get an abstract name"};
    name_ = "@" + std::string(sa.sun_path + 1, n - 1);
    return Ok{};
}

// A fresh directory (mkdtemp: 0700, a name nobody could have prepared) makes the path
// ours: no stranger can bind it first or swap it, unlike a fixed name in /tmp.
Result<Ok> NotifySocket::bind_path(int worker_gid) {
    std::string tmpl = runtime_base() + "/supervisor-notify.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return sys_error("cannot create a directory for the notify socket in " + runtime_base(), errno);
    dir_ = tmpl;
    std::string path = dir_ + "/notify";
    sockaddr_un sa{};
    if (path.size() >= sizeof sa.sun_path) return Error{ENAMETOOLONG, "cannot bind the notify socket " + path + ": path too long"};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return sys_error("cannot bind the notify socket " + path, errno);
    name_ = path;
    // Workers of another user need to reach it (search on the directory, write on the
    // socket), but only we may change what the path names: the group gets x, not w.
    if (worker_gid >= 0) {
        if (::chown(dir_.c_str(), -1, static_cast<gid_t>(worker_gid)) < 0 || ::chmod(dir_.c_str(), 0710) < 0 ||
            ::chown(path.c_str(), -1, static_cast<gid_t>(worker_gid)) < 0 || ::chmod(path.c_str(), 0660) < 0)
            return sys_error("cannot give the workers' group access to the notify socket " + path, errno);
    }
    return Ok{};
}

void NotifySocket::remove_files() {
    if (dir_.empty()) return;
    ::unlink(name_.c_str());
    ::rmdir(dir_.c_str());
    dir_.clear();
}

NotifySocket::~NotifySocket() { remove_files(); }

NotifySocket NotifySocket::adopt(int fd, std::string name, std::string dir) {
    NotifySocket s;
    s.fd_.reset(fd);
    s.name_ = std::move(name);
    s.dir_ = std::move(dir);
    return s;
}

NotifySocket::NotifySocket(NotifySocket&& o) noexcept
    : fd_(std::move(o.fd_)), name_(std::move(o.name_)), dir_(std::exchange(o.dir_, {})) {}

NotifySocket& NotifySocket::operator=(NotifySocket&& o) noexcept {
    if (this != &o) {
        remove_files();
        fd_ = std::move(o.fd_);
        name_ = std::move(o.name_);
        dir_ = std::exchange(o.dir_, {});
    }
    return *this;
}

int NotifySocket::receive(NotifyDatagram* out) {
    char buf[kNotifyMaxDatagram + 1];
    // Room for credentials plus a few passed fds; more fds than fit are closed by the kernel (MSG_CTRUNC).
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;

    pid_t pid = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
            ucred cred;
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            pid = cred.pid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                ::close(fd);
            }
        }
    }
    if ((msg.msg_flags & MSG_TRUNC) || static_cast<size_t>(n) > kNotifyMaxDatagram || pid <= 0) return 2;
    out->pid = pid;
    out->data.assign(buf, static_cast<size_t>(n));
    return 1;
}

} // namespace sv
