// Unit tests for the wire-level limits of the proxy's HTTP/1.1 rules
// (lib/lb/http1_codec): chunk extensions and trailers against the read
// buffer and their own limit, trailers never forwarded, the Host rules of
// RFC 9112 3.2, and several X-Forwarded-For fields joined into one list.
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <string>
#include <string_view>

#include "lb/http1_codec.hpp"

namespace lb = userkey::lb;
namespace http1 = userkey::lb::http1;
namespace http = boost::beast::http;
using Action = http1::RequestDecision::Action;

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
