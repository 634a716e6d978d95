// HTTP request heads through http_parser, stopped at the end of the head.
#include "supervisor/http_request.h"

#include <http_parser.h>

#include <fmt/format.h>

namespace sv {

namespace {

struct ParseState {
    std::string method, url;
    bool head_done = false;
    bool url_too_long = false;
};

int on_url(http_parser* p, const char* at, size_t len) {
    auto* st = static_cast<ParseState*>(p->data);
    st->url.append(at, len);
    return 0;
}

// The head is all we want: pause here, so a body (or a pipelined request) is never parsed.
int on_headers_complete(http_parser* p) {
    auto* st = static_cast<ParseState*>(p->data);
    st->head_done = true;
    st->method = http_method_str(static_cast<http_method>(p->method));
    http_parser_pause(p, 1);
    return 0;
}

HttpParse bad(int status, std::string why) {
    HttpParse r;
    r.state = HttpParse::State::Bad;
    r.status = status;
    r.why = std::move(why);
    return r;
}

} // namespace

HttpParse parse_http_request(std::string_view received, size_t max_head) {
    http_parser_settings settings{};
    settings.on_url = on_url;
    settings.on_headers_complete = on_headers_complete;
    http_parser parser{};
    http_parser_init(&parser, HTTP_REQUEST);
    ParseState st;
    parser.data = &st;
    std::string_view window = received.substr(0, max_head);
    http_parser_execute(&parser, &settings, window.data(), window.size());
    auto err = static_cast<http_errno>(parser.http_errno);
    if (st.head_done) {
        if (parser.http_major != 1) return bad(505, fmt::format("HTTP/{}.{} is not supported", parser.http_major, parser.http_minor));
        HttpParse r;
        r.state = HttpParse::State::Done;
        r.request.method = st.method;
        r.request.path = st.url.substr(0, st.url.find('?'));
        return r;
    }
    if (err != HPE_OK && err != HPE_PAUSED)
        return bad(400, fmt::format("bad request: {}", http_errno_description(err)));
    if (received.size() >= max_head)
        return bad(431, fmt::format("request head larger than {} bytes", max_head));
    return {};
}

HttpRoute route_http_request(const HttpRequest& r) {
    HttpRoute route = r.path == "/healthz"   ? HttpRoute::Healthz
                      : r.path == "/readyz"  ? HttpRoute::Readyz
                      : r.path == "/metrics" ? HttpRoute::Metrics
                      : r.path == "/status"  ? HttpRoute::Status
                                             : HttpRoute::NotFound;
    if (route != HttpRoute::NotFound && r.method != "GET" && r.method != "HEAD") return HttpRoute::MethodNotAllowed;
    return route;
}

const char* http_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

std::string format_http_response(const HttpResponse& r, bool head_only) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}Connection: close\r\n\r\n",
        r.status, http_reason(r.status), r.content_type, r.body.size(), r.status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head_only) out += r.body;
    return out;
}

} // namespace sv
