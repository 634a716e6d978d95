// Fuzz target: `supervisor ctl status` rendering a status document it received
// (format_status_table in supervisor/control_protocol.cpp). Whatever answers on the
// control socket, or a --status-file of another version, the client must print
// something or fail cleanly: never crash, never throw.
#include <nlohmann/json.hpp>

#include "supervisor/control_protocol.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return 0;
    std::string table = sv::format_status_table(j, 1'800'000'000'000);
    fuzz::check(!table.empty() && table.back() == '\n', "the table ends with a newline");
    return 0;
}
