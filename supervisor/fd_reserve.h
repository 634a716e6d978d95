// A few fds on /dev/null held in reserve: at the fd limit (RLIMIT_NOFILE), closing them
// lets one essential operation (a spawn) go through; they are reopened right after.
#pragma once

#include <cstddef>
#include <vector>

#include "supervisor/unique_fd.h"

namespace sv {

// Enough for a spawn (the exec-error pipe) and the libuv handles that follow it.
constexpr size_t kFdReserveSize = 8;

class FdReserve {
public:
    // Opens `count` fds on /dev/null (O_CLOEXEC); fewer if the limit is already near.
    explicit FdReserve(size_t count = kFdReserveSize);
    // Closes every reserved fd.
    void release();
    // Reopens up to the count given at construction (best effort: as many as the limit allows).
    void refill();
    size_t held() const { return fds_.size(); }

private:
    size_t count_;
    std::vector<UniqueFd> fds_;
};

} // namespace sv
