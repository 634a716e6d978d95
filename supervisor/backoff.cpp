// Restart backoff.
#include "supervisor/backoff.h"

#include <algorithm>

namespace sv {

Millis Backoff::next() {
    Millis current = next_;
    next_ = std::min(max_, next_ * 2);
    return current;
}

void Backoff::note_uptime(Millis uptime) {
    if (uptime >= reset_after_) next_ = initial_;
}

} // namespace sv
