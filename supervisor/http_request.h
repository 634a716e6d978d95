// HTTP/1.x request heads (pure): parsed with the http_parser library (libhttp-parser-dev),
// bounded, and routed to the supervisor's few endpoints. No body is ever read: every
// answer closes the connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sv {

// A request head larger than this gets 431 (nginx's large_client_header_buffers is 8k).
constexpr size_t kHttpMaxHead = 8 * 1024;

struct HttpRequest {
    std::string method;  // "GET"
    std::string path;    // "/readyz", without the query string
};

struct HttpParse {
    enum class State {
        Incomplete,  // the head has not ended yet: read more
        Done,        // `request` holds the head
        Bad,         // not HTTP: answer `status` (400, 431, 505) and close
    };
    State state = State::Incomplete;
    HttpRequest request;
    int status = 0;      // for Bad
    std::string why;     // for Bad: one line, for the body and the log
};

// Parses the bytes received so far on a connection (from its first byte). Bounded: past
// `max_head` bytes without the end of the head the answer is Bad with 431.
HttpParse parse_http_request(std::string_view received, size_t max_head = kHttpMaxHead);

// Which endpoint a request asks for.
enum class HttpRoute { Healthz, Readyz, Metrics, Status, NotFound, MethodNotAllowed };
// GET and HEAD of /healthz, /readyz, /metrics, /status (a query string is ignored); 405
// for another method on one of them, 404 for any other path.
HttpRoute route_http_request(const HttpRequest& r);

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

// The bytes of a complete answer: status line, Content-Type, Content-Length,
// `Connection: close`, `Cache-Control: no-store`, and the body (left out for HEAD).
std::string format_http_response(const HttpResponse& r, bool head_only = false);

// "OK", "Not Found", …
const char* http_reason(int status);

} // namespace sv
