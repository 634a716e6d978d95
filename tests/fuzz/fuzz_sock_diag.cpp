// Fuzz target: sock_diag dump datagrams (supervisor/sock_diag_parse.cpp) — what the kernel
// sends back, parsed with every length checked. Never crashes or reads past the input.
#include <cstring>

#include "supervisor/sock_diag_parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // A copy of exactly `size` bytes, so ASan sees any read past the end.
    std::vector<std::byte> copy(size);
    if (size > 0) std::memcpy(copy.data(), data, size);
    std::vector<sv::DiagSocket> out;
    int err = 0;
    auto r = sv::parse_inet_diag(copy, &out, &err);
    fuzz::check(r != sv::DiagChunk::Error || err > 0, "an error has a positive errno");
    fuzz::check(out.size() <= size / 16 + 1, "no more sockets than messages");
    std::vector<sv::ListenerEndpoint> ls(1);
    ls[0].family = 2;
    ls[0].port = 80;
    const std::vector<std::string> paths{"/run/app.sock"};
    for (const auto& s : out) {
        bool tcp = sv::is_listener_connection(s, ls);
        bool unix_conn = sv::is_unix_listener_connection(s, paths);
        fuzz::check(!(tcp && unix_conn), "a socket is a TCP or a unix connection, never both");
    }
    return 0;
}
