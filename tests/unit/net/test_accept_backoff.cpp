// Unit tests for lib/net/accept_backoff (and the loop of accept_loop.hpp,
// on a real io_context with loopback connections). Deadlines here only
// bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cerrno>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "net/accept_backoff.hpp"
#include "net/accept_loop.hpp"
#include "support/run_loop.hpp"

namespace net = userkey::net;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using net::AcceptFailure;

namespace {

error_code sys(int value) { return {value, boost::system::system_category()}; }

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("accept errors: closed stops, unusable is fatal, exhaustion pauses, an aborted connection is skipped") {
  CHECK(net::classify_accept_error(asio::error::operation_aborted, true) == AcceptFailure::stop);
  CHECK(net::classify_accept_error(sys(EMFILE), false) == AcceptFailure::stop);
  CHECK(net::classify_accept_error(asio::error::bad_descriptor, true) == AcceptFailure::fatal);
  CHECK(net::classify_accept_error(asio::error::invalid_argument, true) == AcceptFailure::fatal);
  for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) CHECK(net::classify_accept_error(sys(e), true) == AcceptFailure::pause);
  CHECK(net::classify_accept_error(sys(EPERM), true) == AcceptFailure::pause);  // unknown: never spin
  CHECK(net::classify_accept_error(asio::error::connection_aborted, true) == AcceptFailure::next);
  CHECK(net::classify_accept_error(sys(EPROTO), true) == AcceptFailure::next);
}

TEST_CASE("accept backoff: an episode of failures is logged once, and its end once") {
  std::ostringstream text;
  spdlog::logger log("test", std::make_shared<spdlog::sinks::ostream_sink_st>(text));
  net::AcceptBackoff backoff(&log, "listen address");
  CHECK_FALSE(backoff.backing_off());
  for (int i = 0; i < 5; ++i) CHECK(backoff.failed(sys(EMFILE), true) == AcceptFailure::pause);
  CHECK(backoff.backing_off());
  backoff.succeeded();
  backoff.succeeded();
  CHECK_FALSE(backoff.backing_off());
  CHECK(count_of(text.str(), "cannot accept on the listen address") == 1);
  CHECK(count_of(text.str(), "accepting connections on the listen address again") == 1);
  // A second episode is logged again.
  backoff.failed(sys(ENFILE), true);
  CHECK(count_of(text.str(), "cannot accept on the listen address") == 2);
  // Connections aborted in the backlog are no episode.
  backoff.succeeded();
  backoff.failed(asio::error::connection_aborted, true);
  CHECK_FALSE(backoff.backing_off());
}

namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<void> run_loop(tcp::acceptor& acceptor, std::vector<tcp::socket>& served, int& calls,
                               net::AcceptBackoff& backoff, bool& closed) {
  closed = co_await net::accept_loop(
      acceptor,
      [&](tcp::socket sock) {
        if (++calls == 1) throw std::runtime_error("out of memory, say");
        served.push_back(std::move(sock));
      },
      backoff, 8);
}
#pragma GCC diagnostic pop

}  // namespace

TEST_CASE("accept loop: a hand-off that throws loses that connection only; closing the acceptor ends the loop") {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto at = acceptor.local_endpoint();
  spdlog::logger log("test");  // no sinks
  net::AcceptBackoff backoff(&log, "listen address");
  std::vector<tcp::socket> served;
  int calls = 0;
  bool closed = false;
  asio::co_spawn(io, run_loop(acceptor, served, calls, backoff, closed), asio::detached);

  asio::io_context clients;
  tcp::socket first(clients), second(clients), third(clients);
  first.connect(at);
  userkey::test::run_until(io, [&] { return calls == 1; });
  CHECK(served.empty());
  second.connect(at);
  third.connect(at);
  userkey::test::run_until(io, [&] { return served.size() == 2; });
  CHECK(calls == 3);

  acceptor.close();
  userkey::test::run_until(io, [&] { return closed; });
  CHECK(closed);
}
