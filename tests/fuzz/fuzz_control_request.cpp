// Fuzz target: control requests (supervisor/control_protocol.cpp) — one line from any
// client allowed on the control socket. Never crashes or throws; the error reply built
// from the parser's message is one valid JSON line.
#include <nlohmann/json.hpp>

#include "supervisor/control_protocol.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view line = fuzz::as_text(data, size);
    auto req = sv::parse_control_request(line);
    if (req) {
        auto cmd = req->cmd;
        fuzz::check(cmd == sv::ControlRequest::Cmd::Status || cmd == sv::ControlRequest::Cmd::Upgrade ||
                        cmd == sv::ControlRequest::Cmd::Stop || cmd == sv::ControlRequest::Cmd::Reexec,
                    "a parsed request has a known cmd");
        return 0;
    }
    std::string reply = sv::control_error(req.error().what);
    fuzz::check(!reply.empty() && reply.back() == '\n', "a reply ends with a newline");
    fuzz::check(reply.find('\n') == reply.size() - 1, "a reply is one line");
    auto j = nlohmann::json::parse(reply, nullptr, false);
    fuzz::check(!j.is_discarded() && j.is_object(), "an error reply is a JSON object");
    fuzz::check(j.value("ok", true) == false && j.contains("error"), "an error reply has ok=false and an error");
    return 0;
}
