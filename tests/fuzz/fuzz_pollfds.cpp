// Fuzz target: pollfd arrays read from a worker's memory (supervisor/proc_parse.cpp).
// One entry per whole struct pollfd, equal to the bytes; polls_for_input never holds for
// a negative fd.
#include <poll.h>

#include <cstring>

#include "supervisor/proc_parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    auto entries = sv::parse_pollfds(bytes);
    fuzz::check(entries.size() == size / sizeof(struct pollfd), "one entry per whole pollfd");
    for (size_t i = 0; i < entries.size(); i++) {
        struct pollfd p;
        std::memcpy(&p, data + i * sizeof p, sizeof p);
        fuzz::check(entries[i].fd == p.fd && entries[i].events == p.events, "entries are the bytes");
        if (sv::polls_for_input(entries[i])) fuzz::check(p.fd >= 0 && (p.events & (POLLIN | POLLRDNORM)), "input only");
    }
    return 0;
}
