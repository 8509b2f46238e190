// Unit tests for the lb's accept loop (lib/lb/listener): a real io_context
// and loopback connections to 127.0.0.1 on a kernel-chosen port. Deadlines
// here only bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

#include "lb/listener.hpp"
#include "support/run_loop.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using userkey::test::run_until;

TEST_CASE("listener: a hand-off that throws loses that connection only; accepting goes on") {
  asio::io_context io;
  lb::ProxyStats stats;
  spdlog::logger log("test");  // no sinks
  int calls = 0;
  std::vector<engine::Socket> served;
  engine::Listener listener(
      io,
      [&](engine::Socket sock, const engine::tcp&) {
        if (++calls == 1) throw std::runtime_error("out of memory, say");
        served.push_back(std::move(sock));
      },
      stats, log);
  REQUIRE_FALSE(listener.listen({asio::ip::make_address("127.0.0.1"), 0}));
  const engine::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), listener.port());
  listener.start();

  // The kernel completes a handshake without the listener: plain blocking
  // connects from this thread are enough.
  asio::io_context clients;
  engine::tcp::socket first(clients), second(clients);
  first.connect(at);
  run_until(io, [&] { return calls == 1; });
  CHECK(served.empty());
  second.connect(at);
  run_until(io, [&] { return served.size() == 1; });
  CHECK(calls == 2);
  CHECK(stats.connections_accepted.load() == 2);

  // The first connection is gone (closed by the lost socket's destructor),
  // the second is the one served.
  char byte = 0;
  boost::system::error_code ec;
  first.read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof);
  CHECK(served.front().remote_endpoint().port() == second.local_endpoint().port());
  listener.close();
}
