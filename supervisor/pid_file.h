// --pid-file: locked (flock) for the supervisor's whole life, so a second supervisor
// started with the same path refuses instead of taking it over; removed on exit if ours.
#pragma once

#include <string>

#include "supervisor/result.h"
#include "supervisor/unique_fd.h"

namespace sv {

class PidFile {
public:
    // Opens (creating) `path`, takes LOCK_EX|LOCK_NB on it and writes our pid in place
    // (no rename: the lock is on this inode). Held by another process: the error reads
    // "cannot use the pid file X: held by pid N (another supervisor is running)".
    static Result<PidFile> acquire(const std::string& path);
    // `ctl reexec`: the locked fd the previous image held (same pid, same lock).
    static PidFile adopt(int fd, std::string path);
    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }
    PidFile() = default;

    // Unlinks the file if the path still names our locked inode; the lock goes with the fd.
    void remove();
    bool held() const { return fd_.valid(); }

private:
    UniqueFd fd_;  // O_CLOEXEC: workers never inherit the lock
    std::string path_;
};

} // namespace sv
