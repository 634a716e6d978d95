// HTTP request heads: parsing (bounded), routing and the answer's bytes.
#include <doctest/doctest.h>

#include "supervisor/http_request.h"

using namespace sv;
using State = HttpParse::State;

TEST_CASE("complete heads") {
    auto p = parse_http_request("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_EQ(p.state, State::Done);
    CHECK_EQ(p.request.method, "GET");
    CHECK_EQ(p.request.path, "/readyz");
    SUBCASE("query strings are dropped; HTTP/1.0 and HEAD work") {
        p = parse_http_request("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
        REQUIRE_EQ(p.state, State::Done);
        CHECK_EQ(p.request.method, "HEAD");
        CHECK_EQ(p.request.path, "/metrics");
    }
    SUBCASE("a body or a pipelined request after the head is not read") {
        p = parse_http_request("POST /status HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
        REQUIRE_EQ(p.state, State::Done);
        CHECK_EQ(p.request.method, "POST");
        p = parse_http_request("GET /healthz HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n");
        CHECK_EQ(p.state, State::Done);
    }
}

TEST_CASE("incomplete heads ask for more, byte by byte") {
    std::string head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (size_t n = 0; n < head.size(); n++) CHECK_EQ(parse_http_request(head.substr(0, n)).state, State::Incomplete);
    CHECK_EQ(parse_http_request(head).state, State::Done);
}

TEST_CASE("malformed and oversized heads") {
    auto p = parse_http_request("HELLO\r\n\r\n");
    CHECK_EQ(p.state, State::Bad);
    CHECK_EQ(p.status, 400);
    CHECK(p.why.find("bad request") != std::string::npos);
    CHECK_EQ(parse_http_request("GET / HTTP/1.1\r\nBad Header\r\n\r\n").status, 400);
    CHECK_EQ(parse_http_request(std::string("GET /\0 HTTP/1.1\r\n\r\n", 19)).status, 400);
    CHECK_EQ(parse_http_request("GET / HTTP/2.0\r\n\r\n").status, 505);
    SUBCASE("431 past the head limit, also when the head never ends") {
        std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(kHttpMaxHead, 'a');
        p = parse_http_request(big);
        CHECK_EQ(p.state, State::Bad);
        CHECK_EQ(p.status, 431);
        CHECK_EQ(parse_http_request(big + "\r\n\r\n").status, 431);
        CHECK_EQ(parse_http_request(std::string(100, 'G'), 64).status, 400);
        CHECK_EQ(parse_http_request("GET /" + std::string(100, 'a'), 64).status, 431);
    }
}

TEST_CASE("routes") {
    CHECK_EQ(route_http_request({"GET", "/healthz"}), HttpRoute::Healthz);
    CHECK_EQ(route_http_request({"HEAD", "/readyz"}), HttpRoute::Readyz);
    CHECK_EQ(route_http_request({"GET", "/metrics"}), HttpRoute::Metrics);
    CHECK_EQ(route_http_request({"GET", "/status"}), HttpRoute::Status);
    CHECK_EQ(route_http_request({"GET", "/"}), HttpRoute::NotFound);
    CHECK_EQ(route_http_request({"GET", "/readyz/"}), HttpRoute::NotFound);
    CHECK_EQ(route_http_request({"POST", "/readyz"}), HttpRoute::MethodNotAllowed);
    CHECK_EQ(route_http_request({"DELETE", "/nope"}), HttpRoute::NotFound);
}

TEST_CASE("answers close the connection and say their length") {
    std::string a = format_http_response({503, "text/plain", "not serving: stopping\n"});
    CHECK(a.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
    CHECK(a.find("Content-Length: 22\r\n") != std::string::npos);
    CHECK(a.find("Connection: close\r\n") != std::string::npos);
    CHECK(a.size() >= 22);
    CHECK_EQ(a.substr(a.size() - 22), "not serving: stopping\n");
    std::string h = format_http_response({200, "text/plain", "ok\n"}, true);
    CHECK(h.find("Content-Length: 3\r\n") != std::string::npos);
    CHECK(h.substr(h.size() - 4) == "\r\n\r\n");
    CHECK(format_http_response({405, "text/plain", ""}).find("Allow: GET, HEAD\r\n") != std::string::npos);
}
