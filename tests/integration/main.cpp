// Integration tests: the real supervisor binary against real loopback sockets.
// Meson passes the binaries by environment (see tests/meson.build); without
// SUPERVISOR_BIN the suite is skipped (exit code 77, meson's "skipped").
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <sys/prctl.h>

#include <csignal>
#include <cstdio>

#include "harness.h"

int main(int argc, char** argv) {
    if (svtest::bins().supervisor.empty()) {
        std::fprintf(stderr, "integration: SUPERVISOR_BIN is not set: skipping (run through meson test)\n");
        return 77;
    }
    // A peer that hangs up must give EPIPE in the client, not kill the test binary.
    std::signal(SIGPIPE, SIG_IGN);
    // Workers orphaned by a killed supervisor become our children, so the guards can reap
    // them instead of leaving zombies to an init that may not reap.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
