// Restart backoff: 100 ms doubling to 30 s, reset once a worker stayed up (pure).
#pragma once

#include "supervisor/parse.h"

namespace sv {

class Backoff {
public:
    Backoff(Millis initial, Millis max, Millis reset_after)
        : initial_(initial), max_(max), reset_after_(reset_after), next_(initial) {}

    // The delay before the next restart; each call doubles the following one, up to max.
    Millis next();
    // A worker was ready for `uptime` before it died: long enough resets the backoff.
    void note_uptime(Millis uptime);
    Millis peek() const { return next_; }
    // A resumed supervisor (`ctl reexec`) carries on with the delay the old image had reached.
    void resume_at(Millis next) { next_ = next; }

private:
    Millis initial_, max_, reset_after_, next_;
};

} // namespace sv
