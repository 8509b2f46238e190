// Unit tests for lib/net/lingering_close.hpp on loopback connections.
// Deadlines here only bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <string>

#include "net/lingering_close.hpp"
#include "support/run_loop.hpp"

namespace net = userkey::net;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> linger_then_flag(tcp::socket& sock, net::LingerLimits limits, bool& done) {
  co_await net::linger_close(sock, limits);
  done = true;
}
#pragma GCC diagnostic pop

struct Pair {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket client{io};
  tcp::socket server{io};
  Pair() {
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

}  // namespace

TEST_CASE("linger_close: the client reads the whole answer, though it sent more than was read") {
  Pair p;
  // The client sends a body the server never reads (what it refused).
  const std::string unread(32 * 1024, 'x');
  asio::write(p.client, asio::buffer(unread));
  asio::write(p.server, asio::buffer(std::string_view("answer")));
  bool done = false;
  asio::co_spawn(p.io, linger_then_flag(p.server, {}, done), asio::detached);
  p.client.shutdown(tcp::socket::shutdown_send);  // the client is done sending: the linger ends
  userkey::test::run_until(p.io, [&] { return done; });
  p.server.close();
  std::string got;
  boost::system::error_code ec;
  asio::read(p.client, asio::dynamic_buffer(got), ec);
  CHECK(ec == asio::error::eof);
  CHECK(got == "answer");
}

TEST_CASE("linger_close: a client that neither sends nor closes is given up on at the time limit") {
  Pair p;
  bool done = false;
  asio::co_spawn(p.io, linger_then_flag(p.server, {.time = 100ms, .bytes = 1024}, done), asio::detached);
  userkey::test::run_until(p.io, [&] { return done; });
  CHECK(done);
}

TEST_CASE("linger_close: reading stops at the byte limit") {
  Pair p;
  const std::string flood(8 * 1024, 'x');
  asio::write(p.client, asio::buffer(flood));
  bool done = false;
  asio::co_spawn(p.io, linger_then_flag(p.server, {.time = 10s, .bytes = 1024}, done), asio::detached);
  userkey::test::run_until(p.io, [&] { return done; });
  CHECK(done);
}
