// Fuzz target: HTTP request heads (supervisor/http_request.cpp) — the first bytes any
// client of --http sends. Never crashes; a verdict is consistent with the input's length,
// and the answer built from it is one well-formed HTTP response.
#include <string>

#include "supervisor/http_request.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz::as_text(data, size);
    constexpr size_t kSmallHead = 256;  // the limit reached often, as well as the default
    for (size_t limit : {kSmallHead, sv::kHttpMaxHead}) {
        auto p = sv::parse_http_request(text, limit);
        using State = sv::HttpParse::State;
        if (p.state == State::Incomplete) {
            fuzz::check(size < limit, "a head past the limit is never incomplete");
            continue;
        }
        if (p.state == State::Bad) {
            fuzz::check(p.status == 400 || p.status == 431 || p.status == 505, "a bad head gets 400, 431 or 505");
            fuzz::check(p.status != 431 || size >= limit, "431 only past the limit");
            std::string a = sv::format_http_response({p.status, "text/plain", p.why + "\n"});
            fuzz::check(a.rfind("HTTP/1.1 ", 0) == 0 && a.find("\r\n\r\n") != std::string::npos, "a well-formed answer");
            continue;
        }
        fuzz::check(!p.request.method.empty(), "a parsed head has a method");
        fuzz::check(p.request.path.find('?') == std::string::npos, "the query string is dropped");
        fuzz::check(p.request.path.size() <= limit, "the path is bounded by the limit");
        auto r = sv::route_http_request(p.request);
        (void)r;
    }
    return 0;
}
