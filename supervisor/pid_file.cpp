// Pid file.
#include "supervisor/pid_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sv {

namespace {

// The pid written in the file, for the refusal message ("?" when unreadable).
std::string pid_in(int fd) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.empty() ? "?" : s;
}

} // namespace

Result<PidFile> PidFile::acquire(const std::string& path) {
    auto fail = [&](int err) { return Error{err, "cannot use the pid file " + path + ": " + std::strerror(err)}; };
    PidFile p;
    p.path_ = path;
    p.fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644));
    if (!p.fd_.valid()) return fail(errno);
    while (::flock(p.fd_.get(), LOCK_EX | LOCK_NB) < 0) {
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) return fail(errno);
        return Error{EBUSY, "cannot use the pid file " + path + ": held by pid " + pid_in(p.fd_.get()) +
                                " (another supervisor is running)"};
    }
    std::string text = std::to_string(::getpid()) + "\n";
    if (::ftruncate(p.fd_.get(), 0) < 0) return fail(errno);
    if (::pwrite(p.fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) return fail(errno ? errno : EIO);
    return p;
}

PidFile PidFile::adopt(int fd, std::string path) {
    PidFile p;
    p.fd_.reset(fd);
    p.path_ = std::move(path);
    return p;
}

void PidFile::remove() {
    if (!fd_.valid()) return;
    struct stat ours{}, now{};
    // Only our own inode: someone may have replaced the path while we ran.
    if (::fstat(fd_.get(), &ours) == 0 && ::stat(path_.c_str(), &now) == 0 && ours.st_dev == now.st_dev &&
        ours.st_ino == now.st_ino)
        ::unlink(path_.c_str());
    fd_.reset();
}

} // namespace sv
