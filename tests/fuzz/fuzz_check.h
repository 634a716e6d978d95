// Shared by the fuzz targets: a property check that aborts (libFuzzer reports the input
// as a crash; the replay test fails), whatever NDEBUG says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fuzz {

inline void check(bool ok, const char* property) {
    if (ok) return;
    std::fprintf(stderr, "fuzz: property violated: %s\n", property);
    std::abort();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

} // namespace fuzz
