// Fuzz target: the --adopt-bind preload's pure parts (supervisor/adopt/): SUPERVISOR_ADOPT
// parsing, address matching and the text helpers. Never crashes, never reads past the
// lengths given, and keeps the documented properties.
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "supervisor/adopt/adopt_match.h"
#include "supervisor/adopt/adopt_text.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void check_env(const std::string& text) {
    adopt_env e;
    int r = adopt_parse_env(text.c_str(), &e);
    fuzz::check(r == 0 || r == -EINVAL, "parse returns 0 or -EINVAL");
    if (r < 0) {
        fuzz::check(e.count == 0, "a refused text leaves nothing parsed");
        return;
    }
    fuzz::check(e.count >= 1 && e.count <= ADOPT_MAX_FDS, "1..ADOPT_MAX_FDS fds");
    for (int i = 0; i < e.count; i++) {
        fuzz::check(e.fds[i] >= 0, "fds are not negative");
        for (int j = 0; j < i; j++) fuzz::check(e.fds[i] != e.fds[j], "fds are distinct");
    }
}

// Bytes → a sockaddr of the given length (the buffer is as large as any address).
socklen_t take_addr(const uint8_t*& p, const uint8_t* end, sockaddr_storage* out) {
    std::memset(out, 0, sizeof *out);
    if (p == end) return 0;
    socklen_t len = static_cast<socklen_t>(*p++ % (sizeof(sockaddr_un) + 1));
    size_t n = std::min<size_t>(len, static_cast<size_t>(end - p));
    std::memcpy(out, p, n);
    p += n;
    static const sa_family_t kFamilies[] = {AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC};
    if (len >= sizeof(sa_family_t)) out->ss_family = kFamilies[out->ss_family % 4];
    return len;
}

void check_match(const uint8_t* p, const uint8_t* end) {
    sockaddr_storage l, r;
    int v6only = p != end ? (*p++ & 1) : 0;
    socklen_t ll = take_addr(p, end, &l), rl = take_addr(p, end, &r);
    auto* ls = reinterpret_cast<sockaddr*>(&l);
    auto* rs = reinterpret_cast<sockaddr*>(&r);
    int v = adopt_match(ls, ll, v6only, rs, rl);
    fuzz::check(v == ADOPT_NO || v == ADOPT_MATCH || v == ADOPT_FAMILY, "a verdict is one of three");
    if (v == ADOPT_FAMILY) fuzz::check(l.ss_family == AF_INET6 && r.ss_family == AF_INET, "FAMILY: IPv4 on IPv6");
    if (v == ADOPT_MATCH && l.ss_family == AF_INET && r.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&l);
        auto* b = reinterpret_cast<sockaddr_in*>(&r);
        fuzz::check(a->sin_port == b->sin_port && b->sin_port != 0, "a match is on the same, non-zero port");
    }
    // Reflexive: a named address serves itself (ports and paths given).
    int self = adopt_match(rs, rl, 0, rs, rl);
    if (r.ss_family == AF_INET && rl >= sizeof(sockaddr_in) && reinterpret_cast<sockaddr_in*>(&r)->sin_port != 0)
        fuzz::check(self == ADOPT_MATCH, "an IPv4 address serves itself");
    if (r.ss_family == AF_INET6 && rl >= sizeof(sockaddr_in6) && reinterpret_cast<sockaddr_in6*>(&r)->sin6_port != 0)
        fuzz::check(self == ADOPT_MATCH, "an IPv6 address serves itself");
    char buf[64];
    adopt_format_addr(rs, rl, buf, sizeof buf);
    fuzz::check(std::memchr(buf, '\0', sizeof buf) != nullptr, "a formatted address is NUL-terminated");
}

void check_preload(const std::string& text) {
    size_t cut = text.find('\n');
    std::string list = text.substr(0, cut), path = cut == std::string::npos ? "x" : text.substr(cut + 1);
    if (path.empty() || path.find_first_of(": ") != std::string::npos) return;
    char out[512];
    if (adopt_remove_preload_entry(list.c_str(), path.c_str(), out, sizeof out) < 0) return;
    std::string o = out;
    fuzz::check(o.size() <= list.size(), "removing never grows the list");
    size_t start = 0;
    while (!o.empty() && start <= o.size()) {
        size_t colon = o.find(':', start);
        std::string entry = o.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        fuzz::check(entry != path && !entry.empty(), "the path is gone and no entry is empty");
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 3) {
    case 0: check_env(text.substr(0, text.find('\0'))); break;
    case 1: check_match(data + 1, data + size); break;
    default: check_preload(text.substr(0, text.find('\0'))); break;
    }
    return 0;
}
