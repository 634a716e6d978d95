// Listen specs: "[NAME=]PORT", "HOST:PORT", "[V6ADDR]:PORT", "unix:PATH" (pure parser).
#pragma once

#include <string>
#include <string_view>

#include "supervisor/result.h"

namespace sv {

struct ListenSpec {
    enum class Kind { Tcp, Unix };
    Kind kind = Kind::Tcp;
    std::string name;  // LISTEN_FDNAMES entry; empty until defaulted by the caller
    std::string host;  // "" = all interfaces (dual-stack); literal IPv4/IPv6 or a host name
    int port = 0;      // 0 = kernel-chosen ephemeral port
    std::string path;  // Unix: filesystem path
    std::string text;  // the spec as given, without the NAME= prefix, for messages

    bool operator==(const ListenSpec&) const = default;
};

// Parses one --listen value. Errors name what is wrong with the spec.
Result<ListenSpec> parse_listen_spec(std::string_view spec);

// A valid fd name for LISTEN_FDNAMES: 1..255 printable ASCII, no ':' (as systemd requires).
bool valid_fd_name(std::string_view name);

} // namespace sv
