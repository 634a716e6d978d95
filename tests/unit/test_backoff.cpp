// Restart backoff.
#include <doctest/doctest.h>

#include "supervisor/backoff.h"

using namespace sv;

TEST_CASE("doubles from the initial delay, capped, reset after a long uptime") {
    Backoff b(Millis(100), Millis(1000), Millis(10'000));
    CHECK_EQ(b.next().count(), 100);
    CHECK_EQ(b.next().count(), 200);
    CHECK_EQ(b.next().count(), 400);
    CHECK_EQ(b.next().count(), 800);
    CHECK_EQ(b.next().count(), 1000);
    CHECK_EQ(b.next().count(), 1000);
    b.note_uptime(Millis(9'999));
    CHECK_EQ(b.peek().count(), 1000);
    b.note_uptime(Millis(10'000));
    CHECK_EQ(b.next().count(), 100);
}
