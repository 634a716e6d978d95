// /proc parsers: stat lines with hostile comm fields, /proc/self/cgroup, mountinfo.
#include <doctest/doctest.h>

#include <string>

#include "supervisor/proc_files.h"

using namespace sv;

namespace {

// A real-looking line: fields 3..52 after "(comm)".
std::string stat_line(const std::string& comm, const std::string& tail_fields = "") {
    return "4121 (" + comm + ") S 4100 4121 4000 34816 4121 4194304 96 0 0 0 0 0 0 0 20 0 1 0 987654 "
           "10829824 829 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0" +
           tail_fields + "\n";
}

} // namespace

TEST_CASE("proc stat: the fields containment needs") {
    auto st = parse_proc_stat(stat_line("fake_worker"));
    REQUIRE(st);
    CHECK_EQ(st->pid, 4121);
    CHECK_EQ(st->state, 'S');
    CHECK_EQ(st->ppid, 4100);
    CHECK_EQ(st->pgrp, 4121);
    CHECK_EQ(st->session, 4000);
    CHECK_EQ(st->start_time, 987654u);
}

TEST_CASE("proc stat: comm with spaces, parentheses and newlines is skipped by the last ')'") {
    for (std::string comm : {"a b", "x) S 1 1 1", "((", "))", ") 9 9 9 (", "new\nline", "", " ", "(sd-pam)"}) {
        CAPTURE(comm);
        auto st = parse_proc_stat(stat_line(comm));
        REQUIRE(st);
        CHECK_EQ(st->ppid, 4100);
        CHECK_EQ(st->pgrp, 4121);
        CHECK_EQ(st->start_time, 987654u);
    }
}

TEST_CASE("proc stat: zombies and kernel threads") {
    auto z = parse_proc_stat("77 (sh) Z 1 77 77 0 -1 4194316 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    REQUIRE(z);
    CHECK_EQ(z->state, 'Z');
    auto k = parse_proc_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 4 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    REQUIRE(k);
    CHECK_EQ(k->ppid, 0);
    CHECK_EQ(k->pgrp, 0);
}

TEST_CASE("proc stat: malformed lines are refused") {
    for (std::string bad : {std::string(""), std::string("4121"), std::string("4121 (x"), std::string("x (y) S 1 1 1"),
                            std::string("4121 (x) S 4100"), std::string("-1 (x) S 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
                            std::string("4121 (x)S 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
                            std::string("4121 (x) SS 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
                            std::string("4121 (x) S 1 -2 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
                            std::string("4121 (x) S 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5x"),
                            std::string("0 (x) S 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
                            std::string("4121 )x( S 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5")}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_proc_stat(bad));
    }
}

TEST_CASE("proc self cgroup: the v2 line") {
    CHECK_EQ(parse_cgroup2_path("0::/\n"), std::optional<std::string>("/"));
    CHECK_EQ(parse_cgroup2_path("12:pids:/x\n4:memory:/a/b\n0::/system.slice/app.service\n"),
             std::optional<std::string>("/system.slice/app.service"));
    CHECK_EQ(parse_cgroup2_path("0::/a b/c"), std::optional<std::string>("/a b/c"));
    CHECK_FALSE(parse_cgroup2_path("4:memory:/a\n1:name=systemd:/\n"));  // v1 only
    CHECK_FALSE(parse_cgroup2_path(""));
    CHECK_FALSE(parse_cgroup2_path("0::relative"));
    CHECK_FALSE(parse_cgroup2_path("0::/gone (deleted)\n"));
}

TEST_CASE("mountinfo: the cgroup2 mount, escapes decoded") {
    const std::string hybrid =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    CHECK_EQ(find_cgroup2_mount(hybrid), std::optional<Cgroup2Mount>({"/", "/sys/fs/cgroup/unified"}));
    CHECK_EQ(find_cgroup2_mount("29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"),
             std::optional<Cgroup2Mount>({"/", "/sys/fs/cgroup"}));
    CHECK_EQ(find_cgroup2_mount("29 23 0:26 /ctr\\0401 /mnt/cg\\040x rw - cgroup2 none rw\n"),
             std::optional<Cgroup2Mount>({"/ctr 1", "/mnt/cg x"}));
    CHECK_FALSE(find_cgroup2_mount("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"));
    CHECK_FALSE(find_cgroup2_mount("garbage without a dash cgroup2\n - cgroup2\n"));
}

TEST_CASE("cgroup dir: a path below the mounted root") {
    Cgroup2Mount root{"/", "/sys/fs/cgroup"};
    CHECK_EQ(cgroup_dir(root, "/"), std::optional<std::string>("/sys/fs/cgroup"));
    CHECK_EQ(cgroup_dir(root, "/system.slice/a.service"), std::optional<std::string>("/sys/fs/cgroup/system.slice/a.service"));
    Cgroup2Mount sub{"/ctr", "/sys/fs/cgroup"};
    CHECK_EQ(cgroup_dir(sub, "/ctr/app"), std::optional<std::string>("/sys/fs/cgroup/app"));
    CHECK_EQ(cgroup_dir(sub, "/ctr"), std::optional<std::string>("/sys/fs/cgroup"));
    CHECK_FALSE(cgroup_dir(sub, "/ctrl/app"));
    CHECK_FALSE(cgroup_dir(sub, "/other"));
}
