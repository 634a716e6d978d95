// Pid file.
#include "supervisor/pid_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "supervisor/unique_fd.h"

namespace sv {

Result<Ok> write_pid_file(const std::string& path) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    std::string text = std::to_string(::getpid()) + "\n";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return Error{errno, "cannot write the pid file " + path + ": " + std::strerror(errno)};
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error{err, "cannot write the pid file " + path + ": " + std::strerror(err)};
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error{err, "cannot write the pid file " + path + ": " + std::strerror(err)};
    }
    return Ok{};
}

void remove_pid_file(const std::string& path) {
    std::ifstream in(path);
    long pid = 0;
    // Only our own: a newer supervisor may have taken the path over.
    if (in >> pid && pid == ::getpid()) ::unlink(path.c_str());
}

} // namespace sv
