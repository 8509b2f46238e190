// Unit tests for the tunnel (lib/lb/tunnel): bytes relayed both ways over
// real sockets on 127.0.0.1, what either side had sent before the tunnel
// written first, either side's close ending it after what that side sent,
// the idle timeout (and activity holding it off), a close from outside (a
// drain's), and one direction stalled while the other goes on.
//
// The tunnel runs on an io_context in a thread of its own; the test plays
// the client and the upstream with blocking sockets whose every wait is
// bounded.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>

#include "lb/tunnel.hpp"

namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
using userkey::lb::TunnelEnd;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A blocking socket of the test's, closed with it.
struct Peer {
  int fd = -1;
  explicit Peer(std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Peer() { close(); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  bool readable(std::chrono::milliseconds within) const {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(within.count())) > 0;
  }
  void send_all(const std::string& s) const {
    for (std::size_t off = 0; off < s.size();) {
      const auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }
  /// Exactly `n` bytes, unless the peer closes or nothing comes for 5 s.
  std::string read_n(std::size_t n) const {
    std::string out;
    char buf[65536];
    while (out.size() < n && readable(5s)) {
      const auto got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }
  /// True when the peer has closed (EOF or reset) within `within`, after
  /// reading and discarding what came before.
  bool sees_close(std::chrono::milliseconds within = 5s) const {
    const auto until = Clock::now() + within;
    char buf[65536];
    while (Clock::now() < until) {
      if (!readable(50ms)) continue;
      const auto got = ::recv(fd, buf, sizeof buf, 0);
      if (got <= 0) return true;
    }
    return false;
  }
};

// A tunnel between two connected pairs: client <-> [tunnel] <-> upstream,
// run on its own loop thread once start() is called.
struct TunnelRig {
  asio::io_context io;
  engine::Acceptor acceptor{io, engine::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
  std::uint16_t port = acceptor.local_endpoint().port();
  Peer client{port};
  engine::Socket client_end = acceptor.accept();
  Peer upstream{port};
  engine::Socket upstream_end = acceptor.accept();
  std::shared_ptr<engine::TunnelState> state;
  std::string client_pending, upstream_pending;
  std::atomic<bool> done{false};
  std::thread loop;

  explicit TunnelRig(std::chrono::milliseconds idle = 30s)
      : state(std::make_shared<engine::TunnelState>(client_end, upstream_end, idle)) {}
  ~TunnelRig() {
    if (!done) asio::post(io, [s = state] { s->close(TunnelEnd::drain); });
    if (loop.joinable()) loop.join();
  }

  void start() {
    asio::co_spawn(io,
                   engine::run_tunnel(state, client_end, upstream_end, asio::buffer(client_pending),
                                      asio::buffer(upstream_pending)),
                   [this](std::exception_ptr) { done = true; });
    loop = std::thread([this] { io.run(); });
  }
  bool ends_within(std::chrono::milliseconds bound) {
    const auto until = Clock::now() + bound;
    while (!done && Clock::now() < until) std::this_thread::sleep_for(5ms);
    return done;
  }
};

std::string pattern(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    s[i] = static_cast<char>(seed >> 24);
  }
  return s;
}

}  // namespace

TEST_CASE("tunnel: what each side sent before comes first, then bytes flow both ways at once, intact") {
  TunnelRig t;
  t.client_pending = "early from the client";
  t.upstream_pending = "early from the upstream";
  t.start();
  CHECK(t.upstream.read_n(t.client_pending.size()) == t.client_pending);
  CHECK(t.client.read_n(t.upstream_pending.size()) == t.upstream_pending);

  // 1 MiB each way, written and read at the same time from both ends.
  const std::string up = pattern(1 << 20, 1), down = pattern(1 << 20, 2);
  std::string got_up, got_down;
  std::thread client_reader([&] { got_down = t.client.read_n(down.size()); });
  std::thread upstream_reader([&] { got_up = t.upstream.read_n(up.size()); });
  std::thread upstream_writer([&] { t.upstream.send_all(down); });
  t.client.send_all(up);
  upstream_writer.join();
  client_reader.join();
  upstream_reader.join();
  CHECK(got_up == up);
  CHECK(got_down == down);
  CHECK_FALSE(t.done);
}

TEST_CASE("tunnel: the client's close ends it after what the client sent; the upstream sees the close") {
  TunnelRig t;
  t.start();
  t.client.send_all("last words");
  ::shutdown(t.client.fd, SHUT_WR);
  CHECK(t.upstream.read_n(10) == "last words");
  CHECK(t.upstream.sees_close());
  REQUIRE(t.ends_within(5s));
  CHECK(t.state->end() == TunnelEnd::client);
  CHECK(t.state->to_upstream == 10);
  CHECK(t.state->to_client == 0);
  CHECK(t.client.sees_close());
}

TEST_CASE("tunnel: the upstream's close ends it after what the upstream sent; the client sees the close") {
  TunnelRig t;
  t.start();
  const std::string last = pattern(200'000, 3);  // more than a buffer: several reads, each written first
  t.upstream.send_all(last);
  t.upstream.close();
  CHECK(t.client.read_n(last.size()) == last);
  CHECK(t.client.sees_close());
  REQUIRE(t.ends_within(5s));
  CHECK(t.state->end() == TunnelEnd::upstream);
  CHECK(t.state->to_client == last.size());
}

TEST_CASE("tunnel: no byte either way for the idle timeout closes it; traffic either way holds it off") {
  TunnelRig t(300ms);
  t.start();
  // Traffic for three times the timeout, each way in turn, a little at a
  // time: it stays open.
  const auto busy_until = Clock::now() + 900ms;
  for (int i = 0; Clock::now() < busy_until; ++i) {
    if (i % 2 == 0) {
      t.client.send_all("ping");
      CHECK(t.upstream.read_n(4) == "ping");
    } else {
      t.upstream.send_all("pong");
      CHECK(t.client.read_n(4) == "pong");
    }
    std::this_thread::sleep_for(60ms);
  }
  CHECK_FALSE(t.done);
  // Then quiet: closed after about the timeout, both sides told.
  const auto quiet = Clock::now();
  REQUIRE(t.ends_within(5s));
  CHECK(Clock::now() - quiet >= 200ms);  // (the last byte went up to 60 ms before `quiet`)
  CHECK(t.state->end() == TunnelEnd::idle_timeout);
  CHECK(t.client.sees_close());
  CHECK(t.upstream.sees_close());
}

TEST_CASE("tunnel: a close from outside (a drain's) ends it while both directions wait to read") {
  TunnelRig t;
  t.start();
  t.client.send_all("x");
  CHECK(t.upstream.read_n(1) == "x");
  asio::post(t.io, [s = t.state] { s->close(TunnelEnd::drain); });
  REQUIRE(t.ends_within(5s));
  CHECK(t.state->end() == TunnelEnd::drain);
  CHECK(t.client.sees_close());
  CHECK(t.upstream.sees_close());
  // The first cause stays.
  t.state->close(TunnelEnd::client);
  CHECK(t.state->end() == TunnelEnd::drain);
}

TEST_CASE("tunnel: a side that does not read holds back only its own direction; idle, even a stalled tunnel "
          "closes") {
  TunnelRig t(400ms);
  t.start();
  // The upstream reads nothing: the client's bytes pile up until the
  // client's sends would block (the tunnel holds one buffer of them, not
  // all of them).
  const int flags = ::fcntl(t.client.fd, F_GETFL);
  ::fcntl(t.client.fd, F_SETFL, flags | O_NONBLOCK);
  const std::string chunk(65536, 'c');
  std::size_t pushed = 0;
  const auto give_up = Clock::now() + 5s;
  while (Clock::now() < give_up) {
    const auto n = ::send(t.client.fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pushed += static_cast<std::size_t>(n);
      continue;
    }
    // Blocked: wait a little in case the tunnel takes more, then stop.
    pollfd p{t.client.fd, POLLOUT, 0};
    if (::poll(&p, 1, 200) <= 0) break;
  }
  ::fcntl(t.client.fd, F_SETFL, flags);
  CHECK(pushed > 0);
  // The other way still flows.
  t.upstream.send_all("still here");
  CHECK(t.client.read_n(10) == "still here");
  // Nothing moves now (the upstream still reads nothing): the idle timeout
  // ends it, though a write to the upstream is stuck.
  REQUIRE(t.ends_within(5s));
  CHECK(t.state->end() == TunnelEnd::idle_timeout);
  CHECK(t.state->to_upstream < pushed);
}
