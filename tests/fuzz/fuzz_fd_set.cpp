// Fuzz target: select(2) fd_set bitmaps read from a worker's memory
// (supervisor/proc_parse.cpp). Input: 4 bytes of nfds (native int), then the bitmap.
// The fds come out ascending, below nfds, and are exactly the bits set in whole words.
#include <sys/select.h>

#include <climits>
#include <cstring>

#include "supervisor/proc_parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < sizeof(int)) return 0;
    int nfds;
    std::memcpy(&nfds, data, sizeof nfds);
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + sizeof nfds), size - sizeof nfds);
    auto fds = sv::parse_fd_set(bytes, nfds);
    constexpr size_t bits = sizeof(unsigned long) * CHAR_BIT;
    size_t whole = bytes.size() / sizeof(unsigned long) * bits;
    size_t expected = 0;
    for (size_t fd = 0; nfds > 0 && fd < whole && fd < static_cast<size_t>(nfds); fd++) {
        unsigned long word;
        std::memcpy(&word, bytes.data() + fd / bits * sizeof word, sizeof word);
        expected += (word >> (fd % bits)) & 1;
    }
    fuzz::check(fds.size() == expected, "one fd per set bit below nfds in whole words");
    for (size_t i = 0; i < fds.size(); i++) {
        fuzz::check(fds[i] >= 0 && fds[i] < nfds, "below nfds");
        fuzz::check(i == 0 || fds[i - 1] < fds[i], "ascending");
    }
    fuzz::check(sv::fd_set_bytes(nfds) % sizeof(unsigned long) == 0, "whole words");
    return 0;
}
