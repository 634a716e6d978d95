// Notify socket: receiving sd_notify datagrams with kernel credentials.
#include "supervisor/notify_socket.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "supervisor/notify_message.h"

namespace sv {

Result<NotifySocket> NotifySocket::create() {
    NotifySocket s;
    s.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.fd_.valid()) return Error{errno, std::string("cannot create the notify socket: ") + std::strerror(errno)};
    int one = 1;
    if (::setsockopt(s.fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        return Error{errno, std::string("cannot set SO_PASSCRED on the notify socket: ") + std::strerror(errno)};
    // Autobind (see unix(7)): binding with only the family picks a unique abstract name,
    // so no stranger can squat the name before us and no file is left behind.
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (::bind(s.fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)) < 0)
        return Error{errno, std::string("cannot bind the notify socket: ") + std::strerror(errno)};
    socklen_t len = sizeof sa;
    if (::getsockname(s.fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len) < 0)
        return Error{errno, std::string("cannot read the notify socket's name: ") + std::strerror(errno)};
    size_t n = len - offsetof(sockaddr_un, sun_path);
    if (n < 2 || sa.sun_path[0] != '\0') return Error{EINVAL, "the notify socket did not get an abstract name"};
    s.name_ = "@" + std::string(sa.sun_path + 1, n - 1);
    return s;
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
