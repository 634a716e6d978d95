// Fuzz target: the command line (supervisor/cli.cpp). The input is argv split at NUL
// bytes. Never crashes or throws; a usage error is one line with exit code 2.
#include <string>
#include <vector>

#include "supervisor/cli.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 4096) return 0;  // argv is short; long inputs only slow the search down
    std::vector<std::string> args{"supervisor"};
    std::string_view text = fuzz::as_text(data, size);
    while (!text.empty()) {
        auto nul = text.find('\0');
        args.emplace_back(text.substr(0, nul));
        if (nul == std::string_view::npos) break;
        text.remove_prefix(nul + 1);
    }
    auto outcome = sv::parse_command_line(args);
    if (auto* done = std::get_if<sv::CliExit>(&outcome)) {
        fuzz::check(done->code == 0 || done->code == 2, "the command line exits 0 (help, version) or 2");
        if (done->code == 2) fuzz::check(done->text.rfind("supervisor: ", 0) == 0, "a usage error starts with 'supervisor: '");
        return 0;
    }
    const auto& cfg = std::get<sv::Config>(outcome);
    fuzz::check(!cfg.command.empty() && !cfg.command.front().empty(), "a config has a command");
    fuzz::check(cfg.drain_signal > 0, "a config has a drain signal");
    fuzz::check(cfg.ready_timeout.count() > 0, "the ready timeout is positive");
    for (const auto& l : cfg.listeners) fuzz::check(sv::valid_fd_name(l.name), "every listener has a valid name");
    return 0;
}
