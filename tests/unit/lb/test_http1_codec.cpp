// Unit tests for lib/lb/http1_codec.cpp, the proxy's HTTP/1.1 rules: framing
// decisions over raw bytes (smuggling shapes included), hop-by-hop stripping,
// proxy headers, response re-framing, the lb's own error responses, and the
// wire-level limits (chunk extensions, trailers, Host, X-Forwarded-For).
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include <string>
#include <string_view>

#include "lb/http1_codec.hpp"

namespace lb = userkey::lb;
namespace http1 = userkey::lb::http1;
namespace http = boost::beast::http;
using Action = http1::RequestDecision::Action;

namespace {

http1::Request parse_request(std::string_view raw) {
  http1::RequestParser p;
  p.eager(true);
  boost::system::error_code ec;
  p.put(boost::asio::const_buffer(raw.data(), raw.size()), ec);
  INFO(raw << ": " << ec.message());
  REQUIRE(!ec);
  REQUIRE(p.is_done());
  return p.release();
}

http1::Response parse_response(std::string_view raw, bool head = false) {
  http::response_parser<http::string_body> p;
  p.eager(true);
  if (head) p.skip(true);
  boost::system::error_code ec;
  p.put(boost::asio::const_buffer(raw.data(), raw.size()), ec);
  INFO(raw << ": " << ec.message());
  REQUIRE(!ec);
  REQUIRE(p.is_done());
  return p.release();
}

http1::RequestDecision decide(std::string_view raw) { return http1::decide_request(raw, lb::LimitsConfig{}); }

void check_rejected(std::string_view raw, unsigned status, lb::Rejection why, std::string_view message = {}) {
  CAPTURE(raw);
  const auto d = decide(raw);
  CHECK(d.action == Action::reject);
  CHECK(d.status == status);
  REQUIRE(d.reason.has_value());
  CHECK(*d.reason == why);
  if (!message.empty()) CHECK(d.message == message);
}

}  // namespace

TEST_CASE("framing: well-formed requests are forwarded") {
  for (std::string_view raw : {
           "GET /?user_id=1 HTTP/1.1\r\nHost: a\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
           "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
           "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
           "GET / HTTP/1.0\r\n\r\n",
       }) {
    CAPTURE(raw);
    const auto d = decide(raw);
    CHECK(d.forwards());
    CHECK_FALSE(d.reason.has_value());
  }
}

TEST_CASE("framing: smuggling shapes are 400") {
  // Both framings, either order (Beast refuses the field itself).
  check_rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                 lb::Rejection::bad_request, "bad request: bad Transfer-Encoding");
  check_rejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400,
                 lb::Rejection::bad_request, "bad request: bad Content-Length");
  // Duplicate Content-Length: equal values pass Beast, so the proxy's rule refuses them.
  check_rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400,
                 lb::Rejection::bad_request, "ambiguous message framing");
  check_rejected("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
                 lb::Rejection::bad_request, "bad request: bad Content-Length");
  // Transfer-Encoding whose last coding is not chunked: length unknowable.
  check_rejected("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400, lb::Rejection::bad_request,
                 "ambiguous message framing");
  check_rejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc", 400, lb::Rejection::bad_request,
                 "ambiguous message framing");
  // Two chunked Transfer-Encoding fields.
  check_rejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                 lb::Rejection::bad_request);
  // Not HTTP at all.
  check_rejected("HELLO\r\n\r\n", 400, lb::Rejection::bad_request);
}

TEST_CASE("framing: a body on GET, HEAD, OPTIONS and TRACE is 400") {
  for (std::string_view method : {"GET", "HEAD", "OPTIONS", "TRACE"}) {
    CAPTURE(method);
    check_rejected(std::string(method) + " / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400,
                   lb::Rejection::bad_request, "a body is not allowed on this method");
    check_rejected(std::string(method) + " / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                   lb::Rejection::bad_request, "a body is not allowed on this method");
  }
  CHECK(decide("DELETE / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc").forwards());
}

TEST_CASE("framing: limits") {
  lb::LimitsConfig limits;
  limits.max_body_bytes = 10;
  limits.max_header_bytes = 256;
  auto d = http1::decide_request("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n01234567890", limits);
  CHECK(d.action == Action::reject);
  CHECK(d.status == 413);
  CHECK(d.message == "payload too large");
  CHECK(d.reason == lb::Rejection::body_too_large);
  CHECK(http1::decide_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits)
            .forwards());
  // A chunked body grows past the limit while it is read.
  d = http1::decide_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n01234567890\r\n0\r\n\r\n",
                            limits);
  CHECK(d.status == 413);
  CHECK(d.reason == lb::Rejection::body_too_large);
  d = http1::decide_request("GET / HTTP/1.1\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n", limits);
  CHECK(d.status == 431);
  CHECK(d.message == "request header fields too large");
  CHECK(d.reason == lb::Rejection::header_too_large);
}

TEST_CASE("framing: a client that closes early") {
  // Nothing, or part of a head: closed without an answer, not counted.
  for (std::string_view raw : {"", "GET / HTTP/1.1\r\nHost: a\r\n"}) {
    const auto d = decide(raw);
    CHECK(d.action == Action::drop);
    CHECK_FALSE(d.reason.has_value());
  }
  // Part of a body: 400.
  check_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", 400, lb::Rejection::bad_request,
                 "bad request: partial message");
}

TEST_CASE("read errors: timeouts, limits, resets") {
  namespace beast = boost::beast;
  auto d = http1::classify_head_error(beast::error::timeout, false);  // idle keep-alive connection
  CHECK(d.action == Action::drop);
  CHECK_FALSE(d.reason.has_value());
  d = http1::classify_head_error(beast::error::timeout, true);  // slow client
  CHECK(d.status == 408);
  CHECK(d.reason == lb::Rejection::header_timeout);
  d = http1::classify_head_error(boost::asio::error::operation_aborted, true);  // drain
  CHECK(d.action == Action::drop);
  d = http1::classify_head_error(boost::asio::error::connection_reset, true);
  CHECK(d.action == Action::drop);
  d = http1::classify_body_error(beast::error::timeout);  // a slow upload
  CHECK(d.action == Action::reject);
  CHECK(d.status == 408);
  CHECK(d.reason == lb::Rejection::body_timeout);
  d = http1::classify_body_error(http::error::end_of_stream);
  CHECK(d.action == Action::drop);
  CHECK_FALSE(d.reason.has_value());
}

TEST_CASE("upstream request: hop-by-hop headers and Connection-named tokens are stripped") {
  const auto req = parse_request(
      "GET /?user_id=1 HTTP/1.1\r\n"
      "Host: lb\r\n"
      "Connection: keep-alive, X-Secret, x-other-hop\r\n"
      "Connection: Upgrade\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Authorization: Basic abc\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Upgrade: h2c\r\n"
      "X-Secret: 1\r\n"
      "X-Other-Hop: 2\r\n"
      "Expect: 100-continue\r\n"
      "Accept: */*\r\n"
      "\r\n");
  std::string out;
  http1::serialize_upstream_request(out, req, "127.0.0.9", "00000000000000000000000000000001");
  CHECK(out ==
        "GET /?user_id=1 HTTP/1.1\r\n"
        "Host: lb\r\n"
        "Accept: */*\r\n"
        "X-Forwarded-For: 127.0.0.9\r\n"
        "X-Real-IP: 127.0.0.9\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Request-Id: 00000000000000000000000000000001\r\n"
        "\r\n");
}

TEST_CASE("upstream request: a WebSocket upgrade goes on with the lb's own Connection and Upgrade fields") {
  const auto req = parse_request(
      "GET /chat HTTP/1.1\r\n"
      "Host: lb\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Upgrade: WebSocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\n"
      "\r\n");
  std::string out;
  http1::serialize_upstream_request(out, req, "127.0.0.9", "");
  CHECK(out ==
        "GET /chat HTTP/1.1\r\n"
        "Host: lb\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        "X-Forwarded-For: 127.0.0.9\r\n"
        "X-Real-IP: 127.0.0.9\r\n"
        "X-Forwarded-Proto: http\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: websocket\r\n"
        "\r\n");
}

TEST_CASE("upstream request: X-Forwarded-For appended, client's proxy headers and X-Request-Id replaced") {
  const auto req = parse_request(
      "PUT /k HTTP/1.1\r\n"
      "Host: lb\r\n"
      "X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"
      "X-Real-IP: 6.6.6.6\r\n"
      "X-Forwarded-Proto: https\r\n"
      "X-Request-Id: client-chosen\r\n"
      "Content-Length: 3\r\n"
      "\r\n"
      "abc");
  std::string out = "left over from the previous request";
  http1::serialize_upstream_request(out, req, "192.0.2.7", "the-session-s-id");
  CHECK(out ==
        "PUT /k HTTP/1.1\r\n"
        "Host: lb\r\n"
        "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\n"
        "X-Real-IP: 192.0.2.7\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Request-Id: the-session-s-id\r\n"
        "Content-Length: 3\r\n"
        "\r\n");
  // Request ids off (no id): the client's field goes as it is, none is added.
  http1::serialize_upstream_request(out, req, "192.0.2.7", "");
  CHECK(out ==
        "PUT /k HTTP/1.1\r\n"
        "Host: lb\r\n"
        "X-Request-Id: client-chosen\r\n"
        "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\n"
        "X-Real-IP: 192.0.2.7\r\n"
        "X-Forwarded-Proto: http\r\n"
        "Content-Length: 3\r\n"
        "\r\n");
}

TEST_CASE("upstream request: the lb's traceparent replaces the client's; tracestate goes on only with its trace") {
  const auto req = parse_request(
      "GET /t HTTP/1.1\r\n"
      "Host: lb\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "TraceState: congo=t61rcWkgMzE\r\n"
      "tracestate: rojo=00f067aa0ba902b7\r\n"
      "\r\n");
  const std::string ours = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
  std::string out;
  // The client's trace goes on (trace-id kept, the lb's parent-id): its
  // tracestate fields too, as they were, in order.
  http1::serialize_upstream_request(out, req, "192.0.2.7", {"rid", ours, true});
  CHECK(out ==
        "GET /t HTTP/1.1\r\n"
        "Host: lb\r\n"
        "TraceState: congo=t61rcWkgMzE\r\n"
        "tracestate: rojo=00f067aa0ba902b7\r\n"
        "X-Forwarded-For: 192.0.2.7\r\n"
        "X-Real-IP: 192.0.2.7\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Request-Id: rid\r\n"
        "traceparent: " + ours + "\r\n"
        "\r\n");
  // A new trace (the client's traceparent was invalid): its tracestate is dropped.
  const std::string fresh = "00-0123456789abcdeffedcba9876543210-00000000deadbeef-00";
  http1::serialize_upstream_request(out, req, "192.0.2.7", {"rid", fresh, false});
  CHECK(out ==
        "GET /t HTTP/1.1\r\n"
        "Host: lb\r\n"
        "X-Forwarded-For: 192.0.2.7\r\n"
        "X-Real-IP: 192.0.2.7\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Request-Id: rid\r\n"
        "traceparent: " + fresh + "\r\n"
        "\r\n");
  // Request ids off (no traceparent of the lb's): the client's fields go as they are.
  http1::serialize_upstream_request(out, req, "192.0.2.7", "");
  CHECK(out.find("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n") != std::string::npos);
  CHECK(out.find("TraceState: congo=t61rcWkgMzE\r\ntracestate: rojo=00f067aa0ba902b7\r\n") != std::string::npos);
  CHECK(out.find("X-Request-Id") == std::string::npos);
  // Without a tracestate, a new trace is just the traceparent; several
  // traceparent fields all go.
  const auto twice = parse_request(
      "GET / HTTP/1.1\r\nHost: lb\r\ntraceparent: a\r\nTRACEPARENT: b\r\n\r\n");
  http1::serialize_upstream_request(out, twice, "::1", {"rid", fresh, false});
  CHECK(out ==
        "GET / HTTP/1.1\r\nHost: lb\r\n"
        "X-Forwarded-For: ::1\r\nX-Real-IP: ::1\r\nX-Forwarded-Proto: http\r\nX-Request-Id: rid\r\n"
        "traceparent: " + fresh + "\r\n\r\n");
}

TEST_CASE("upstream request with trusted proxies: a trusted chain plus the peer, or the peer alone") {
  const auto req = parse_request(
      "GET / HTTP/1.1\r\n"
      "Host: lb\r\n"
      "X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n"
      "\r\n");
  std::string out;
  // From a trusted proxy (127.0.0.1): its chain, then itself; the client it names in X-Real-IP.
  http1::serialize_upstream_request(out, req, "203.0.113.7", "", "http", {.keep_chain = true, .peer = "127.0.0.1"});
  CHECK(out.find("X-Forwarded-For: 203.0.113.7, 10.0.0.1, 127.0.0.1\r\nX-Real-IP: 203.0.113.7\r\n") !=
        std::string::npos);
  // From an untrusted client: what it claims is dropped.
  http1::serialize_upstream_request(out, req, "198.51.100.2", "", "http",
                                    {.keep_chain = false, .peer = "198.51.100.2"});
  CHECK(out.find("X-Forwarded-For: 198.51.100.2\r\nX-Real-IP: 198.51.100.2\r\n") != std::string::npos);
  CHECK(out.find("203.0.113.7") == std::string::npos);
}

TEST_CASE("client response: the request id replaces the upstream's, on relayed and own answers") {
  const auto res = parse_response(
      "HTTP/1.1 200 OK\r\n"
      "X-Request-Id: upstream-made\r\n"
      "Content-Length: 2\r\n"
      "\r\n"
      "ok");
  std::string out;
  http1::serialize_client_response(out, res, 11, true, false, "abc.123");
  CHECK(out == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: abc.123\r\n\r\n");
  http1::serialize_client_response(out, res, 11, true, false);  // ids off: the upstream's as it is
  CHECK(out == "HTTP/1.1 200 OK\r\nX-Request-Id: upstream-made\r\nContent-Length: 2\r\n\r\n");
  const auto own = http1::make_error_response(503, "no healthy upstream", 11, std::chrono::seconds(1));
  http1::serialize_client_response(out, own, 11, false, false, "abc.123");
  CHECK(out.find("\r\nX-Request-Id: abc.123\r\n") != std::string::npos);
  CHECK(out.find("Connection: close") != std::string::npos);
}

TEST_CASE("upstream request: a chunked body goes upstream with a Content-Length") {
  const auto req =
      parse_request("POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  std::string out;
  http1::serialize_upstream_request(out, req, "::1", "id");
  CHECK(out ==
        "POST / HTTP/1.1\r\n"
        "Host: lb\r\n"
        "X-Forwarded-For: ::1\r\nX-Real-IP: ::1\r\nX-Forwarded-Proto: http\r\nX-Request-Id: id\r\n"
        "Content-Length: 5\r\n\r\n");
  CHECK(req.body() == "abcde");
}

TEST_CASE("client response: re-framed by Content-Length, hop-by-hop dropped") {
  const auto res = parse_response(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/plain\r\n"
      "Connection: X-Backend-Hop\r\n"
      "X-Backend-Hop: 1\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "4\r\nuser\r\n3\r\nkey\r\n0\r\n\r\n");
  std::string out;
  http1::serialize_client_response(out, res, 11, true, false);
  CHECK(out == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\n");
  http1::serialize_client_response(out, res, 11, false, false);
  CHECK(out == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\n");
}

TEST_CASE("client response: HTTP/1.0 keep-alive, HEAD, 204 and 304") {
  const auto res = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  std::string out;
  http1::serialize_client_response(out, res, 10, true, false);
  CHECK(out == "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n");
  http1::serialize_client_response(out, res, 10, false, false);
  CHECK(out == "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");

  // The answer to a HEAD reports the length of the body it does not carry.
  const auto head = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", /*head=*/true);
  http1::serialize_client_response(out, head, 11, true, /*head_request=*/true);
  CHECK(out == "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n");

  for (std::string_view raw : {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"}) {
    const auto r = parse_response(raw);
    http1::serialize_client_response(out, r, 11, true, false);
    CHECK(out.find("Content-Length") == std::string::npos);
  }
}

TEST_CASE("the lb's own error response") {
  const auto res = http1::make_error_response(503, "no healthy upstream", 11, std::chrono::seconds(1));
  CHECK(res.result_int() == 503);
  CHECK(res.body() == "{\"error\":\"no healthy upstream\"}\n");
  std::string out;
  http1::serialize_client_response(out, res, 11, true, false);
  CHECK(out ==
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Server: userkey-lb\r\n"
        "Retry-After: 1\r\n"
        "Content-Length: 32\r\n"
        "\r\n");
  // Answering a HEAD: the same length, no body written by the caller.
  http1::serialize_client_response(out, res, 11, false, true);
  CHECK(out.find("Content-Length: 32\r\n") != std::string::npos);
  CHECK(out.find("Connection: close\r\n") != std::string::npos);

  const auto bad = http1::make_error_response(400, "bad request: \"quoted\"\n", 10);
  CHECK(bad.body() == "{\"error\":\"bad request: \\\"quoted\\\"\\n\"}\n");
  CHECK(bad.find(http::field::retry_after) == bad.end());
  http1::serialize_client_response(out, bad, 10, false, false);
  CHECK(out.rfind("HTTP/1.0 400 Bad Request\r\n", 0) == 0);
}

TEST_CASE("idempotent methods") {
  for (auto v : {http::verb::get, http::verb::head, http::verb::options, http::verb::put, http::verb::delete_,
                 http::verb::trace})
    CHECK(http1::idempotent(v));
  for (auto v : {http::verb::post, http::verb::patch, http::verb::connect}) CHECK_FALSE(http1::idempotent(v));
}

TEST_CASE("a streamed body's framing: its length kept, else chunks to HTTP/1.1, the close to HTTP/1.0") {
  using userkey::lb::http1::BodyFraming;
  CHECK(userkey::lb::http1::client_framing(true, 11) == BodyFraming::length);
  CHECK(userkey::lb::http1::client_framing(true, 10) == BodyFraming::length);
  CHECK(userkey::lb::http1::client_framing(false, 11) == BodyFraming::chunked);
  CHECK(userkey::lb::http1::client_framing(false, 10) == BodyFraming::close);
}

TEST_CASE("a streamed head carries the framing it is given; a chunk's size line is lowercase hex") {
  using userkey::lb::http1::BodyFraming;
  userkey::lb::http1::Response res{boost::beast::http::status::ok, 11};
  res.set(boost::beast::http::field::transfer_encoding, "chunked");
  res.set("X-A", "1");
  std::string out;
  userkey::lb::http1::serialize_client_head(out, res, 11, true, BodyFraming::chunked, "");
  CHECK(out == "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  userkey::lb::http1::serialize_client_head(out, res, 11, true, BodyFraming::length, "1073741824");
  CHECK(out == "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 1073741824\r\n\r\n");
  userkey::lb::http1::serialize_client_head(out, res, 10, false, BodyFraming::close, "");
  CHECK(out == "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n");
  out.clear();
  userkey::lb::http1::append_chunk_size(out, 0);
  userkey::lb::http1::append_chunk_size(out, 255);
  userkey::lb::http1::append_chunk_size(out, 65536);
  CHECK(out == "0\r\nff\r\n10000\r\n");
}

// The wire-level limits: chunk extensions and trailers against the read
// buffer and their own limit, trailers never forwarded, the Host rules of
// RFC 9112 3.2, and several X-Forwarded-For fields joined into one list.

namespace {

lb::LimitsConfig small_limits() {
  lb::LimitsConfig limits;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 64 * 1024;
  return limits;
}

const std::string kChunkedHead = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

void check_decision(const http1::RequestDecision& d, unsigned status, lb::Rejection why, std::string_view message) {
  CHECK(d.action == Action::reject);
  CHECK(d.status == status);
  REQUIRE(d.reason.has_value());
  CHECK(*d.reason == why);
  CHECK(d.message == message);
}

}  // namespace

TEST_CASE("chunk extensions: one that never ends is 400 once it fills the read buffer") {
  const auto limits = small_limits();
  // Far more than the buffer holds, and no end of line: refused at the cap,
  // whatever follows.
  const std::string endless = kChunkedHead + "5;ext=" + std::string(64 * 1024, 'x');
  check_decision(http1::decide_request(endless, limits), 400, lb::Rejection::bad_request, "chunk extension too long");
  // After a first chunk too.
  const std::string later = kChunkedHead + "3\r\nabc\r\n4;e=" + std::string(4096, 'y');
  check_decision(http1::decide_request(later, limits), 400, lb::Rejection::bad_request, "chunk extension too long");
  // Short extensions are accepted, and not forwarded.
  http1::Request req;
  const auto ok = http1::decide_request(kChunkedHead + "3;a=b\r\nabc\r\n2;c\r\nde\r\n0;last\r\n\r\n", limits, &req);
  CHECK(ok.forwards());
  CHECK(req.body() == "abcde");
}

TEST_CASE("chunk extensions: their total over a request counts against max_header_bytes") {
  const auto limits = small_limits();
  std::string body;
  // 40 chunks with a 40-byte extension each: 1600 bytes of extensions, each
  // line well inside the buffer.
  for (int i = 0; i < 40; ++i) body += "1;" + std::string(38, 'e') + "\r\nx\r\n";
  body += "0\r\n\r\n";
  check_decision(http1::decide_request(kChunkedHead + body, limits), 400, lb::Rejection::bad_request,
                 "chunk extensions too long");
  CHECK(http1::decide_request(kChunkedHead + "1;" + std::string(38, 'e') + "\r\nx\r\n0\r\n\r\n", limits).forwards());
}

TEST_CASE("trailers: a trailer section larger than the read buffer is 431; trailers are never forwarded") {
  const auto limits = small_limits();
  const std::string huge = kChunkedHead + "3\r\nabc\r\n0\r\nX-Trailer: " + std::string(4096, 't');
  check_decision(http1::decide_request(huge, limits), 431, lb::Rejection::header_too_large,
                 "request trailer fields too large");

  http1::Request req;
  const auto d = http1::decide_request(
      kChunkedHead + "3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nConnection: close\r\nHost: evil\r\n\r\n", limits, &req);
  REQUIRE(d.forwards());
  CHECK(req.body() == "abc");
  CHECK(req.count("X-Checksum") == 0);
  CHECK(req.count(http::field::host) == 1);
  CHECK(req[http::field::host] == "a");
  CHECK(req.keep_alive());  // the trailer's Connection: close is not the head's
  std::string head;
  http1::serialize_upstream_request(head, req, "192.0.2.1", "id");
  CHECK(head.find("X-Checksum") == std::string::npos);
  CHECK(head.find("evil") == std::string::npos);
}

TEST_CASE("the read buffer: a head that does not fit is still 431, and a body streams through") {
  const auto limits = small_limits();
  check_decision(http1::decide_request("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n",
                                       limits),
                 431, lb::Rejection::header_too_large, "request header fields too large");
  // A body many times the buffer's size (within max_body_bytes) is fine.
  const std::string body(32 * 1024, 'z');
  http1::Request req;
  CHECK(http1::decide_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) +
                                  "\r\n\r\n" + body,
                              limits, &req)
            .forwards());
  CHECK(req.body() == body);
  CHECK(http1::decide_request(kChunkedHead + "8000\r\n" + body + "\r\n0\r\n\r\n", limits).forwards());
}

TEST_CASE("read errors: a body that overflowed the buffer, named by where it stopped") {
  using boost::beast::http::error::buffer_overflow;
  check_decision(http1::classify_body_error(buffer_overflow, "5;aaaaaaaa"), 400, lb::Rejection::bad_request,
                 "chunk extension too long");
  check_decision(http1::classify_body_error(buffer_overflow, "\r\n5;aaaaaaaa"), 400, lb::Rejection::bad_request,
                 "chunk extension too long");
  check_decision(http1::classify_body_error(buffer_overflow, "\r\n0\r\nX-T: aaaa"), 431,
                 lb::Rejection::header_too_large, "request trailer fields too large");
}

TEST_CASE("Host: missing in HTTP/1.1, repeated, malformed, or not the absolute-form target's authority is 400") {
  const lb::LimitsConfig limits;
  auto decide = [&](const std::string& raw) { return http1::decide_request(raw, limits); };
  check_decision(decide("GET / HTTP/1.1\r\n\r\n"), 400, lb::Rejection::bad_request, "missing Host field");
  check_decision(decide("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400, lb::Rejection::bad_request,
                 "more than one Host field");
  check_decision(decide("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400, lb::Rejection::bad_request,
                 "more than one Host field");
  check_decision(decide("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400, lb::Rejection::bad_request,
                 "invalid Host field");
  check_decision(decide("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400, lb::Rejection::bad_request,
                 "invalid Host field");
  check_decision(decide("GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n"), 400,
                 lb::Rejection::bad_request, "Host does not match the request target");
  check_decision(decide("GET http://a.example:8080/x HTTP/1.1\r\nHost: a.example\r\n\r\n"), 400,
                 lb::Rejection::bad_request, "Host does not match the request target");
  check_decision(decide("GET http://user@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"), 400,
                 lb::Rejection::bad_request, "Host does not match the request target");

  for (const std::string raw : {
           "GET / HTTP/1.0\r\n\r\n",  // HTTP/1.0 may leave it out
           "GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
           "GET / HTTP/1.1\r\nHost:\r\n\r\n",  // an empty Host is allowed
           "GET http://A.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n",
           "GET http://a.example:80/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
           "GET https://a.example/x HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
           "GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
           "GET /path?u=http://b.example HTTP/1.1\r\nHost: a.example\r\n\r\n",  // origin-form
       }) {
    CAPTURE(raw);
    CHECK(decide(raw).forwards());
  }
}

TEST_CASE("upstream request: several X-Forwarded-For fields are one list, in order, then the client") {
  http1::Request req;
  REQUIRE(http1::decide_request("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n"
                                "x-forwarded-for: 10.0.0.2, 10.0.0.3\r\nX-Forwarded-For:\r\n\r\n",
                                lb::LimitsConfig{}, &req)
              .forwards());
  std::string out;
  http1::serialize_upstream_request(out, req, "192.0.2.7", "id");
  CHECK(out.find("X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\n") != std::string::npos);
  CHECK(out.find("10.0.0.2", out.find("192.0.2.7")) == std::string::npos);  // one field only
  std::size_t fields = 0;
  for (auto pos = out.find("X-Forwarded-For"); pos != std::string::npos; pos = out.find("X-Forwarded-For", pos + 1))
    ++fields;
  CHECK(fields == 1);
}

TEST_CASE("upstream request: always one Host, even for an HTTP/1.0 client or a Connection that names it") {
  http1::Request req;
  std::string out;
  REQUIRE(http1::decide_request("GET /x HTTP/1.0\r\n\r\n", lb::LimitsConfig{}, &req).forwards());
  http1::serialize_upstream_request(out, req, "192.0.2.7", "id");
  CHECK(out.rfind("GET /x HTTP/1.1\r\nHost: \r\n", 0) == 0);
  REQUIRE(http1::decide_request("GET http://a.example:81/x HTTP/1.0\r\n\r\n", lb::LimitsConfig{}, &req).forwards());
  http1::serialize_upstream_request(out, req, "192.0.2.7", "id");
  CHECK(out.find("\r\nHost: a.example:81\r\n") != std::string::npos);
  REQUIRE(http1::decide_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", lb::LimitsConfig{}, &req)
              .forwards());
  http1::serialize_upstream_request(out, req, "192.0.2.7", "id");
  CHECK(out.find("\r\nHost: a\r\n") != std::string::npos);
}
