// sd_notify to our parent, through the same code the worker header uses; fds for the
// fd store go with sendmsg(2) and SCM_RIGHTS, which that header does not do.
#include "supervisor/systemd.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <supervisor/worker.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "supervisor/systemd_env.h"
#include "supervisor/unique_fd.h"

namespace sv {

SystemdNotifier SystemdNotifier::from_environment() {
    SystemdNotifier n;
    if (const char* s = std::getenv("NOTIFY_SOCKET")) n.socket_ = s;
    auto period = sv::watchdog_period(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid());
    if (!period) spdlog::warn("{}: no watchdog pings", period.error().what);
    else n.watchdog_ = *period;
    if (n.socket_.empty()) n.watchdog_.reset();  // nobody to ping
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    return n;
}

int SystemdNotifier::send(const std::string& state) const {
    if (socket_.empty()) return 0;
    std::string text = state;
    if (text.find("RELOADING=1") != std::string::npos) {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        text += "\nMONOTONIC_USEC=" + std::to_string(static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000);
    }
    return sv_notify_to(socket_.c_str(), text.c_str());
}

int SystemdNotifier::store_fd(const std::string& name, int fd) const {
    if (socket_.empty()) return 0;
    if (socket_.size() >= sizeof(sockaddr_un::sun_path) || (socket_[0] != '/' && socket_[0] != '@')) return -EAFNOSUPPORT;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, socket_.data(), socket_.size());
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
    auto sa_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size() + (socket_[0] == '/' ? 1 : 0));
    std::string text = "FDSTORE=1\nFDNAME=" + name;
    iovec iov{text.data(), text.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_name = &sa;
    msg.msg_namelen = sa_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return -errno;
    ssize_t n;
    do n = ::sendmsg(s.get(), &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 1;
}

int SystemdNotifier::remove_stored_fds(const std::string& name) const {
    return send("FDSTOREREMOVE=1\nFDNAME=" + name);
}

} // namespace sv
