// Fuzz target: --listen specs (supervisor/address.cpp). Never crashes; what it accepts
// is well-formed, and accepting is stable: NAME=TEXT of a parsed spec parses the same.
#include <sys/un.h>

#include "supervisor/address.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    bool name_ok = sv::valid_fd_name(text);
    fuzz::check(!name_ok || (!text.empty() && text.size() <= 255 && text.find(':') == std::string_view::npos),
                "valid_fd_name accepts only 1-255 characters without ':'");

    auto spec = sv::parse_listen_spec(text);
    if (!spec) {
        fuzz::check(!spec.error().what.empty(), "a rejected spec says why");
        return 0;
    }
    fuzz::check(spec->name.empty() || sv::valid_fd_name(spec->name), "a parsed name is a valid fd name");
    fuzz::check(!spec->text.empty(), "a parsed spec has an address");
    if (spec->kind == sv::ListenSpec::Kind::Unix) {
        fuzz::check(!spec->path.empty(), "a unix path is not empty");
        fuzz::check(spec->path.size() < sizeof(sockaddr_un::sun_path), "a unix path fits sun_path with its NUL");
        fuzz::check(spec->path.find('\0') == std::string::npos, "a unix path has no NUL");
    } else {
        fuzz::check(spec->port >= 0 && spec->port <= 65535, "a port is 0-65535");
    }
    std::string again = spec->name.empty() ? spec->text : spec->name + "=" + spec->text;
    auto reparsed = sv::parse_listen_spec(again);
    fuzz::check(reparsed.ok() && *reparsed == *spec, "NAME=TEXT of a parsed spec parses the same");
    return 0;
}
