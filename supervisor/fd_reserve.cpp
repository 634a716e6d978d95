// The fd reserve.
#include "supervisor/fd_reserve.h"

#include <fcntl.h>

namespace sv {

FdReserve::FdReserve(size_t count) : count_(count) { refill(); }

void FdReserve::release() { fds_.clear(); }

void FdReserve::refill() {
    while (fds_.size() < count_) {
        UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return;  // EMFILE: what we could get is what we hold
        fds_.push_back(std::move(fd));
    }
}

} // namespace sv
