// Fuzz target: /proc/PID/stat lines (supervisor/proc_parse.cpp). Never crashes; a line
// that parses keeps its name whole (whatever parentheses it holds) and parses the same
// when printed back.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "supervisor/proc_parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto text = fuzz::as_text(data, size);
    auto st = sv::parse_proc_stat(text);
    if (!st) return 0;
    fuzz::check(st->pid >= 0 && st->ppid >= 0 && st->pgrp >= 0, "ids are not negative");
    fuzz::check(text.find(st->comm) != std::string_view::npos, "the name is taken from the line");
    char rest[256];
    std::snprintf(rest, sizeof rest,
                  ") %c %d %d 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 %" PRIu64 " 0 0 0 0 0 %" PRIu64 " 0 0\n", st->state,
                  st->ppid, st->pgrp, st->start_time, st->start_stack);
    auto again = sv::parse_proc_stat(std::to_string(st->pid) + " (" + st->comm + rest);
    fuzz::check(again && again->pid == st->pid && again->comm == st->comm && again->state == st->state &&
                    again->ppid == st->ppid && again->pgrp == st->pgrp && again->start_time == st->start_time &&
                    again->start_stack == st->start_stack,
                "printed back, it parses the same");
    return 0;
}
