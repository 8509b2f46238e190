// Unit tests for how a client connection's bytes are reached
// (lib/lb/client_transport): the plain layer's read without waiting, and why
// a failed TLS handshake failed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <string>

#include "lb/client_transport.hpp"
#include "support/run_loop.hpp"
#include "unit/lb/session_fixture.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
using userkey::test::SessionFixture;

TEST_CASE("plain layer: read_now takes what is there, says nothing when nothing is, closed when the client left") {
  SessionFixture f;
  engine::Socket client(f.io);
  auto c = f.connect(client);
  std::array<char, 64> into{};
  std::size_t n = 0;
  CHECK(engine::PlainLayer::read_now(*c, asio::buffer(into), n) == engine::ReadNow::nothing);
  asio::write(client, asio::buffer(std::string("GET /")));
  userkey::test::run_until(f.io, [&] { return c->socket.available() == 5; });
  CHECK(engine::PlainLayer::read_now(*c, asio::buffer(into), n) == engine::ReadNow::data);
  CHECK(std::string(into.data(), n) == "GET /");
  client.close();
  userkey::test::run_until(f.io, [&] {
    return engine::PlainLayer::read_now(*c, asio::buffer(into), n) == engine::ReadNow::closed;
  });
}

TEST_CASE("handshake failures are classified: plain HTTP, protocol, closed") {
  const auto ssl_error = [](int reason) {
    return engine::error_code(static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), asio::error::get_ssl_category());
  };
  CHECK(engine::classify_handshake_error(ssl_error(SSL_R_HTTP_REQUEST)) == lb::TlsFailure::plain_http);
  CHECK(engine::classify_handshake_error(ssl_error(SSL_R_HTTPS_PROXY_REQUEST)) == lb::TlsFailure::plain_http);
  CHECK(engine::classify_handshake_error(ssl_error(SSL_R_WRONG_VERSION_NUMBER)) == lb::TlsFailure::protocol);
  CHECK(engine::classify_handshake_error(asio::ssl::error::stream_truncated) == lb::TlsFailure::closed);
  CHECK(engine::classify_handshake_error(asio::error::eof) == lb::TlsFailure::closed);
  CHECK(engine::classify_handshake_error(asio::error::connection_reset) == lb::TlsFailure::closed);
  CHECK(engine::classify_handshake_error(asio::error::host_unreachable) == lb::TlsFailure::protocol);
}
