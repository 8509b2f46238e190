// Unit tests for lib/lb/upgrade.cpp: which requests are WebSocket upgrades
// (and which upgrades are not forwarded), which 101 switches to WebSocket,
// and the fields written for it into a head.
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <string>
#include <string_view>

#include "lb/upgrade.hpp"

namespace http1 = userkey::lb::http1;
namespace http = boost::beast::http;

namespace {

http1::Request request(std::string_view raw) {
  http1::RequestParser p;
  boost::system::error_code ec;
  p.put(boost::asio::const_buffer(raw.data(), raw.size()), ec);
  INFO(raw << ": " << ec.message());
  REQUIRE(p.is_header_done());
  return p.release();
}

http1::Response response(std::string_view raw) {
  http::response_parser<http::string_body> p;
  boost::system::error_code ec;
  p.put(boost::asio::const_buffer(raw.data(), raw.size()), ec);
  INFO(raw << ": " << ec.message());
  REQUIRE(p.is_header_done());
  return p.release();
}

bool requested(std::string_view raw) { return http1::websocket_requested(request(raw).base()); }

}  // namespace

TEST_CASE("upgrade: a WebSocket upgrade is a GET in HTTP/1.1 with Upgrade: websocket and Connection: upgrade") {
  CHECK(requested("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  // Tokens are case-insensitive, in comma lists, in any of several fields.
  CHECK(requested("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n\r\n"));
  CHECK(requested("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nUpgrade: foo, websocket\r\n"
                  "Connection: upgrade\r\n\r\n"));
}

TEST_CASE("upgrade: other upgrades, other methods or versions, and upgrades without Connection are not") {
  CHECK_FALSE(requested("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"));
  CHECK_FALSE(requested("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"));
  CHECK_FALSE(requested("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"));  // Connection does not name it
  CHECK_FALSE(requested("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n"));
  CHECK_FALSE(requested("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n"));  // no Upgrade at all
  CHECK_FALSE(requested("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websockets\r\nConnection: Upgrade\r\n\r\n"));
  CHECK_FALSE(requested("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  CHECK_FALSE(requested("GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
}

TEST_CASE("upgrade: only a 101 with Upgrade: websocket switches to WebSocket") {
  CHECK(http1::websocket_accepted(response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                           "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
                                      .base()));
  CHECK(http1::websocket_accepted(response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\r\n").base()));
  CHECK_FALSE(http1::websocket_accepted(response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n").base()));
  CHECK_FALSE(http1::websocket_accepted(response("HTTP/1.1 101 Switching Protocols\r\n\r\n").base()));
  CHECK_FALSE(http1::websocket_accepted(
      response("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n").base()));
}

TEST_CASE("upgrade: the fields go just before the head's blank line") {
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n";
  http1::add_websocket_fields(head);
  CHECK(head ==
        "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n"
        "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}

TEST_CASE("upgrade: the 101 the client gets keeps the upstream's end-to-end fields, never its hop-by-hop ones") {
  const auto res = response(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nKeep-Alive: timeout=5\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
  std::string head;
  http1::serialize_client_head(head, res, 11, true, http1::BodyFraming::length, {}, "rid-1");
  http1::add_websocket_fields(head);
  CHECK(head ==
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: chat\r\n"
        "X-Request-Id: rid-1\r\n"
        "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}
