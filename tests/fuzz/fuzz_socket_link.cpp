// Fuzz target: readlink texts of /proc/PID/fd/N (supervisor/proc_parse.cpp). Never
// crashes; an inode is found only in "socket:[DIGITS]", and its decimal form parses back.
#include <cctype>
#include <string>

#include "supervisor/proc_parse.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto text = fuzz::as_text(data, size);
    auto ino = sv::parse_socket_link(text);
    if (!ino) return 0;
    fuzz::check(text.substr(0, 8) == "socket:[" && text.back() == ']', "the socket:[…] form");
    for (char c : text.substr(8, text.size() - 9))
        fuzz::check(std::isdigit(static_cast<unsigned char>(c)), "only digits between the brackets");
    fuzz::check(sv::parse_socket_link("socket:[" + std::to_string(*ino) + "]") == *ino, "decimal round trip");
    fuzz::check(!sv::is_eventpoll_link(text), "a socket is not an epoll set");
    return 0;
}
