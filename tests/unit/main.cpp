// Unit tests of the pure parts: no processes, no sleeps, no clock.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
