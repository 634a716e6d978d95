// Listen spec parser.
#include "supervisor/address.h"

#include <sys/un.h>

#include "supervisor/parse.h"

namespace sv {

namespace {

Error bad(std::string_view spec, std::string_view why) {
    return Error{0, "invalid --listen '" + std::string(spec) + "': " + std::string(why)};
}

Result<int> parse_port(std::string_view spec, std::string_view text) {
    auto port = parse_uint(text);
    if (!port) return bad(spec, "port '" + std::string(text) + "' is not a number");
    if (*port > 65535) return bad(spec, "port " + std::string(text) + " is out of range 0-65535");
    return *port;
}

} // namespace

bool valid_fd_name(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    for (char c : name)
        if (c < 0x21 || c > 0x7e || c == ':') return false;
    return true;
}

Result<ListenSpec> parse_listen_spec(std::string_view full) {
    ListenSpec out;
    std::string_view spec = full;
    // NAME= prefix; a '=' can only be a name separator because addresses never contain one.
    if (auto eq = spec.find('='); eq != std::string_view::npos) {
        out.name = std::string(spec.substr(0, eq));
        if (!valid_fd_name(out.name))
            return bad(full, "name '" + out.name + "' must be 1-255 printable characters without ':' or spaces");
        spec = spec.substr(eq + 1);
    }
    out.text = std::string(spec);
    if (spec.empty()) return bad(full, "empty address");

    if (spec.rfind("unix:", 0) == 0) {
        out.kind = ListenSpec::Kind::Unix;
        out.path = std::string(spec.substr(5));
        if (out.path.empty()) return bad(full, "empty unix socket path");
        if (out.path.find('\0') != std::string::npos) return bad(full, "NUL in unix socket path");
        if (out.path.size() >= sizeof(sockaddr_un::sun_path))
            return bad(full, "unix socket path is longer than " +
                                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
        return out;
    }
    if (spec.front() == '[') {
        auto close = spec.find(']');
        if (close == std::string_view::npos) return bad(full, "missing ']' after IPv6 address");
        out.host = std::string(spec.substr(1, close - 1));
        if (out.host.empty()) return bad(full, "empty IPv6 address");
        if (close + 1 >= spec.size() || spec[close + 1] != ':') return bad(full, "missing ':PORT' after ']'");
        auto port = parse_port(full, spec.substr(close + 2));
        if (!port) return port.error();
        out.port = *port;
        return out;
    }
    auto colon = spec.rfind(':');
    if (colon == std::string_view::npos) {
        auto port = parse_port(full, spec);
        if (!port) return port.error();
        out.port = *port;
        return out;
    }
    out.host = std::string(spec.substr(0, colon));
    if (out.host.empty()) return bad(full, "empty host before ':'");
    if (out.host.find(':') != std::string::npos)
        return bad(full, "an IPv6 address must be written in brackets, e.g. [::1]:8080");
    auto port = parse_port(full, spec.substr(colon + 1));
    if (!port) return port.error();
    out.port = *port;
    return out;
}

} // namespace sv
