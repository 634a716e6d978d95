// Fuzz target: the /proc parsers of containment (supervisor/proc_files.cpp). Never
// crashes; an accepted stat line has sane numbers and its fields survive a re-format
// whatever the comm; the cgroup path is absolute; a cgroup dir starts with the mount point.
#include <string>

#include "supervisor/proc_files.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);

    if (auto st = sv::parse_proc_stat(text)) {
        fuzz::check(st->pid > 0 && st->ppid >= 0 && st->pgrp >= 0 && st->session >= 0, "stat numbers in range");
        // The same fields behind a comm full of what confuses naive parsers parse the same.
        size_t close = text.rfind(')');
        std::string again = std::to_string(st->pid) + " (a) b) (c" + std::string(text.substr(close));
        auto st2 = sv::parse_proc_stat(again);
        auto expected = *st;
        expected.comm = "a) b) (c";
        fuzz::check(st2 && *st2 == expected, "the comm field never changes the other fields");
    }
    if (auto path = sv::parse_cgroup2_path(text)) fuzz::check(!path->empty() && path->front() == '/', "cgroup paths are absolute");
    if (auto m = sv::find_cgroup2_mount(text)) {
        fuzz::check(!m->mount_point.empty() && !m->root.empty(), "a mount has a point and a root");
        if (auto dir = sv::cgroup_dir(*m, m->root))
            fuzz::check(dir->rfind(m->mount_point, 0) == 0, "a cgroup dir lies under the mount point");
    }
    return 0;
}
