// Unit tests for a client connection's lasting state and a loop's registry
// (lib/lb/client_connection): accounting from accept to close, deadlines
// fired by the sweep, drain's cancel of idle connections and its close of
// tunnels.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <chrono>

#include "lb/client_connection.hpp"
#include "lb/tunnel.hpp"
#include "support/run_loop.hpp"
#include "unit/lb/session_fixture.hpp"

namespace engine = userkey::lb::engine;
using namespace std::chrono_literals;
using userkey::test::SessionFixture;

TEST_CASE("client connection: counted open and listed from accept to close") {
  SessionFixture f;
  engine::Socket a(f.io), b(f.io);
  auto one = f.connect(a);
  auto two = f.connect(b);
  CHECK(f.stats.connections_open.load() == 2);
  CHECK(f.sessions.size() == 2);
  one.reset();
  CHECK(f.stats.connections_open.load() == 1);
  CHECK(f.sessions.size() == 1);
  two.reset();
  CHECK(f.stats.connections_open.load() == 0);
  CHECK(f.sessions.size() == 0);
}

TEST_CASE("client connection: a passed deadline is fired by the sweep and cancels the socket's wait") {
  SessionFixture f;
  engine::Socket client(f.io);
  auto c = f.connect(client);
  bool done = false;
  engine::error_code waited;
  c->socket.async_wait(engine::tcp::socket::wait_read, [&](const engine::error_code& ec) {
    waited = ec;
    done = true;
  });
  c->deadline_at(userkey::lb::SteadyClock::now() + 1h);
  f.sessions.expire(userkey::lb::SteadyClock::now());  // not yet
  CHECK_FALSE(c->timed_out);
  c->deadline_at(userkey::lb::SteadyClock::now() - 1ms);
  f.sessions.expire(userkey::lb::SteadyClock::now());
  CHECK(c->timed_out);
  userkey::test::run_until(f.io, [&] { return done; });
  CHECK(waited == boost::asio::error::operation_aborted);
  CHECK(c->clear_deadline());        // it fired
  CHECK_FALSE(c->clear_deadline());  // and is cleared
}

TEST_CASE("client connection: drain cancels only connections idle for at least min_idle") {
  SessionFixture f;
  engine::Socket a(f.io), b(f.io);
  auto idle = f.connect(a);
  auto busy = f.connect(b);
  idle->busy = false;
  idle->idle_since = userkey::lb::SteadyClock::now() - 1s;
  busy->busy = true;
  int cancelled = 0;
  for (auto* c : {idle.get(), busy.get()})
    c->socket.async_wait(engine::tcp::socket::wait_read, [&](const engine::error_code& ec) {
      if (ec == boost::asio::error::operation_aborted) ++cancelled;
    });
  f.sessions.close_idle(10s);  // idle, but not for that long
  f.sessions.close_idle(500ms);
  userkey::test::run_until(f.io, [&] { return cancelled == 1; });
  // The busy one still waits; closing its peer ends that wait.
  a.close();
  b.close();
  userkey::test::run_until(f.io, [&] { return cancelled == 1 && f.io.poll() == 0; });
}

TEST_CASE("client connection: the end of a drain closes the connections that are tunnels, and only those") {
  SessionFixture f;
  engine::Socket a(f.io), b(f.io), up_peer(f.io);
  auto tunnel = f.connect(a);
  auto plain = f.connect(b);
  engine::Acceptor acceptor(f.io, engine::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0});
  up_peer.connect(acceptor.local_endpoint());
  engine::Socket upstream = acceptor.accept();
  const auto state = std::make_shared<engine::TunnelState>(tunnel->socket, upstream, 1h);
  tunnel->tunnel = state.get();
  bool plain_cancelled = false;
  plain->socket.async_wait(engine::tcp::socket::wait_read, [&](const engine::error_code& ec) {
    plain_cancelled = ec == boost::asio::error::operation_aborted;
  });
  f.sessions.close_tunnels();
  CHECK(state->closed());
  CHECK(state->end() == userkey::lb::TunnelEnd::drain);
  f.io.poll();
  CHECK_FALSE(plain_cancelled);  // a connection that is no tunnel waits on
  tunnel->tunnel = nullptr;
  b.close();
  userkey::test::run_until(f.io, [&] { return f.io.poll() == 0; });
}

TEST_CASE("client connection: the sweep runs at a quarter of the shortest client timeout, within 10-250 ms") {
  userkey::lb::LimitsConfig l;
  l.header_timeout = 400ms;
  l.body_timeout = 30s;
  l.idle_timeout = 30s;
  CHECK(engine::session_sweep_period(l) == 100ms);
  l.header_timeout = 5ms;
  CHECK(engine::session_sweep_period(l) == 10ms);
  l.header_timeout = 1h;
  l.body_timeout = 1h;
  l.idle_timeout = 1h;
  CHECK(engine::session_sweep_period(l) == 250ms);
}
