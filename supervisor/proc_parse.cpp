// /proc texts and syscall argument memory → values (pure).
#include "supervisor/proc_parse.h"

#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <poll.h>

namespace sv {

// The tables are written out so both can be unit-tested on either machine; the C
// library's numbers for the host confirm the host's table at compile time.
#if defined(__x86_64__)
static_assert(kX86_64Syscalls.accept == SYS_accept && kX86_64Syscalls.accept4 == SYS_accept4 &&
              kX86_64Syscalls.poll == SYS_poll && kX86_64Syscalls.ppoll == SYS_ppoll &&
              kX86_64Syscalls.select == SYS_select && kX86_64Syscalls.pselect6 == SYS_pselect6 &&
              kX86_64Syscalls.epoll_wait == SYS_epoll_wait && kX86_64Syscalls.epoll_pwait == SYS_epoll_pwait);
#elif defined(__aarch64__)
static_assert(kAarch64Syscalls.accept == SYS_accept && kAarch64Syscalls.accept4 == SYS_accept4 &&
              kAarch64Syscalls.ppoll == SYS_ppoll && kAarch64Syscalls.pselect6 == SYS_pselect6 &&
              kAarch64Syscalls.epoll_pwait == SYS_epoll_pwait);
#endif

namespace {

// Space-separated tokens (runs of spaces and tabs count as one separator).
std::vector<std::string_view> split_words(std::string_view text) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) i++;
        size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t') i++;
        if (i > start) out.push_back(text.substr(start, i - start));
    }
    return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view text, int base = 10) {
    T value{};
    if (text.empty() || text[0] == '+' || text[0] == '-') return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// "0x1f" as the kernel prints a syscall register (always with the prefix).
std::optional<uint64_t> parse_register(std::string_view text) {
    if (text.size() < 3 || text.substr(0, 2) != "0x") return std::nullopt;
    return parse_number<uint64_t>(text.substr(2), 16);
}

std::string_view strip_newline(std::string_view text) {
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    return text;
}

// "key:value" or "key:" followed by "value" as the next token: the value, advancing i.
std::optional<std::string_view> take_field(const std::vector<std::string_view>& words, size_t& i,
                                           std::string_view key) {
    if (i >= words.size() || words[i].substr(0, key.size()) != key) return std::nullopt;
    std::string_view rest = words[i].substr(key.size());
    i++;
    if (!rest.empty()) return rest;
    if (i >= words.size()) return std::nullopt;
    return words[i++];
}

std::optional<EpollWatch> parse_tfd_line(std::string_view line) {
    auto words = split_words(line);
    size_t i = 0;
    auto tfd = take_field(words, i, "tfd:");
    auto events = take_field(words, i, "events:");
    auto data = take_field(words, i, "data:");
    auto pos = take_field(words, i, "pos:");
    auto ino = take_field(words, i, "ino:");
    auto sdev = take_field(words, i, "sdev:");
    if (!tfd || !events || !data || !pos || !ino || !sdev) return std::nullopt;
    EpollWatch w;
    auto fd = parse_number<int>(*tfd);
    auto ev = parse_number<uint32_t>(*events, 16);
    auto in = parse_number<uint64_t>(*ino, 16);
    auto dev = parse_number<uint32_t>(*sdev, 16);
    if (!fd || !ev || !in || !dev || !parse_number<uint64_t>(*data, 16)) return std::nullopt;
    w.tfd = *fd;
    w.events = *ev;
    w.ino = *in;
    w.sdev = *dev;
    return w;
}

} // namespace

std::optional<TaskSyscall> parse_task_syscall(std::string_view text) {
    text = strip_newline(text);
    TaskSyscall out;
    if (text == "running") return out;
    auto words = split_words(text);
    if (words.size() == 3 && words[0] == "-1") {
        auto sp = parse_register(words[1]);
        auto pc = parse_register(words[2]);
        if (!sp || !pc) return std::nullopt;
        out.state = TaskSyscall::State::NotInSyscall;
        out.sp = *sp;
        out.pc = *pc;
        return out;
    }
    if (words.size() != 9) return std::nullopt;
    auto nr = parse_number<long>(words[0]);
    if (!nr) return std::nullopt;
    out.state = TaskSyscall::State::Blocked;
    out.nr = *nr;
    for (size_t i = 0; i < 6; i++) {
        auto a = parse_register(words[1 + i]);
        if (!a) return std::nullopt;
        out.args[i] = *a;
    }
    auto sp = parse_register(words[7]);
    auto pc = parse_register(words[8]);
    if (!sp || !pc) return std::nullopt;
    out.sp = *sp;
    out.pc = *pc;
    return out;
}

std::optional<std::vector<EpollWatch>> parse_epoll_fdinfo(std::string_view text) {
    std::vector<EpollWatch> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.substr(0, 4) != "tfd:") continue;
        auto w = parse_tfd_line(line);
        if (!w) return std::nullopt;
        out.push_back(*w);
    }
    return out;
}

dev_t kernel_dev_to_dev(uint32_t kernel_dev) {
    // include/linux/kdev_t.h: MINORBITS is 20.
    return makedev(kernel_dev >> 20, kernel_dev & 0xfffff);
}

std::optional<uint64_t> parse_socket_link(std::string_view link) {
    constexpr std::string_view prefix = "socket:[";
    if (link.size() < prefix.size() + 2 || link.substr(0, prefix.size()) != prefix || link.back() != ']')
        return std::nullopt;
    return parse_number<uint64_t>(link.substr(prefix.size(), link.size() - prefix.size() - 1));
}

bool is_eventpoll_link(std::string_view link) { return link == "anon_inode:[eventpoll]"; }

std::vector<PollEntry> parse_pollfds(std::span<const std::byte> bytes) {
    std::vector<PollEntry> out;
    out.reserve(bytes.size() / sizeof(struct pollfd));
    for (size_t off = 0; off + sizeof(struct pollfd) <= bytes.size(); off += sizeof(struct pollfd)) {
        struct pollfd p;
        std::memcpy(&p, bytes.data() + off, sizeof p);  // the bytes need not be aligned
        out.push_back(PollEntry{p.fd, p.events});
    }
    return out;
}

bool polls_for_input(const PollEntry& e) { return e.fd >= 0 && (e.events & (POLLIN | POLLRDNORM)) != 0; }

size_t fd_set_bytes(long nfds) {
    constexpr long bits = sizeof(unsigned long) * CHAR_BIT;
    if (nfds <= 0) return 0;
    return static_cast<size_t>((nfds + bits - 1) / bits) * sizeof(unsigned long);
}

std::vector<int> parse_fd_set(std::span<const std::byte> bytes, long nfds) {
    constexpr size_t bits = sizeof(unsigned long) * CHAR_BIT;
    std::vector<int> out;
    if (nfds <= 0) return out;
    size_t words = bytes.size() / sizeof(unsigned long);
    for (size_t w = 0; w < words && w * bits < static_cast<unsigned long>(nfds); w++) {
        unsigned long word;
        std::memcpy(&word, bytes.data() + w * sizeof word, sizeof word);
        for (size_t b = 0; word != 0 && b < bits; b++, word >>= 1) {
            size_t fd = w * bits + b;
            if (fd >= static_cast<unsigned long>(nfds)) break;
            if (word & 1) out.push_back(static_cast<int>(fd));
        }
    }
    return out;
}

std::optional<std::string_view> status_field(std::string_view status, std::string_view key) {
    while (!status.empty()) {
        size_t nl = status.find('\n');
        std::string_view line = status.substr(0, nl);
        status.remove_prefix(nl == std::string_view::npos ? status.size() : nl + 1);
        if (line.substr(0, key.size()) != key) continue;
        line.remove_prefix(key.size());
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        return line;
    }
    return std::nullopt;
}

std::optional<unsigned> parse_status_uid(std::string_view value) {
    auto end = value.find_first_of(" \t");
    return parse_number<unsigned>(value.substr(0, end));
}

std::optional<uint64_t> parse_status_caps(std::string_view value) { return parse_number<uint64_t>(value, 16); }

const WaitSyscalls* host_wait_syscalls() {
#if defined(__x86_64__)
    return &kX86_64Syscalls;
#elif defined(__aarch64__)
    return &kAarch64Syscalls;
#else
    return nullptr;
#endif
}

std::optional<WaitCall> classify_wait(const WaitSyscalls& t, const TaskSyscall& call) {
    if (call.state != TaskSyscall::State::Blocked || call.nr < 0) return std::nullopt;
    const long nr = call.nr;
    const auto& a = call.args;
    // fds and counts are C ints: the upper half of the register is not part of them.
    auto as_int = [](uint64_t v) { return static_cast<int>(static_cast<uint32_t>(v)); };
    if (nr == t.accept || nr == t.accept4) return WaitCall{WaitCall::Kind::Accept, as_int(a[0]), 0, 0};
    if (nr == t.epoll_wait || nr == t.epoll_pwait || nr == t.epoll_pwait2)
        return WaitCall{WaitCall::Kind::Epoll, as_int(a[0]), 0, 0};
    // poll's nfds is an unsigned long: keep it whole, the caller bounds it.
    if (nr == t.poll || nr == t.ppoll)
        return WaitCall{WaitCall::Kind::Poll, -1, a[0], static_cast<long>(std::min<uint64_t>(a[1], LONG_MAX))};
    if (nr == t.select || nr == t.pselect6) return WaitCall{WaitCall::Kind::Select, -1, a[1], as_int(a[0])};
    return std::nullopt;
}

} // namespace sv
