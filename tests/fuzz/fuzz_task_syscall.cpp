// Fuzz target: /proc/PID/task/TID/syscall lines (supervisor/proc_parse.cpp). Never
// crashes; what parses prints back in the kernel's form and parses to the same value.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "supervisor/proc_parse.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

std::string render(const sv::TaskSyscall& s) {
    char buf[256];
    switch (s.state) {
    case sv::TaskSyscall::State::Running: return "running";
    case sv::TaskSyscall::State::NotInSyscall:
        std::snprintf(buf, sizeof buf, "-1 0x%" PRIx64 " 0x%" PRIx64, s.sp, s.pc);
        return buf;
    case sv::TaskSyscall::State::Blocked:
        std::snprintf(buf, sizeof buf, "%ld 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64
                      " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n",
                      s.nr, s.args[0], s.args[1], s.args[2], s.args[3], s.args[4], s.args[5], s.sp, s.pc);
        return buf;
    }
    return "";
}

bool same(const sv::TaskSyscall& a, const sv::TaskSyscall& b) {
    return a.state == b.state && a.nr == b.nr && a.args == b.args && a.sp == b.sp && a.pc == b.pc;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto text = fuzz::as_text(data, size);
    auto s = sv::parse_task_syscall(text);
    if (!s) return 0;
    fuzz::check(s->state != sv::TaskSyscall::State::Blocked || s->nr >= 0, "a blocked call has a number");
    auto again = sv::parse_task_syscall(render(*s));
    fuzz::check(again && same(*s, *again), "the kernel's rendering parses to the same value");
    if (auto w = sv::classify_wait(*sv::host_wait_syscalls(), *s))
        fuzz::check(s->state == sv::TaskSyscall::State::Blocked, "only a blocked thread waits");
    return 0;
}
