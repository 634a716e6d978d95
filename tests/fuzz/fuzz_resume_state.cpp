// Fuzz target: the reexec resume state (supervisor/resume_state.cpp), which a new
// supervisor image reads before it trusts anything. Never crashes or throws; what it
// accepts writes back to the same document, and restores into a machine only if that
// machine keeps its invariants.
#include "supervisor/resume_state.h"
#include "supervisor/upgrade_machine.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto st = sv::parse_resume_state(fuzz::as_text(data, size));
    if (!st) {
        fuzz::check(st.error().what.rfind("resume state: ", 0) == 0, "a refusal names the resume state");
        fuzz::check(st.error().what.find('\n') == std::string::npos, "a refusal is one line");
        return 0;
    }
    std::string text = sv::serialize_resume_state(*st);
    auto again = sv::parse_resume_state(text);
    fuzz::check(static_cast<bool>(again), "what was accepted is accepted again once written");
    fuzz::check(again && sv::serialize_resume_state(*again) == text, "writing is stable");
    sv::MachineSettings s;
    s.workers = static_cast<int>(st->machine.slots.size() % 64);
    if (auto m = sv::UpgradeMachine::restore(s, st->machine))
        fuzz::check(m->check_invariants().empty(), "a restored machine keeps its invariants");
    return 0;
}
