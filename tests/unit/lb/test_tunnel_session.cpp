// Unit tests for lib/lb/tunnel_session.hpp, the session's side of an
// accepted WebSocket upgrade, over a real client connection (SessionFixture)
// and a real upstream connection: the 101 the client gets, bytes already
// buffered on either side first, the tunnel listed on its connection and
// counted while it lasts, its end counted by why and its bytes added up,
// and the end of a drain closing it through the registry.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>

#include <exception>
#include <memory>
#include <string>

#include "lb/tunnel_session.hpp"
#include "support/run_loop.hpp"
#include "unit/lb/session_fixture.hpp"

namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
using userkey::lb::TunnelEnd;
using userkey::test::run_until;
using userkey::test::SessionFixture;
using namespace std::chrono_literals;

namespace {

engine::Response switching_protocols() {
  const std::string raw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  boost::beast::http::response_parser<boost::beast::http::string_body> p;
  engine::error_code ec;
  p.put(asio::buffer(raw), ec);
  REQUIRE(p.is_header_done());
  return p.release();
}

// A client connection and an upgraded upstream connection, each with the
// test's end, and serve_tunnel() running over them once started.
struct Rig {
  SessionFixture f;
  engine::Socket client_peer{f.io};
  std::shared_ptr<engine::ClientConnection> c = f.connect(client_peer);
  engine::Acceptor acceptor{f.io, engine::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  engine::Socket upstream_peer{f.io};
  std::unique_ptr<engine::UpstreamBody> up = std::make_unique<engine::UpstreamBody>();
  boost::beast::flat_buffer client_buffer;
  engine::Response res = switching_protocols();
  std::string wire;
  std::size_t bytes_in = 0, bytes_out = 0;
  bool done = false;

  Rig() {
    up->upgraded = true;
    up->conn = std::make_unique<engine::Conn>(f.io, engine::Slot{});
    upstream_peer.connect(acceptor.local_endpoint());
    up->conn->stream.socket() = acceptor.accept();
  }
  void start() {
    asio::co_spawn(f.io,
                   engine::serve_tunnel<engine::PlainLayer>(*c, client_buffer, res, std::move(up), wire, "rid-7",
                                                            bytes_in, bytes_out),
                   [this](std::exception_ptr) { done = true; });
  }
  // What `peer` has, once it has `n` bytes (the loop runs meanwhile).
  std::string take(engine::Socket& peer, std::size_t n) {
    run_until(f.io, [&] { return peer.available() >= n; });
    std::string out(n, '\0');
    asio::read(peer, asio::buffer(out));
    return out;
  }
};

void put(boost::beast::flat_buffer& b, const std::string& s) {
  b.commit(asio::buffer_copy(b.prepare(s.size()), asio::buffer(s)));
}

}  // namespace

TEST_CASE("tunnel session: the 101 with the upgrade's fields, buffered bytes first, then a counted tunnel") {
  Rig t;
  put(t.client_buffer, "client-early");
  put(t.up->conn->buffer, "upstream-early");
  t.start();
  run_until(t.f.io, [&] { return t.c->tunnel != nullptr; });
  CHECK(t.f.stats.tunnels_open.load() == 1);
  CHECK(t.f.stats.tunnels.load() == 1);
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "X-Request-Id: rid-7\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  CHECK(t.take(t.client_peer, head.size()) == head);
  CHECK(t.take(t.client_peer, 14) == "upstream-early");
  CHECK(t.take(t.upstream_peer, 12) == "client-early");
  asio::write(t.client_peer, asio::buffer(std::string("hello")));
  CHECK(t.take(t.upstream_peer, 5) == "hello");
  asio::write(t.upstream_peer, asio::buffer(std::string("world!")));
  CHECK(t.take(t.client_peer, 6) == "world!");
  // The upstream closes: the tunnel ends, counted, its bytes added up.
  t.upstream_peer.close();
  run_until(t.f.io, [&] { return t.done; });
  CHECK(t.c->tunnel == nullptr);
  CHECK(t.f.stats.tunnels_open.load() == 0);
  CHECK(t.f.stats.tunnels_closed[static_cast<std::size_t>(TunnelEnd::upstream)].load() == 1);
  CHECK(t.f.stats.tunnel_bytes_to_upstream.load() == 12 + 5);
  CHECK(t.f.stats.tunnel_bytes_to_client.load() == 14 + 6);
  CHECK(t.bytes_in == 12 + 5);
  CHECK(t.bytes_out == head.size() + 14 + 6);
}

TEST_CASE("tunnel session: the end of a drain closes it through the loop's registry") {
  Rig t;
  t.start();
  run_until(t.f.io, [&] { return t.c->tunnel != nullptr; });
  t.f.sessions.close_tunnels();
  run_until(t.f.io, [&] { return t.done; });
  CHECK(t.f.stats.tunnels_closed[static_cast<std::size_t>(TunnelEnd::drain)].load() == 1);
  CHECK(t.f.stats.tunnels_open.load() == 0);
  // Both ends see the close (both were shut down when it closed: the ends
  // are in already); the client had its 101 before.
  std::string client_got, upstream_got;
  engine::error_code ec;
  asio::read(t.client_peer, asio::dynamic_buffer(client_got), ec);
  CHECK(ec == asio::error::eof);
  CHECK(client_got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
  asio::read(t.upstream_peer, asio::dynamic_buffer(upstream_got), ec);
  CHECK(ec == asio::error::eof);
  CHECK(upstream_got.empty());
}

TEST_CASE("tunnel session: a client gone before the 101 is written gets no tunnel") {
  Rig t;
  t.client_peer.close();
  // (A write to a peer that has closed may still succeed once: reset it.)
  t.c->socket.shutdown(engine::tcp::socket::shutdown_send);
  t.start();
  run_until(t.f.io, [&] { return t.done; });
  CHECK(t.f.stats.tunnels.load() == 0);
  CHECK(t.f.stats.tunnels_open.load() == 0);
}
