// Integration tests: the real supervisor binary against real loopback sockets.
// Meson passes the binaries by environment (see tests/meson.build); without
// SUPERVISOR_BIN the suite is skipped (exit code 77, meson's "skipped").
// meson runs this binary once per test file (--source-file=…): a filter that matches no
// test case is a mistake in tests/meson.build, and fails instead of passing silently.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <sys/prctl.h>

#include <csignal>
#include <cstdio>

#include "harness.h"

namespace {

// How many test cases passed the filters of the last run; -1 when none ran (--list…).
int g_selected = -1;

struct SelectionCounter : doctest::IReporter {
    explicit SelectionCounter(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& stats) override {
        g_selected = static_cast<int>(stats.numTestCasesPassingFilters);
    }
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

} // namespace

REGISTER_LISTENER("selection_counter", 1, SelectionCounter);

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
    int rc = ctx.run();
    if (rc == 0 && g_selected == 0) {
        std::fprintf(stderr, "integration: no test case matches the filters given\n");
        return 1;
    }
    return rc;
}
