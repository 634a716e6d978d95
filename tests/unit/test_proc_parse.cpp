// /proc texts and syscall argument memory, well-formed and not (supervisor/proc_parse.cpp).
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "supervisor/proc_parse.h"

using namespace sv;
using namespace std::string_literals;

namespace {

template <typename T>
std::span<const std::byte> bytes_of(const T& value, size_t size = sizeof(T)) {
    return {reinterpret_cast<const std::byte*>(&value), size};
}

} // namespace

TEST_CASE("syscall: the three forms proc(5) documents") {
    SUBCASE("running") {
        auto s = parse_task_syscall("running\n");
        REQUIRE(s);
        CHECK(s->state == TaskSyscall::State::Running);
    }
    SUBCASE("blocked, not in a system call") {
        auto s = parse_task_syscall("-1 0x7ffd1c0 0x401000\n");
        REQUIRE(s);
        CHECK(s->state == TaskSyscall::State::NotInSyscall);
        CHECK_EQ(s->sp, 0x7ffd1c0u);
        CHECK_EQ(s->pc, 0x401000u);
    }
    SUBCASE("blocked in accept4 (x86_64 288) on fd 3") {
        auto s = parse_task_syscall("288 0x3 0x0 0x0 0x80800 0x0 0x0 0x7ffe4084dbe8 0x7fbb2e5692ad\n");
        REQUIRE(s);
        CHECK(s->state == TaskSyscall::State::Blocked);
        CHECK_EQ(s->nr, 288);
        CHECK_EQ(s->args[0], 3u);
        CHECK_EQ(s->args[3], 0x80800u);
        CHECK_EQ(s->sp, 0x7ffe4084dbe8u);
        CHECK_EQ(s->pc, 0x7fbb2e5692adu);
    }
    SUBCASE("full 64-bit registers, no trailing newline") {
        auto s = parse_task_syscall("0 0xffffffffffffffff 0x1 0x2 0x3 0x4 0x5 0x6 0x7");
        REQUIRE(s);
        CHECK_EQ(s->args[0], UINT64_MAX);
    }
}

TEST_CASE("syscall: malformed text is refused") {
    for (std::string_view bad : {"", "\n", "Running", "running now", "-1", "-1 0x1", "-1 0x1 0x2 0x3", "-2 0x1 0x2",
                                 "288 0x3 0x0 0x0 0x0 0x0 0x0 0x1", "288 0x3 0x0 0x0 0x0 0x0 0x0 0x1 0x2 0x3",
                                 "288 3 0x0 0x0 0x0 0x0 0x0 0x1 0x2", "288 0x 0x0 0x0 0x0 0x0 0x0 0x1 0x2",
                                 "288 0xg 0x0 0x0 0x0 0x0 0x0 0x1 0x2", "+288 0x3 0x0 0x0 0x0 0x0 0x0 0x1 0x2",
                                 "x 0x3 0x0 0x0 0x0 0x0 0x0 0x1 0x2",
                                 "288 0x10000000000000000 0x0 0x0 0x0 0x0 0x0 0x1 0x2", "running\n\n"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_task_syscall(bad));
    }
    CHECK_FALSE(parse_task_syscall("288 0x3\0 0x0 0x0 0x0 0x0 0x0 0x1 0x2"s));
}

TEST_CASE("epoll fdinfo: the watched files") {
    const std::string text = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n"
                             "tfd:        3 events:       19 data:                3  pos:0 ino:ac2e7 sdev:9\n"
                             "tfd:       12 events: 80000001 data:     7f0000000001  pos:0 ino:1a sdev:800001\n";
    auto w = parse_epoll_fdinfo(text);
    REQUIRE(w);
    REQUIRE_EQ(w->size(), 2u);
    CHECK_EQ((*w)[0].tfd, 3);
    CHECK_EQ((*w)[0].events, 0x19u);
    CHECK_EQ((*w)[0].ino, 0xac2e7u);
    CHECK_EQ((*w)[0].sdev, 9u);
    CHECK_EQ((*w)[1].tfd, 12);
    CHECK_EQ((*w)[1].events, EPOLLIN | EPOLLET);
    SUBCASE("an epoll set that watches nothing, or another kind of fd") {
        auto none = parse_epoll_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t9\n");
        REQUIRE(none);
        CHECK(none->empty());
        CHECK(parse_epoll_fdinfo("")->empty());
    }
}

TEST_CASE("epoll fdinfo: a malformed tfd line refuses the whole text") {
    for (std::string_view bad : {"tfd: 3 events: 19 data: 3 pos:0 ino:ac2e7\n",      // no sdev
                                 "tfd: 3 events: 19 data: 3 pos:0 sdev:9\n",          // no ino
                                 "tfd: x events: 19 data: 3 pos:0 ino:ac2e7 sdev:9\n",
                                 "tfd: 3 events: zz data: 3 pos:0 ino:ac2e7 sdev:9\n",
                                 "tfd: 3 events: 19 data: 3 pos:0 ino:-1 sdev:9\n",
                                 "tfd: 3 events: 19 data: 3 pos:0 ino: sdev:9\n",
                                 "tfd:\n", "tfd: 3 events:\n"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_epoll_fdinfo(bad));
    }
}

TEST_CASE("kernel dev_t → stat dev_t") {
    CHECK_EQ(kernel_dev_to_dev(9), makedev(0, 9));
    CHECK_EQ(kernel_dev_to_dev(0x800001), makedev(8, 1));
    CHECK_EQ(kernel_dev_to_dev(0x1234), makedev(0, 0x1234));  // minors above 255 too
}

TEST_CASE("socket links") {
    CHECK_EQ(parse_socket_link("socket:[705255]"), 705255u);
    CHECK_EQ(parse_socket_link("socket:[0]"), 0u);
    for (std::string_view bad : {"", "socket:[]", "socket:[12", "socket:12]", "socket:[-1]", "socket:[1a]",
                                 "pipe:[705255]", "/dev/null", "socket:[ 1]", "socket:[99999999999999999999999]"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_socket_link(bad));
    }
    CHECK(is_eventpoll_link("anon_inode:[eventpoll]"));
    CHECK_FALSE(is_eventpoll_link("anon_inode:[eventfd]"));
}

TEST_CASE("pollfd arrays") {
    struct pollfd set[3] = {{3, POLLIN, 0}, {-1, POLLIN, 0}, {7, POLLOUT, POLLOUT}};
    auto all = parse_pollfds(bytes_of(set));
    REQUIRE_EQ(all.size(), 3u);
    CHECK_EQ(all[0].fd, 3);
    CHECK(polls_for_input(all[0]));
    CHECK_FALSE(polls_for_input(all[1]));  // poll(2) ignores negative fds
    CHECK_FALSE(polls_for_input(all[2]));
    CHECK(polls_for_input(PollEntry{4, POLLRDNORM}));
    SUBCASE("a trailing partial entry is ignored") {
        CHECK_EQ(parse_pollfds(bytes_of(set, sizeof(pollfd) * 2 + 5)).size(), 2u);
        CHECK(parse_pollfds({}).empty());
    }
    SUBCASE("unaligned bytes") {
        std::byte buf[sizeof set + 1];
        std::memcpy(buf + 1, set, sizeof set);
        CHECK_EQ(parse_pollfds(std::span<const std::byte>(buf + 1, sizeof set))[2].fd, 7);
    }
}

TEST_CASE("fd_set bitmaps") {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(3, &set);
    FD_SET(64, &set);
    FD_SET(1000, &set);
    CHECK_EQ(parse_fd_set(bytes_of(set), FD_SETSIZE), std::vector<int>{3, 64, 1000});
    SUBCASE("only fds below nfds") {
        CHECK_EQ(parse_fd_set(bytes_of(set), 65), std::vector<int>{3, 64});
        CHECK_EQ(parse_fd_set(bytes_of(set), 64), std::vector<int>{3});
        CHECK(parse_fd_set(bytes_of(set), 3).empty());
        CHECK(parse_fd_set(bytes_of(set), 0).empty());
        CHECK(parse_fd_set(bytes_of(set), -5).empty());
    }
    SUBCASE("only the whole words given") {
        CHECK_EQ(parse_fd_set(bytes_of(set, fd_set_bytes(65)), FD_SETSIZE), std::vector<int>{3, 64});
        CHECK_EQ(parse_fd_set(bytes_of(set, sizeof(unsigned long) + 3), FD_SETSIZE), std::vector<int>{3});
        CHECK(parse_fd_set({}, 100).empty());
    }
    CHECK_EQ(fd_set_bytes(0), 0u);
    CHECK_EQ(fd_set_bytes(1), sizeof(unsigned long));
    CHECK_EQ(fd_set_bytes(64), 64 / 8u);
    CHECK_EQ(fd_set_bytes(65), 128 / 8u);
}

TEST_CASE("stat lines") {
    const std::string tail = " 1 0 0 4194304 127 0 0 0 0 0 0 0 20 0 1 0 557537 2990080 407 "
                             "18446744073709551615 94565038108672 94565038126601 140737115943744 0 0 0 0 6 0\n";
    SUBCASE("a plain name") {
        auto st = parse_proc_stat("20668 (sleep) S 20662 20662" + tail);
        REQUIRE(st);
        CHECK_EQ(st->pid, 20668);
        CHECK_EQ(st->comm, "sleep");
        CHECK_EQ(st->state, 'S');
        CHECK_EQ(st->ppid, 20662);
        CHECK_EQ(st->pgrp, 20662);
        CHECK_EQ(st->start_time, 557537u);
        CHECK_EQ(st->start_stack, 140737115943744u);
    }
    SUBCASE("spaces and parentheses in the name") {
        auto st = parse_proc_stat("7 (a) S 1 2 (x)) R 5 6" + tail);
        REQUIRE(st);
        CHECK_EQ(st->comm, "a) S 1 2 (x)");
        CHECK_EQ(st->state, 'R');
        CHECK_EQ(st->ppid, 5);
        CHECK_EQ(st->pgrp, 6);
    }
    SUBCASE("an empty name") { CHECK_EQ(parse_proc_stat("7 () Z 1 7" + tail)->comm, ""); }
}

TEST_CASE("stat lines: malformed") {
    const std::string tail = " 1 0 0 4194304 127 0 0 0 0 0 0 0 20 0 1 0 557537 2990080 407 1 2 3 4 5\n";
    for (const std::string& bad : {"20668 (sleep) S 20662 20662 1 0"s,  // too short
                                   "(sleep) S 20662 20662" + tail, "x (sleep) S 20662 20662" + tail,
                                   "20668 sleep S 20662 20662" + tail, "20668 (sleep S 20662 20662" + tail,
                                   "20668 (sleep) SS 20662 20662" + tail, "20668 (sleep) S -1 20662" + tail,
                                   "20668 (sleep) S 20662 x" + tail, "20668)(sleep S 20662 20662" + tail, ""s}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_proc_stat(bad));
    }
}

TEST_CASE("status fields") {
    const std::string status = "Name:\tpy\nUid:\t1000\t1001\t1002\t1003\nCapEff:\t000001ffffffffff\n";
    CHECK_EQ(status_field(status, "Uid:"), "1000\t1001\t1002\t1003");
    CHECK_EQ(parse_status_uid(*status_field(status, "Uid:")), 1000u);
    CHECK_EQ(parse_status_caps(*status_field(status, "CapEff:")), 0x1ffffffffffu);
    CHECK_FALSE(status_field(status, "Gid:"));
    CHECK_FALSE(parse_status_uid("x\t1"));
    CHECK_FALSE(parse_status_caps(""));
}

TEST_CASE("wait syscalls per architecture") {
    auto blocked = [](long nr, std::array<uint64_t, 6> args) {
        TaskSyscall s;
        s.state = TaskSyscall::State::Blocked;
        s.nr = nr;
        s.args = args;
        return s;
    };
    SUBCASE("x86_64") {
        const auto& t = kX86_64Syscalls;
        auto a = classify_wait(t, blocked(43, {3}));
        REQUIRE(a);
        CHECK(a->kind == WaitCall::Kind::Accept);
        CHECK_EQ(a->fd, 3);
        CHECK(classify_wait(t, blocked(288, {0xffffffff00000005})));
        CHECK_EQ(classify_wait(t, blocked(288, {0xffffffff00000005}))->fd, 5);  // an int: the low half
        auto p = classify_wait(t, blocked(7, {0x1000, 4}));
        REQUIRE(p);
        CHECK(p->kind == WaitCall::Kind::Poll);
        CHECK_EQ(p->addr, 0x1000u);
        CHECK_EQ(p->count, 4);
        CHECK(classify_wait(t, blocked(271, {0x1000, 4}))->kind == WaitCall::Kind::Poll);
        auto s = classify_wait(t, blocked(23, {10, 0x2000}));
        REQUIRE(s);
        CHECK(s->kind == WaitCall::Kind::Select);
        CHECK_EQ(s->count, 10);
        CHECK_EQ(s->addr, 0x2000u);
        CHECK(classify_wait(t, blocked(270, {10, 0x2000}))->kind == WaitCall::Kind::Select);
        for (long nr : {232L, 281L, 441L}) CHECK(classify_wait(t, blocked(nr, {6}))->kind == WaitCall::Kind::Epoll);
        CHECK_FALSE(classify_wait(t, blocked(35, {})));  // nanosleep
        CHECK_FALSE(classify_wait(t, blocked(202, {3})));  // aarch64's accept is x86_64's futex
    }
    SUBCASE("aarch64") {
        const auto& t = kAarch64Syscalls;
        CHECK(classify_wait(t, blocked(202, {3}))->kind == WaitCall::Kind::Accept);
        CHECK(classify_wait(t, blocked(242, {3}))->kind == WaitCall::Kind::Accept);
        CHECK(classify_wait(t, blocked(73, {0x1000, 2}))->kind == WaitCall::Kind::Poll);
        CHECK(classify_wait(t, blocked(72, {4, 0x1000}))->kind == WaitCall::Kind::Select);
        CHECK(classify_wait(t, blocked(22, {5}))->kind == WaitCall::Kind::Epoll);
        CHECK_FALSE(classify_wait(t, blocked(43, {3})));
    }
    SUBCASE("not blocked in a system call") {
        TaskSyscall running;
        CHECK_FALSE(classify_wait(kX86_64Syscalls, running));
        TaskSyscall outside = blocked(-1, {});
        CHECK_FALSE(classify_wait(kAarch64Syscalls, outside));  // -1 is also "no such call" in the table
    }
    CHECK(host_wait_syscalls() != nullptr);
}
